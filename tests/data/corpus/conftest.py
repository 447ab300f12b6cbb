"""A small corpus (20 figures, 64 px), built once for the corpus tests."""

from __future__ import annotations

import json

import pytest

from scitune.data.corpus import build_corpus

N_FIGURES = 20
SEED = 3
SIZE = 64


class Corpus:
    n_figures, seed, size = N_FIGURES, SEED, SIZE

    def __init__(self, root, manifest):
        self.root = root
        self.manifest = manifest
        self.problems = json.loads((root / "scienceqa" / "problems.json").read_text())
        self.pid_splits = json.loads((root / "scienceqa" / "pid_splits.json").read_text())
        self.scicap = {s: json.loads((root / "scicap" / f"{s}.json").read_text()) for s in ("train", "val", "test")}
        self.data = json.loads((root / "figure_data.json").read_text())


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    manifest = build_corpus(root, figures=N_FIGURES, seed=SEED, image_size=SIZE, workers=1)
    return Corpus(root, manifest)
