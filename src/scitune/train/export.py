"""What a finished stage leaves: `projector.safetensors` (the connector), `adapter/` (LoRA), `final/`
(a standard HF folder of the stage's model family) and `done.json`; for a sharded run, the trained
weights gathered whole into a plain copy of the stage's model first; and, on --resume, a finished
stage's `done.json` read back."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from scitune.config import Recipe
from scitune.errors import ScituneError
from scitune.train import distributed
from scitune.train.stage_model import build_stage_model
from scitune.train.stage_settings import changed_settings, stage_settings


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


def gathered_model(accelerator, module, recipe: Recipe, index: int, out_root: Path, texts: list[str] | None,
                   deepspeed: bool):
    """Sharded runs: the trained weights gathered whole onto the main process and loaded into
    a plain copy of the stage's model built there (None on the other processes). Collective."""
    from scitune.model import apply_stage
    from scitune.prompting import set_pad_to_square

    if deepspeed:  # ZeRO-3 gathers its 16-bit weights (zero3_save_16bit_model)
        state = accelerator.get_state_dict(module)
    else:
        state = distributed.full_trainable_state(module)
    if not accelerator.is_main_process:
        return None
    run = recipe.stages[index]
    model, processor = build_stage_model(recipe, index, out_root, texts)
    set_pad_to_square(processor, run.data.pad_to_square)
    model = apply_stage(model, run.stage)
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    trained = {distributed.clean_name(k).removeprefix("model."): v for k, v in state.items()}
    trained = {k: v for k, v in trained.items() if k in params}
    if set(trained) != set(params):
        missing = sorted(set(params) - set(trained))
        raise ScituneError(
            f"[{run.stage.name}] export: the gathered weights lack {len(missing)} trained parameter(s), e.g. {missing[:3]}"
        )
    with torch.no_grad():
        for name, value in trained.items():
            params[name].copy_(value)
    return model


def write_model_files(final_model, processor, stage_dir: Path, lora_base: Path | None) -> None:
    """projector.safetensors; with LoRA (`lora_base` set) adapter/ naming its base, then the
    merged model; final/. Main process only."""
    from scitune.model import save_model
    from scitune.model.checkpoint import merge_lora, save_projector

    save_projector(final_model, stage_dir / "projector.safetensors")
    if lora_base is not None:
        # the adapter names its base, so AutoPeftModel / PeftModel.from_pretrained can load it
        for config in final_model.peft_config.values():
            config.base_model_name_or_path = str(lora_base.resolve())
        save_model(final_model, processor, stage_dir / "adapter")
        final_model = merge_lora(final_model)
    save_model(final_model, processor, stage_dir / "final")


def write_done(stage_dir: Path, record: dict[str, Any]) -> None:
    """`done.json`: what `--resume` reads back to skip the finished stage (written last)."""
    from scitune.io.atomic import write_json

    write_json(stage_dir / "done.json", record)


def read_done(stage_dir: Path, run) -> dict[str, Any] | None:
    """A finished stage's `done.json` (None when the stage has none), once its settings are found
    the same as `run`'s (other ones are refused by name, as for a checkpoint of an unfinished stage)."""
    done_file = stage_dir / "done.json"
    if not done_file.is_file():
        return None
    done = json.loads(done_file.read_text())
    saved = done.get("settings") if isinstance(done, dict) else None
    if isinstance(saved, dict):
        changed = changed_settings(saved, stage_settings(run))
        if changed:
            raise ScituneError(
                f"[{run.stage.name}] cannot resume: the stage finished ({done_file}) with other settings: "
                + ", ".join(changed) + " (train into a new --out, or start again with --overwrite)"
            )
    return done
