"""What a stage is compared by when a run is continued: its recipe settings with its training
file's sha256 (kept in `done.json`), and the fingerprint a checkpoint must agree on."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from scitune.config import StageRun
from scitune.train.schedule import Plan

# What may change between a finished stage and a --resume without changing what it trained.
_SETTINGS_IGNORED = ("gradient_checkpointing", "feature_cache")


def file_digest(path: str | Path) -> str:
    """sha256 of a file (the data file a checkpoint was trained on)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def plain_settings(config) -> dict[str, Any]:
    """A config section (a pydantic model or a dataclass) as plain JSON values."""
    if hasattr(config, "model_dump"):
        return config.model_dump(mode="json")
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


def stage_settings(run: StageRun) -> dict[str, Any]:
    """A stage's recipe settings as JSON values, and its training file's sha256 (what `done.json`
    keeps to compare on --resume)."""
    settings = plain_settings(run)
    for key in _SETTINGS_IGNORED:
        settings.pop(key, None)
    if run.data.train and Path(run.data.train).is_file():
        settings["data_sha256"] = file_digest(run.data.train)
    return settings


def changed_settings(saved: dict[str, Any], current: dict[str, Any], prefix: str = "") -> list[str]:
    """`key (old -> new)` for each setting that differs (nested sections as `data.max_length`)."""
    changed = []
    for key in sorted(set(saved) | set(current)):
        old, new = saved.get(key), current.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            changed += changed_settings(old, new, f"{prefix}{key}.")
        elif old != new and key not in _SETTINGS_IGNORED:
            changed.append(f"{prefix}{key} ({old!r} -> {new!r})")
    return changed


def fingerprint(run: StageRun, plan: Plan, data_sha256: str, trainable_shapes: list) -> dict[str, Any]:
    """What a checkpoint must agree on to be continued: the schedule, the data, the model's shape."""
    shapes = hashlib.sha256(json.dumps(trainable_shapes).encode()).hexdigest()
    return {
        "global_batch": plan.global_batch, "total_steps": plan.total_steps, "lr": run.lr,
        "scheduler": run.scheduler, "warmup_ratio": run.warmup_ratio, "data_sha256": data_sha256,
        "samples": plan.num_samples, "trainable_shapes_sha256": shapes,
        "projector_lr": run.projector_lr, "vision_lr": run.vision_lr,
    }


def fingerprint_changes(saved: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """`key (saved -> expected)` for each fingerprint entry a checkpoint holds that differs."""
    return [f"{k} ({saved.get(k)!r} -> {v!r})" for k, v in expected.items() if k in saved and saved[k] != v]
