"""ScienceQA as an evaluation task: problems (or a LLaVA answer key) -> prompts and answer options
-> accuracy by category, in ScienceQA's official columns and the SciTune paper's."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from scitune.errors import ScituneError
from scitune.eval import scienceqa as sqa
from scitune.eval.answers import letter
from scitune.inference.items import EvalItem
from scitune.eval.tables import format_table


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
    _options: dict[str, list[str]] = field(default_factory=dict, repr=False)

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
        options = self._option_texts(samples)
        return [EvalItem.from_sample(s, options[str(s.get("id"))]) for s in samples]

    def _option_texts(self, samples: list[dict]) -> dict[str, list[str]]:
        """Likelihood: each option's continuation is the format's own answer-only target."""
        if self.problems is not None:
            from scitune.data.scienceqa import build_prompt

            if not self.format.endswith("-A"):
                raise ScituneError(
                    f"--mode likelihood needs an answer-only format (CQM-A, QCM-A, ...), not {self.format}: "
                    "longer targets would put the reference explanation into the scored text"
                )
            by_id = {str(p["id"]): p for p in self.problems}
            return {
                str(s["id"]): [build_prompt({**by_id[str(s["id"])], "answer": i}, self.format)[1] for i in range(len(by_id[str(s["id"])]["choices"]))]
                for s in samples
            }
        options = {}
        for sample in samples:
            qid = str(sample.get("id"))
            target = next(t["value"] for t in sample["conversations"] if t["from"] == "gpt").strip()
            answer = letter(self.key[qid].answer)
            pattern = re.compile(rf"(?<![A-Za-z]){answer}(?![A-Za-z])")
            if len(target) > 40 or len(pattern.findall(target)) != 1:
                raise ScituneError(
                    f"{self.source}: --mode likelihood needs answer-only targets (\"B\", \"The answer is B.\"); "
                    f"sample {qid} answers {target[:40]!r}"
                )
            template = pattern.sub("{}", target.replace("{", "{{").replace("}", "}}"))
            options[qid] = [template.format(letter(i)) for i in range(self.key[qid].num_options)]
        return options

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
