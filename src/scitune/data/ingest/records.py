"""What a paper reader returns: its figures (image, caption, mentions, provenance) and what it
could not pair, so the writer and the report never guess."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Figure:
    number: str  # the figure's number as printed ("3"), or "" when the paper does not number it
    caption: str  # as printed: "Figure 3: ..."
    caption_no_index: str  # without the "Figure 3:" label
    png: bytes  # the figure as an RGB PNG
    paragraphs: list[str] = field(default_factory=list)  # whole paragraphs that refer to the figure
    mentions: list[list[str]] = field(default_factory=list)  # per paragraph: the sentences that refer to it
    ocr: list[str] = field(default_factory=list)  # text drawn inside the figure (PDF text layer)
    provenance: dict[str, Any] = field(default_factory=dict)  # file, \label or page and box, graphics files
    caption_latex: str = ""  # LaTeX sources: the caption as LaTeX (the source's own macros expanded)


@dataclass
class Paper:
    name: str  # unique, file-name safe: the image ids start with it
    source: str  # the input path as given
    kind: str  # "latex" or "pdf"
    figures: list[Figure] = field(default_factory=list)
    unpaired: list[dict[str, Any]] = field(default_factory=list)  # {what, where, reason}: not written
    licence: str | None = None

    def skip(self, what: str, where: str, reason: str) -> None:
        self.unpaired.append({"what": what, "where": where, "reason": reason})
