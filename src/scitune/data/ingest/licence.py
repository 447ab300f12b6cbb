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


# arXiv's metadata gives each paper's licence as a URL; `--licence` names them.
LICENCE_NAMES = ("cc-by", "cc-by-sa", "cc-by-nc", "cc-by-nd", "cc-by-nc-sa", "cc-by-nc-nd", "cc0",
                 "arxiv-nonexclusive", "arxiv-assumed", "none", "other")
_CC_URL = re.compile(r"creativecommons\.org/licenses/(by(?:-nc)?(?:-sa|-nd)?)/(\d\.\d)", re.IGNORECASE)


def licence_name(url: str | None) -> str:
    """The short name of a licence URL from arXiv's metadata: cc-by, cc-by-sa, cc-by-nc-sa, cc0,
    arxiv-nonexclusive, arxiv-assumed (1991-2003 papers), none (no URL) or other."""
    if not url:
        return "none"
    match = _CC_URL.search(url)
    if match:
        return "cc-" + match.group(1).lower()
    lower = url.lower()
    if "creativecommons.org/publicdomain/zero/" in lower:
        return "cc0"
    if "arxiv.org/licenses/nonexclusive-distrib/" in lower:
        return "arxiv-nonexclusive"
    if "arxiv.org/licenses/assumed-1991-2003" in lower:
        return "arxiv-assumed"
    return "other"


def licence_id(url: str | None) -> str | None:
    """The licence URL as the SPDX-style id `find_licence` gives ("CC-BY-4.0", "CC0-1.0"), or None."""
    if not url:
        return None
    match = _CC_URL.search(url)
    if match:
        return f"CC-{match.group(1).upper()}-{match.group(2)}"
    name = licence_name(url)
    return {"cc0": "CC0-1.0", "arxiv-nonexclusive": "arXiv-nonexclusive-1.0"}.get(name)
