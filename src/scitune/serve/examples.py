"""Built-in example figures for the page: one of each SciCap figure type, drawn by the built-in
corpus's figure generator (`scitune.data.corpus.figures`), so the page works with no files of
its own. Drawn once, on first request."""

from __future__ import annotations

import threading

import numpy as np

from scitune.data.corpus.vocab import FIGURE_TYPES

SIZE = 256
SEED = 2024
_lock = threading.Lock()
_cache: list[dict] | None = None


def example_figures() -> list[dict]:
    """`[{id, figure_type, png}]`, one per figure type."""
    global _cache
    with _lock:
        if _cache is None:
            from scitune.data.corpus.drawing import render_png
            from scitune.data.corpus.figures import sample_figure

            figures = []
            for index, figure_type in enumerate(FIGURE_TYPES):
                spec = sample_figure(np.random.default_rng([SEED, index]), figure_type)
                figures.append({"id": f"example-{index}", "figure_type": figure_type, "png": render_png(spec, SIZE)})
            _cache = figures
        return _cache
