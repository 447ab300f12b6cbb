"""Predictions JSONL: one JSON object a line, `{question_id, prompt, text, ...}` (LLaVA's format).

Extra keys (the mode, the option log-likelihoods, the model) ride along unchanged. Reading checks
every line and names the file and line of the first bad one.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from scitune.data.sample import iter_jsonl
from scitune.errors import ScituneError
from scitune.io.atomic import write_jsonl

REQUIRED_KEYS = ("question_id", "text")


def write_predictions(path: str | Path, rows: Iterable[dict]) -> int:
    """Writes rows as JSONL, atomically (parent folders made); returns how many were written."""
    rows = list(rows)
    write_jsonl(path, rows)
    return len(rows)


def read_predictions(path: str | Path) -> list[dict]:
    """Reads predictions JSONL; every row needs `question_id` and a string `text`; ids are unique."""
    rows: list[dict] = []
    seen: set[str] = set()
    for number, row in iter_jsonl(path):
        missing = [key for key in REQUIRED_KEYS if key not in row]
        if missing:
            raise ScituneError(f"{path}:{number}: prediction lacks {', '.join(missing)}")
        if not isinstance(row["text"], str):
            raise ScituneError(f"{path}:{number}: `text` must be a string")
        qid = str(row["question_id"])
        if qid in seen:
            raise ScituneError(f"{path}:{number}: question_id {qid} appears twice")
        seen.add(qid)
        rows.append(row)
    return rows
