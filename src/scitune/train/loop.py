"""One stage of training: data up front, the optimizer loop, checkpoints, resume, logging.

Each optimizer step sees one global batch (see scitune.train.schedule); the loss is the mean
over the global batch's supervised tokens, logged as such. A run directory per stage holds
`metrics.jsonl`, `checkpoints/step-*/` (the last `keep_last`), `final/` (a standard HF Llava
directory; for LoRA also `adapter/`), `projector.safetensors` and `done.json`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from scitune.config import Recipe, StageRun
from scitune.errors import ScituneError
from scitune.train import schedule
from scitune.train.features import FeatureCache, TrainingModule
from scitune.train.flops import part_sizes, step_flops
from scitune.train.log import MetricsLog
from scitune.train.state import list_checkpoints, load_state, prune, save_rank_rng, save_state


class TrainingDiverged(ScituneError):
    """The loss or the gradient norm became NaN or infinite."""

    exit_code = 1


class TrainingInterrupted(Exception):
    """Ctrl-C: a checkpoint was saved; `--resume` continues from it."""

    def __init__(self, checkpoint: Path | None):
        super().__init__(str(checkpoint))
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


def _echo(accelerator, *args) -> None:
    if accelerator.is_main_process:
        print(*args, flush=True)


def load_stage_samples(run: StageRun, tokenizer, image_tokens: int, echo=print):
    """Reads, validates and tokenizes a stage's data; returns (items, dropped counts, bad skipped)."""
    from scitune.data.sample import read_samples
    from scitune.data.tokenize import SampleTokenizer
    from scitune.data.validate import checked_samples

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
    samples = kept
    tokenize = SampleTokenizer(tokenizer, image_tokens, data.max_length)
    items = tokenize.tokenize_all(samples)
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


def _shards_parameters(accelerator) -> bool:
    from accelerate.utils import DistributedType

    if accelerator.distributed_type == DistributedType.FSDP:
        return True
    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        return accelerator.state.deepspeed_plugin.zero_stage == 3
    return False


def run_stage(recipe: Recipe, index: int, out_root: Path, accelerator, resume: bool, texts: list[str] | None) -> StageResult:
    from tqdm.auto import tqdm

    from scitune.data.collate import ImageLoader, TrainCollator, model_inputs
    from scitune.model import apply_stage, image_tokens_per_image, save_model
    from scitune.model.checkpoint import merge_lora, save_projector
    from scitune.model.stages import format_parameter_table, parameter_table

    run = recipe.stages[index]
    name = run.stage.name
    stage_dir = out_root / name
    done_file = stage_dir / "done.json"
    if resume and done_file.is_file():
        _echo(accelerator, f"[{name}] already finished ({done_file}); skipping")
        done = json.loads(done_file.read_text())
        return StageResult(name, stage_dir, done["steps"], done["samples"], done["dropped"], done["bad_records_skipped"], 0.0, done.get("final_loss"))
    start_time = time.time()
    model, processor = build_stage_model(recipe, index, out_root, texts)
    model = apply_stage(model, run.stage)
    if run.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    _echo(accelerator, f"[{name}] parameters\n{format_parameter_table(parameter_table(model))}")

    llava = model.get_base_model() if hasattr(model, "get_base_model") else model
    image_tokens = image_tokens_per_image(llava.config)
    items, dropped, skipped = load_stage_samples(run, processor.tokenizer, image_tokens, echo=lambda *a: _echo(accelerator, *a))
    if dropped:
        _echo(accelerator, f"[{name}] dropped at max_length {run.data.max_length}: {dropped}")
    world, rank = accelerator.num_processes, accelerator.process_index
    try:
        plan = schedule.make_plan(len(items), run.batch_size, run.grad_accum, world, run.epochs, run.max_steps)
    except ValueError as err:
        raise ScituneError(f"[{name}] {err}") from None
    lengths = [item["length"] for item in items]
    targets = [supervised_tokens(item) for item in items]

    images = ImageLoader(processor.image_processor, run.data.images or ".", pad_to_square=run.data.pad_to_square)
    use_cache = run.feature_cache
    if use_cache and _shards_parameters(accelerator):
        # the cache runs the vision tower outside the wrapped forward, which a sharded tower
        # (FSDP, DeepSpeed ZeRO-3) does not allow
        _echo(accelerator, f"[{name}] feature_cache off: the vision tower is sharded ({accelerator.distributed_type})")
        use_cache = False
    cache = FeatureCache() if use_cache else None
    collate = TrainCollator(processor.tokenizer.pad_token_id, None if cache else images)

    device = accelerator.device
    model.to(device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=run.lr, weight_decay=run.weight_decay)
    module = TrainingModule(model)
    module, optimizer = accelerator.prepare(module, optimizer)

    checkpoints = stage_dir / "checkpoints"
    start_step = 0
    if resume and list_checkpoints(checkpoints):
        latest = list_checkpoints(checkpoints)[-1]
        state = load_state(latest, model, optimizer, rank=rank)
        start_step = state["step"]
        _echo(accelerator, f"[{name}] resumed from {latest} (step {start_step}/{plan.total_steps})")
    elif accelerator.is_main_process:
        stage_dir.mkdir(parents=True, exist_ok=True)
    log = MetricsLog(stage_dir / "metrics.jsonl", resume_step=start_step if resume else None, tensorboard=recipe.run.tensorboard) if accelerator.is_main_process else None

    sizes = part_sizes(model)
    vision = llava.config.vision_config
    patches_per_image = (vision.image_size // vision.patch_size) ** 2 + 1
    group = plan.global_batch if run.data.group_by_length else 0
    orders: dict[int, Any] = {}

    def save(step: int) -> Path:
        accelerator.wait_for_everyone()
        extra = {"stage": name, "total_steps": plan.total_steps, "global_batch": plan.global_batch, "world_size": world}
        target = save_state(checkpoints, accelerator.unwrap_model(module).model, optimizer, step, extra, rank=rank, is_main=accelerator.is_main_process)
        accelerator.wait_for_everyone()
        if not accelerator.is_main_process:
            save_rank_rng(target, rank)
        if accelerator.is_main_process:
            prune(checkpoints, recipe.run.keep_last)
        accelerator.wait_for_everyone()
        return target

    # Test hook: slows each step so that tests can kill or interrupt a run mid-way.
    step_delay = float(os.environ.get("SCITUNE_TEST_STEP_DELAY", "0") or 0)
    bar = tqdm(total=plan.total_steps, initial=start_step, desc=name, disable=not accelerator.is_main_process, dynamic_ncols=True)
    last_loss = None
    step = start_step
    rng_at_step_start = torch.get_rng_state()  # defined even if Ctrl-C lands before the first step
    try:
        while step < plan.total_steps:
            rng_at_step_start = torch.get_rng_state()
            tick = time.perf_counter()
            epoch, in_epoch = divmod(step, plan.steps_per_epoch)
            if epoch not in orders:
                orders.clear()
                orders[epoch] = schedule.epoch_order(len(items), recipe.run.seed, epoch, lengths, group)
            indices = schedule.step_indices(plan, orders[epoch], in_epoch)
            global_targets = sum(targets[i] for i in indices)
            lr = schedule.lr_at(step, plan.total_steps, run.lr, run.warmup_ratio, run.scheduler)
            for group_ in optimizer.param_groups:
                group_["lr"] = lr
            micro = schedule.micro_batches(indices, run.grad_accum, world, rank)
            local_loss = torch.zeros((), device=device)
            for k, part in enumerate(micro):
                batch_items = [items[i] for i in part]
                batch = model_inputs(collate(batch_items))
                if cache is not None:
                    paths = [p for item in batch_items for p in item["images"]]
                    if paths:
                        with accelerator.autocast():
                            batch["vision_features"] = cache.features(llava, paths, images)
                batch = {key: value.to(device) for key, value in batch.items()}
                sync = contextlib.nullcontext() if k == len(micro) - 1 else accelerator.no_sync(module)
                with sync:
                    loss = module(batch, num_items_in_batch=global_targets)
                    accelerator.backward(loss * world)
                local_loss += loss.detach().float()
            step_loss = float(accelerator.reduce(local_loss, reduction="sum"))
            grad_norm = accelerator.clip_grad_norm_(trainable, run.max_grad_norm or float("inf"))
            grad_norm = float(grad_norm) if grad_norm is not None else float("nan")
            if not math.isfinite(step_loss) or (run.max_grad_norm and not math.isfinite(grad_norm)):
                kept = list_checkpoints(checkpoints)
                where = f"the last good checkpoint is {kept[-1]}" if kept else "no checkpoint was written yet"
                raise TrainingDiverged(
                    f"[{name}] loss {step_loss} / gradient norm {grad_norm} at step {step + 1}: training stopped; {where}"
                )
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if step_delay:
                time.sleep(step_delay)
            step += 1
            last_loss = step_loss
            seconds = time.perf_counter() - tick
            tokens = sum(lengths[i] for i in indices)
            n_images = sum(len(items[i]["images"]) for i in indices)
            flops = step_flops(sizes, tokens, n_images * patches_per_image)
            record = {
                "step": step, "epoch": round(step / plan.steps_per_epoch, 4), "loss": step_loss, "lr": lr,
                "grad_norm": grad_norm, "tokens": tokens, "samples": len(indices), "seconds": round(seconds, 4),
                "tokens_per_s": tokens / seconds, "samples_per_s": len(indices) / seconds,
                "mfu": flops / seconds / (recipe.run.peak_flops * world),
            }
            if log is not None and (step % recipe.run.log_every == 0 or step == plan.total_steps):
                log.write(record)
            bar.set_postfix(loss=f"{step_loss:.4f}", lr=f"{lr:.2e}", tok_s=f"{record['tokens_per_s']:.0f}", refresh=False)
            bar.update(1)
            if recipe.run.save_every and step % recipe.run.save_every == 0 and step < plan.total_steps:
                save(step)
    except KeyboardInterrupt:
        bar.close()
        torch.set_rng_state(rng_at_step_start)
        optimizer.zero_grad(set_to_none=True)
        target = save(step) if step > start_step or not list_checkpoints(checkpoints) else list_checkpoints(checkpoints)[-1]
        raise TrainingInterrupted(target) from None
    finally:
        bar.close()
        if log is not None:
            log.close()

    save(step)
    accelerator.wait_for_everyone()
    final_model = accelerator.unwrap_model(module).model
    if accelerator.is_main_process:
        save_projector(final_model, stage_dir / "projector.safetensors")
        if run.stage.lora:
            save_model(final_model, processor, stage_dir / "adapter")
            final_model = merge_lora(final_model)
        save_model(final_model, processor, stage_dir / "final")
    result = StageResult(
        name, stage_dir, step, len(items), dropped, skipped, time.time() - start_time, last_loss,
        extra={"feature_cache": {"entries": len(cache), "hits": cache.hits, "misses": cache.misses} if cache else None},
    )
    if accelerator.is_main_process:
        done_file.write_text(json.dumps({
            "steps": step, "samples": len(items), "dropped": dropped, "bad_records_skipped": skipped,
            "final_loss": last_loss, "seconds": round(result.seconds, 2),
        }, indent=2))
    accelerator.wait_for_everyone()
    return result
