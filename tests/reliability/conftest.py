"""Fixtures of the reliability suite: a small workspace of valid inputs, and one tiny saved model
(built once per session)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

SAMPLES = [
    {"id": str(i), "conversations": [{"from": "human", "value": f"What is {i} plus {i}?"}, {"from": "gpt", "value": str(2 * i)}]}
    for i in range(4)
]


def write_recipe(path: Path, train: Path, images: Path, out: Path, **extra) -> Path:
    recipe = {
        "model": {"preset": "tiny", "vocab_size": 300},
        "stages": [
            {
                "stage": {"name": "align"},
                "data": {"train": str(train), "images": str(images), "max_length": 64},
                "epochs": 1,
                "batch_size": 2,
                "lr": 0.001,
            }
        ],
        "run": {"out": str(out), "save_every": 0, "tensorboard": False},
    }
    recipe.update(extra)
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


@pytest.fixture
def ws(tmp_path) -> Path:
    """A workspace: samples.json, images/, recipe.yaml (into run/), notes/ (a user's folder)."""
    (tmp_path / "images").mkdir()
    (tmp_path / "samples.json").write_text(json.dumps(SAMPLES, indent=2))
    write_recipe(tmp_path / "recipe.yaml", tmp_path / "samples.json", tmp_path / "images", tmp_path / "run")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("the user's own file\n")
    return tmp_path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A saved tiny Llava model folder (safetensors)."""
    from scitune.config import ModelConfig
    from scitune.model import build_model, save_model

    model, processor = build_model(ModelConfig(preset="tiny", vocab_size=300))
    return save_model(model, processor, tmp_path_factory.mktemp("model") / "tiny")
