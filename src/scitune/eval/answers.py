"""Deterministic answer parsing for multiple-choice outputs.

A model's text is turned into an option index by fixed rules, never by chance:

1. a bare letter: the whole text is one option letter, optionally wrapped or followed by
   punctuation (``B``, ``B.``, ``(B)``, ``B)``);
2. the text opens with an option as the prompt lists it (``A. hyperbole``), LLaVA-1.5's form;
3. ``The answer is X`` (the ScienceQA / LLaVA chain-of-thought form);
4. ``ANSWER: X`` or ``Answer: X``.

Rules are tried in that order; the first rule that matches decides. Within a rule, every match
must name the same letter: two different letters ("The answer is A ... The answer is C") are
ambiguous and the parse fails. A letter outside the question's options fails too. A failure is
`None`: the caller scores it wrong and counts it (the code this replaces picked a random option).
"""

from __future__ import annotations

import re

from scitune.data.sample import OPTION_LETTERS

LETTERS = OPTION_LETTERS

_BARE = re.compile(r"^\s*[\(\[]?\s*([A-Z])\s*[\)\]]?\s*[.:]?\s*$")
_OPTION_FIRST = re.compile(r"^\s*([A-Z])\.\s")
_THE_ANSWER_IS = re.compile(r"The answer is:?\s*\(?([A-Z])\b")
_ANSWER_COLON = re.compile(r"\b(?i:answer)\s*:\s*\(?([A-Z])\b")


def letter(index: int) -> str:
    """0 -> "A", 1 -> "B", ..."""
    if not 0 <= index < len(LETTERS):
        raise ValueError(f"option index {index} has no letter")
    return LETTERS[index]


def letter_index(value: str) -> int:
    """ "A" -> 0, "B" -> 1, ..."""
    if len(value) != 1 or value not in LETTERS:
        raise ValueError(f"{value!r} is not an option letter")
    return LETTERS.index(value)


def parse_answer(text: str, num_options: int) -> int | None:
    """The option index that `text` names, or None when it names none, several, or one out of range."""
    if not isinstance(text, str):
        return None
    for pattern in (_BARE, _OPTION_FIRST, _THE_ANSWER_IS, _ANSWER_COLON):
        found = set(pattern.findall(text))
        if not found:
            continue
        if len(found) > 1:
            return None
        index = LETTERS.index(found.pop())
        return index if index < num_options else None
    return None
