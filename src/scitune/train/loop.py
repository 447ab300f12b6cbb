"""One stage of training as a runner with one method per phase (as torchtune's recipes are):
`setup_model`, `load_data`, `setup_optimizer`, `restore`, `train_step`, `save_checkpoint`,
`export`; `run` calls them in that order.

Each optimizer step sees one global batch (see scitune.train.schedule); the loss is the mean
over the global batch's supervised tokens, logged as such. A run directory per stage holds
`metrics.jsonl`, `checkpoints/step-*/` (the last `keep_last`), `final/` (a standard HF Llava
directory; for LoRA also `adapter/`), `projector.safetensors` and `done.json`.

Signals: SIGINT (Ctrl-C) and SIGTERM are noted and acted on between optimizer steps, so the
checkpoint written then holds the weights, optimizer and step counter of one consistent state.
A second Ctrl-C stops at once without a checkpoint. Hooks (`StepHook`) are called after each
step: tests use them to slow or stop a run at a chosen moment.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from scitune.config import Recipe, StageRun
from scitune.errors import Interrupted, ScituneError
from scitune.progress import progress_bar
from scitune.train import schedule
from scitune.train.features import FeatureCache, TrainingModule
from scitune.train.flops import part_sizes, step_flops
from scitune.train.log import MetricsLog
from scitune.train import distributed
from scitune.train.state import (
    begin_checkpoint, finish_checkpoint, latest_good_checkpoint, list_checkpoints, load_rank_rng, prune, read_state,
    save_rank_rng,
)

# Called after every optimizer step with (runner, step reached).
StepHook = Callable[["StageRunner", int], None]


class TrainingDiverged(ScituneError):
    """The loss or the gradient norm became NaN or infinite."""

    exit_code = 1


class TrainingInterrupted(Interrupted):
    """Ctrl-C or SIGTERM: a checkpoint was saved; `--resume` continues from it."""

    def __init__(self, checkpoint: Path | None):
        super().__init__(f"checkpoint {checkpoint}; continue with --resume")
        self.checkpoint = checkpoint


@dataclass
class StageResult:
    name: str
    directory: Path
    steps: int
    samples: int
    dropped: dict[str, int]
    bad_records_skipped: int
    seconds: float
    final_loss: float | None
    extra: dict[str, Any] = field(default_factory=dict)


def load_stage_samples(run: StageRun, renderer, echo=print):
    """Reads, validates and renders a stage's data; returns (items, dropped counts, bad skipped)."""
    from scitune.data.sample import read_samples
    from scitune.data.validate import checked_samples
    from scitune.prompting import SampleTokenizer

    data = run.data
    if not data.train:
        raise ScituneError(f"{run.stage.name}.data.train: no training file given")
    samples = read_samples(data.train)
    try:
        kept, report = checked_samples(samples, data.images or None, on_bad_record=data.on_bad_record)
    except ScituneError as err:
        raise ScituneError(f"{data.train}: {err}") from None
    if not report.ok:
        echo(report.summary_table())
    skipped = len(samples) - len(kept)
    tokenize = SampleTokenizer(renderer)
    items = tokenize.tokenize_all(kept)
    if not items:
        raise ScituneError(f"{data.train}: no usable samples (dropped: {dict(tokenize.dropped)})")
    return items, dict(tokenize.dropped), skipped


def supervised_tokens(item: dict[str, Any]) -> int:
    """Positions that contribute to the causal-LM loss (labels are shifted by one)."""
    return sum(1 for label in item["labels"][1:] if label != -100)


def build_stage_model(recipe: Recipe, index: int, out_root: Path, texts: list[str] | None):
    """The model a stage starts from: the recipe's base, initialised from the previous stage
    (its projector, or its whole final model) when `init_from` says so."""
    from scitune.model import build_model, load_model
    from scitune.model.checkpoint import load_projector

    run = recipe.stages[index]
    if run.init_from == "model":
        previous = out_root / recipe.stages[index - 1].stage.name / "final"
        return load_model(previous, dtype=recipe.model.dtype)
    model, processor = build_model(recipe.model, texts=texts)
    if run.init_from == "projector":
        load_projector(model, out_root / recipe.stages[index - 1].stage.name / "projector.safetensors")
    return model, processor


def check_max_length(model, max_length: int, name: str) -> None:
    """Refuses a `data.max_length` over the language model's positions (a longer sample would
    index past its position table, or train positions the model never had)."""
    config = getattr(model, "config", None)
    text_config = getattr(config, "text_config", None) or config
    positions = getattr(text_config, "max_position_embeddings", None)
    if isinstance(positions, int) and max_length > positions:
        raise ScituneError(
            f"{name}.data.max_length: {max_length} is over the model's {positions} positions "
            "(text_config.max_position_embeddings); lower it"
        )


# What may change between a finished stage and a --resume without changing what it trained.
_SETTINGS_IGNORED = ("gradient_checkpointing", "feature_cache")


def stage_settings(run: StageRun) -> dict[str, Any]:
    """A stage's recipe settings as JSON values, and its training file's sha256 (what `done.json`
    keeps to compare on --resume)."""
    import dataclasses

    settings = json.loads(json.dumps(dataclasses.asdict(run), default=str))
    for key in _SETTINGS_IGNORED:
        settings.pop(key, None)
    if run.data.train and Path(run.data.train).is_file():
        settings["data_sha256"] = file_digest(run.data.train)
    return settings


def changed_settings(saved: dict[str, Any], current: dict[str, Any], prefix: str = "") -> list[str]:
    """`key (old -> new)` for each setting that differs (nested sections as `data.max_length`)."""
    changed = []
    for key in sorted(set(saved) | set(current)):
        old, new = saved.get(key), current.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            changed += changed_settings(old, new, f"{prefix}{key}.")
        elif old != new and key not in _SETTINGS_IGNORED:
            changed.append(f"{prefix}{key} ({old!r} -> {new!r})")
    return changed


def _shards_parameters(accelerator) -> bool:
    from accelerate.utils import DistributedType

    if accelerator.distributed_type == DistributedType.FSDP:
        return True
    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        return accelerator.state.deepspeed_plugin.zero_stage == 3
    return False


def file_digest(path: str | Path) -> str:
    """sha256 of a file (the data file a checkpoint was trained on)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _Batches:
    """A DataLoader batch sampler over a generator of index lists (computed as they are needed)."""

    def __init__(self, make):
        self.make = make

    def __iter__(self):
        return self.make()


class StopRequests:
    """SIGINT / SIGTERM noted as a request to stop after the current step (main thread only);
    a second SIGINT raises KeyboardInterrupt at once."""

    def __init__(self):
        self.signal_name: str | None = None
        self._previous: dict[int, Any] = {}

    def _note(self, signum, frame) -> None:
        if self.signal_name is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._note)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


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
        self.stage_dir = out_root / self.name
        self.out_root = out_root
        self.checkpoints = self.stage_dir / "checkpoints"
        self.world, self.rank = accelerator.num_processes, accelerator.process_index
        self.start_step = 0
        self.last_loss: float | None = None

    def echo(self, *args) -> None:
        if self.accelerator.is_main_process:
            print(*args, flush=True)

    # ------------------------------------------------------------------ setup
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
            self.lora_base = self.save_lora_base(model, processor)
        model = apply_stage(model, run.stage)
        if run.gradient_checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        self.echo(f"[{self.name}] parameters\n{format_parameter_table(parameter_table(model))}")
        self.model, self.processor = model, processor
        self.llava = model.get_base_model() if hasattr(model, "get_base_model") else model

    def save_lora_base(self, model, processor) -> Path:
        """The folder a LoRA adapter applies to: the stage's starting model. It is the recipe's
        checkpoint or the previous stage's final model when the stage starts from one unchanged;
        otherwise (a composed base, a fresh projector) it is saved once as `<stage>/base/`."""
        from scitune.model import save_model

        run = self.run_config
        if run.init_from == "model":
            return self.out_root / self.recipe.stages[self.index - 1].stage.name / "final"
        if self.recipe.model.checkpoint and run.init_from is None:
            return Path(self.recipe.model.checkpoint)
        base = self.stage_dir / "base"
        if self.accelerator.is_main_process and not (self.resume and base.is_dir()):
            save_model(model, processor, base)
        return base

    def load_data(self) -> None:
        from scitune.prompting import ImageLoader, PaddingCollator, Renderer

        run = self.run_config
        renderer = Renderer(
            self.processor, max_length=run.data.max_length, image_placement=run.data.image_placement
        )
        self.load_index(renderer)
        if self.dropped:
            self.echo(f"[{self.name}] dropped at max_length {run.data.max_length}: {self.dropped}")
        try:
            self.plan = schedule.make_plan(len(self.items), run.batch_size, run.grad_accum, self.world, run.epochs, run.max_steps)
        except ValueError as err:
            raise ScituneError(f"[{self.name}] {err}") from None
        self.images = ImageLoader(self.processor.image_processor, run.data.images or ".")
        use_cache = run.feature_cache
        if use_cache and (_shards_parameters(self.accelerator) or self.recipe.run.sharding == "fsdp2"):
            # the cache runs the vision tower outside the wrapped forward, which a sharded tower
            # (FSDP, DeepSpeed ZeRO-3) does not allow
            self.echo(f"[{self.name}] feature_cache off: the vision tower is sharded ({self.accelerator.distributed_type})")
            use_cache = False
        self.cache = FeatureCache() if use_cache else None
        self.collate = PaddingCollator(self.processor.tokenizer.pad_token_id, None if self.cache else self.images)
        if run.data.packing:
            from scitune.prompting.packing import PackingCollator, attention_layout

            implementation = self.llava.config.text_config._attn_implementation
            layout = attention_layout(implementation)
            if implementation == "sdpa":  # per-sample SDPA on the flat row (scitune.model.attention)
                from scitune.model.attention import use_varlen_attention

                use_varlen_attention(self.llava)
            self.collate = PackingCollator(
                self.processor.tokenizer.pad_token_id, None if self.cache else self.images, layout, limit=run.data.max_length
            )

    def load_index(self, renderer) -> None:
        """The data as an index (scitune.train.dataset): built, validated and cached once by the
        main process (in `data.num_workers` processes), read from the cache by the others;
        samples are read and rendered when a batch needs them."""
        from scitune.train.dataset import IndexedSamples, apply_bad_record_policy, build_index, load_index, report_of

        data = self.run_config.data
        if not data.train:
            raise ScituneError(f"{self.name}.data.train: no training file given")
        self.data_sha256 = file_digest(data.train)
        if self.accelerator.is_main_process:
            index, _ = build_index(data.train, self.data_sha256, data.images or None, renderer, data.num_workers, echo=self.echo)
        self.accelerator.wait_for_everyone()
        if not self.accelerator.is_main_process:
            index = load_index(data.train, self.data_sha256, data.images or None, renderer)
        if index.problems:
            self.echo(report_of(index).summary_table())
        apply_bad_record_policy(data.train, index, data.on_bad_record)
        if not len(index.offsets):
            raise ScituneError(f"{data.train}: no usable samples (dropped: {index.dropped})")
        self.items = IndexedSamples(data.train, index, renderer)
        self.dropped, self.skipped = index.dropped, index.bad
        self.lengths, self.targets, self.n_images = index.lengths, index.targets, index.n_images

    def step_indices(self, step: int):
        """The sample indices of optimizer step `step` (all processes)."""
        run, plan = self.run_config, self.plan
        epoch, in_epoch = divmod(step, plan.steps_per_epoch)
        if epoch not in self._orders:
            while len(self._orders) > 1:  # the sampler may run an epoch ahead of the step
                self._orders.pop(min(self._orders))
            if run.data.group_by_modality:
                from scitune.train.dataset import modality_grouped_order

                self._orders[epoch] = modality_grouped_order(
                    self.lengths, self.n_images > 0, plan.global_batch, self.recipe.run.seed, epoch
                )
            else:
                group = plan.global_batch if run.data.group_by_length else 0
                self._orders[epoch] = schedule.epoch_order(len(self.items), self.recipe.run.seed, epoch, self.lengths, group)
        return schedule.step_indices(plan, self._orders[epoch], in_epoch)

    def micro_batch_loader(self, start: int):
        """This process's collated micro-batches from step `start` on, rendered and collated (images
        decoded) in `data.num_workers` DataLoader workers."""
        from scitune.train.dataset import BatchCollate

        run = self.run_config

        def parts():
            for step in range(start, self.plan.total_steps):
                for part in schedule.micro_batches(self.step_indices(step), run.grad_accum, self.world, self.rank):
                    yield part.tolist()

        workers = run.data.num_workers
        return iter(torch.utils.data.DataLoader(
            self.items, batch_sampler=_Batches(parts), collate_fn=BatchCollate(self.collate),
            num_workers=workers, prefetch_factor=2 if workers else None, persistent_workers=False,
        ))

    def micro_batches(self, step: int) -> list[dict[str, Any]]:
        if getattr(self, "_loader_step", None) != step:
            self._loader = self.micro_batch_loader(step)
        self._loader_step = step + 1
        return [next(self._loader) for _ in range(self.run_config.grad_accum)]

    def param_groups(self) -> list[dict[str, Any]]:
        """The optimizer's parameter groups, each with its peak `base_lr`: the projector's
        (`projector_lr`) and the vision tower's (`vision_lr`) apart when set; one group otherwise."""
        run = self.run_config
        named = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        special = {"projector": run.projector_lr, "vision": run.vision_lr}
        parts: dict[str, list[torch.nn.Parameter]] = {"rest": [], "projector": [], "vision": []}
        for name, param in named:
            part = "projector" if "multi_modal_projector" in name else "vision" if "vision_tower" in name else "rest"
            parts[part if special.get(part) is not None else "rest"].append(param)
        groups = [{"params": parts["rest"], "base_lr": run.lr, "name": "rest"}]
        groups += [{"params": parts[k], "base_lr": special[k], "name": k} for k in ("projector", "vision") if parts[k]]
        return [g for g in groups if g["params"]]

    def setup_optimizer(self) -> None:
        run = self.run_config
        self.device = self.accelerator.device
        self.model.to(self.device)
        self.self_sharded = self.recipe.run.sharding == "fsdp2"
        # the shapes as built (a sharded parameter's local view differs by process and wrapper)
        self.trainable_shapes = [[n, list(p.shape)] for n, p in self.model.named_parameters() if p.requires_grad]
        module = TrainingModule(self.model)
        if self.self_sharded:
            if self.world > 1 and not torch.distributed.is_initialized():
                raise ScituneError(f"[{self.name}] run.sharding fsdp2: no process group (start with torchrun or accelerate launch)")
            distributed.apply_fsdp2(module, mixed_precision=self.accelerator.mixed_precision)
        self.trainable = [p for p in self.model.parameters() if p.requires_grad]
        groups = self.param_groups()
        optimizer = torch.optim.AdamW(
            [{"params": g["params"], "lr": g["base_lr"]} for g in groups], lr=run.lr, weight_decay=run.weight_decay
        )
        self.group_base_lrs = [g["base_lr"] for g in groups]
        if len(groups) > 1:
            self.echo(f"[{self.name}] learning rates: " + ", ".join(f"{g['name']} {g['base_lr']:g}" for g in groups))
        if self.self_sharded:
            self.module, self.optimizer = module, optimizer
        else:
            self.module, self.optimizer = self.accelerator.prepare(module, optimizer)
        self.sharded = self.self_sharded or _shards_parameters(self.accelerator)
        self.deepspeed = self.accelerator.distributed_type == "DEEPSPEED"

    def fingerprint(self) -> dict[str, Any]:
        """What a checkpoint must agree on to be continued: the schedule, the data, the model's shape."""
        run = self.run_config
        shapes = hashlib.sha256(json.dumps(self.trainable_shapes).encode()).hexdigest()
        return {
            "global_batch": self.plan.global_batch, "total_steps": self.plan.total_steps, "lr": run.lr,
            "scheduler": run.scheduler, "warmup_ratio": run.warmup_ratio, "data_sha256": self.data_sha256,
            "samples": len(self.items), "trainable_shapes_sha256": shapes,
            "projector_lr": run.projector_lr, "vision_lr": run.vision_lr,
        }

    def restore(self) -> None:
        """With --resume: the latest good checkpoint (a corrupt or incomplete one is skipped with a
        message), after checking that it was made by this same configuration."""
        self.start_step = 0
        if not self.resume:
            return
        found = latest_good_checkpoint(self.checkpoints, echo=self.echo)
        if found is None:
            return
        expected = self._fingerprint
        saved = json.loads((found / "state.json").read_text()).get("fingerprint", {})
        changed = [f"{k} ({saved.get(k)!r} -> {v!r})" for k, v in expected.items() if k in saved and saved[k] != v]
        if changed:
            raise ScituneError(
                f"[{self.name}] cannot resume from {found}: changed since the checkpoint: " + ", ".join(changed)
                + " (train into a new --out, or start again with --overwrite)"
            )
        if self.deepspeed:  # DeepSpeed's engine holds the partitioned optimizer: its own format
            self.module.load_checkpoint(str(found / "deepspeed"), tag="state", load_lr_scheduler_states=False)
        else:
            distributed.load_training_state(found, self.module, self.optimizer)
        load_rank_rng(found, self.rank)
        self.start_step = read_state(found)["step"]
        self.echo(f"[{self.name}] resumed from {found} (step {self.start_step}/{self.plan.total_steps})")

    def open_log(self) -> MetricsLog | None:
        if not self.accelerator.is_main_process:
            return None
        self.stage_dir.mkdir(parents=True, exist_ok=True)
        return MetricsLog(
            self.stage_dir / "metrics.jsonl",
            resume_step=self.start_step if self.resume else None,
            tensorboard=self.recipe.run.tensorboard,
        )

    # ------------------------------------------------------------------ one step
    def train_step(self, step: int) -> dict[str, Any]:
        """One optimizer step (all micro-batches of global batch `step`); returns its log record."""
        run, plan, accelerator = self.run_config, self.plan, self.accelerator
        tick = time.perf_counter()
        indices = self.step_indices(step)
        global_targets = int(self.targets[indices].sum())
        lr = schedule.lr_at(step, plan.total_steps, run.lr, run.warmup_ratio, run.scheduler)
        for group_, base_lr in zip(self.optimizer.param_groups, self.group_base_lrs):
            group_["lr"] = schedule.lr_at(step, plan.total_steps, base_lr, run.warmup_ratio, run.scheduler)
        micro = schedule.micro_batches(indices, run.grad_accum, self.world, self.rank)
        local_loss = torch.zeros((), device=self.device)
        for k, collated in enumerate(self.micro_batches(step)):
            batch = self._batch(collated)
            if self.self_sharded:
                # FSDP2: gradients are reduce-scattered only on the last micro-batch
                self.module.set_requires_gradient_sync(k == len(micro) - 1)
                with accelerator.autocast():
                    loss = self.module(batch, num_items_in_batch=global_targets)
                (loss * self.world).backward()
            else:
                sync = contextlib.nullcontext() if k == len(micro) - 1 else accelerator.no_sync(self.module)
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
        tokens = int(self.lengths[indices].sum())
        n_images = int(self.n_images[indices].sum())
        flops = step_flops(self._sizes, tokens, n_images * self._patches_per_image, global_targets)
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
        accelerator = self.accelerator
        accelerator.wait_for_everyone()
        extra = {
            "stage": self.name, "total_steps": self.plan.total_steps, "global_batch": self.plan.global_batch,
            "world_size": self.world, "fingerprint": self._fingerprint,
        }
        full = self.recipe.run.checkpoint_format == "full"
        extra["layout"] = "deepspeed" if self.deepspeed else self.recipe.run.checkpoint_format
        is_main = accelerator.is_main_process
        partial = begin_checkpoint(self.checkpoints, step, is_main)
        accelerator.wait_for_everyone()
        if self.deepspeed:
            self.module.save_checkpoint(str(partial / "deepspeed"), tag="state")
        else:
            distributed.save_training_state(partial, self.module, self.optimizer, full=full, is_main=is_main)
        save_rank_rng(partial, self.rank)
        accelerator.wait_for_everyone()
        target = self.checkpoints / f"step-{step:07d}"
        if is_main:
            finish_checkpoint(partial, step, extra)
            prune(self.checkpoints, self.recipe.run.keep_last)
        accelerator.wait_for_everyone()
        return target

    def export(self, step: int, seconds: float) -> StageResult:
        """projector.safetensors, adapter/ (LoRA), final/ (standard HF Llava) and done.json."""
        from scitune.io.atomic import write_json
        from scitune.model import save_model
        from scitune.model.checkpoint import merge_lora, save_projector

        accelerator = self.accelerator
        accelerator.wait_for_everyone()
        if self.sharded:
            final_model = self.gathered_model()
        else:
            final_model = accelerator.unwrap_model(self.module).model
        from scitune.model.attention import restore_attention

        restore_attention(self.llava)
        if accelerator.is_main_process:
            save_projector(final_model, self.stage_dir / "projector.safetensors")
            if self.run_config.stage.lora:
                # the adapter names its base, so AutoPeftModel / PeftModel.from_pretrained can load it
                for config in final_model.peft_config.values():
                    config.base_model_name_or_path = str(self.lora_base.resolve())
                save_model(final_model, self.processor, self.stage_dir / "adapter")
                final_model = merge_lora(final_model)
            save_model(final_model, self.processor, self.stage_dir / "final")
        cache = self.cache
        result = StageResult(
            self.name, self.stage_dir, step, len(self.items), self.dropped, self.skipped, seconds, self.last_loss,
            extra={"feature_cache": {"entries": len(cache), "hits": cache.hits, "misses": cache.misses} if cache else None},
        )
        if accelerator.is_main_process:
            write_json(self.stage_dir / "done.json", {
                "steps": step, "samples": len(self.items), "dropped": self.dropped,
                "bad_records_skipped": self.skipped, "final_loss": self.last_loss, "seconds": round(seconds, 2),
                "settings": stage_settings(self.run_config),
            })
        accelerator.wait_for_everyone()
        return result

    def gathered_model(self):
        """Sharded runs: the trained weights gathered whole onto the main process and loaded into
        a plain copy of the stage's model built there (None on the other processes). Collective."""
        if self.deepspeed:  # ZeRO-3 gathers its 16-bit weights (zero3_save_16bit_model)
            state = self.accelerator.get_state_dict(self.module)
        else:
            state = distributed.full_trainable_state(self.module)
        if not self.accelerator.is_main_process:
            return None
        from scitune.model import apply_stage
        from scitune.prompting import set_pad_to_square

        run = self.run_config
        model, processor = build_stage_model(self.recipe, self.index, self.out_root, self.texts)
        set_pad_to_square(processor, run.data.pad_to_square)
        model = apply_stage(model, run.stage)
        params = {n: p for n, p in model.named_parameters() if p.requires_grad}
        trained = {distributed.clean_name(k).removeprefix("model."): v for k, v in state.items()}
        trained = {k: v for k, v in trained.items() if k in params}
        if set(trained) != set(params):
            missing = sorted(set(params) - set(trained))
            raise ScituneError(f"[{self.name}] export: the gathered weights lack {len(missing)} trained parameter(s), e.g. {missing[:3]}")
        with torch.no_grad():
            for name, value in trained.items():
                params[name].copy_(value)
        return model

    # ------------------------------------------------------------------ the whole stage
    def finished(self) -> StageResult | None:
        """With --resume, a stage that finished: its result, once its settings are found unchanged
        (a changed one is refused by name, as for a checkpoint of an unfinished stage)."""
        done_file = self.stage_dir / "done.json"
        if not (self.resume and done_file.is_file()):
            return None
        done = json.loads(done_file.read_text())
        saved = done.get("settings") if isinstance(done, dict) else None
        if isinstance(saved, dict):
            changed = changed_settings(saved, stage_settings(self.run_config))
            if changed:
                raise ScituneError(
                    f"[{self.name}] cannot resume: the stage finished ({done_file}) with other settings: "
                    + ", ".join(changed) + " (train into a new --out, or start again with --overwrite)"
                )
        self.echo(f"[{self.name}] already finished ({done_file}); skipping")
        return StageResult(
            self.name, self.stage_dir, done["steps"], done["samples"], done["dropped"], done["bad_records_skipped"],
            0.0, done.get("final_loss"),
        )

    def run(self) -> StageResult:
        done = self.finished()
        if done is not None:
            return done
        start_time = time.time()
        self.setup_model()
        self.load_data()
        self.setup_optimizer()
        self._fingerprint = self.fingerprint()
        self.restore()
        vision = self.llava.config.vision_config
        self._patches_per_image = (vision.image_size // vision.patch_size) ** 2 + 1
        self._sizes = part_sizes(self.model)
        self._orders: dict[int, Any] = {}
        log = self.open_log()
        plan = self.plan
        bar = progress_bar(
            total=plan.total_steps, initial=self.start_step, desc=self.name, enabled=self.accelerator.is_main_process
        )
        step = self.start_step
        try:
            with StopRequests() as stop:
                try:
                    while step < plan.total_steps:
                        record = self.train_step(step)
                        step += 1
                        self.last_loss = record["loss"]
                        if log is not None and (step % self.recipe.run.log_every == 0 or step == plan.total_steps):
                            log.write(record)
                        bar.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{record['lr']:.2e}", tok_s=f"{record['tokens_per_s']:.0f}", refresh=False)
                        bar.update(1)
                        for hook in self.hooks:
                            hook(self, step)
                        if stop.signal_name is not None:
                            break
                        if self.recipe.run.save_every and step % self.recipe.run.save_every == 0 and step < plan.total_steps:
                            self.save_checkpoint(step)
                except KeyboardInterrupt:  # a second Ctrl-C: stop now, keep what is on disk
                    kept = list_checkpoints(self.checkpoints)
                    raise TrainingInterrupted(kept[-1] if kept else None) from None
                if stop.signal_name is not None:
                    # the step counter and the weights are of the same, completed step
                    target = self.save_checkpoint(step) if step > self.start_step or not list_checkpoints(self.checkpoints) else list_checkpoints(self.checkpoints)[-1]
                    raise TrainingInterrupted(target)
        finally:
            bar.close()
            if log is not None:
                log.close()
        self.save_checkpoint(step)
        return self.export(step, time.time() - start_time)


def run_stage(
    recipe: Recipe, index: int, out_root: Path, accelerator, resume: bool, texts: list[str] | None, hooks: Sequence[StepHook] = ()
) -> StageResult:
    return StageRunner(recipe, index, out_root, accelerator, resume, texts, hooks).run()
