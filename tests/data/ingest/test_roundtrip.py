"""The demo corpus as papers (`corpus build --papers`) and back through `ingest`: every figure,
its caption and its mentions come back, from the LaTeX sources and from the PDFs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scitune.data.corpus import build_corpus
from scitune.data.corpus.papers import write_papers
from scitune.data.ingest import ingest
from scitune.data.ingest.overlap import image_hash
from scitune.data.scicap import read_scicap


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    build_corpus(out, figures=20, seed=0, workers=1)
    write_papers(out, figures_per_paper=4)
    return out


@pytest.mark.parametrize("kind", ["latex", "pdf"])
def test_roundtrip(corpus: Path, tmp_path: Path, kind: str):
    index = json.loads((corpus / "papers" / "papers.json").read_text())
    truth = {r["image"]: r for s in ("train", "val", "test") for r in read_scicap(corpus / "scicap" / f"{s}.json")}
    report = ingest([str(corpus / "papers" / kind)], tmp_path / "out")
    assert report["counts"]["figures"] == 20 and report["counts"]["unpaired"] == 0
    got = {r["id"]: r for s in ("train", "val", "test") for r in read_scicap(tmp_path / "out" / f"{s}.json")}
    for paper in index:
        for fig in paper["figures"]:
            record = got[f"{paper['paper']}-fig{fig['number']}"]
            own = truth[fig["file_name"]]
            assert record["caption_no_index"] == own["caption_no_index"]
            # the paper numbers its figures 1..4; the corpus text said "Figure <its own number>"
            expected = [m.replace(f"Figure {fig['corpus_number']}", f"Figure {fig['number']}") for m in own["mentions"]]
            assert record["mentions"] == expected
            distance = bin(image_hash(tmp_path / "out" / "images" / record["image"])
                           ^ image_hash(corpus / "scicap" / "images" / fig["file_name"])).count("1")
            assert distance <= 10, (record["id"], distance)
