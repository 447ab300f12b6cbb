"""Fixtures for the data tests: the bad corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

BAD = Path(__file__).parent / "bad"


@pytest.fixture(scope="session")
def bad_dir() -> Path:
    return BAD
