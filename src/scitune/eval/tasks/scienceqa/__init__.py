"""ScienceQA: accuracy by category, in ScienceQA's official columns and the SciTune paper's.

The folder holds what only evaluation needs: the answer key and scoring (`scoring`), each
option's likelihood continuation (`prompts`), the task (`task`) and `scitune eval scienceqa`
(`cli`). The prompt formats (CQM-A, QCM-LEA, ...) and the problems reader stay in
`scitune.data.scienceqa`: `scitune data scienceqa` builds training files with the same formats,
and data may not import eval (eval uses data, never the reverse), so the one copy lives there.
"""

from scitune.eval.tasks.scienceqa.cli import CLI

__all__ = ["CLI"]
