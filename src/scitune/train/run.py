"""Runs a recipe's stages in order into one run directory."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from scitune.config import Recipe
from scitune.train.rundir import check_inputs, check_run_dir, prepare_run_dir, selected_stages
from scitune.train.trackers import accelerator_options, tracker_names
from scitune.train.loop import StageResult, StepHook, run_stage


def make_accelerator(recipe: Recipe):
    import torch
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    # With a trainable vision tower, features from layer -2 leave its last layer without gradient.
    needs_unused = any(stage.stage.trainable.vision_tower for stage in recipe.stages)
    kwargs = [DistributedDataParallelKwargs(find_unused_parameters=needs_unused)]
    mixed = os.environ.get("ACCELERATE_MIXED_PRECISION") or ("bf16" if torch.cuda.is_available() else "no")
    # On a machine without CUDA, cpu=True is what makes accelerate join the processes that
    # `accelerate launch --multi_gpu` or torchrun started (gloo); without it each runs alone.
    return Accelerator(cpu=not torch.cuda.is_available(), mixed_precision=mixed, kwargs_handlers=kwargs,
                       **accelerator_options(recipe.run))


# <out>/tokenizer-stages.json: for each stage, the stages whose training text its tiny tokenizer
# was trained on when it started
TOKENIZER_STAGES = "tokenizer-stages.json"


def tokenizer_texts(recipe: Recipe, names: Sequence[str]) -> list[str] | None:
    """The tiny preset trains its BPE vocabulary on the training text of stages `names` (the
    selected ones: a stage left out, as with `--stage align`, need not have its file yet)."""
    if recipe.model.preset != "tiny":
        return None
    from scitune.data.sample import read_samples

    texts = []
    for stage in recipe.stages:
        if stage.stage.name not in names:
            continue
        for sample in read_samples(stage.data.train):
            turns = sample.get("conversations")
            for turn in turns if isinstance(turns, list) else ():
                if isinstance(turn, dict) and isinstance(turn.get("value"), str):
                    texts.append(turn["value"])
    return texts


def tokenizer_stages(out: Path, names: Sequence[str], resume: bool) -> dict[str, list[str]]:
    """For each selected stage, the stages whose text trains its tokenizer: on `resume`, those
    selected when it started (so a resume with another `--stage` selection rebuilds the same
    vocabulary its checkpoint was trained with), else the selected ones."""
    from scitune.io.read import read_json

    record = out / TOKENIZER_STAGES
    saved = read_json(record, what="tokenizer record") if resume and record.is_file() else {}
    if not isinstance(saved, dict):
        saved = {}
    chosen = {}
    for name in names:
        earlier = saved.get(name)
        valid = isinstance(earlier, list) and earlier and all(isinstance(n, str) for n in earlier)
        chosen[name] = list(earlier) if valid else list(names)
    return chosen


def record_tokenizer_stages(out: Path, chosen: dict[str, list[str]]) -> None:
    import json

    from scitune.io.atomic import write_text
    from scitune.io.read import read_json

    record = out / TOKENIZER_STAGES
    saved = read_json(record, what="tokenizer record") if record.is_file() else {}
    saved = {**(saved if isinstance(saved, dict) else {}), **chosen}
    write_text(record, json.dumps(saved, indent=1) + "\n")


def run_recipe(
    recipe: Recipe, resume: bool = False, stages: list[str] | None = None, hooks: Sequence[StepHook] = (),
    overwrite: bool = False,
) -> list[StageResult]:
    """Runs the recipe's stages (or those named in `stages`); `hooks` are called after every step.
    The run folder policy (`scitune.train.rundir`) is checked before anything is written."""
    names = selected_stages(recipe, stages)
    check_inputs(recipe, names)
    tracker_names(recipe.run)  # an unknown or missing tracker fails before anything is written
    check_run_dir(recipe, resume, overwrite, names)
    accelerator = make_accelerator(recipe)
    out = Path(recipe.run.out)
    tiny = recipe.model.preset == "tiny"
    sources = tokenizer_stages(out, names, resume) if tiny else {}
    accelerator.wait_for_everyone()  # every process has read the record before it changes
    if accelerator.is_main_process:
        prepare_run_dir(recipe, resume, overwrite, names)
        if tiny:
            record_tokenizer_stages(out, sources)
    accelerator.wait_for_everyone()
    texts: dict[tuple[str, ...], list[str] | None] = {}
    results = []
    for index, stage in enumerate(recipe.stages):
        if stage.stage.name not in names:
            continue
        source = tuple(sources.get(stage.stage.name, names))
        if source not in texts:
            texts[source] = tokenizer_texts(recipe, source)
        results.append(run_stage(recipe, index, out, accelerator, resume, texts[source], hooks))
    return results
