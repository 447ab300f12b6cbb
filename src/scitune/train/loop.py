"""One stage of training as a runner with torchtune-like seams: `setup` (model, data, optimizer,
restore), `train_step`, `save_checkpoint`, `export`; `run` calls them in that order. All of the
runner's state is named in `__init__` and filled in by `setup`.

Each optimizer step sees one global batch (see scitune.train.schedule; its order and micro-batches
come from scitune.train.order); the loss is the mean over the global batch's supervised tokens,
logged as such. A run directory per stage holds `metrics.jsonl`, `checkpoints/step-*/` (the last
`keep_last`), and what scitune.train.export writes: `final/` (a standard HF Llava directory; for
LoRA also `adapter/`), `projector.safetensors` and `done.json`.

Signals (scitune.train.signals) are acted on between optimizer steps. Hooks (`StepHook`) are
called after each step: tests use them to pause or stop a run at a chosen moment.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from scitune.config import Recipe
from scitune.errors import ScituneError
from scitune.progress import progress_bar
from scitune.train import distributed, schedule, trackers
from scitune.train.checkpointing import load_checkpoint, save_checkpoint, saved_fingerprint
from scitune.train.export import StageResult, gathered_model, read_done, write_done, write_model_files
from scitune.train.features import FeatureCache, TrainingModule
from scitune.train.flops import part_sizes, step_flops
from scitune.train.log import MetricsLog
from scitune.train.optim import make_optimizer
from scitune.train.order import MicroBatchStream, StepOrder
from scitune.train.signals import StopRequests, TrainingInterrupted
from scitune.train.stage_data import StageData, load_stage_data, make_collate, supervised_tokens
from scitune.train.stage_model import build_stage_model, check_max_length, lora_base_folder
from scitune.train.stage_settings import file_digest, fingerprint, fingerprint_changes, stage_settings
from scitune.train.state import latest_good_checkpoint, list_checkpoints

__all__ = [
    "StageResult", "StageRunner", "StepHook", "TrainingDiverged", "TrainingInterrupted", "file_digest", "run_stage",
    "supervised_tokens",
]

logger = logging.getLogger(__name__)

# Called after every optimizer step with (runner, step reached).
StepHook = Callable[["StageRunner", int], None]


class TrainingDiverged(ScituneError):
    """The loss or the gradient norm became NaN or infinite."""

    exit_code = 1


class StageRunner:
    """Runs stage `index` of `recipe` into `out_root/<stage name>/`."""

    def __init__(
        self,
        recipe: Recipe,
        index: int,
        out_root: Path,
        accelerator,
        resume: bool = False,
        texts: list[str] | None = None,
        hooks: Sequence[StepHook] = (),
    ):
        self.recipe, self.index, self.accelerator, self.resume, self.texts = recipe, index, accelerator, resume, texts
        self.hooks = list(hooks)
        self.run_config = recipe.stages[index]
        self.name = self.run_config.stage.name
        self.out_root = out_root
        self.stage_dir = out_root / self.name
        self.checkpoints = self.stage_dir / "checkpoints"
        self.world, self.rank = accelerator.num_processes, accelerator.process_index
        self.self_sharded = recipe.run.sharding == "fsdp2"  # scitune shards the model itself (FSDP2)
        self.stop = StopRequests()
        # filled in by setup(): the model ...
        self.model = self.processor = self.llava = None
        self.lora_base: Path | None = None  # the folder a LoRA adapter names as its base
        # ... the data ...
        self.data: StageData | None = None
        self.plan: schedule.Plan | None = None
        self.order: StepOrder | None = None
        self.batches: MicroBatchStream | None = None
        self.images = self.cache = self.collate = None
        # ... the optimizer and the wrapped model ...
        self.device = None
        self.module = self.optimizer = None
        self.trainable: list[torch.nn.Parameter] = []
        self.group_base_lrs: list[float] = []
        self.trainable_shapes: list = []
        self.sharded = self.deepspeed = False
        self.fingerprint: dict[str, Any] = {}
        # ... the FLOP estimate's sizes, and where training stands
        self.sizes: dict[str, dict[str, int]] = {}
        self.patches_per_image = 0
        self.start_step = 0
        self.last_loss: float | None = None

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        """Model, data, optimizer, and (with --resume) the latest good checkpoint."""
        self.setup_model()
        self.load_data()
        self.setup_optimizer()
        self.fingerprint = fingerprint(self.run_config, self.plan, self.data.data_sha256, self.trainable_shapes)
        self.restore()
        vision = self.llava.config.vision_config
        # a fixed-size tower's patches per image; Qwen-VL's vary with each image (no image_size):
        # its tower is left out of the FLOP estimate
        image_size = getattr(vision, "image_size", None)
        if isinstance(image_size, (list, tuple)):  # per axis (InternVL's (height, width))
            height, width = image_size
            patch_height, patch_width = vision.patch_size
            self.patches_per_image = (height // patch_height) * (width // patch_width) + 1
        else:
            self.patches_per_image = (image_size // vision.patch_size) ** 2 + 1 if image_size else 0
        self.sizes = part_sizes(self.model)

    def setup_model(self) -> None:
        from scitune.model import apply_stage
        from scitune.model.stages import format_parameter_table, parameter_table
        from scitune.prompting import set_pad_to_square

        run = self.run_config
        model, processor = build_stage_model(self.recipe, self.index, self.out_root, self.texts)
        check_max_length(model, run.data.max_length, self.name)
        # Image preprocessing is the processor's: padding set here is saved with the model.
        set_pad_to_square(processor, run.data.pad_to_square)
        if run.stage.lora:
            self.lora_base = lora_base_folder(
                self.recipe, self.index, self.out_root, model, processor, self.accelerator.is_main_process, self.resume
            )
        model = apply_stage(model, run.stage)
        if run.gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        logger.info(f"[{self.name}] parameters\n{format_parameter_table(parameter_table(model))}")
        self.model, self.processor = model, processor
        self.llava = model.get_base_model() if hasattr(model, "get_base_model") else model

    def load_data(self) -> None:
        from scitune.prompting import ImageLoader, Renderer

        run = self.run_config
        self.images = ImageLoader(self.processor.image_processor, run.data.images or ".")
        renderer = Renderer(
            self.processor, max_length=run.data.max_length, image_placement=run.data.image_placement, images=self.images
        )
        family = renderer.family  # None on the LLaVA path
        if run.data.packing:  # refused, in one line naming the family, where packing is not exact
            from scitune.prompting.packing import check_packing

            try:
                check_packing(self.llava.config, run.data.max_length)
            except ScituneError as err:
                raise ScituneError(f"[{self.name}] {err}") from None
        self.data = load_stage_data(self.name, run.data, renderer, self.accelerator)
        if self.data.dropped:
            logger.info(f"[{self.name}] dropped at max_length {run.data.max_length}: {self.data.dropped}")
        try:
            self.plan = schedule.make_plan(len(self.items), run.batch_size, run.grad_accum, self.world, run.epochs, run.max_steps)
        except ValueError as err:
            raise ScituneError(f"[{self.name}] {err}") from None
        self.order = StepOrder(
            self.plan, self.data.lengths, self.data.n_images > 0, self.recipe.run.seed,
            group_by_modality=run.data.group_by_modality, group_by_length=run.data.group_by_length,
        )
        use_cache = run.feature_cache
        if use_cache and family is not None:
            # the cache runs a Llava model's tower and projector outside its forward
            logger.info(f"[{self.name}] feature_cache off: the {self.llava.config.model_type} family runs its images in its forward")
            use_cache = False
        if use_cache and (distributed.shards_parameters(self.accelerator) or self.self_sharded):
            # the cache runs the vision tower outside the wrapped forward, which a sharded tower
            # (FSDP, DeepSpeed ZeRO-3) does not allow
            logger.info(f"[{self.name}] feature_cache off: the vision tower is sharded ({self.accelerator.distributed_type})")
            use_cache = False
        self.cache = FeatureCache() if use_cache else None
        self.collate = make_collate(
            run.data, self.processor, self.llava, None if self.cache else self.images,
            image_inputs=family.image_inputs if family is not None else (),
        )
        self.batches = MicroBatchStream(
            self.items, self.order, self.collate, run.grad_accum, self.world, self.rank, run.data.num_workers
        )

    @property
    def items(self):
        """The stage's samples (rendered when read)."""
        return self.data.items

    def setup_optimizer(self) -> None:
        run = self.run_config
        self.device = self.accelerator.device
        self.model.to(self.device)
        # the shapes as built (a sharded parameter's local view differs by process and wrapper)
        self.trainable_shapes = [[n, list(p.shape)] for n, p in self.model.named_parameters() if p.requires_grad]
        module = TrainingModule(self.model)
        if self.self_sharded:
            if self.world > 1 and not torch.distributed.is_initialized():
                raise ScituneError(f"[{self.name}] run.sharding fsdp2: no process group (start with torchrun or accelerate launch)")
            distributed.apply_fsdp2(module, mixed_precision=self.accelerator.mixed_precision)
        self.trainable = [p for p in self.model.parameters() if p.requires_grad]
        optimizer, groups = make_optimizer(self.model, run)
        self.group_base_lrs = [g["base_lr"] for g in groups]
        if len(groups) > 1:
            logger.info(f"[{self.name}] learning rates: " + ", ".join(f"{g['name']} {g['base_lr']:g}" for g in groups))
        if self.self_sharded:
            self.module, self.optimizer = module, optimizer
        else:
            self.module, self.optimizer = self.accelerator.prepare(module, optimizer)
        self.sharded = self.self_sharded or distributed.shards_parameters(self.accelerator)
        self.deepspeed = self.accelerator.distributed_type == "DEEPSPEED"

    def restore(self) -> None:
        """With --resume: the latest good checkpoint (a corrupt or incomplete one is skipped with a
        message), after checking that it was made by this same configuration."""
        self.start_step = 0
        if not self.resume:
            return
        found = latest_good_checkpoint(self.checkpoints)
        if found is None:
            return
        changed = fingerprint_changes(saved_fingerprint(found), self.fingerprint)
        if changed:
            raise ScituneError(
                f"[{self.name}] cannot resume from {found}: changed since the checkpoint: " + ", ".join(changed)
                + " (train into a new --out, or start again with --overwrite)"
            )
        self.start_step = load_checkpoint(found, self.module, self.optimizer, self.deepspeed, self.rank)
        logger.info(f"[{self.name}] resumed from {found} (step {self.start_step}/{self.plan.total_steps})")

    def open_log(self) -> MetricsLog | None:
        if not self.accelerator.is_main_process:
            return None
        self.stage_dir.mkdir(parents=True, exist_ok=True)
        return MetricsLog(self.stage_dir / "metrics.jsonl", resume_step=self.start_step if self.resume else None)

    # ------------------------------------------------------------------ one step
    def train_step(self, step: int) -> dict[str, Any]:
        """One optimizer step (all micro-batches of global batch `step`); returns its log record."""
        run, plan, accelerator = self.run_config, self.plan, self.accelerator
        tick = time.perf_counter()
        indices = self.order.step_indices(step)
        global_targets = int(self.data.targets[indices].sum())
        warmup = schedule.warmup_steps(run.warmup_ratio, plan.total_steps)
        lr = schedule.lr_at(step, plan.total_steps, run.lr, warmup, run.scheduler)
        for group_, base_lr in zip(self.optimizer.param_groups, self.group_base_lrs):
            group_["lr"] = schedule.lr_at(step, plan.total_steps, base_lr, warmup, run.scheduler)
        local_loss = torch.zeros((), device=self.device)
        for k, collated in enumerate(self.batches.for_step(step)):
            batch = self._batch(collated)
            last = k == run.grad_accum - 1
            if self.self_sharded:
                # FSDP2: gradients are reduce-scattered only on the last micro-batch
                self.module.set_requires_gradient_sync(last)
                with accelerator.autocast():
                    loss = self.module(batch, num_items_in_batch=global_targets)
                (loss * self.world).backward()
            else:
                sync = contextlib.nullcontext() if last else accelerator.no_sync(self.module)
                with sync:
                    loss = self.module(batch, num_items_in_batch=global_targets)
                    accelerator.backward(loss * self.world)
            local_loss += loss.detach().float()
        step_loss = float(accelerator.reduce(local_loss, reduction="sum"))
        if self.self_sharded:
            grad_norm = torch.nn.utils.clip_grad_norm_(self.trainable, run.max_grad_norm or float("inf"))
        else:
            grad_norm = accelerator.clip_grad_norm_(self.trainable, run.max_grad_norm or float("inf"))
        grad_norm = distributed.grad_norm_value(grad_norm)
        if not math.isfinite(step_loss) or (run.max_grad_norm and not math.isfinite(grad_norm)):
            kept = list_checkpoints(self.checkpoints)
            where = f"the last good checkpoint is {kept[-1]}" if kept else "no checkpoint was written yet"
            raise TrainingDiverged(
                f"[{self.name}] loss {step_loss} / gradient norm {grad_norm} at step {step + 1}: training stopped; {where}"
            )
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        seconds = time.perf_counter() - tick
        tokens = int(self.data.lengths[indices].sum())
        n_images = int(self.data.n_images[indices].sum())
        flops = step_flops(self.sizes, tokens, n_images * self.patches_per_image, global_targets)
        return {
            "step": step + 1, "epoch": round((step + 1) / plan.steps_per_epoch, 4), "loss": step_loss, "lr": lr,
            "grad_norm": grad_norm, "tokens": tokens, "samples": len(indices), "seconds": round(seconds, 4),
            "tokens_per_s": tokens / seconds, "samples_per_s": len(indices) / seconds,
            "mfu": flops / seconds / (self.recipe.run.peak_flops * self.world),
        }

    def _batch(self, collated: dict[str, Any]) -> dict[str, torch.Tensor]:
        from scitune.prompting import model_inputs

        batch = model_inputs(collated)
        if self.cache is not None:
            # a packed batch lists its images in packed order (BatchCollate adds them otherwise)
            paths = collated["image_paths"]
            if paths:
                with self.accelerator.autocast():
                    batch["vision_features"] = self.cache.features(self.llava, paths, self.images)
        return {key: value.to(self.device) if isinstance(value, torch.Tensor) else value for key, value in batch.items()}

    # ------------------------------------------------------------------ saving
    def save_checkpoint(self, step: int) -> Path:
        extra = {
            "stage": self.name, "total_steps": self.plan.total_steps, "global_batch": self.plan.global_batch,
            "world_size": self.world, "fingerprint": self.fingerprint,
            "layout": "deepspeed" if self.deepspeed else self.recipe.run.checkpoint_format,
        }
        return save_checkpoint(
            self.accelerator, self.checkpoints, step, self.module, self.optimizer, extra, self.deepspeed,
            full=self.recipe.run.checkpoint_format == "full", keep_last=self.recipe.run.keep_last,
        )

    def export(self, step: int, seconds: float) -> StageResult:
        """projector.safetensors, adapter/ (LoRA), final/ (standard HF Llava) and done.json."""
        from scitune.model.attention import restore_attention

        accelerator = self.accelerator
        accelerator.wait_for_everyone()
        if self.sharded:
            final_model = gathered_model(
                accelerator, self.module, self.recipe, self.index, self.out_root, self.texts, self.deepspeed
            )
        else:
            final_model = accelerator.unwrap_model(self.module).model
        restore_attention(self.llava)
        if accelerator.is_main_process:
            write_model_files(final_model, self.processor, self.stage_dir, self.lora_base if self.run_config.stage.lora else None)
        cache = self.cache
        result = StageResult(
            self.name, self.stage_dir, step, len(self.items), self.data.dropped, self.data.skipped, seconds, self.last_loss,
            extra={"feature_cache": {"entries": len(cache), "hits": cache.hits, "misses": cache.misses} if cache else None},
        )
        if accelerator.is_main_process:
            write_done(self.stage_dir, {
                "steps": step, "samples": len(self.items), "dropped": self.data.dropped,
                "bad_records_skipped": self.data.skipped, "final_loss": self.last_loss, "seconds": round(seconds, 2),
                "settings": stage_settings(self.run_config),
            })
        accelerator.wait_for_everyone()
        return result

    # ------------------------------------------------------------------ the whole stage
    def run(self) -> StageResult:
        done = read_done(self.stage_dir, self.run_config) if self.resume else None
        if done is not None:
            logger.info(f"[{self.name}] already finished ({self.stage_dir / 'done.json'}); skipping")
            return StageResult(self.name, self.stage_dir, done["steps"], done["samples"], done["dropped"],
                               done["bad_records_skipped"], 0.0, done.get("final_loss"))
        start_time = time.time()
        self.setup()
        log = self.open_log()
        if self.accelerator.log_with:
            trackers.start_stage(
                self.accelerator, self.name, self.out_root, stage_settings(self.run_config),
                self.start_step if self.resume else None,
            )
        plan, every = self.plan, self.recipe.run
        bar = progress_bar(
            total=plan.total_steps, initial=self.start_step, desc=self.name, enabled=self.accelerator.is_main_process
        )
        step = self.start_step
        try:
            with self.stop as stop:
                try:
                    while step < plan.total_steps:
                        record = self.train_step(step)
                        step += 1
                        self.last_loss = record["loss"]
                        if step % every.log_every == 0 or step == plan.total_steps:
                            if log is not None:
                                log.write(record)
                            trackers.log_step(self.accelerator, record)
                        bar.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{record['lr']:.2e}", tok_s=f"{record['tokens_per_s']:.0f}", refresh=False)
                        bar.update(1)
                        for hook in self.hooks:
                            hook(self, step)
                        if stop.signal_name is not None:
                            break
                        if every.save_every and step % every.save_every == 0 and step < plan.total_steps:
                            self.save_checkpoint(step)
                except KeyboardInterrupt:  # a second Ctrl-C: stop now, keep what is on disk
                    kept = list_checkpoints(self.checkpoints)
                    raise TrainingInterrupted(kept[-1] if kept else None) from None
                if stop.signal_name is not None:
                    # the step counter and the weights are of the same, completed step
                    kept = list_checkpoints(self.checkpoints)
                    target = self.save_checkpoint(step) if step > self.start_step or not kept else kept[-1]
                    raise TrainingInterrupted(target)
        finally:
            bar.close()
            if log is not None:
                log.close()
            trackers.finish_stage(self.accelerator)
        self.save_checkpoint(step)
        return self.export(step, time.time() - start_time)


def run_stage(
    recipe: Recipe, index: int, out_root: Path, accelerator, resume: bool, texts: list[str] | None, hooks: Sequence[StepHook] = ()
) -> StageResult:
    return StageRunner(recipe, index, out_root, accelerator, resume, texts, hooks).run()
