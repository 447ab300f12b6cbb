"""Which part of a Llava-style model a parameter belongs to: the one place that decides it.

Every place that needs a parameter's part (the stage plan in scitune.model.stages, the
optimizer's parameter groups, the parameter table and FLOP estimate, the pretraining loops)
asks `part_of`. The names are those of transformers' LlavaForConditionalGeneration (and of a
peft model wrapping it); a model family with other names would add its rule here.
"""

from __future__ import annotations

# vision tower -> connector (the multi-modal projector) -> language model -> output head
PARTS = ("vision_tower", "projector", "language_model", "lm_head")


def part_of(name: str) -> str:
    """The part (one of PARTS) of the parameter with qualified name `name`."""
    dotted = f".{name}."
    if ".vision_tower." in dotted:
        return "vision_tower"
    if ".multi_modal_projector." in dotted:
        return "projector"
    if ".language_model." in dotted:
        return "language_model"
    if ".lm_head." in dotted:
        return "lm_head"
    raise ValueError(f"parameter {name!r} belongs to no known part")
