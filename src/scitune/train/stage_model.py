"""The model a stage starts from, and the base folder its LoRA adapter names."""

from __future__ import annotations

from pathlib import Path

from scitune.config import Recipe
from scitune.errors import ScituneError


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


def lora_base_folder(recipe: Recipe, index: int, out_root: Path, model, processor, write: bool, resume: bool) -> Path:
    """The folder a LoRA adapter applies to: the stage's starting model. It is the recipe's
    checkpoint or the previous stage's final model when the stage starts from one unchanged;
    otherwise (a composed base, a fresh projector) it is saved once as `<stage>/base/` (by the
    process with `write`)."""
    from scitune.model import save_model

    run = recipe.stages[index]
    if run.init_from == "model":
        return out_root / recipe.stages[index - 1].stage.name / "final"
    if recipe.model.checkpoint and run.init_from is None:
        return Path(recipe.model.checkpoint)
    base = out_root / run.stage.name / "base"
    if write and not (resume and base.is_dir()):
        save_model(model, processor, base)
    return base
