"""Settings read from the environment (there is no other global state).

SCITUNE_QUIET: 1 for no progress bars (`scitune --quiet`).
SCITUNE_SHARED_DATA: folder of the real public fixtures (default: ../shared/data, relative to the
project root). Only tests and benchmarks read it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def shared_data_dir() -> Path:
    value = os.environ.get("SCITUNE_SHARED_DATA")
    if value:
        return Path(value).expanduser().resolve()
    return (PROJECT_ROOT / ".." / "shared" / "data").resolve()


def quiet() -> bool:
    """SCITUNE_QUIET=1 (what `scitune --quiet` sets): no progress bars."""
    return os.environ.get("SCITUNE_QUIET") == "1"


def show_progress() -> bool:
    """Progress bars only on a terminal, and never with --quiet."""
    return not quiet() and sys.stderr.isatty()
