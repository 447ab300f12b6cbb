"""One torch thread for every eval test, and an Engine on the session's tiny model (the tiny model
and the ScienceQA records the model-driven tests read are the session's, tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """Every eval test runs on one thread (tests/conftest.py)."""


@pytest.fixture(scope="module")
def engine(tiny, sqa_images):
    """An Engine on the session's tiny model, reading the ScienceQA test images (one per module)."""
    from scitune.inference import Engine

    return Engine(tiny.model, tiny.processor, image_root=sqa_images)
