"""Plain-text helpers shared by the LaTeX and PDF readers: whitespace and punctuation clean-up
after markup is gone, and sentence splitting that knows scientific abbreviations."""

from __future__ import annotations

import re

# Words after which a period does not end a sentence ("Fig. 3", "et al. (2020)", "e.g. the").
ABBREVIATIONS = frozenset({"fig", "figs", "eq", "eqs", "sec", "secs", "tab", "ref", "refs", "e.g", "i.e", "al",
                           "cf", "vs", "resp", "approx", "no", "vol", "pp", "dr", "prof", "mr", "ms", "st", "etc"})
_CONTROLS = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")
_BREAK = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[A-Z0-9(\[$\"'\u2018\u201c])")


def clean_text(text: str) -> str:
    """One line of text: no-break spaces and runs of blanks become one space, no blank before
    punctuation, empty brackets (what a removed citation leaves) gone, control characters (NUL,
    escape, DEL ...) removed."""
    text = _CONTROLS.sub("", text)
    text = text.replace("\u00a0", " ").replace("\u2009", " ").replace("\u202f", " ")
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\(\s*\)|\[\s*\]", "", text)
    text = re.sub(r"\s+([,.;:!?)\]])", r"\1", text)
    text = re.sub(r"([(\[])\s+", r"\1", text)
    text = re.sub(r"\s{2,}", " ", text)
    return text.strip()


def figure_text(lines, limit: int) -> list[str]:
    """A figure's text layer as SciCap's OCR field: the cleaned lines that hold a letter or a
    digit, at most `limit` of them. Plots drawn with font glyphs as markers (R's scatter points,
    a legend's bullets) would otherwise give one line per point: tens of thousands of "●"."""
    out: list[str] = []
    for line in lines:
        line = clean_text(line)
        if any(c.isalnum() for c in line):
            out.append(line)
            if len(out) >= limit:
                break
    return out


def sentences(text: str) -> list[str]:
    """The sentences of a paragraph: split after . ! ? before a capital, a digit or a bracket,
    except after an abbreviation or a single initial."""
    out, start = [], 0
    for match in _BREAK.finditer(text):
        before = text[start : match.start()].rstrip(".!?\"')]")
        word = before.split()[-1].lower() if before.split() else ""
        word = word.lstrip("([\"'")
        if word in ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
            continue
        piece = text[start : match.start()].strip()
        if piece:
            out.append(piece)
        start = match.end()
    tail = text[start:].strip()
    if tail:
        out.append(tail)
    return out
