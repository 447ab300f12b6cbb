"""Evaluation tasks, each a small unit: records -> items (prompts, options), items + model
outputs -> rows, rows -> metrics. Their prompt settings and columns are data on the task.
`scitune.eval.runner` runs any of them."""

from scitune.eval.tasks.captions import CaptionTask
from scitune.eval.tasks.figure_type import FigureTypeTask
from scitune.eval.tasks.mathvista import MathVistaTask
from scitune.eval.tasks.scienceqa import ScienceQATask

__all__ = ["CaptionTask", "FigureTypeTask", "MathVistaTask", "ScienceQATask"]
