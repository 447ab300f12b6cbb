"""What each stage trains, applied to a model: the one place that sets `requires_grad`.

The plan comes from `scitune.config.StageConfig.trainable` (data); this module applies it, with
each parameter's part from `scitune.model.parts.part_of`:
- align: projector only;  instruct: projector + LLM (embeddings and lm_head included);
- `lora`: peft LoRA adapters on the LLM's linear layers only (the target regex is anchored under
  the family's language model, e.g. `language_model` or Idefics3's `text_model`, since a plain
  `q_proj` target would also match the vision tower's attention layers); the connector stays
  fully trainable and is saved with the adapter (the family's `connector_modules`); a connector
  tensor outside any module (LLaVA-OneVision's `image_newline`) stays frozen with LoRA;
- `tune_vision`: the vision tower trains too.
The pretraining loops (scitune.train.pretrain) apply a bare `Trainable` plan the same way.
The linear projector's `linear_2` is a fixed identity (see scitune.model.build) and never trains.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import torch

from scitune.config import LoraConfig, StageConfig, Trainable
from scitune.errors import ScituneError
from scitune.model.build import is_linear_projector
from scitune.model.families import Family, family_of
from scitune.model.parts import PARTS, part_of

# The output head trains with the language model (a stage plan has no switch of its own for it).
_PLAN_FLAG = {"lm_head": "language_model"}


def _is_fixed_identity(name: str, config) -> bool:
    return (
        getattr(config, "model_type", None) == "llava"
        and is_linear_projector(config)
        and ".linear_2." in name
        and part_of(name) == "projector"
    )


def _is_bare_connector_tensor(name: str, family: Family) -> bool:
    return any(f".{t}." in f".{name}." for t in family.connector_tensors)


def apply_stage(model, stage: StageConfig | Trainable):
    """Freezes and unfreezes parameters for `stage` (a stage's config, or a bare `Trainable`
    plan); returns the model (a peft model with lora)."""
    lora = isinstance(stage, StageConfig) and stage.lora
    plan = stage.trainable if isinstance(stage, StageConfig) else stage
    config = model.config
    family = family_of(model)
    if lora:
        model = attach_lora(model, stage.lora_config)
    for name, param in model.named_parameters():
        part = part_of(name)
        if part in ("language_model", "lm_head") and lora:
            trainable = "lora_" in name
        elif part == "projector":
            # with lora, peft keeps a frozen copy of the projector (original_module)
            trainable = (
                plan.projector
                and ".original_module." not in name
                and not _is_fixed_identity(name, config)
                and not (lora and _is_bare_connector_tensor(name, family))
            )
        else:
            trainable = getattr(plan, _PLAN_FLAG.get(part, part))
        param.requires_grad_(trainable)
    return model


@contextlib.contextmanager
def stage_applied(model, plan: Trainable) -> Iterator[list[torch.nn.Parameter]]:
    """`apply_stage(model, plan)` for the duration of a block, which gets the trainable
    parameters (in the model's order); the flags are put back as they were afterwards."""
    saved = [param.requires_grad for param in model.parameters()]
    apply_stage(model, plan)
    try:
        yield [param for param in model.parameters() if param.requires_grad]
    finally:
        for param, flag in zip(model.parameters(), saved):
            param.requires_grad_(flag)


def lora_target_regex(lora: LoraConfig, family: Family | None = None) -> str:
    """The peft target regex: the named linear layers under the family's language model only."""
    names = "|".join(lora.target_modules)
    anchors = "|".join(family.language_model) if family is not None else "language_model"
    return rf".*\b(?:{anchors})\..*\.({names})"


def check_lora_targets(model, lora: LoraConfig) -> None:
    """Every target module name must match at least one linear layer of the language model."""
    pattern = re.compile(lora_target_regex(lora, family_of(model)))
    names = [name for name, module in model.named_modules() if isinstance(module, torch.nn.Linear) and pattern.fullmatch(name)]
    missing = [m for m in lora.target_modules if not any(n.rsplit(".", 1)[-1] == m for n in names)]
    if missing:
        raise ScituneError(
            f"stage.lora_config.target_modules: {', '.join(missing)} match no linear layer of the language model; "
            "name layers it has (e.g. q_proj, v_proj)"
        )


def connector_modules_to_save(model) -> list[str]:
    """The family's connector modules as peft `modules_to_save` names (peft saves modules, not
    lists of them: a ModuleList, like Qwen3-VL's deepstack mergers, is named by its items)."""
    names: list[str] = []
    for name, module in model.named_modules():
        short = name.rsplit(".", 1)[-1]
        if short in family_of(model).connector_modules:
            if isinstance(module, torch.nn.ModuleList):
                names += [f"{short}.{index}" for index in range(len(module))]
            elif short not in names:
                names.append(short)
    return names


def attach_lora(model, lora: LoraConfig):
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    check_lora_targets(model, lora)

    peft_config = PeftLoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora_target_regex(lora, family_of(model)),
        modules_to_save=connector_modules_to_save(model),
        bias="none",
    )
    return get_peft_model(model, peft_config)


def parameter_table(model) -> list[dict]:
    """Trainable and frozen parameter counts per part (with a total row)."""
    counts = {part: {"part": part, "trainable": 0, "frozen": 0} for part in PARTS}
    for name, param in model.named_parameters():  # tied weights are listed once
        row = counts[part_of(name)]
        row["trainable" if param.requires_grad else "frozen"] += param.numel()
    rows = list(counts.values())
    rows.append(
        {"part": "total", "trainable": sum(r["trainable"] for r in rows), "frozen": sum(r["frozen"] for r in rows)}
    )
    return rows


def format_parameter_table(rows: list[dict]) -> str:
    lines = [f"{'part':<16}{'trainable':>14}{'frozen':>14}"]
    lines += [f"{r['part']:<16}{r['trainable']:>14,}{r['frozen']:>14,}" for r in rows]
    return "\n".join(lines)
