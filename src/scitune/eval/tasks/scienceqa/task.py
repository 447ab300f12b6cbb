"""ScienceQA as an evaluation task: problems (or a LLaVA answer key) -> prompts and answer options
(`prompts`) -> accuracy by category (`scoring`), in ScienceQA's official columns and the SciTune paper's."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from scitune.eval.tables import format_table
from scitune.eval.tasks.scienceqa import scoring as sqa
from scitune.eval.tasks.scienceqa.prompts import option_texts
from scitune.inference.items import EvalItem


@dataclass
class ScienceQATask:
    """`samples`: the prompts (LLaVA records); `key`: the answers; `problems`: the original
    records when known (likelihood options are then rendered by the prompt format itself)."""

    samples: list[dict]
    key: dict[str, sqa.KeyedProblem]
    problems: list[dict] | None = None
    format: str = "CQM-A"
    source: str = "answer key"
    limit: int | None = None
    name: str = "scienceqa"
    modes: tuple[str, ...] = ("generate", "likelihood")
    columns: tuple[str, ...] = sqa.COLUMNS

    @classmethod
    def from_problems(cls, problems: list[dict], format: str = "CQM-A", limit: int | None = None) -> ScienceQATask:
        from scitune.data.scienceqa import build_scienceqa_samples

        return cls(build_scienceqa_samples(problems, format=format), sqa.keyed_from_problems(problems), problems, format, "problems", limit)

    @classmethod
    def from_answer_key(cls, path: str | Path, limit: int | None = None) -> ScienceQATask:
        from scitune.data.sample import read_samples

        samples = read_samples(path)
        return cls(samples, sqa.keyed_from_conversations(samples, source=str(path)), None, "CQM-A", str(path), limit)

    def _samples(self) -> list[dict]:
        return self.samples[: self.limit] if self.limit else self.samples

    def items(self, mode: str) -> list[EvalItem]:
        samples = self._samples()
        if mode == "generate":
            return [EvalItem.from_sample(s) for s in samples]
        options = option_texts(samples, self.key, self.problems, self.format, self.source)
        return [EvalItem.from_sample(s, options[str(s.get("id"))]) for s in samples]

    def score(self, rows: list[dict], mode: str = "") -> sqa.ScienceQAScore:
        """Scores the task's problems (its samples, after `limit`) against `rows`."""
        key = {str(s.get("id")): self.key[str(s.get("id"))] for s in self._samples()}
        return sqa.score(key, {str(r["question_id"]): r["text"] for r in rows}, source=mode or "predictions")

    def metrics(self, result: sqa.ScienceQAScore) -> dict:
        return result.metrics()

    def failures(self, result: sqa.ScienceQAScore) -> list[dict]:
        return result.failures

    def write_extra(self, result, folder: Path) -> None:
        return None

    def summary(self, result: sqa.ScienceQAScore, label: str = "") -> str:
        prefix = f"{label} " if label else ""
        table = format_table([(f"{prefix}official", result.official), (f"{prefix}scitune", result.scitune)], self.columns)
        return f"{table}\n{label + ': ' if label else ''}{result.correct}/{result.count} correct"
