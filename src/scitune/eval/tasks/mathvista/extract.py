"""MathVista answers from responses: rule extraction where no stored extraction exists, and the
authors' normalisation of an extraction before comparison (see `scoring` for both steps)."""

from __future__ import annotations

import math
import re

from scitune.errors import ScituneError
from scitune.eval.answers import LETTERS, parse_answer
from scitune.eval.tasks.mathvista.records import MAX_EXTRACTION_CHARS, MAX_TEXT_CHARS, Problem


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
