"""Training checkpoints: everything needed to resume a stage exactly, in safetensors and JSON.

A checkpoint directory `step-NNNNNNN/` holds
- `trainable.safetensors`: the trainable parameters (the frozen rest is rebuilt from the recipe);
- `optimizer.safetensors` + `optimizer.json`: the optimizer's tensors and its other state;
- `rng-rank{R}.safetensors`: each process's torch RNG states;
- `state.json`: the optimizer step reached (the data position and learning rate follow from it).
It is written under a temporary name and renamed; the last `keep_last` are kept.
Nothing is unpickled on load.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import torch

from scitune.io.atomic import write_dir_atomically

STEP_DIR = re.compile(r"^step-(\d+)$")


def trainable_state(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}


def _optimizer_split(optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    other: dict[str, Any] = {"param_groups": state["param_groups"], "state": {}}
    for index, values in state["state"].items():
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                other["state"].setdefault(str(index), {})[key] = value
    return tensors, other


def _optimizer_join(tensors: dict[str, torch.Tensor], other: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    for index, values in other["state"].items():
        state.setdefault(int(index), {}).update(values)
    return {"state": state, "param_groups": other["param_groups"]}


def _rng_states() -> dict[str, torch.Tensor]:
    rng = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng.update({f"cuda{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    return rng


def save_state(directory: Path, model, optimizer, step: int, extra: dict[str, Any], rank: int = 0, is_main: bool = True) -> Path:
    """Writes checkpoint `directory/step-{step}` (main process); the others then add their RNG
    file with `save_rank_rng`."""
    from safetensors.torch import save_file

    target = directory / f"step-{step:07d}"
    if not is_main:
        return target

    def write(tmp: Path) -> None:
        save_file(trainable_state(model), str(tmp / "trainable.safetensors"), metadata={"step": str(step)})
        tensors, other = _optimizer_split(optimizer)
        save_file(tensors, str(tmp / "optimizer.safetensors"))
        (tmp / "optimizer.json").write_text(json.dumps(other))
        save_file(_rng_states(), str(tmp / f"rng-rank{rank}.safetensors"))
        (tmp / "state.json").write_text(json.dumps({"step": step, **extra}, indent=2))

    return write_dir_atomically(target, write)


def save_rank_rng(checkpoint: Path, rank: int) -> None:
    from safetensors.torch import save_file

    save_file(_rng_states(), str(checkpoint / f"rng-rank{rank}.safetensors"))


def list_checkpoints(directory: Path) -> list[Path]:
    found = [p for p in directory.glob("step-*") if p.is_dir() and STEP_DIR.match(p.name)]
    return sorted(found, key=lambda p: int(STEP_DIR.match(p.name).group(1)))


CHECKPOINT_FILES = ("trainable.safetensors", "optimizer.safetensors", "optimizer.json", "state.json")


def checkpoint_problem(checkpoint: Path) -> str | None:
    """Why a checkpoint cannot be resumed from (incomplete, unreadable, or a step in state.json
    that is not the one in its name and weights), or None when it is good."""
    from safetensors import safe_open

    missing = [name for name in CHECKPOINT_FILES if not (checkpoint / name).is_file()]
    if missing:
        return "incomplete (no " + ", ".join(missing) + ")"
    try:
        state = json.loads((checkpoint / "state.json").read_text(encoding="utf-8"))
        json.loads((checkpoint / "optimizer.json").read_text(encoding="utf-8"))
        with safe_open(str(checkpoint / "trainable.safetensors"), "pt") as weights:
            saved_step = (weights.metadata() or {}).get("step")
        with safe_open(str(checkpoint / "optimizer.safetensors"), "pt"):
            pass
    except (OSError, ValueError, UnicodeDecodeError) as err:
        return f"unreadable ({str(err).splitlines()[0] if str(err) else type(err).__name__})"
    named = int(STEP_DIR.match(checkpoint.name).group(1))
    if not isinstance(state, dict) or state.get("step") != named or (saved_step is not None and int(saved_step) != named):
        return f"its step does not match: name {named}, state.json {state.get('step') if isinstance(state, dict) else None}, weights {saved_step}"
    return None


def latest_good_checkpoint(directory: Path, echo=print) -> Path | None:
    """The newest checkpoint that passes `checkpoint_problem`; each newer bad one is reported and skipped."""
    for checkpoint in reversed(list_checkpoints(directory)):
        problem = checkpoint_problem(checkpoint)
        if problem is None:
            return checkpoint
        echo(f"skipping checkpoint {checkpoint}: {problem}")
    return None


def prune(directory: Path, keep_last: int) -> None:
    for old in list_checkpoints(directory)[: -keep_last or None] if keep_last > 0 else []:
        shutil.rmtree(old, ignore_errors=True)


def load_state(checkpoint: Path, model, optimizer, rank: int = 0) -> dict[str, Any]:
    """Restores trainable weights, optimizer and RNG; returns state.json's content."""
    from safetensors.torch import load_file

    weights = load_file(str(checkpoint / "trainable.safetensors"))
    params = dict(model.named_parameters())
    expected = {n for n, p in params.items() if p.requires_grad}
    if set(weights) != expected:
        missing, unexpected = sorted(expected - set(weights)), sorted(set(weights) - expected)
        raise ValueError(f"checkpoint {checkpoint} does not match this stage's trainable parameters "
                         f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    with torch.no_grad():
        for name, value in weights.items():
            params[name].copy_(value)
    other = json.loads((checkpoint / "optimizer.json").read_text())
    optimizer.load_state_dict(_optimizer_join(load_file(str(checkpoint / "optimizer.safetensors")), other))
    rng_file = checkpoint / f"rng-rank{rank}.safetensors"
    if rng_file.is_file():
        rng = load_file(str(rng_file))
        torch.set_rng_state(rng["cpu"])
        cuda = [rng[k] for k in sorted(rng) if k.startswith("cuda")]
        if cuda and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(cuda)
    return json.loads((checkpoint / "state.json").read_text())
