"""MathVista (testmini) scoring, by the MathVista authors' rules, with their scores layout.

A MathVista problem is `multi_choice` (answer_type `text`: the answer is one of `choices`) or
`free_form` (answer_type `integer`, `float` with a `precision` in decimals, or `list`). Scoring
has two steps:

1. **Extraction**: the answer, as a short string, from the model's response. The authors ask GPT
   for it and store it as `extraction` in their output file; that stored extraction is used as
   is. Where there is none (a record with only a `response`, or our own predictions JSONL,
   `{question_id, text}` per line) the answer is extracted by fixed rules, see `extract_answer`.
   This is not the authors' extraction (no GPT here): numbers written as words beyond twenty,
   fractions, or answers given only in the middle of a long response are missed, and such a
   miss is scored wrong. Rule extraction never guesses: no letter or choice named (or several
   named) is a parse failure.
2. **Normalisation and comparison** (the authors' rules, `normalize_extraction`): for
   multi_choice, a letter in parentheses, "(B) ...", stands for its letter; a letter A, B, ...
   within the choices becomes that choice's text; any other extraction becomes the choice at
   the smallest Levenshtein distance (the first on a tie). integer: `str(int(float(x)))`;
   float: `str(round(float(x), precision))`; list: the extraction as a string. Something that
   does not convert is None and scored wrong (a parse failure). The normalised prediction is
   right when it equals the answer string exactly. An empty extraction is a parse failure here
   (the authors' scorer maps it to the nearest choice unless told to ignore empty ones; there
   are none in their LLaVA-LLaMA-2-13B file).

Units are not compared: the answer is the bare value and the extraction step gives the bare
value (rule extraction reads the number, leaving "cm", "years", "%" aside).

`scores` follows the layout of the authors' scores JSON: `average` (accuracy as
`str(round(acc, 2))`), then for question_type, answer_type and the metadata fields language,
source, category, task, context, grade and skills (a problem counts once in each of its skills)
one entry per value, `{accuracy: "12.34", correct, total}`, ordered by accuracy, highest first
(ties in the order the values first appear).

The answer key (types, answer, choices, precision) comes from the problems file; an output
record that states any of them differently is an error (made on another release). The groups
come from an output record's own `metadata` where it has one, as the authors score: their
LLaVA-LLaMA-2-13B file carries an older testmini's metadata (grade "daily life", since renamed
"not applicable", and other skills for 359 problems), and its published per-group scores count
by that. That file's stored `prediction`s also show integers read as `int(x)` (a decimal
extraction gave None) where the rule above truncates: 4 records differ, all wrong either way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from scitune.errors import ScituneError
from scitune.io.atomic import write_json, write_jsonl
from scitune.eval.tasks.mathvista.extract import extract_answer, normalize_extraction
from scitune.eval.tasks.mathvista.records import EXTRACTION_MODES, GROUP_FIELDS, Prediction, Problem, read_mathvista_predictions, read_problems


@dataclass(frozen=True)
class ScoredItem:
    pid: str
    extracted_by: str  # "given" (the file's extraction) or "rules"
    extraction: str | None  # what was extracted (None: nothing found)
    prediction: str | None  # the normalised answer compared with the answer (None: parse failure)
    answer: str
    correct: bool

    def to_json(self) -> dict:
        return {
            "pid": self.pid,
            "extracted_by": self.extracted_by,
            "extraction": self.extraction,
            "prediction": self.prediction,
            "answer": self.answer,
            "true_false": self.correct,
        }


@dataclass
class MathVistaResult:
    items: list[ScoredItem]
    scores: dict
    # problems grouped by the predictions file's own metadata where it differs from the problems file's
    regrouped: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.items)

    @property
    def correct(self) -> int:
        return sum(item.correct for item in self.items)

    @property
    def accuracy(self) -> float:
        return 100.0 * self.correct / self.count if self.items else 0.0

    @property
    def failures(self) -> list[ScoredItem]:
        return [item for item in self.items if item.prediction is None]

    def metrics(self) -> dict:
        """The authors' scores layout (what metrics.json holds)."""
        return self.scores


def _accuracy_text(correct: int, total: int) -> str:
    return f"{100.0 * correct / total:.2f}"


def group_scores(groups: Mapping[str, Mapping[str, tuple[str, ...]]], correct: Mapping[str, bool]) -> dict:
    """The authors' scores layout for the problems in `correct` (pid -> right or wrong);
    `groups`: pid -> field -> the problem's value(s) of that field (`Problem.groups`)."""
    total = len(correct)
    right = sum(bool(v) for v in correct.values())
    scores: dict = {"average": {"accuracy": str(round(100.0 * right / total, 2)), "correct": right, "total": total}}
    for name in GROUP_FIELDS:
        counts: dict[str, list[int]] = {}
        for pid, ok in correct.items():
            for value in groups[pid][name]:
                tally = counts.setdefault(value, [0, 0])
                tally[0] += bool(ok)
                tally[1] += 1
        entries = {v: {"accuracy": _accuracy_text(c, t), "correct": c, "total": t} for v, (c, t) in counts.items()}
        scores[name] = dict(sorted(entries.items(), key=lambda kv: float(kv[1]["accuracy"]), reverse=True))
    return scores


def score(
    problems: Mapping[str, Problem],
    predictions: Mapping[str, Prediction],
    extraction: str = "auto",
    source: str = "predictions",
) -> MathVistaResult:
    """Scores every problem. `extraction`: "auto" uses a stored extraction where there is one and
    the rules otherwise; "rules" extracts from the response text even where one is stored."""
    if extraction not in EXTRACTION_MODES:
        raise ScituneError(f"extraction must be one of {', '.join(EXTRACTION_MODES)}, got {extraction!r}")
    unknown = [pid for pid in predictions if pid not in problems]
    if unknown:
        raise ScituneError(f"{source}: {len(unknown)} prediction(s) for unknown problems: {_some(unknown)}")
    missing = [pid for pid in problems if pid not in predictions]
    if missing:
        raise ScituneError(f"{source}: no prediction for {len(missing)} problem(s): {_some(missing)}")
    items = []
    groups: dict[str, Mapping[str, tuple[str, ...]]] = {}
    regrouped = []
    for pid, problem in problems.items():
        prediction = predictions[pid]
        differs = _key_mismatch(problem, prediction.key)
        if differs:
            raise ScituneError(
                f"{source}: prediction {pid} states {differs} {prediction.key[differs]!r}, the problems file "
                f"{getattr(problem, differs)!r}: the predictions were made on another MathVista release"
            )
        groups[pid] = {**problem.groups, **(prediction.metadata or {})}
        if groups[pid] != problem.groups:
            regrouped.append(pid)
        if extraction == "auto" and prediction.extraction is not None:
            extracted_by, extracted = "given", prediction.extraction
            normalized = normalize_extraction(extracted, problem)
            if not isinstance(extracted, str):
                extracted = json.dumps(extracted)
        else:
            if prediction.text is None:
                raise ScituneError(f"{source}: prediction {pid} has no response text to extract an answer from")
            extracted_by, extracted = "rules", extract_answer(prediction.text, problem)
            normalized = normalize_extraction(extracted, problem)
        items.append(ScoredItem(pid, extracted_by, extracted, normalized, problem.answer, normalized == problem.answer))
    return MathVistaResult(items, group_scores(groups, {item.pid: item.correct for item in items}), regrouped)


def _some(pids: list[str]) -> str:
    return ", ".join(pids[:5]) + (f" (+{len(pids) - 5} more)" if len(pids) > 5 else "")


def _key_mismatch(problem: Problem, stated: Mapping[str, object]) -> str | None:
    """The first answer-key field a prediction record states differently from the problem, if any."""
    for name, value in stated.items():
        if name == "precision":
            same = problem.answer_type != "float" or (
                isinstance(value, (int, float)) and not isinstance(value, bool) and value == problem.precision
            )
        elif name == "choices":
            same = problem.choices is None or (isinstance(value, list) and tuple(value) == problem.choices)
        else:
            same = value == getattr(problem, name)
        if not same:
            return name
    return None


def score_files(problems_path: str | Path, predictions_path: str | Path, extraction: str = "auto") -> MathVistaResult:
    """Reads both files and scores them (see `score`)."""
    problems = read_problems(problems_path)
    return score(problems, read_mathvista_predictions(predictions_path), extraction, source=str(predictions_path))


# ----------------------------------------------------------------------------- writing


def write_results(result: MathVistaResult, out_dir: str | Path) -> Path:
    """metrics.json (the authors' scores layout) and scored.jsonl (one line per problem: the
    extraction, the normalised prediction, the answer, true_false), each written atomically."""
    out = Path(out_dir)
    write_json(out / "metrics.json", result.metrics())
    write_jsonl(out / "scored.jsonl", (item.to_json() for item in result.items))
    return out / "metrics.json"
