"""Reference answers, shared by the tasks whose references are free text (figure type, captions):
the last gpt turn of a LLaVA record, and an id -> references file in any of the layouts users
have (LLaVA records, a JSON object, JSONL)."""

from __future__ import annotations

import json
from pathlib import Path

from scitune.data.sample import iter_jsonl
from scitune.errors import ScituneError


def answer_of(sample: dict) -> str:
    """The last gpt turn of a LLaVA record (the reference answer)."""
    answers = [t.get("value") for t in sample.get("conversations", []) if isinstance(t, dict) and t.get("from") == "gpt"]
    if not answers or not isinstance(answers[-1], str):
        raise ScituneError(f"sample {sample.get('id')!r}: no gpt turn")
    return answers[-1]


def load_json(path: Path):
    try:
        with path.open(encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as err:
        raise ScituneError(f"{path}: cannot read ({err.strerror})") from None
    except json.JSONDecodeError as err:
        raise ScituneError(f"{path}: not JSON ({err.msg}, line {err.lineno})") from None


def _as_reference_list(value, where: str) -> list[str]:
    refs = [value] if isinstance(value, str) else value
    if not isinstance(refs, list) or not refs or not all(isinstance(r, str) for r in refs):
        raise ScituneError(f"{where}: a reference must be a caption or a non-empty list of captions")
    return refs


def read_references(path: str | Path) -> dict[str, list[str]]:
    """id -> reference captions, from LLaVA conversation JSON, a JSON object, or JSONL."""
    path = Path(path)
    if path.suffix == ".jsonl":
        out = {}
        for number, row in iter_jsonl(path):
            if "question_id" not in row or not ({"text", "references"} & set(row)):
                raise ScituneError(f"{path}:{number}: needs `question_id` and `text` or `references`")
            out[str(row["question_id"])] = _as_reference_list(row.get("references", row.get("text")), f"{path}:{number}")
        return out
    data = load_json(path)
    if isinstance(data, dict):
        return {str(k): _as_reference_list(v, f"{path}: {k}") for k, v in data.items()}
    if isinstance(data, list):
        out = {}
        for number, record in enumerate(data):
            try:
                answers = [t["value"] for t in record["conversations"] if t["from"] == "gpt"]
                out[str(record["id"])] = [answers[-1]]
            except (KeyError, IndexError, TypeError):
                raise ScituneError(f"{path}: record {number} needs `id` and a gpt turn") from None
        return out
    raise ScituneError(f"{path}: expected LLaVA conversation records, an id -> caption object, or JSONL")
