"""The metrics log: one JSON line per logged optimizer step (trackers such as TensorBoard get the
same records through scitune.train.trackers)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from scitune.io.atomic import write_text


class MetricsLog:
    def __init__(self, path: Path, resume_step: int | None = None):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is None:
            write_text(path, "")
        elif path.exists():
            # a killed run may have logged steps after its last checkpoint: those are redone
            kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= resume_step]
            write_text(path, "".join(line + "\n" for line in kept))
        self._file = path.open("a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
