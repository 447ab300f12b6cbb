"""Progress bars: shown only on a terminal and never with `--quiet` (scitune.settings)."""

from __future__ import annotations

from tqdm.auto import tqdm

from scitune.settings import show_progress


def progress_bar(iterable=None, *, enabled: bool = True, **kwargs) -> tqdm:
    """A tqdm bar when progress is shown here and `enabled` (e.g. only on the main process)."""
    return tqdm(iterable, disable=not (enabled and show_progress()), dynamic_ncols=True, **kwargs)
