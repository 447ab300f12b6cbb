"""ScienceQA prompts for evaluation. The prompt formats themselves (CQM-A, QCM-LEA, ...) live in
`scitune.data.scienceqa`, because `scitune data scienceqa` builds training files with them and
data knows nothing of eval; what only evaluation needs is here: each answer option as the
continuation that likelihood mode scores."""

from __future__ import annotations

import re
from collections.abc import Mapping

from scitune.data.scienceqa import build_prompt
from scitune.errors import ScituneError
from scitune.eval.answers import letter
from scitune.eval.tasks.scienceqa.scoring import KeyedProblem


def option_texts(
    samples: list[dict], key: Mapping[str, KeyedProblem], problems: list[dict] | None, format: str, source: str
) -> dict[str, list[str]]:
    """Likelihood mode: sample id -> each option's continuation, the format's own answer-only
    target. With the original `problems` the format renders it; from an answer key alone, the
    sample's answer-only target with its letter swapped for each option's."""
    if problems is not None:
        if not format.endswith("-A"):
            raise ScituneError(
                f"--mode likelihood needs an answer-only format (CQM-A, QCM-A, ...), not {format}: "
                "longer targets would put the reference explanation into the scored text"
            )
        by_id = {str(p["id"]): p for p in problems}
        return {
            str(s["id"]): [build_prompt({**by_id[str(s["id"])], "answer": i}, format)[1] for i in range(len(by_id[str(s["id"])]["choices"]))]
            for s in samples
        }
    options = {}
    for sample in samples:
        qid = str(sample.get("id"))
        target = next(t["value"] for t in sample["conversations"] if t["from"] == "gpt").strip()
        answer = letter(key[qid].answer)
        pattern = re.compile(rf"(?<![A-Za-z]){answer}(?![A-Za-z])")
        if len(target) > 40 or len(pattern.findall(target)) != 1:
            raise ScituneError(
                f"{source}: --mode likelihood needs answer-only targets (\"B\", \"The answer is B.\"); "
                f"sample {qid} answers {target[:40]!r}"
            )
        template = pattern.sub("{}", target.replace("{", "{{").replace("}", "}}"))
        options[qid] = [template.format(letter(i)) for i in range(key[qid].num_options)]
    return options
