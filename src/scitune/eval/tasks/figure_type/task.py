"""Figure-type classification as an evaluation task: LLaVA records whose answers are the types ->
prompts (and the label set as likelihood options) -> accuracy, macro-F1, confusion matrix."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from scitune.errors import ScituneError
from scitune.inference.items import EvalItem
from scitune.eval.references import answer_of
from scitune.eval.tasks.figure_type.scoring import FigureTypeScores, find_label, score_figure_types, write_confusion
from scitune.eval.tables import format_pairs, format_table


@dataclass
class FigureTypeTask:
    samples: list[dict]
    labels: list[str] | None = None  # the label set (default: the references' labels)
    source: str = "data"
    name: str = "figure-type"
    modes: tuple[str, ...] = ("generate", "likelihood")
    per_type_columns: tuple[str, ...] = ("precision", "recall", "f1", "support")

    def __post_init__(self) -> None:
        self.references = {str(s.get("id")): self.to_label(answer_of(s), f"{self.source}: {s.get('id')}") for s in self.samples}
        self.label_set = list(self.labels) if self.labels else sorted(set(self.references.values()))

    def to_label(self, text: str, where: str) -> str:
        if self.labels is None:
            return text.strip()
        found = find_label(text, self.labels)
        if found is None:
            raise ScituneError(f"{where}: reference {text[:60]!r} names no label of --labels")
        return found

    def items(self, mode: str) -> list[EvalItem]:
        options = self.label_set if mode == "likelihood" else ()
        return [EvalItem.from_sample(s, options) for s in self.samples]

    def score(self, rows: list[dict], mode: str = "generate") -> FigureTypeScores:
        predictions = {str(r["question_id"]): r["text"] for r in rows}
        return score_figure_types(self.references, predictions, self.label_set, parse=(mode != "likelihood"))

    def metrics(self, result: FigureTypeScores) -> dict:
        return result.to_json()

    def failures(self, result: FigureTypeScores) -> list[dict]:
        return result.failures

    def write_extra(self, result: FigureTypeScores, folder: Path) -> None:
        write_confusion(result, folder)

    def summary(self, result: FigureTypeScores, label: str = "") -> str:
        head = f"[{label}] " if label else ""
        values = {"accuracy": result.accuracy, "macro-F1": result.macro_f1, "count": result.count}
        pairs = head + format_pairs(values, digits=2).replace("\n", "\n" + " " * len(head))
        return pairs + "\n" + format_table(list(result.per_type.items()), self.per_type_columns)
