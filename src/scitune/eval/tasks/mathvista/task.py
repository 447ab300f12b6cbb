"""MathVista (testmini) as an evaluation task: problems -> the authors' prompt with the figure ->
answers extracted by rules and scored by the authors' rules."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from scitune.eval.tables import format_table
from scitune.eval.tasks.mathvista.prompts import build_query
from scitune.eval.tasks.mathvista.records import MAX_FILE_BYTES, Prediction, Problem, read_problems
from scitune.eval.tasks.mathvista import scoring
from scitune.eval.tasks.mathvista.scoring import MathVistaResult, write_results
from scitune.inference.items import EvalItem
from scitune.io.read import read_json

COLUMNS = ("accuracy", "correct", "total")


@dataclass
class MathVistaTask:
    """`records`: testmini.json (pid -> record); images are `record["image"]` under the engine's root."""

    records: dict[str, dict]
    problems: dict[str, Problem]
    limit: int | None = None
    name: str = "mathvista"
    modes: tuple[str, ...] = ("generate",)

    @classmethod
    def from_file(cls, path: str | Path, limit: int | None = None) -> MathVistaTask:
        return cls(read_json(path, MAX_FILE_BYTES, "problems"), read_problems(path), limit)

    def _pids(self) -> list[str]:
        pids = list(self.problems)
        return pids[: self.limit] if self.limit else pids

    def items(self, mode: str = "generate") -> list[EvalItem]:
        return [
            EvalItem(pid, "<image>\n" + build_query(self.records[pid]), (self.records[pid]["image"],))
            for pid in self._pids()
        ]

    def score(self, rows: list[dict], mode: str = "generate") -> MathVistaResult:
        problems = {pid: self.problems[pid] for pid in self._pids()}
        predictions = {str(r["question_id"]): Prediction(str(r["question_id"]), text=r["text"]) for r in rows}
        return scoring.score(problems, predictions, extraction="rules", source=mode)

    def metrics(self, result: MathVistaResult) -> dict:
        return result.metrics()

    def failures(self, result: MathVistaResult) -> list[dict]:
        return [{"question_id": item.pid, "text": item.extraction} for item in result.failures]

    def write_extra(self, result: MathVistaResult, folder: Path) -> None:
        write_results(result, folder)

    def summary(self, result: MathVistaResult, label: str = "") -> str:
        return summary_table(result, label)


def summary_table(result: MathVistaResult, label: str = "") -> str:
    """Overall accuracy, then by question type and answer type (the other groups are in metrics.json)."""
    scores = result.metrics()
    rows = [("overall", scores["average"])]
    for name in ("question_type", "answer_type"):
        rows += [(f"{name} {value}", entry) for value, entry in scores[name].items()]
    table = [(f"{label} {name}".strip(), {**entry, "accuracy": float(entry["accuracy"])}) for name, entry in rows]
    return format_table(table, COLUMNS)
