"""MathVista problems and predictions as read from files: the problems file (testmini.json, pid ->
record), the authors' output .json or our predictions .jsonl, each checked and bounded in size.
How they are scored: `scitune.eval.tasks.mathvista.scoring`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from scitune.errors import ScituneError
from scitune.eval.answers import LETTERS
from scitune.io.read import read_json, read_text

QUESTION_TYPES = ("multi_choice", "free_form")
ANSWER_TYPES = ("text", "integer", "float", "list")
METADATA_FIELDS = ("language", "source", "category", "task", "context", "grade", "skills")
GROUP_FIELDS = ("question_type", "answer_type") + METADATA_FIELDS
EXTRACTION_MODES = ("auto", "rules")
KEY_FIELDS = ("question_type", "answer_type", "answer", "choices", "precision")

MAX_FILE_BYTES = 256 * 2**20  # a MathVista output file for all 6141 problems is ~10 MB
MAX_TEXT_CHARS = 20_000  # rule extraction reads only the last 20k characters of a response
MAX_EXTRACTION_CHARS = 2_000  # a stored extraction longer than this is cut before edit distances


@dataclass(frozen=True)
class Problem:
    """What scoring needs to know about one MathVista problem."""

    pid: str
    question_type: str
    answer_type: str
    answer: str
    choices: tuple[str, ...] | None = None
    precision: int | None = None
    unit: str | None = None
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # field -> its value(s)


@dataclass(frozen=True)
class Prediction:
    """One problem's prediction: an `extraction` made elsewhere (GPT), or a `text` to extract from."""

    pid: str
    extraction: object = None  # str (or a number/list from a JSON file); None: extract from `text`
    text: str | None = None
    metadata: Mapping[str, tuple[str, ...]] | None = None  # the record's own metadata fields, if it has them
    key: Mapping[str, object] = field(default_factory=dict)  # answer, choices, ... as the record states them


# ----------------------------------------------------------------------------- reading files


def _read_text(path: Path, what: str) -> str:
    return read_text(path, MAX_FILE_BYTES, what)


def _read_json(path: Path, what: str):
    return read_json(path, MAX_FILE_BYTES, what)


def _records(data, path: Path, what: str) -> list[tuple[str, dict]]:
    """(pid, record) from a JSON object pid -> record, or a list of records that carry `pid`."""
    if isinstance(data, dict):
        pairs = [(str(pid), record) for pid, record in data.items()]
    elif isinstance(data, list):
        pairs = []
        for number, record in enumerate(data):
            if not isinstance(record, dict) or "pid" not in record:
                raise ScituneError(f"{path}: {what} record {number} needs a `pid`")
            pairs.append((str(record["pid"]), record))
    else:
        raise ScituneError(f"{path}: expected a JSON object pid -> {what} record, got a {type(data).__name__}")
    seen: set[str] = set()
    for pid, record in pairs:
        if not isinstance(record, dict):
            raise ScituneError(f"{path}: {what} {pid} is a {type(record).__name__}, expected an object")
        if pid in seen:
            raise ScituneError(f"{path}: pid {pid} appears twice")
        seen.add(pid)
    return pairs


def _metadata_groups(record: Mapping, bad) -> dict[str, tuple[str, ...]]:
    """The grouping fields of a record's `metadata` (skills: a list; the others: one string)."""
    metadata = record.get("metadata")
    if not isinstance(metadata, dict):
        raise bad("needs a `metadata` object")
    groups: dict[str, tuple[str, ...]] = {}
    for name in METADATA_FIELDS:
        value = metadata.get(name)
        if name == "skills":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise bad("metadata.skills must be a list of strings")
            groups[name] = tuple(dict.fromkeys(value))
        else:
            if not isinstance(value, str):
                raise bad(f"metadata.{name} must be a string, got {value!r}")
            groups[name] = (value,)
    return groups


def problem_from_record(pid: str, record: Mapping, where: str = "problems") -> Problem:
    """A `Problem` from a MathVista record (testmini.json's layout), checked."""

    def bad(reason: str) -> ScituneError:
        return ScituneError(f"{where}: problem {pid}: {reason}")

    question_type, answer_type = record.get("question_type"), record.get("answer_type")
    if question_type not in QUESTION_TYPES:
        raise bad(f"question_type {question_type!r} is not one of {', '.join(QUESTION_TYPES)}")
    if answer_type not in ANSWER_TYPES:
        raise bad(f"answer_type {answer_type!r} is not one of {', '.join(ANSWER_TYPES)}")
    answer = record.get("answer")
    if not isinstance(answer, str):
        raise bad(f"answer must be a string (MathVista's layout), got {answer!r}")
    choices = record.get("choices")
    if question_type == "multi_choice":
        if not isinstance(choices, list) or not 2 <= len(choices) <= len(LETTERS):
            raise bad(f"a multi_choice problem needs a list of 2 to {len(LETTERS)} choices")
        if not all(isinstance(c, str) for c in choices):
            raise bad("choices must be strings")
        choices = tuple(choices)
    else:
        choices = None
    precision = record.get("precision")
    if answer_type == "float":
        if not isinstance(precision, (int, float)) or isinstance(precision, bool) or precision != int(precision):
            raise bad(f"a float answer needs a whole-number precision, got {precision!r}")
        if not 0 <= precision <= 15:
            raise bad(f"precision {precision} is outside 0..15")
        precision = int(precision)
    else:
        precision = None
    groups = {"question_type": (question_type,), "answer_type": (answer_type,), **_metadata_groups(record, bad)}
    unit = record.get("unit")
    return Problem(
        pid=pid,
        question_type=question_type,
        answer_type=answer_type,
        answer=answer,
        choices=choices,
        precision=precision,
        unit=unit if isinstance(unit, str) and unit else None,
        groups=groups,
    )


def read_problems(path: str | Path) -> dict[str, Problem]:
    """pid -> Problem from MathVista's testmini.json (or test.json): an object pid -> record."""
    path = Path(path)
    records = _records(_read_json(path, "problems"), path, "problem")
    problems = {pid: problem_from_record(pid, record, str(path)) for pid, record in records}
    if not problems:
        raise ScituneError(f"{path}: no problems")
    return problems


def read_mathvista_predictions(path: str | Path) -> dict[str, Prediction]:
    """pid -> Prediction from the authors' output JSON (pid -> record with `extraction` and/or
    `response`) or from predictions JSONL in our format (`question_id`, `text`: extracted by rules)."""
    path = Path(path)
    predictions: dict[str, Prediction] = {}
    if path.suffix == ".jsonl":
        from scitune.eval.predictions import read_predictions

        _read_text(path, "predictions")  # size bound and UTF-8 check before the line reader
        for row in read_predictions(path):
            qid = str(row["question_id"])
            predictions[qid] = Prediction(qid, text=row["text"])
    elif path.suffix == ".json":
        for pid, record in _records(_read_json(path, "predictions"), path, "prediction"):
            extraction, response = record.get("extraction"), record.get("response")
            if extraction is None and not isinstance(response, str):
                raise ScituneError(f"{path}: prediction {pid} needs an `extraction` or a string `response`")
            if extraction is not None and not isinstance(extraction, (str, int, float, list)):
                raise ScituneError(f"{path}: prediction {pid}: `extraction` must be a string, number or list")
            metadata = None
            if "metadata" in record:
                where = f"{path}: prediction {pid}"
                metadata = _metadata_groups(record, lambda reason, where=where: ScituneError(f"{where}: {reason}"))
            predictions[pid] = Prediction(
                pid,
                extraction=extraction,
                text=response if isinstance(response, str) else None,
                metadata=metadata,
                key={name: record[name] for name in KEY_FIELDS if name in record},
            )
    else:
        raise ScituneError(f"{path}: expected the MathVista output .json (pid -> record) or predictions .jsonl")
    if not predictions:
        raise ScituneError(f"{path}: no predictions")
    return predictions
