"""Tests of the command-line modules (src/scitune/cli.py and src/scitune/commands/): each runs on
one torch thread (tests/conftest.py); their models and fixtures are the session's."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """Every command test runs on one thread (tests/conftest.py)."""
