"""Fixed instruction phrasings, and the seeded choice among them.

The choice depends only on the seed and the sample id (not on list order), so the same record
gets the same phrasing when a file is rebuilt, filtered or reordered.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

DESCRIBE = (
    "Describe the figure in detail.",
    "Explain what this scientific figure shows.",
    "Give a detailed description of this figure.",
    "What does this figure show? Describe it with its type, caption, text and context.",
    "Describe this figure from a scientific paper.",
    "Write a description of the figure, as it would appear in the paper.",
    "Summarize the content of this figure.",
    "Provide a thorough explanation of the figure.",
)

FIGURE_TYPE = (
    "What type of figure is this?",
    "Which kind of figure is shown?",
    "Classify the type of this figure.",
    "What is the figure type of this image?",
    "Is this a graph plot, a table, a diagram, an equation or something else? Name the figure type.",
)

CAPTION = (
    "Write a caption for this figure.",
    "What is a suitable caption for this figure?",
    "Generate the caption of this scientific figure.",
    "Caption this figure.",
    "Write the figure caption as it would appear in the paper.",
)

CHART_L1 = (
    "Describe the chart's type, title, axes and scales.",
    "What kind of chart is this, and what do its axes show?",
    "Describe how this chart is built: chart type, title, axes and their ranges.",
    "Give a short description of the chart's elements.",
)

CHART_L2L3 = (
    "Describe the trends and statistics shown in this chart.",
    "What does this chart tell us about the data?",
    "Summarize the main patterns in this chart.",
    "Describe the notable values and trends in the chart.",
)


def choose(options: Sequence[str], seed: int, key: str) -> str:
    """One of `options`, chosen by a generator seeded with (seed, key)."""
    if not options:
        raise ValueError("no instruction phrasings to choose from")
    return options[random.Random(f"{seed}:{key}").randrange(len(options))]
