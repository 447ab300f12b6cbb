"""A stage's optimizer: AdamW over the trainable parameters, in groups by part (each parameter's
part from scitune.model.parts.part_of) where a part has a learning rate of its own."""

from __future__ import annotations

from typing import Any

import torch

from scitune.model.parts import part_of


def param_groups(model, run) -> list[dict[str, Any]]:
    """The optimizer's parameter groups, each with its peak `base_lr` and a `name`: the
    projector's (`projector_lr`) and the vision tower's (`vision_lr`) apart when set; one group
    ("rest") otherwise."""
    special = {"projector": run.projector_lr, "vision_tower": run.vision_lr}
    groups: dict[str, list[torch.nn.Parameter]] = {"rest": [], "projector": [], "vision_tower": []}
    for name, param in model.named_parameters():
        if param.requires_grad:
            part = part_of(name)
            groups[part if special.get(part) is not None else "rest"].append(param)
    listed = [{"params": groups["rest"], "base_lr": run.lr, "name": "rest"}]
    listed += [{"params": groups[k], "base_lr": special[k], "name": k} for k in ("projector", "vision_tower") if groups[k]]
    return [g for g in listed if g["params"]]


def make_optimizer(model, run) -> tuple[torch.optim.Optimizer, list[dict[str, Any]]]:
    """AdamW over `param_groups(model, run)` (each group starting at its base_lr); returns it with
    the groups."""
    groups = param_groups(model, run)
    optimizer = torch.optim.AdamW(
        [{"params": g["params"], "lr": g["base_lr"]} for g in groups], lr=run.lr, weight_decay=run.weight_decay
    )
    return optimizer, groups
