"""Figure-type classification: the label read from generated text (or chosen by likelihood),
accuracy, macro-F1, per-type precision and recall, the confusion matrix (`scoring`), the task
(`task`; its prompts are the LLaVA records' own human turns) and `scitune eval figure-type` (`cli`)."""

from scitune.eval.tasks.figure_type.cli import CLI

__all__ = ["CLI"]
