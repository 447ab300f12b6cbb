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
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from scitune.errors import ScituneError
from scitune.eval.answers import LETTERS, parse_answer
from scitune.io.atomic import write_json, write_jsonl
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


# ----------------------------------------------------------------------------- the authors' normalisation

_PAREN_LETTER = re.compile(r"\(([a-zA-Z])\)")


def nearest_choice(text: str, choices: tuple[str, ...] | list[str]) -> str:
    """The choice at the smallest Levenshtein distance from `text`; the first one on a tie."""
    try:
        from rapidfuzz.distance import Levenshtein
    except ImportError:
        raise ScituneError("MathVista scoring needs rapidfuzz: pip install 'scitune[mathvista]'") from None
    distances = [Levenshtein.distance(text, choice) for choice in choices]
    return choices[distances.index(min(distances))]


def _list_string(values: list) -> str | None:
    """A JSON list of numbers written as Python writes it ("[1, 2.5]"), as MathVista's answers are."""
    parts = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        parts.append(repr(value))
    return "[" + ", ".join(parts) + "]"


def normalize_extraction(extraction, problem: Problem) -> str | None:
    """The authors' normalisation of an extracted answer; None when it does not convert."""
    if extraction is None:
        return None
    if isinstance(extraction, list):
        extraction = _list_string(extraction)
        if extraction is None:
            return None
    text = extraction.strip() if isinstance(extraction, str) else str(extraction)
    if not text:
        return None  # nothing extracted: wrong, never the nearest choice to ""
    if problem.question_type == "multi_choice":
        choices = problem.choices
        found = _PAREN_LETTER.search(text)
        if found:
            text = found.group(1).upper()
        letters = LETTERS[: len(choices)]
        if len(text) == 1 and text in letters:
            return choices[letters.index(text)]
        return nearest_choice(text[:MAX_EXTRACTION_CHARS], choices)
    if problem.answer_type == "integer":
        try:
            return str(int(float(text)))
        except (ValueError, OverflowError):
            return None
    if problem.answer_type == "float":
        try:
            value = float(text)
        except ValueError:
            return None
        return str(round(value, problem.precision)) if math.isfinite(value) else None
    return text  # list (and free-form text): the string as extracted


# ----------------------------------------------------------------------------- rule extraction

# "the answer is", "correct option letter is", "Answer:", "final answer:" (the last one counts;
# the stated answer is what follows on the same line)
_MARKER = re.compile(
    r"\b(?:answer|option|choice)(?:\s+letter)?(?:\s+(?:is|would be|should be|will be)\b[ \t]*:?|[ \t]*:)[ \t]*",
    re.IGNORECASE,
)
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
_SENTENCE_END = re.compile(r"\.(?=\s|$)")
_NUMBER = re.compile(r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.\d+)?|(?<![\w.])-?\.\d+")
_LIST = re.compile(r"\[([^\[\]]*)\]")
_LEADING_LETTER = re.compile(r"^(?:(?i:option|choice|letter)\s+)?\(?([A-Z])(?:[)\].,:;]|\s*$)")
_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty"
).split()
_NUMBER_WORD = re.compile(r"\b(" + "|".join(_WORDS) + r")\b", re.IGNORECASE)


def answer_segment(text: str) -> str | None:
    """The stated final answer: the content of the last \\boxed{...}, else the rest of the
    sentence after the last "answer is" / "option is" / "Answer:"; None when there is neither."""
    boxed = _BOXED.findall(text)
    if boxed:
        return boxed[-1].strip()
    markers = list(_MARKER.finditer(text))
    if not markers:
        return None
    rest = text[markers[-1].end() :].split("\n", 1)[0]
    end = _SENTENCE_END.search(rest)
    return (rest[: end.start()] if end else rest).strip()


def _choice_index(text: str, choices: tuple[str, ...], segment: bool) -> int | None:
    """The choice `text` names: a letter (bare, "(B)", "B." first, "The answer is B"), else the
    one choice whose text it contains (a choice inside a longer named choice does not count)."""
    count = len(choices)
    index = parse_answer(text, count)
    if index is not None:
        return index
    letters = {LETTERS.index(x) for x in _PAREN_LETTER.findall(text) if x in LETTERS[:count]}
    if len(letters) == 1:
        return letters.pop()
    if segment:
        lead = _LEADING_LETTER.match(text)
        if lead and LETTERS.index(lead.group(1)) < count:
            return LETTERS.index(lead.group(1))
    found = []
    for i, choice in enumerate(choices):
        if choice.strip() and choice not in (choices[j] for j in found):
            # whole words and whole numbers only: "3" is not in "13", "3.5" or "three"
            pattern = rf"(?<![A-Za-z0-9])(?<!\d\.){re.escape(choice.strip())}(?![A-Za-z0-9])(?!\.\d)"
            if re.search(pattern, text, re.IGNORECASE):
                found.append(i)
    named = [i for i in found if not any(i != j and choices[i].lower() in choices[j].lower() for j in found)]
    return named[0] if len(named) == 1 else None


def _to_number(token: str) -> str:
    return token.replace(",", "")


def _number_in(text: str, last: bool) -> str | None:
    numbers = _NUMBER.findall(text)
    if numbers:
        return _to_number(numbers[-1] if last else numbers[0])
    words = _NUMBER_WORD.findall(text)
    if words:
        return str(_WORDS.index((words[-1] if last else words[0]).lower()))
    return None


def _list_in(text: str) -> str | None:
    for inside in reversed(_LIST.findall(text)):
        items = [item.strip() for item in inside.split(",")]
        if items and all(_NUMBER.fullmatch(item) for item in items):
            return "[" + ", ".join(items) + "]"
    return None


def extract_answer(text: str, problem: Problem) -> str | None:
    """A deterministic stand-in for the authors' GPT extraction (see the module docstring).

    The stated answer (`answer_segment`) is read first, the whole response second:
    multi_choice: a choice letter or one choice's text (returned as the letter);
    integer / float: the first number of the stated answer, else the last number of the response
    (digits, with thousands commas; else a number word up to twenty);
    list: a bracketed list of numbers; text: the stated answer.
    None when nothing is found: scored wrong, never guessed.
    """
    text = text[-MAX_TEXT_CHARS:]
    segment = answer_segment(text)
    if problem.question_type == "multi_choice":
        for part, is_segment in ((segment, True), (text, False)):
            if part:
                index = _choice_index(part, problem.choices, is_segment)
                if index is not None:
                    return LETTERS[index]
        return None
    if problem.answer_type in ("integer", "float"):
        return (_number_in(segment, last=False) if segment else None) or _number_in(text, last=True)
    if problem.answer_type == "list":
        return (_list_in(segment) if segment else None) or _list_in(text)
    return segment or (text.strip() or None)


# ----------------------------------------------------------------------------- scoring


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
