"""Fixtures of the reliability suite: a small workspace of valid inputs, and one tiny saved model
(built once per session)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.train.data import write_recipe

SAMPLES = [
    {"id": str(i), "conversations": [{"from": "human", "value": f"What is {i} plus {i}?"}, {"from": "gpt", "value": str(2 * i)}]}
    for i in range(4)
]


# The workspace's recipe (tests/train/data.py's write_recipe): one short align stage.
ONE_STAGE = {"with_instruct": False, "align": {"epochs": 1, "batch_size": 2, "lr": 0.001}, "model": {"vocab_size": 300},
             "run": {"save_every": 0}}


@pytest.fixture
def ws(tmp_path) -> Path:
    """A workspace: samples.json, images/, recipe.yaml (into run/), notes/ (a user's folder)."""
    (tmp_path / "images").mkdir()
    (tmp_path / "samples.json").write_text(json.dumps(SAMPLES, indent=2))
    write_recipe(tmp_path / "recipe.yaml", tmp_path / "samples.json", tmp_path / "images", tmp_path / "run", **ONE_STAGE)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("the user's own file\n")
    return tmp_path


@pytest.fixture(scope="session")
def tiny_model(tiny) -> Path:
    """The folder of the session's tiny model (tests/conftest.py)."""
    return tiny.path
