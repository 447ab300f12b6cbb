"""Tests of scitune.inference: an Engine on the session's tiny model (tests/conftest.py), reading
the ScienceQA test images, on one torch thread."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """Every inference test runs on one thread (tests/conftest.py)."""


@pytest.fixture(scope="module")
def engine(tiny, sqa_images):
    """An Engine on the session's tiny model (one per module)."""
    from scitune.inference import Engine

    return Engine(tiny.model, tiny.processor, image_root=sqa_images)
