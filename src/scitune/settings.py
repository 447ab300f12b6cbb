"""Settings read from the environment (there is no other global state).

SCITUNE_SHARED_DATA: folder of the real public fixtures (default: ../shared/data, relative to the
project root). Only tests and benchmarks read it.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def shared_data_dir() -> Path:
    value = os.environ.get("SCITUNE_SHARED_DATA")
    if value:
        return Path(value).expanduser().resolve()
    return (PROJECT_ROOT / ".." / "shared" / "data").resolve()
