"""Caption metrics: corpus BLEU-1..4 (ours, `scitune.eval.tasks.captions.bleu`), ROUGE-L and CIDEr
(pycocoevalcap), METEOR (pycocoevalcap's METEOR 1.5 jar, when `java` is on PATH).

Inputs: the SciCap authors' pairs file (`{"hypo": [...], "gold": [...]}`, one reference per
hypothesis, already lower-cased and tokenised), or predictions JSONL (`question_id`, `text`)
with references as LLaVA conversation JSON (the last `gpt` turn of each `id`), a JSON object
(id -> caption or list of captions) or JSONL (`question_id` with `text` or `references`).

Tokenisation: ``whitespace`` splits on spaces (right for pre-tokenised text such as the SciCap
pairs); ``simple`` lower-cases and splits off punctuation, keeping `<unk>`-style tokens and
words with inner hyphens, dots or apostrophes whole (right for raw model output). The metric
that a report names is computed on the same tokens for every scorer.

A metric that cannot run is not reported as 0: it is listed in `skipped` with the reason
(METEOR without Java; ROUGE-L, CIDEr and METEOR without pycocoevalcap installed).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from scitune.errors import ScituneError
from scitune.eval.predictions import read_predictions
from scitune.eval.references import load_json, read_references
from scitune.eval.tasks.captions.bleu import CONVENTIONS, corpus_bleu

TOKENIZERS = ("whitespace", "simple")
_SIMPLE = re.compile(r"<[^<>\s]+>|[^\W_]+(?:[-'.][^\W_]+)*|\S")


def tokenize(text: str, method: str = "simple") -> list[str]:
    if method == "whitespace":
        return text.split()
    if method == "simple":
        return _SIMPLE.findall(text.lower())
    raise ScituneError(f"tokenizer must be one of {', '.join(TOKENIZERS)}, got {method!r}")


@dataclass
class CaptionPairs:
    """Hypotheses and their references (one or more each), aligned by position, with ids."""

    ids: list[str]
    hypotheses: list[str]
    references: list[list[str]]

    def __post_init__(self) -> None:
        if not (len(self.ids) == len(self.hypotheses) == len(self.references)):
            raise ScituneError("captions: ids, hypotheses and references differ in number")
        if not self.ids:
            raise ScituneError("captions: nothing to score")
        empty = [i for i, refs in zip(self.ids, self.references) if not any(r.strip() for r in refs)]
        if empty:
            raise ScituneError(f"captions: {len(empty)} item(s) have only empty references (first: {', '.join(map(str, empty[:5]))})")


@dataclass
class CaptionScores:
    count: int
    metrics: dict[str, float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # metric -> why it was not computed
    tokenizer: str = "simple"
    bleu_convention: str = "coco"

    def to_json(self) -> dict:
        return {
            "count": self.count,
            "tokenizer": self.tokenizer,
            "bleu_convention": self.bleu_convention,
            "metrics": dict(self.metrics),
            "skipped": dict(self.skipped),
        }


def read_pairs(path: str | Path) -> CaptionPairs:
    """The SciCap authors' layout: `{"hypo": [...], "gold": [...]}` (extra keys ignored)."""
    path = Path(path)
    data = load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("hypo"), list) or not isinstance(data.get("gold"), list):
        raise ScituneError(f"{path}: expected {{\"hypo\": [...], \"gold\": [...]}}")
    hypo, gold = data["hypo"], data["gold"]
    if len(hypo) != len(gold):
        raise ScituneError(f"{path}: {len(hypo)} hypotheses but {len(gold)} references")
    for name, values in (("hypo", hypo), ("gold", gold)):
        for i, value in enumerate(values):
            if not isinstance(value, str):
                raise ScituneError(f"{path}: {name}[{i}] is not a string")
    return CaptionPairs([str(i) for i in range(len(hypo))], list(hypo), [[g] for g in gold])


def pair_predictions(predictions_path: str | Path, references_path: str | Path) -> CaptionPairs:
    """Joins predictions to references on the id; a prediction without a reference is an error."""
    predictions = read_predictions(predictions_path)
    references = read_references(references_path)
    missing = [str(p["question_id"]) for p in predictions if str(p["question_id"]) not in references]
    if missing:
        raise ScituneError(
            f"{references_path}: no reference for {len(missing)} predictions (first: {', '.join(missing[:5])})"
        )
    unanswered = sorted(set(references) - {str(p["question_id"]) for p in predictions})
    if unanswered:
        raise ScituneError(
            f"{predictions_path}: no prediction for {len(unanswered)} of {len(references)} references "
            f"(first: {', '.join(unanswered[:5])}); scoring a subset would overstate the result"
        )
    ids = [str(p["question_id"]) for p in predictions]
    return CaptionPairs(ids, [p["text"] for p in predictions], [references[i] for i in ids])


def java_available() -> bool:
    return shutil.which("java") is not None


def _clean_for_meteor(tokens: Sequence[str]) -> str:
    # METEOR's stdio protocol splits fields on "|||" and lines on newlines.
    return " ".join(tokens).replace("|||", " ").strip()


def score_captions(
    pairs: CaptionPairs,
    tokenizer: str = "simple",
    bleu_convention: str = "coco",
    metrics: Sequence[str] = ("BLEU", "ROUGE-L", "CIDEr", "METEOR"),
) -> CaptionScores:
    """Corpus metrics over all pairs; BLEU-1..4 and ROUGE-L are in [0, 1], CIDEr is CIDEr-D's scale."""
    if bleu_convention not in CONVENTIONS:
        raise ScituneError(f"BLEU convention must be one of {', '.join(CONVENTIONS)}, got {bleu_convention!r}")
    hyps = [tokenize(h, tokenizer) for h in pairs.hypotheses]
    refs = [[tokenize(r, tokenizer) for r in rs] for rs in pairs.references]
    result = CaptionScores(count=len(hyps), tokenizer=tokenizer, bleu_convention=bleu_convention)
    if "BLEU" in metrics:
        result.metrics.update(corpus_bleu(hyps, refs, bleu_convention))
    coco_metrics = [m for m in ("ROUGE-L", "CIDEr", "METEOR") if m in metrics]
    if not coco_metrics:
        return result
    try:
        from pycocoevalcap.cider.cider import Cider
        from pycocoevalcap.meteor.meteor import Meteor
        from pycocoevalcap.rouge.rouge import Rouge
    except ImportError:
        for name in coco_metrics:
            result.skipped[name] = "pycocoevalcap is not installed (pip install 'scitune[captions]')"
        return result
    res = {i: [" ".join(h)] for i, h in enumerate(hyps)}
    gts = {i: [" ".join(r) for r in rs] for i, rs in enumerate(refs)}
    if "ROUGE-L" in coco_metrics:
        result.metrics["ROUGE-L"] = float(Rouge().compute_score(gts, res)[0])
    if "CIDEr" in coco_metrics:
        result.metrics["CIDEr"] = float(Cider().compute_score(gts, res)[0])
    if "METEOR" in coco_metrics:
        if not java_available():
            result.skipped["METEOR"] = "java is not on PATH (METEOR 1.5 runs on Java); METEOR was skipped"
        else:
            meteor = Meteor()
            try:
                result.metrics["METEOR"] = float(
                    meteor.compute_score(
                        {i: [_clean_for_meteor(r) for r in rs] for i, rs in enumerate(refs)},
                        {i: [_clean_for_meteor(h)] for i, h in enumerate(hyps)},
                    )[0]
                )
            finally:
                meteor.meteor_p.stdin.close()
                meteor.meteor_p.kill()
                meteor.meteor_p.wait()
    return result
