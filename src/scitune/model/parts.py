"""Which part of a vision-language model a parameter belongs to: the one place that decides it.

Every place that needs a parameter's part (the stage plan in scitune.model.stages, the
optimizer's parameter groups, the parameter table and FLOP estimate, the pretraining loops)
asks `part_of`. The fragments come from the families table (scitune.model.families): LLaVA's
`multi_modal_projector`, Idefics3's `connector`, Qwen's `visual.merger`, ... (and the same names
inside a peft model). The connector is checked first, since Qwen's merger sits inside its vision
tower (`visual`).
"""

from __future__ import annotations

from scitune.model.families import FAMILIES

# vision tower -> connector (the part the stage plans call `projector`) -> language model -> output head
PARTS = ("vision_tower", "projector", "language_model", "lm_head")


def _rules() -> list[tuple[str, str]]:
    rules: list[tuple[str, str]] = []
    for attr, part in (("connector", "projector"), ("vision_tower", "vision_tower"), ("language_model", "language_model")):
        for family in FAMILIES.values():
            for fragment in getattr(family, attr):
                if (f".{fragment}.", part) not in rules:
                    rules.append((f".{fragment}.", part))
    rules.append((".lm_head.", "lm_head"))
    return rules


_RULES = _rules()


def part_of(name: str) -> str:
    """The part (one of PARTS) of the parameter with qualified name `name`."""
    dotted = f".{name}."
    for fragment, part in _RULES:
        if fragment in dotted:
            return part
    raise ValueError(f"parameter {name!r} belongs to no known part")
