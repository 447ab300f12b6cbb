"""Figure numbers in PDF text: caption labels ("Figure 3:", "Fig. 3.", "FIG. 3.", "Figure S1.",
"Figure A.1:") and references in body sentences ("Fig. 2(b)", "Figures 2 and 3", "Figs. 2-4",
"figure 5"). Mentions attach to a
figure by the number they name, never by where they sit on the page."""

from __future__ import annotations

import re

from scitune.data.ingest.text import sentences

_NUMBER = r"(?:[A-Z]\.?)?\d+(?:\.\d+)?"  # 3, 3.1, S1 (supplement), A1 / A.1 (appendix)
# the label ends in a colon, period, bar or dash, or (Springer's "Fig. 1 Caption") in a space and a
# capital: "Figure 2 shows" opens a sentence of body text, not a caption
CAPTION = re.compile(rf"^\s*(?:Figure|FIGURE|Fig\.?|FIG\.?)\s*({_NUMBER})(?:\s*[:.|\u2013\u2014-]\s*|\s+(?=[A-Z]))")
TABLE_CAPTION = re.compile(rf"^\s*(?:Table|TABLE)\s*({_NUMBER})(?:\s*[:.|\u2013\u2014-]\s*|\s+(?=[A-Z]))")
_ITEM = rf"{_NUMBER}[a-z]?(?:\s*\([a-z](?:[,\u2013-][a-z])*\))?"
FIGURE_REF = re.compile(
    rf"\b(?:Figures?|FIGURES?|figures?|Figs?\.?|FIGS?\.?|figs?\.)\s*({_ITEM}(?:\s*(?:,|and|&|to|\u2013|\u2014|-)\s*{_ITEM})*)")
_RANGE = re.compile(rf"({_NUMBER})[a-z]?(?:\s*\([^)]*\))?\s*(?:\u2013|\u2014|-|to)\s*({_NUMBER})")
OTHER_FIGURES = re.compile(r"(?:Supplementary|Suppl\.|Extended Data|Appendix)\s*$", re.IGNORECASE)
MAX_RANGE = 50  # "Figs. 2-4" expands; a range longer than this is a typo or not a figure range


def referenced_numbers(sentence: str) -> set[str]:
    """The figure numbers a sentence cites, ranges expanded ("Figs. S2-S4" -> S2, S3, S4)."""
    numbers: set[str] = set()
    for match in FIGURE_REF.finditer(sentence):
        if OTHER_FIGURES.search(sentence[: match.start()]):
            continue  # "Supplementary Fig. 3" is not this paper's Figure 3
        refs = match.group(1)
        numbers.update(re.findall(_NUMBER, refs))
        for start, end in _RANGE.findall(refs):
            prefix = re.match(r"[A-Z]?\.?", start).group()
            a, b = start[len(prefix):], end[len(prefix):] if end.startswith(prefix) else ""
            if a.isdigit() and b.isdigit() and 0 < int(b) - int(a) <= MAX_RANGE:
                numbers.update(f"{prefix}{n}" for n in range(int(a), int(b) + 1))
    return numbers


def mentions_by_number(paragraphs: list[str]) -> dict[str, list[tuple[int, list[str]]]]:
    """For each cited figure number, the paragraphs (by index, in order) that cite it and the
    citing sentences of each: one pass over the sentences, not figures x paragraphs."""
    found: dict[str, list[tuple[int, list[str]]]] = {}
    for index, paragraph in enumerate(paragraphs):
        for sentence in sentences(paragraph):
            for number in referenced_numbers(sentence):
                hits = found.setdefault(number, [])
                if not hits or hits[-1][0] != index:
                    hits.append((index, []))
                hits[-1][1].append(sentence)
    return found
