"""The one pretraining loop, shared by the tokenizer LM (scitune.train.text_lm) and the
CLIP-style vision tower (scitune.train.vision_clip): AdamW over the parameters a `Trainable`
plan opens (through `scitune.model.stages.stage_applied`, which puts the flags back afterwards)
plus any heads of the caller's own, the one learning-rate schedule (scitune.train.schedule.lr_at,
warmup then cosine), gradient clipping at 1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from scitune.config import Trainable
from scitune.model.stages import stage_applied
from scitune.train.schedule import lr_at

# Called with (step reached, that step's loss).
OnStep = Callable[[int, float], None]


def pretrain(
    model,
    plan: Trainable,
    loss_at: Callable[[int], torch.Tensor],
    steps: int,
    lr: float,
    warmup: int,
    weight_decay: float = 0.0,
    heads: Sequence[torch.nn.Parameter] = (),
    module: torch.nn.Module | None = None,
    on_step: OnStep | None = None,
) -> list[float]:
    """Runs `steps` optimizer steps of `loss_at(step)` over the parts of `model` that `plan`
    trains and over `heads`; returns the loss per step. `module` (the model by default) is put in
    training mode for the loop and back as it was afterwards."""
    module = model if module is None else module
    was_training = module.training
    losses: list[float] = []
    with stage_applied(model, plan) as trained:
        params = [*trained, *heads]
        optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
        module.train()
        try:
            for step in range(steps):
                # the schedule's multiplier times the peak rate: the rounding these loops always had
                scale = lr_at(step, steps, 1.0, warmup)
                for group in optimizer.param_groups:
                    group["lr"] = lr * scale
                loss = loss_at(step)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                losses.append(loss.item())
                if on_step is not None:
                    on_step(step + 1, losses[-1])
        finally:
            module.train(was_training)
    return losses
