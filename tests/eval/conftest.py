"""A tiny model (random weights, fp32) and a few real ScienceQA test records for the model-driven tests."""

from __future__ import annotations

import json

import pytest

IMAGE_PIDS = ("23", "849", "2839", "3988", "9344", "11246")  # test problems whose images are in the fixtures


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    from scitune.config import ModelConfig
    from scitune.model import build_model, save_model

    model, processor = build_model(ModelConfig(preset="tiny"))
    model.eval()
    path = tmp_path_factory.mktemp("tiny") / "ckpt"
    save_model(model, processor, path)
    return model, processor, path


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
def one_torch_thread():
    """The tiny model is all overhead: one thread is fastest, and on a busy 2-core machine
    several threads slow each op down many times over. Restored after each test."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
