"""One machine: a process pool writes the same bytes as one process; a killed run resumes where it
stopped and a re-run reads nothing twice; the same paper given twice is read once; shards are
read as one dataset; --out never on, over or inside an input."""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
from pathlib import Path

import pytest

import scitune.data.ingest.engine as engine_module
import scitune.data.ingest.shards as shards_module
from scitune.data.ingest import ingest
from scitune.errors import ScituneError
from tests.data.ingest.conftest import draw_figure, write_tree

OUTPUTS = ("train.json", "val.json", "test.json", "provenance.json", "papers.jsonl")


def tex(i: int) -> str:
    floats = "".join(f"\\begin{{figure}}\\includegraphics{{f.png}}\\caption{{Paper {i} result {k} with a caption.}}"
                     f"\\label{{f{k}}}\\end{{figure}}\n" for k in range(2))
    return f"\\documentclass{{article}}\\begin{{document}}\nFigure~\\ref{{f0}} rises.\n\n{floats}\\end{{document}}\n"


@pytest.fixture
def papers(tmp_path: Path) -> Path:
    root = tmp_path / "papers"
    for i in range(8):
        write_tree(root / f"p{i}", {"main.tex": tex(i), "f.png": draw_figure("bar" if i % 2 else "line")})
    return root


def snapshot(out: Path) -> dict[str, bytes]:
    files = {name: (out / name).read_bytes() for name in OUTPUTS}
    files.update({f"images/{p.name}": p.read_bytes() for p in sorted((out / "images").iterdir())})
    return files


class Killed(Exception):
    pass


class _KillAfter(logging.Handler):
    """Stops the run after `n` papers were written (as a kill would), on ingest's per-paper message."""

    def __init__(self, n: int):
        super().__init__()
        self.n, self.seen = n, []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if ": " in message and "figures" in message:
            self.seen.append(message)
            if len(self.seen) == self.n:
                raise Killed()


@contextlib.contextmanager
def kill_after(n: int):
    """Within the block, ingest is stopped after `n` papers (through its logger, as a library user hears it)."""
    logger, handler = logging.getLogger("scitune.data.ingest"), _KillAfter(n)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_workers_write_the_same_bytes(papers: Path, tmp_path: Path):
    one = ingest([str(papers)], tmp_path / "one", seed=1)
    two = ingest([str(papers)], tmp_path / "two", seed=1, workers=2)
    assert one["counts"]["figures"] == two["counts"]["figures"] == 16
    assert snapshot(tmp_path / "one") == snapshot(tmp_path / "two")


def test_killed_run_resumes_and_rerun_reads_nothing(papers: Path, tmp_path: Path, monkeypatch):
    clean = tmp_path / "clean"
    ingest([str(papers)], clean, seed=2)
    out = tmp_path / "out"
    monkeypatch.setattr(shards_module, "PAPERS_PER_SHARD", 2)
    with kill_after(3), pytest.raises(Killed):
        ingest([str(papers)], out, seed=2)
    assert not (out / "train.json").exists()
    # a write cut short: half a line at the end of the last shard
    last = sorted((out / "shards").glob("*.jsonl"))[-1]
    with last.open("ab") as handle:
        handle.write(b'{"key": "cut sh')
    read = []
    real = engine_module.read_local
    monkeypatch.setattr(engine_module, "read_local", lambda task, *a: (read.append(task.name), real(task, *a))[1])
    report = ingest([str(papers)], out, seed=2)
    assert sorted(read) == [f"p{i}" for i in range(3, 8)]  # the three finished papers are not read again
    assert report["counts"]["from_earlier_runs"] == 3 and report["counts"]["read_now"] == 5
    assert snapshot(out) == snapshot(clean)
    read.clear()
    again = ingest([str(papers)], out, seed=2)
    assert read == [] and again["counts"]["from_earlier_runs"] == 8
    assert snapshot(out) == snapshot(clean)
    # another seed re-splits without reading; another --dpi is refused
    ingest([str(papers)], out, seed=5)
    assert read == []
    with pytest.raises(ScituneError, match="--dpi 150"):
        ingest([str(papers)], out, dpi=100)


def test_same_paper_twice_is_read_once(papers: Path, tmp_path: Path):
    shutil.copytree(papers / "p0", papers / "copy-of-p0")
    report = ingest([str(papers), str(papers / "p1")], tmp_path / "out")
    assert report["counts"]["papers"] == 8 and report["counts"]["duplicates"] == 2
    assert {(Path(d["source"]).name, d["same_as"]) for d in report["duplicates"]} == {("p0", "copy-of-p0"), ("p1", "p1")}


def test_names_taken_get_a_key_suffix(tmp_path: Path):
    a = write_tree(tmp_path / "a" / "paper", {"main.tex": tex(1), "f.png": draw_figure()})
    b = write_tree(tmp_path / "b" / "paper", {"main.tex": tex(2), "f.png": draw_figure()})
    ingest([str(a), str(b)], tmp_path / "out")
    names = [json.loads(line)["name"] for line in (tmp_path / "out" / "papers.jsonl").read_text().splitlines()]
    assert names[0] == "paper" and names[1].startswith("paper-") and len(names[1]) == len("paper-") + 8


def test_splits_do_not_move_when_papers_are_added(papers: Path, tmp_path: Path):
    def splits(out: Path) -> dict[str, str]:
        return {p["name"]: p["split"] for p in map(json.loads, (out / "papers.jsonl").read_text().splitlines())}

    few = tmp_path / "few"
    shutil.copytree(papers, few / "papers")
    shutil.rmtree(few / "papers" / "p7")
    ingest([str(few / "papers")], tmp_path / "a")
    ingest([str(papers)], tmp_path / "b")
    first, second = splits(tmp_path / "a"), splits(tmp_path / "b")
    assert len(first) == 7 and {k: second[k] for k in first} == first


def test_data_scicap_reads_the_output_folder(papers: Path, tmp_path: Path):
    from scitune.cli import main
    from scitune.data.scicap import read_scicap

    out = tmp_path / "out"
    ingest([str(papers)], out, ratios=(1, 0, 0))
    assert {r["id"] for r in read_scicap(out)} == {r["id"] for r in read_scicap(out / "train.json")}
    assert len(read_scicap(out)) == 16 and read_scicap(out, split="test") == []
    assert main(["data", "scicap", "--input", str(out), "--images", str(out / "images"),
                 "--out", str(tmp_path / "align.json")]) == 0
    assert len(json.loads((tmp_path / "align.json").read_text())) == 16


@pytest.mark.parametrize("where", ["inside", "equal", "contains"])
def test_out_on_over_or_inside_an_input_is_refused(papers: Path, tmp_path: Path, capsys, where: str):
    from scitune.cli import main

    out = {"inside": papers / "p0" / "out", "equal": papers / "p0", "contains": tmp_path}[where]
    before = sorted(p.name for p in (papers / "p0").iterdir())
    assert main(["ingest", str(papers), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "input" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in (papers / "p0").iterdir()) == before
