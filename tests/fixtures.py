"""The one tiny model of the test suite: `build_tiny` builds a fresh one (for a test that trains
or changes it), and the session fixture `tiny` (tests/conftest.py) is one built and saved once,
for the tests that only read it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple


class Tiny(NamedTuple):
    """A tiny preset model in eval mode, its processor, and the folder it was saved to."""

    model: Any
    processor: Any
    path: Path


def build_tiny(texts=None, **settings):
    """`(model, processor)` of the tiny preset (random weights, fp32, seeded by `seed`); `settings`
    are other ModelConfig fields (vocab_size, projector, seed), `texts` what its BPE tokenizer
    is trained on."""
    from scitune.config import ModelConfig
    from scitune.model import build_model

    return build_model(ModelConfig(preset="tiny", **settings), texts=texts)


def save_tiny(folder: Path) -> Tiny:
    """Builds a tiny model and saves it to `folder` (safetensors)."""
    from scitune.model import save_model

    model, processor = build_tiny()
    model.eval()
    return Tiny(model, processor, save_model(model, processor, folder))
