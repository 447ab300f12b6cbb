"""MathVista (testmini): the authors' prompt (`prompts`), their answer extraction and scoring
rules (`records`, `extract`, `scoring`), the task (`task`) and `scitune eval mathvista` (`cli`)."""

from scitune.eval.tasks.mathvista.cli import CLI

__all__ = ["CLI"]
