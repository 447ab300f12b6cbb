"""Writing and reading a stage's training checkpoint (the layout is scitune.train.state's):
every process its shard of the trainable weights and optimizer (scitune.train.distributed), or
DeepSpeed's engine its own format, and each process its RNG states. Collective: every process
calls these."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scitune.train import distributed
from scitune.train.state import (
    begin_checkpoint, finish_checkpoint, load_rank_rng, prune, read_state, save_rank_rng,
)


def save_checkpoint(accelerator, checkpoints: Path, step: int, module, optimizer, extra: dict[str, Any],
                    deepspeed: bool, full: bool, keep_last: int) -> Path:
    """`checkpoints/step-NNNNNNN/` for optimizer step `step`; the oldest beyond `keep_last` pruned."""
    accelerator.wait_for_everyone()
    is_main = accelerator.is_main_process
    partial = begin_checkpoint(checkpoints, step, is_main)
    accelerator.wait_for_everyone()
    if deepspeed:
        module.save_checkpoint(str(partial / "deepspeed"), tag="state")
    else:
        distributed.save_training_state(partial, module, optimizer, full=full, is_main=is_main)
    save_rank_rng(partial, accelerator.process_index)
    accelerator.wait_for_everyone()
    target = checkpoints / f"step-{step:07d}"
    if is_main:
        finish_checkpoint(partial, step, extra)
        prune(checkpoints, keep_last)
    accelerator.wait_for_everyone()
    return target


def saved_fingerprint(checkpoint: Path) -> dict[str, Any]:
    return json.loads((checkpoint / "state.json").read_text()).get("fingerprint", {})


def load_checkpoint(checkpoint: Path, module, optimizer, deepspeed: bool, rank: int) -> int:
    """Loads weights, optimizer and RNG states; returns the optimizer step the checkpoint reached."""
    if deepspeed:  # DeepSpeed's engine holds the partitioned optimizer: its own format
        module.load_checkpoint(str(checkpoint / "deepspeed"), tag="state", load_lr_scheduler_states=False)
    else:
        distributed.load_training_state(checkpoint, module, optimizer)
    load_rank_rng(checkpoint, rank)
    return read_state(checkpoint)["step"]
