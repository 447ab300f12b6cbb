"""Figure captioning as an evaluation task: LLaVA records whose answers are captions -> prompts ->
corpus BLEU-1..4, ROUGE-L, CIDEr (and METEOR when Java is present)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from scitune.inference.items import EvalItem
from scitune.eval.references import answer_of
from scitune.eval.tables import format_pairs
from scitune.eval.tasks.captions.scoring import CaptionPairs, CaptionScores, score_captions


@dataclass
class CaptionTask:
    samples: list[dict]
    tokenizer: str = "simple"
    bleu_convention: str = "coco"
    metric_names: tuple[str, ...] = ("BLEU", "ROUGE-L", "CIDEr", "METEOR")
    name: str = "captions"
    modes: tuple[str, ...] = ("generate",)

    def items(self, mode: str = "generate") -> list[EvalItem]:
        return [EvalItem.from_sample(s) for s in self.samples]

    def pairs(self, rows: list[dict]) -> CaptionPairs:
        references = {str(s.get("id")): [answer_of(s)] for s in self.samples}
        return CaptionPairs([r["question_id"] for r in rows], [r["text"] for r in rows], [references[r["question_id"]] for r in rows])

    def score(self, rows: list[dict], mode: str = "generate") -> CaptionScores:
        return self.score_pairs(self.pairs(rows))

    def score_pairs(self, pairs: CaptionPairs) -> CaptionScores:
        return score_captions(pairs, tokenizer=self.tokenizer, bleu_convention=self.bleu_convention, metrics=self.metric_names)

    def metrics(self, result: CaptionScores) -> dict:
        return result.to_json()

    def failures(self, result: CaptionScores) -> None:
        return None

    def write_extra(self, result, folder: Path) -> None:
        return None

    def summary(self, result: CaptionScores, label: str = "") -> str:
        lines = [format_pairs(result.metrics, digits=4)]
        lines += [f"{name}: skipped: {reason}" for name, reason in result.skipped.items()]
        lines.append(f"{result.count} captions; tokeniser {self.tokenizer}; BLEU convention {self.bleu_convention}")
        return "\n".join(lines)
