"""The metrics log: one JSON line per optimizer step (and TensorBoard events with `run.tensorboard`)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from scitune.errors import ScituneError
from scitune.io.atomic import write_text


def require_tensorboard() -> None:
    """`run.tensorboard: true` without TensorBoard installed is an error, not a silent no-op."""
    if importlib.util.find_spec("tensorboard") is None:
        raise ScituneError("run.tensorboard: true needs TensorBoard: pip install 'scitune[tensorboard]'")


def tensorboard_writer(folder: Path):
    require_tensorboard()
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(str(folder))


class MetricsLog:
    def __init__(self, path: Path, resume_step: int | None = None, tensorboard: bool = False):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is None:
            write_text(path, "")
        elif path.exists():
            # a killed run may have logged steps after its last checkpoint: those are redone
            kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= resume_step]
            write_text(path, "".join(line + "\n" for line in kept))
        self._file = path.open("a", encoding="utf-8")
        self._tb = None
        if tensorboard:
            self._tb = tensorboard_writer(path.parent / "tensorboard")

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self._tb is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and key != "step":
                    self._tb.add_scalar(key, value, record["step"])

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
