"""MathVista (testmini) as an evaluation task: problems -> the MathVista authors' prompt (their
hint per answer type, the question, the unit and the lettered choices) with the figure -> answers
extracted by rules and scored by the authors' rules (`scitune.eval.mathvista`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from scitune.data.sample import OPTION_LETTERS
from scitune.eval import mathvista
from scitune.inference.items import EvalItem
from scitune.eval.tables import format_table
from scitune.io.read import read_json

# The authors' hint for each kind of answer (question type, answer type, precision).
HINTS = {
    ("multi_choice", "text", None): "Please answer the question and provide the correct option letter, e.g., A, B, C, D, at the end.",
    ("free_form", "integer", None): "Please answer the question requiring an integer answer and provide the final value, e.g., 1, 2, 3, at the end.",
    ("free_form", "float", 1): "Please answer the question requiring a floating-point number with one decimal place and provide the final value, e.g., 1.2, 1.3, 1.4, at the end.",
    ("free_form", "float", 2): "Please answer the question requiring a floating-point number with two decimal places and provide the final value, e.g., 1.23, 1.34, 1.45, at the end.",
    ("free_form", "list", None): "Please answer the question requiring a Python list as an answer and provide the final list, e.g., [1, 2, 3], [1.2, 1.3, 1.4], at the end.",
}


def build_query(record: Mapping) -> str:
    """The authors' prompt for one problem record (what their output files store as `query`)."""
    precision = record.get("precision") if record.get("answer_type") == "float" else None
    hint = HINTS[(record["question_type"], record["answer_type"], int(precision) if precision is not None else None)]
    question = record["question"] + (f" (Unit: {record['unit']})" if record.get("unit") else "")
    lines = [f"Hint: {hint}", f"Question: {question}"]
    if record.get("choices"):
        lines.append("Choices:")
        lines += [f"({OPTION_LETTERS[i]}) {choice}" for i, choice in enumerate(record["choices"])]
    return "\n".join(lines)


@dataclass
class MathVistaTask:
    """`records`: testmini.json (pid -> record); images are `record["image"]` under the engine's root."""

    records: dict[str, dict]
    problems: dict[str, mathvista.Problem]
    limit: int | None = None
    name: str = "mathvista"
    modes: tuple[str, ...] = ("generate",)
    columns: tuple[str, ...] = ("accuracy", "correct", "total")

    @classmethod
    def from_file(cls, path: str | Path, limit: int | None = None) -> MathVistaTask:
        return cls(read_json(path, mathvista.MAX_FILE_BYTES, "problems"), mathvista.read_problems(path), limit)

    def _pids(self) -> list[str]:
        pids = list(self.problems)
        return pids[: self.limit] if self.limit else pids

    def items(self, mode: str = "generate") -> list[EvalItem]:
        return [
            EvalItem(pid, "<image>\n" + build_query(self.records[pid]), (self.records[pid]["image"],))
            for pid in self._pids()
        ]

    def score(self, rows: list[dict], mode: str = "generate") -> mathvista.MathVistaResult:
        problems = {pid: self.problems[pid] for pid in self._pids()}
        predictions = {str(r["question_id"]): mathvista.Prediction(str(r["question_id"]), text=r["text"]) for r in rows}
        return mathvista.score(problems, predictions, extraction="rules", source=mode)

    def metrics(self, result: mathvista.MathVistaResult) -> dict:
        return result.metrics()

    def failures(self, result: mathvista.MathVistaResult) -> list[dict]:
        return [{"question_id": item.pid, "text": item.extraction} for item in result.failures]

    def write_extra(self, result: mathvista.MathVistaResult, folder: Path) -> None:
        mathvista.write_results(result, folder)

    def summary(self, result: mathvista.MathVistaResult, label: str = "") -> str:
        scores = result.metrics()
        rows = [("overall", scores["average"])]
        for name in ("question_type", "answer_type"):
            rows += [(f"{name} {value}", entry) for value, entry in scores[name].items()]
        table = [(f"{label} {name}".strip(), {**entry, "accuracy": float(entry["accuracy"])}) for name, entry in rows]
        return format_table(table, self.columns)
