"""Shared fixtures. Real public fixtures are read in place from SCITUNE_SHARED_DATA
(default ../shared/data); tests that need them skip with a reason when the folder is absent."""

from __future__ import annotations

import pytest

from scitune.settings import shared_data_dir


@pytest.fixture(scope="session")
def shared_data():
    root = shared_data_dir()
    if not root.is_dir():
        pytest.skip(f"real fixtures not found at {root} (set SCITUNE_SHARED_DATA)")
    return root
