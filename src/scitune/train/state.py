"""Training checkpoints: everything needed to resume a stage exactly, in safetensors and JSON.

A checkpoint directory `step-NNNNNNN/` holds
- `model/*.safetensors`: the trainable parameters (the frozen rest is rebuilt from the recipe),
  one file per process that held shards of them (`run.checkpoint_format: sharded`, written by
  torch.distributed.checkpoint) or one gathered file (`full`); see scitune.train.distributed;
- `optimizer/*.safetensors` + `optimizer.json`: the optimizer's tensors (the same way) and its
  other values;
- `deepspeed/` instead of both under DeepSpeed (its engine's own checkpoint);
- `rng-rank{R}.safetensors`: each process's torch RNG states;
- `state.json`, written last: the optimizer step reached (the data position and learning rate
  follow from it), the run's fingerprint and every file of the checkpoint with its size.
All processes write into `.step-NNNNNNN.partial/`, which the main process renames once
`state.json` is in; the last `keep_last` are kept. A checkpoint whose files do not match its
`state.json` is incomplete and is skipped on resume. Nothing is unpickled on load (DeepSpeed's
own checkpoint excepted, which only DeepSpeed runs read).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch

from scitune.io.atomic import sync_tree

log = logging.getLogger(__name__)

STEP_DIR = re.compile(r"^step-(\d+)$")
FORMAT = "scitune-checkpoint-v2"


def _rng_states() -> dict[str, torch.Tensor]:
    rng = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng.update({f"cuda{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    return rng


def partial_dir(directory: Path, step: int) -> Path:
    return directory / f".step-{step:07d}.partial"


def begin_checkpoint(directory: Path, step: int, is_main: bool) -> Path:
    """The folder all processes write step `step` into (the main process empties it first;
    callers wait for it before writing)."""
    target = partial_dir(directory, step)
    if is_main:
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
    return target


def save_rank_rng(checkpoint: Path, rank: int) -> None:
    from safetensors.torch import save_file

    save_file(_rng_states(), str(checkpoint / f"rng-rank{rank}.safetensors"))


def _listing(folder: Path) -> dict[str, int]:
    return {
        str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()
    }


def finish_checkpoint(partial: Path, step: int, extra: dict[str, Any]) -> Path:
    """Main process, after every process wrote its part: state.json (listing every file) and the
    rename into `step-NNNNNNN/` (replacing an older one of the same step)."""
    files = _listing(partial)
    (partial / "state.json").write_text(json.dumps({"step": step, "format": FORMAT, **extra, "files": files}, indent=2))
    sync_tree(partial)
    target = partial.parent / f"step-{step:07d}"
    if target.exists():
        shutil.rmtree(target)
    partial.rename(target)
    fd = os.open(partial.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return target


def list_checkpoints(directory: Path) -> list[Path]:
    found = [p for p in directory.glob("step-*") if p.is_dir() and STEP_DIR.match(p.name)]
    return sorted(found, key=lambda p: int(STEP_DIR.match(p.name).group(1)))


def checkpoint_problem(checkpoint: Path) -> str | None:
    """Why a checkpoint cannot be resumed from (incomplete, unreadable, or a step in state.json
    that is not the one in its name), or None when it is good."""
    from safetensors import safe_open

    if not (checkpoint / "state.json").is_file():
        return "incomplete (no state.json)"
    try:
        state = json.loads((checkpoint / "state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as err:
        return f"unreadable state.json ({str(err).splitlines()[0] if str(err) else type(err).__name__})"
    if not isinstance(state, dict) or state.get("format") != FORMAT or not isinstance(state.get("files"), dict):
        return f"not a {FORMAT} checkpoint"
    named = int(STEP_DIR.match(checkpoint.name).group(1))
    if state.get("step") != named:
        return f"its step does not match: name {named}, state.json {state.get('step')}"
    files: dict[str, Any] = state["files"]
    parts = ("deepspeed/",) if any(f.startswith("deepspeed/") for f in files) else ("model/", "optimizer/")
    for part in parts:
        if not any(f.startswith(part) for f in files):
            return f"incomplete (nothing in {part})"
    missing = [f for f in files if not (checkpoint / f).is_file()]
    if missing:
        return "incomplete (no " + ", ".join(sorted(missing)[:3]) + ")"
    resized = [f for f, size in files.items() if (checkpoint / f).stat().st_size != size]
    if resized:
        return "damaged (" + ", ".join(sorted(resized)[:3]) + " changed size since it was written)"
    try:
        json.loads((checkpoint / "optimizer.json").read_text(encoding="utf-8")) if "optimizer.json" in files else None
        for name in files:
            if name.endswith(".safetensors"):
                with safe_open(str(checkpoint / name), "pt"):
                    pass
    except (OSError, ValueError, UnicodeDecodeError) as err:
        return f"unreadable ({str(err).splitlines()[0] if str(err) else type(err).__name__})"
    except Exception as err:  # safetensors raises its own SafetensorError on a damaged header
        return f"unreadable ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"
    return None


def latest_good_checkpoint(directory: Path) -> Path | None:
    """The newest checkpoint that passes `checkpoint_problem`; each newer bad one is reported and skipped."""
    for checkpoint in reversed(list_checkpoints(directory)):
        problem = checkpoint_problem(checkpoint)
        if problem is None:
            return checkpoint
        log.warning("skipping checkpoint %s: %s", checkpoint, problem)
    return None


def prune(directory: Path, keep_last: int) -> None:
    for old in list_checkpoints(directory)[: -keep_last or None] if keep_last > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    for stale in directory.glob(".step-*.partial"):
        shutil.rmtree(stale, ignore_errors=True)


def read_state(checkpoint: Path) -> dict[str, Any]:
    return json.loads((checkpoint / "state.json").read_text())


def load_rank_rng(checkpoint: Path, rank: int) -> None:
    from safetensors.torch import load_file

    rng_file = checkpoint / f"rng-rank{rank}.safetensors"
    if rng_file.is_file():
        rng = load_file(str(rng_file))
        torch.set_rng_state(rng["cpu"])
        cuda = [rng[k] for k in sorted(rng) if k.startswith("cuda")]
        if cuda and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(cuda)
