"""Corpus BLEU-1..4, in two conventions, from our own n-gram counts.

BLEU over a corpus sums, for each n, the clipped n-gram matches and the hypothesis n-gram counts
over all sentences, takes the weighted geometric mean of the precisions, and multiplies by the
brevity penalty exp(1 - r/c) when the hypotheses' total length c is below the reference length r
(for each hypothesis, the reference length closest to its own, ties to the shorter).
Implementations differ in two details, which is all that separates the numbers in the wild:

- ``coco`` (pycocoevalcap's `Bleu`, used by COCO-caption style evaluations, LLaVA and most
  captioning papers): BLEU-n uses uniform weights 1/n; a hypothesis shorter than n adds 0 to the
  n-gram count.
- ``scicap`` (NLTK's `corpus_bleu` as the SciCap authors called it): each sentence's n-gram
  count is floored at 1 (so a hypothesis shorter than n still adds 1), and BLEU-3 is computed
  with weights (0.33, 0.33, 0.33), not 1/3.

Finding (the conformance test checks it): on the SciCap authors' file
`rule_based_captions_with_bleu.json` (21,934 captions, already lower-cased and tokenised, so the
tokenisation is a plain whitespace split), the ``scicap`` convention reproduces their stored
BLEU-1..4 = 0.2210 / 0.0949 / 0.0458 / 0.0228 exactly (to the last float digit). The ``coco``
convention, and pycocoevalcap itself, give 0.2210 / 0.0949 / 0.0444 / 0.0228: BLEU-1 and BLEU-2
agree, BLEU-3 differs by the 0.33 weights and BLEU-4 in the fifth decimal by the floor.
No smoothing is applied in either (neither reference applies any); a precision of 0 gives BLEU 0.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

CONVENTIONS = ("coco", "scicap")

_WEIGHTS = {
    "coco": {1: (1.0,), 2: (0.5, 0.5), 3: (1 / 3,) * 3, 4: (0.25,) * 4},
    "scicap": {1: (1.0,), 2: (0.5, 0.5), 3: (0.33,) * 3, 4: (0.25,) * 4},
}


@dataclass(frozen=True)
class BleuCounts:
    """Corpus sums: clipped matches and hypothesis n-gram counts for n = 1..4, and lengths."""

    matches: tuple[int, ...]
    totals: tuple[int, ...]
    hypothesis_length: int
    reference_length: int


def _ngrams(tokens: Sequence[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def bleu_counts(
    hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[Sequence[str]]], convention: str = "coco"
) -> BleuCounts:
    """Counts over tokenised hypotheses, each with one or more tokenised references."""
    if convention not in CONVENTIONS:
        raise ValueError(f"BLEU convention must be one of {CONVENTIONS}, got {convention!r}")
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} reference sets")
    matches = [0] * 4
    totals = [0] * 4
    hyp_len = ref_len = 0
    for hyp, refs in zip(hypotheses, references):
        if not refs:
            raise ValueError("a hypothesis has no reference")
        hyp_len += len(hyp)
        ref_len += min((abs(len(r) - len(hyp)), len(r)) for r in refs)[1]
        for n in range(1, 5):
            hyp_ngrams = _ngrams(hyp, n)
            max_ref: Counter = Counter()
            for ref in refs:
                max_ref |= _ngrams(ref, n)
            matches[n - 1] += sum(min(count, max_ref[g]) for g, count in hyp_ngrams.items())
            count = max(len(hyp) - n + 1, 0)
            totals[n - 1] += max(count, 1) if convention == "scicap" else count
    return BleuCounts(tuple(matches), tuple(totals), hyp_len, ref_len)


def bleu_from_counts(counts: BleuCounts, convention: str = "coco") -> dict[str, float]:
    """{"BLEU-1": ..., "BLEU-4": ...} in [0, 1]."""
    c, r = counts.hypothesis_length, counts.reference_length
    if c == 0:
        return {f"BLEU-{n}": 0.0 for n in range(1, 5)}
    penalty = 1.0 if c > r else math.exp(1 - r / c)
    scores = {}
    for n in range(1, 5):
        precisions = [m / t if t else 0.0 for m, t in zip(counts.matches[:n], counts.totals[:n])]
        if min(precisions) == 0.0:
            scores[f"BLEU-{n}"] = 0.0
            continue
        weights = _WEIGHTS[convention][n]
        scores[f"BLEU-{n}"] = penalty * math.exp(sum(w * math.log(p) for w, p in zip(weights, precisions)))
    return scores


def corpus_bleu(
    hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[Sequence[str]]], convention: str = "coco"
) -> dict[str, float]:
    """Corpus BLEU-1..4 of tokenised hypotheses against their tokenised references."""
    return bleu_from_counts(bleu_counts(hypotheses, references, convention), convention)
