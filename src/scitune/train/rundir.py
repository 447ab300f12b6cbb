"""The run folder policy: what `scitune train` may write where, decided before anything is written.

A run folder carries scitune's marker (`.scitune`, kind "run"). Training
- refuses `run.out` when it is a file, or a non-empty folder without the marker (unless
  `overwrite`);
- refuses a folder that holds a run with progress (a checkpoint or a finished stage) unless
  `resume` (continue it) or `overwrite` (start over: the selected stages' folders are removed
  first); a run that stopped before its first checkpoint may simply be started again;
- with `resume`, refuses a folder that holds no run, or a run with neither a finished stage nor a
  checkpoint to continue from;
- checks that each selected stage names an existing training file before creating the folder;
- writes `config.yaml` atomically, and on `resume` keeps the one the run started with.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from scitune.config import Recipe
from scitune.errors import ScituneError
from scitune.io.atomic import write_text
from scitune.io.outputs import claim_output, read_marker, write_marker
from scitune.train.stage_settings import plain_settings

RUN_KIND = "run"


def selected_stages(recipe: Recipe, stages: list[str] | None) -> list[str]:
    names = [s.stage.name for s in recipe.stages]
    unknown = [name for name in stages or () if name not in names]
    if unknown:
        raise ScituneError(f"--stage {', '.join(unknown)}: the recipe has no such stage; it has {', '.join(names)}")
    return [name for name in names if not stages or name in stages]


def _has_progress(stage_dir: Path) -> bool:
    checkpoints = stage_dir / "checkpoints"
    return (stage_dir / "done.json").is_file() or (checkpoints.is_dir() and any(checkpoints.glob("step-*")))


def check_inputs(recipe: Recipe, names: list[str]) -> None:
    """Each selected stage's training file exists and its image folder (when given) is a folder."""
    for run in recipe.stages:
        if run.stage.name not in names:
            continue
        where = f"{run.stage.name}.data"
        if not run.data.train:
            raise ScituneError(f"{where}.train: no training file given")
        train = Path(run.data.train)
        if not train.is_file():
            raise ScituneError(f"{where}.train {run.data.train!r}: no such file")
        if run.data.images and not Path(run.data.images).is_dir():
            raise ScituneError(f"{where}.images {run.data.images!r}: no such folder")
        if run.data.fail_on_overlap_with:
            check_no_overlap(run, where)


def check_no_overlap(run, where: str) -> None:
    """The leakage guard: the stage's training file against its `fail_on_overlap_with` sets."""
    try:
        from scitune.data.ingest.overlap import find_overlaps, listing, load_items
    except ImportError as err:
        raise ScituneError(
            f"{where}.fail_on_overlap_with needs the ingest extra ({err.name} is missing): pip install 'scitune[ingest]'"
        ) from None
    train = load_items(run.data.train, images=run.data.images or None)
    evals = [item for spec in run.data.fail_on_overlap_with for item in load_items(spec)]
    overlaps = find_overlaps(train, evals)
    unchecked = getattr(overlaps, "unchecked", [])
    if unchecked:
        from scitune.data.ingest.overlap import unchecked_summary

        raise ScituneError(
            f"{where}.fail_on_overlap_with: {unchecked_summary(unchecked)}; the leakage guard cannot pass "
            "what it could not check (fix the image folders, or see scitune data overlap)"
        )
    if overlaps:
        first = listing(overlaps, limit=1).splitlines()[0]
        raise ScituneError(
            f"{where}.train {run.data.train}: {len(overlaps)} overlap(s) with the evaluation sets of "
            f"{where}.fail_on_overlap_with (first: {' '.join(first.split())}); see scitune data overlap"
        )


def check_run_dir(recipe: Recipe, resume: bool, overwrite: bool, names: list[str]) -> Path:
    """Raises a one-line ScituneError when training may not write `recipe.run.out`."""
    out = Path(recipe.run.out)
    if resume and overwrite:
        raise ScituneError("--resume and --overwrite exclude each other (continue a run, or start it over)")
    # an earlier run is taken here (reuse); what may be done with it is decided below
    inputs = [p for s in recipe.stages for p in (s.data.train, s.data.images)]
    claim_output(out, inputs=inputs, overwrite=overwrite, kind="dir", marker=RUN_KIND, reuse=True, flag="run.out")
    marker = read_marker(out) if out.is_dir() else None
    is_run = marker is not None and marker.get("kind") == RUN_KIND
    stage_dirs = [out / s.stage.name for s in recipe.stages]
    if resume:
        if not is_run:
            raise ScituneError(f"--resume: {out} holds no scitune run to continue; start one without --resume")
        if not any(_has_progress(d) for d in stage_dirs):
            raise ScituneError(
                f"--resume: {out} has no checkpoint and no finished stage to continue from; "
                "start over with --overwrite"
            )
    elif is_run and not overwrite and any(_has_progress(d) for d in stage_dirs):
        finished = all((out / name / "done.json").is_file() for name in names)
        state = "a finished run" if finished else "an earlier run"
        raise ScituneError(f"run.out {out}: holds {state}; continue it with --resume, or start over with --overwrite")
    return out


def prepare_run_dir(recipe: Recipe, resume: bool, overwrite: bool, names: list[str]) -> Path:
    """Creates (or, with `overwrite`, clears the selected stages of) the run folder, marks it and
    writes `config.yaml`. Call after `check_run_dir`, on the main process only."""
    import yaml

    out = Path(recipe.run.out)
    if overwrite:
        for name in names:
            if (out / name).is_dir():
                shutil.rmtree(out / name)
    out.mkdir(parents=True, exist_ok=True)
    if read_marker(out) is None or overwrite:
        write_marker(out, RUN_KIND)
    config = out / "config.yaml"
    if not (resume and config.is_file()):
        write_text(config, yaml.safe_dump(plain_settings(recipe), sort_keys=False))
    return out
