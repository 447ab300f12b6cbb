"""The licence a paper's source states, when it states one: an SPDX identifier or a Creative
Commons licence named in the text (a LICENSE file, a comment, the first page of a PDF)."""

from __future__ import annotations

import re

_SPDX = re.compile(r"SPDX-License-Identifier:\s*([A-Za-z0-9.+-]+)")
_CC = re.compile(
    r"(?:Creative\s+Commons\s+(Attribution(?:[-\s](?:NonCommercial|NoDerivatives|NoDerivs|ShareAlike))*)"
    r"(?:\s+(\d\.\d))?|\bCC[-\s]?(BY(?:[-\s](?:NC|ND|SA)){0,2})(?:[-\s](\d\.\d))?\b|\b(CC0)(?:[-\s](1\.0))?\b)",
    re.IGNORECASE,
)
_WORDS = {"attribution": "BY", "noncommercial": "NC", "noderivatives": "ND", "noderivs": "ND", "sharealike": "SA"}
_NAMED = [(re.compile(r"\bMIT License\b", re.IGNORECASE), "MIT"),
          (re.compile(r"\bApache License,?\s+Version 2\.0", re.IGNORECASE), "Apache-2.0"),
          (re.compile(r"arXiv\.org perpetual,? non-exclusive license", re.IGNORECASE), "arXiv-nonexclusive-1.0")]


def find_licence(texts: list[str]) -> str | None:
    """The first licence found in `texts`, as an SPDX-style id ("CC-BY-4.0", "CC0-1.0", "MIT")."""
    for text in texts:
        text = text[:2_000_000]
        match = _SPDX.search(text)
        if match:
            return match.group(1)
        match = _CC.search(text)
        if match:
            words, version, short, short_version, zero, zero_version = match.groups()
            if zero:
                return f"CC0-{zero_version or '1.0'}"
            if words:
                parts = [_WORDS[w.lower()] for w in re.split(r"[-\s]+", words)]
                return "CC-" + "-".join(parts) + (f"-{version}" if version else "")
            return "CC-" + re.sub(r"[-\s]+", "-", short.upper()) + (f"-{short_version}" if short_version else "")
        for pattern, name in _NAMED:
            if pattern.search(text):
                return name
    return None
