"""One torch thread for every eval test (the tiny model and the ScienceQA records the
model-driven tests read are the session's, tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """Every eval test runs on one thread (tests/conftest.py)."""

