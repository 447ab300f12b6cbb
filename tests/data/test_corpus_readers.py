"""The built-in corpus (scitune.data.corpus, another module's work) is read by the same readers
as the real releases, with no special path."""

import pytest

from scitune.data.scicap import build_instructions, read_scicap
from scitune.data.scienceqa import build_scienceqa_samples, read_problems
from scitune.data.corpus.build import build_corpus
from scitune.data.validate import validate_samples


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    build_corpus(out, figures=8, seed=3, image_size=64, workers=1)
    return out


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_corpus_reads_and_validates(corpus, split):
    records = read_scicap(corpus / "scicap" / f"{split}.json")
    for task in ("describe", "figure-type", "caption"):
        samples = build_instructions(records, task=task)
        assert validate_samples(samples, corpus / "scicap" / "images").ok
    problems = read_problems(corpus / "scienceqa", split=split)
    samples = build_scienceqa_samples(problems)
    assert validate_samples(samples, corpus / "scienceqa" / "images" / split).ok
