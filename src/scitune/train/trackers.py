"""Experiment trackers, through accelerate's (`Accelerator(log_with=...)`, `init_trackers`,
`log`): TensorBoard (`run.tensorboard: true`, or `tensorboard` in `run.trackers`), and W&B or
MLflow when named in `run.trackers` and installed. The metrics JSONL (scitune.train.log) is
written whatever the trackers.

Each stage is one tracker run named after the stage: TensorBoard events go to `<out>/<stage>/`
(next to its metrics.jsonl; a resumed stage drops the events after its checkpoint's step, as
the JSONL does); W&B logs to project `<stage>`, run named after the run folder; MLflow to
experiment `<stage>` with its file store in `<out>/mlruns`. Only the main process logs.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from scitune.errors import ScituneError

# tracker -> (module it needs, how to install it)
KNOWN = {
    "tensorboard": ("tensorboard", "pip install 'scitune[tensorboard]'"),
    "wandb": ("wandb", "pip install wandb"),
    "mlflow": ("mlflow", "pip install mlflow"),
}
_LABEL = {"tensorboard": "TensorBoard", "wandb": "W&B", "mlflow": "MLflow"}


def tracker_names(run) -> list[str]:
    """The trackers a recipe's `run` section asks for, checked: each known and installed."""
    named = list(getattr(run, "trackers", None) or ())
    for name in named:
        if name not in KNOWN:
            raise ScituneError(f"run.trackers: unknown tracker {name!r}; expected some of {', '.join(KNOWN)}")
    names = (["tensorboard"] if run.tensorboard and "tensorboard" not in named else []) + named
    for name in names:
        module, install = KNOWN[name]
        if importlib.util.find_spec(module) is None:
            key = "run.tensorboard: true" if name == "tensorboard" and name not in named else f"run.trackers: {name}"
            raise ScituneError(f"{key} needs {_LABEL[name]}: {install}")
    return names


def accelerator_options(run) -> dict[str, Any]:
    """Keyword arguments for `Accelerator`: the trackers, logging under the run folder."""
    names = tracker_names(run)
    return {"log_with": names, "project_dir": str(Path(run.out))} if names else {}


def _flat(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as `data.max_length: 64` (the value types trackers take)."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value if isinstance(value, (bool, int, float, str)) or value is None else str(value)
    return flat


def start_stage(accelerator, stage: str, out: Path, settings: dict[str, Any], resume_step: int | None) -> None:
    """Opens one tracker run for stage `stage` (no-op without trackers)."""
    if not accelerator.log_with:
        return
    init_kwargs = {
        "wandb": {"name": out.name, "dir": str(out)},
        "mlflow": {"run_name": out.name, "logging_dir": str(out / "mlruns")},
    }
    if resume_step is not None:
        init_kwargs["tensorboard"] = {"purge_step": resume_step + 1}
    accelerator.init_trackers(stage, init_kwargs=init_kwargs)
    for tracker in accelerator.trackers:
        if tracker.name != "tensorboard":  # TensorBoard would add folders of hparams to the stage's
            tracker.store_init_configuration(_flat(settings))


def log_step(accelerator, record: dict[str, Any]) -> None:
    """A step's numbers (all but the step itself) to every tracker, at that step."""
    if accelerator.trackers:
        values = {k: v for k, v in record.items() if isinstance(v, (int, float)) and k != "step"}
        accelerator.log(values, step=record["step"])


def finish_stage(accelerator) -> None:
    """Closes the stage's tracker runs (without ending the process group, as `end_training` would)."""
    for tracker in accelerator.trackers:
        tracker.finish()
    accelerator.trackers.clear()
