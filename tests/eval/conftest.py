"""A few real ScienceQA test records for the model-driven tests (the tiny model is the session's
`tiny`, tests/conftest.py), and one torch thread for every eval test."""

from __future__ import annotations

import json

import pytest

IMAGE_PIDS = ("23", "849", "2839", "3988", "9344", "11246")  # test problems whose images are in the fixtures


@pytest.fixture(scope="session")
def sqa_records(shared_data):
    """12 CQM-A records: 6 with images (files present), 6 text-only of varied length."""
    records = json.loads((shared_data / "scienceqa" / "llava_test_CQM-A.json").read_text())
    with_images = [r for r in records if r["id"] in IMAGE_PIDS]
    text_only = [r for r in records if "image" not in r][:40:7]
    chosen = [r for pair in zip(with_images, text_only) for r in pair]
    assert len(chosen) == 12
    return chosen


@pytest.fixture(scope="session")
def sqa_images(shared_data):
    return shared_data / "scienceqa" / "images" / "test"


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """Every eval test runs on one thread (tests/conftest.py)."""
