"""`--engine ray`: the same per-paper function as Ray Data tasks, in Ray's local mode, writes the
local engine's records and images byte for byte (LaTeX folders, PDFs and an arXiv bulk tar)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scitune.data.ingest import ingest
from tests.data.ingest.conftest import draw_figure, write_tree
from tests.data.ingest.test_arxiv import bulk_members, pdf_paper, write_bulk
from tests.data.ingest.test_scale import snapshot, tex

ray = pytest.importorskip("ray", reason="the ray extra is not installed")
pytest.importorskip("ray.data", reason="the ray extra is not installed")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.mark.slow
def test_ray_engine_writes_the_local_engines_bytes(local_ray, tmp_path: Path):
    papers = tmp_path / "papers"
    for i in range(3):
        write_tree(papers / f"p{i}", {"main.tex": tex(i), "f.png": draw_figure("bar" if i % 2 else "line")})
    (papers / "scan.pdf").write_bytes(pdf_paper(tmp_path))  # the same bytes as the bulk tar's 2301.00002.pdf
    bulk = write_bulk(tmp_path / "arXiv_src_2301_001.tar", bulk_members(tmp_path))
    inputs = [str(papers), str(bulk)]
    local = ingest(inputs, tmp_path / "local", seed=3)
    remote = ingest(inputs, tmp_path / "ray", seed=3, engine="ray")
    assert local["counts"] == remote["counts"] and local["counts"]["figures"] == 9
    assert [d["same_as"] for d in remote["duplicates"]] == ["scan"]  # the PDF was read once, from the folder
    assert [f["member"] for f in remote["failed"]] == ["2301/2301.00004.gz", "2301/2301.00005.gz"]
    assert snapshot(tmp_path / "local") == snapshot(tmp_path / "ray")
    shards = sorted(p.name for p in (tmp_path / "ray" / "shards").glob("*.jsonl"))
    assert [(tmp_path / "ray" / "shards" / s).read_bytes() for s in shards] == \
        [(tmp_path / "local" / "shards" / s).read_bytes() for s in shards]
    assert json.loads((tmp_path / "ray" / "ingest.json").read_text())["written"] is True
