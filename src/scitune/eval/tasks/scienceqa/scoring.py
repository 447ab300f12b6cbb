"""ScienceQA scoring: the answer key, every prediction format, and accuracy by category.

Two sets of category columns are computed, both named in `metrics.json`:

- ``official`` (ScienceQA's own scorer): NAT / SOC / LAN by subject; TXT = the problem has a
  text context (a non-empty hint); IMG = it has an image; NO = neither; G1-6 / G7-12 = accuracy
  pooled over the problems of grades 1-6 / 7-12; Avg = all problems.
- ``scitune`` (the columns of the SciTune paper's table): NAT / SOC / LAN and IMG as above; TXT =
  the problem has no image; NO = the hint is empty; G1-6 / G7-12 = the unweighted mean of the
  per-grade accuracies of grades 1-6 / 7-12; Avg = all problems.

A column whose metadata is unknown for any scored problem (subject and grade are absent from
LLaVA's answer-key file), or that holds no problem, is None (printed "n/a"), never 0.

The answer key comes from ScienceQA's `problems.json` (one split) or from a LLaVA conversation
file such as `llava_test_CQM-A.json`, whose `image` key marks IMG problems and whose `Context:`
line marks TXT ones (LLaVA-1's layouts, which write "Context: N/A" for none, are read too). Predictions come as our (or LLaVA's) JSONL (`question_id`, `text`; the text
is parsed by `scitune.eval.answers.parse_answer`), or as ScienceQA's results JSON (`results`:
pid -> option index, as a dict or a list of `[pid, index]`; or its raw `outputs` text, parsed).
A prediction that does not parse, or names an option the problem lacks, is scored wrong, counted
in `parse_failures` and listed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from scitune.errors import ScituneError
from scitune.eval.answers import LETTERS, parse_answer
from scitune.eval.predictions import read_predictions

COLUMNS = ("NAT", "SOC", "LAN", "TXT", "IMG", "NO", "G1-6", "G7-12", "Avg")
SUBJECTS = {"NAT": "natural science", "SOC": "social science", "LAN": "language science"}
PREDICTION_SOURCES = ("auto", "results", "outputs")

_GRADE = re.compile(r"^grade(\d+)$")


@dataclass(frozen=True)
class KeyedProblem:
    """What scoring needs to know about one problem."""

    pid: str
    answer: int
    num_options: int
    has_image: bool
    has_context: bool
    subject: str | None = None  # "natural science" | "social science" | "language science"
    grade: int | None = None  # 1..12


# ----------------------------------------------------------------------------- the answer key


def _grade_number(value, pid: str) -> int:
    match = _GRADE.match(str(value))
    if not match:
        raise ScituneError(f"problem {pid}: grade {value!r} is not of the form gradeN")
    return int(match.group(1))


def keyed_from_problems(problems: Iterable[dict], split: str | None = None) -> dict[str, KeyedProblem]:
    """Answer key from ScienceQA problem records (as `scitune.data.scienceqa.read_problems`
    returns them: the original fields plus `id`), optionally only those of one split."""
    key: dict[str, KeyedProblem] = {}
    for record in problems:
        pid = str(record.get("id"))
        if split is not None and record.get("split") != split:
            continue
        try:
            choices = record["choices"]
            answer = int(record["answer"])
        except (KeyError, TypeError, ValueError):
            raise ScituneError(f"problem {pid}: needs `choices` and an integer `answer`") from None
        if not 0 <= answer < len(choices):
            raise ScituneError(f"problem {pid}: answer {answer} outside its {len(choices)} choices")
        key[pid] = KeyedProblem(
            pid=pid,
            answer=answer,
            num_options=len(choices),
            has_image=bool(record.get("image")),
            has_context=bool(record.get("hint")),
            subject=record.get("subject") or None,
            grade=_grade_number(record["grade"], pid) if record.get("grade") else None,
        )
    if not key:
        raise ScituneError(f"no problems{' in split ' + split if split else ''}")
    return key


_INLINE_OPTION = re.compile(r"\(([A-Z])\) ")


def option_count(prompt: str) -> int:
    """How many options a prompt lists: lines "A. ...", "B. ...", ... from its last "A. " line on
    (an option may run over several lines, as letter closings do: LLaVA-1.5's CQM-A layout), or
    "(A) ... (B) ..." after "Options:" (LLaVA-1's layouts)."""
    lines = prompt.rstrip().split("\n")
    starts = [i for i, line in enumerate(lines) if line.startswith("A. ")]
    count = 0
    if starts:
        for line in lines[starts[-1] :]:
            if count < len(LETTERS) and line.startswith(f"{LETTERS[count]}. "):
                count += 1
        return count
    at = prompt.rfind("Options:")
    if at < 0:
        return 0
    region = prompt[at:].split("\nBECAUSE:")[0]  # options may run over lines; a lecture may follow
    for found in _INLINE_OPTION.findall(region):
        if count < len(LETTERS) and found == LETTERS[count]:
            count += 1
    return count


def _has_context(prompt: str) -> bool:
    # LLaVA-1's layouts write "Context: N/A" when there is none; LLaVA-1.5's omit the line.
    return any(line.startswith("Context:") and line[8:].strip() not in ("", "N/A") for line in prompt.split("\n"))


def keyed_from_conversations(records: Iterable[dict], source: str = "answer key") -> dict[str, KeyedProblem]:
    """Answer key from LLaVA conversation records (e.g. llava_test_CQM-A.json)."""
    key: dict[str, KeyedProblem] = {}
    for number, record in enumerate(records):
        try:
            pid = str(record["id"])
            human = next(turn["value"] for turn in record["conversations"] if turn["from"] == "human")
            target = next(turn["value"] for turn in record["conversations"] if turn["from"] == "gpt")
        except (KeyError, StopIteration, TypeError):
            raise ScituneError(f"{source}: record {number} needs `id` and human and gpt turns") from None
        num_options = option_count(human)
        if num_options < 2:
            raise ScituneError(f"{source}: record {pid}: the prompt lists no options (A. ... or (A) ...)")
        answer = parse_answer(target, num_options)
        if answer is None:
            raise ScituneError(f"{source}: record {pid}: cannot read the answer letter from {target[-40:]!r}")
        key[pid] = KeyedProblem(
            pid=pid,
            answer=answer,
            num_options=num_options,
            has_image=bool(record.get("image")),
            has_context=_has_context(human),
        )
    if not key:
        raise ScituneError(f"{source}: no records")
    return key


def read_answer_key(path: str | Path) -> dict[str, KeyedProblem]:
    """Answer key from a LLaVA conversation file (JSON list or JSONL), e.g. llava_test_CQM-A.json."""
    from scitune.data.sample import read_samples

    return keyed_from_conversations(read_samples(path), source=str(path))


# ----------------------------------------------------------------------------- predictions


def read_scienceqa_predictions(path: str | Path, source: str = "auto") -> dict[str, int | str]:
    """pid -> a stored option index (int) or a text to parse (str), from any supported format.

    JSONL (ours, LLaVA's): `text` per `question_id`. ScienceQA results JSON: `results` (dict or
    list of [pid, index]) when `source` is "auto" or "results"; its raw `outputs` when `source`
    is "outputs", or when "auto" and the file has no `results`.
    """
    if source not in PREDICTION_SOURCES:
        raise ScituneError(f"prediction source must be one of {', '.join(PREDICTION_SOURCES)}, got {source!r}")
    path = Path(path)
    data = None
    if path.suffix != ".jsonl":
        try:
            with path.open(encoding="utf-8") as handle:
                data = json.load(handle)
        except OSError as err:
            raise ScituneError(f"{path}: cannot read ({err.strerror})") from None
        except json.JSONDecodeError:
            data = None  # several JSON lines: JSONL
    if isinstance(data, dict) and "question_id" in data:
        data = [data]  # a one-line JSONL file named .json
    if data is None or (isinstance(data, list) and all(isinstance(row, dict) for row in data)):
        if source != "auto":
            raise ScituneError(f"{path}: --source {source} applies to ScienceQA results JSON; this is JSONL")
        rows = read_predictions(path) if data is None else data
        for number, row in enumerate(rows):
            if "question_id" not in row or not isinstance(row.get("text"), str):
                raise ScituneError(f"{path}: prediction {number} needs `question_id` and a string `text`")
        return {str(row["question_id"]): row["text"] for row in rows}
    if not isinstance(data, dict) or not ({"results", "outputs"} & set(data)):
        raise ScituneError(f"{path}: expected predictions JSONL or ScienceQA results JSON (`results` / `outputs`)")
    if source == "auto":
        source = "results" if "results" in data else "outputs"
    if source not in data:
        raise ScituneError(f"{path}: has no `{source}`")
    entries = data[source]
    if isinstance(entries, dict):
        pairs = list(entries.items())
    elif isinstance(entries, list) and all(isinstance(p, (list, tuple)) and len(p) == 2 for p in entries):
        pairs = [tuple(p) for p in entries]
    else:
        raise ScituneError(f"{path}: `{source}` must be a dict or a list of [pid, value] pairs")
    out: dict[str, int | str] = {}
    for pid, value in pairs:
        if source == "results":
            if isinstance(value, bool) or not isinstance(value, int):
                raise ScituneError(f"{path}: results[{pid}] must be an option index, got {value!r}")
        elif not isinstance(value, str):
            raise ScituneError(f"{path}: outputs[{pid}] must be text, got {type(value).__name__}")
        out[str(pid)] = value
    return out


# ----------------------------------------------------------------------------- scoring


def _accuracy(values: list[bool]) -> float | None:
    return 100.0 * sum(values) / len(values) if values else None


def _needs(problems: list[KeyedProblem], attribute: str) -> bool:
    return all(getattr(p, attribute) is not None for p in problems)


def _pooled(problems, correct, test: Callable[[KeyedProblem], bool], needs: str | None = None):
    if needs and not _needs(problems, needs):
        return None
    return _accuracy([c for p, c in zip(problems, correct) if test(p)])


def _grade_mean(problems, correct, grades: range):
    if not _needs(problems, "grade"):
        return None
    per_grade = [_accuracy([c for p, c in zip(problems, correct) if p.grade == g]) for g in grades]
    present = [a for a in per_grade if a is not None]
    return sum(present) / len(present) if present else None


def official_columns(problems: list[KeyedProblem], correct: list[bool]) -> dict[str, float | None]:
    columns = {name: _pooled(problems, correct, lambda p, s=s: p.subject == s, "subject") for name, s in SUBJECTS.items()}
    columns["TXT"] = _pooled(problems, correct, lambda p: p.has_context)
    columns["IMG"] = _pooled(problems, correct, lambda p: p.has_image)
    columns["NO"] = _pooled(problems, correct, lambda p: not p.has_context and not p.has_image)
    columns["G1-6"] = _pooled(problems, correct, lambda p: 1 <= p.grade <= 6, "grade")
    columns["G7-12"] = _pooled(problems, correct, lambda p: 7 <= p.grade <= 12, "grade")
    columns["Avg"] = _accuracy(correct)
    return columns


def scitune_columns(problems: list[KeyedProblem], correct: list[bool]) -> dict[str, float | None]:
    columns = {name: _pooled(problems, correct, lambda p, s=s: p.subject == s, "subject") for name, s in SUBJECTS.items()}
    columns["TXT"] = _pooled(problems, correct, lambda p: not p.has_image)
    columns["IMG"] = _pooled(problems, correct, lambda p: p.has_image)
    columns["NO"] = _pooled(problems, correct, lambda p: not p.has_context)
    columns["G1-6"] = _grade_mean(problems, correct, range(1, 7))
    columns["G7-12"] = _grade_mean(problems, correct, range(7, 13))
    columns["Avg"] = _accuracy(correct)
    return columns


@dataclass
class ScienceQAScore:
    """The outcome of scoring: per-problem rows, parse failures, and both sets of columns."""

    rows: list[dict] = field(default_factory=list)  # {question_id, prediction, answer, correct}
    failures: list[dict] = field(default_factory=list)  # {question_id, text}
    official: dict[str, float | None] = field(default_factory=dict)
    scitune: dict[str, float | None] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.rows)

    @property
    def correct(self) -> int:
        return sum(row["correct"] for row in self.rows)

    def metrics(self) -> dict:
        """The `metrics.json` object: count, correct, parse_failures, official{...}, scitune{...} (percent)."""
        return {
            "count": self.count,
            "correct": self.correct,
            "parse_failures": len(self.failures),
            "official": dict(self.official),
            "scitune": dict(self.scitune),
        }


def score(key: Mapping[str, KeyedProblem], predictions: Mapping[str, int | str], source: str = "predictions") -> ScienceQAScore:
    """Scores every problem of `key`; a problem without a prediction is an error, extra predictions are ignored."""
    missing = [pid for pid in key if pid not in predictions]
    if missing:
        raise ScituneError(
            f"{source}: no prediction for {len(missing)} of {len(key)} problems (first: {', '.join(missing[:5])})"
        )
    result = ScienceQAScore()
    problems = list(key.values())
    correct: list[bool] = []
    for problem in problems:
        value = predictions[problem.pid]
        if isinstance(value, str):
            index = parse_answer(value, problem.num_options)
        else:
            index = value if 0 <= value < problem.num_options else None
        if index is None:
            result.failures.append({"question_id": problem.pid, "text": value})
        ok = index == problem.answer
        correct.append(ok)
        result.rows.append({"question_id": problem.pid, "prediction": index, "answer": problem.answer, "correct": ok})
    result.official = official_columns(problems, correct)
    result.scitune = scitune_columns(problems, correct)
    return result
