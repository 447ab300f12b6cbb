"""Output layout and splits by paper; the leakage guard; the command line."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from scitune.data.ingest import ingest
from scitune.data.ingest.overlap import Item, find_overlaps, load_items
from scitune.data.ingest.writer import assign_splits
from scitune.errors import ScituneError
from tests.data.ingest.conftest import draw_figure, write_tree


def tex(caption: str, figures: int = 2) -> str:
    floats = "".join(f"\\begin{{figure}}\\includegraphics{{f.png}}\\caption{{{caption} number {k}.}}\\end{{figure}}\n"
                     for k in range(figures))
    return f"\\documentclass{{article}}\\begin{{document}}\n{floats}\\end{{document}}\n"


@pytest.fixture
def papers(tmp_path: Path) -> Path:
    root = tmp_path / "papers"
    for i in range(10):
        write_tree(root / f"p{i}", {"main.tex": tex(f"Paper {i} result figure with a long caption"),
                                    "f.png": draw_figure("bar" if i % 2 else "line")})
    return root


def test_assign_splits_by_paper_with_a_seed():
    names = [f"paper-{i}" for i in range(3000)]
    a, b, c = assign_splits(names, 0), assign_splits(names, 0), assign_splits(names, 1)
    assert a == b and a != c
    shares = {s: list(a.values()).count(s) / len(names) for s in ("train", "val", "test")}
    assert abs(shares["train"] - 0.8) < 0.03 and abs(shares["val"] - 0.1) < 0.02 and abs(shares["test"] - 0.1) < 0.02
    # a paper's split depends on its name and the seed only: adding papers moves none
    assert {n: s for n, s in assign_splits(names + [f"new-{i}" for i in range(500)], 0).items() if n in a} == a
    assert set(assign_splits(names, 0, (1, 0, 1)).values()) == {"train", "test"}
    assert set(assign_splits(names[:50], 7, (0, 0, 3)).values()) == {"test"}


@pytest.mark.parametrize("ratios", [(float("nan"), 10, 10), (-1, 10, 10), (float("inf"), 1, 1), (0, 0, 0), (1, 2)])
def test_bad_split_ratios_are_refused(ratios):
    with pytest.raises(ScituneError, match="--split: expected three finite, non-negative"):
        assign_splits(["a"], 0, ratios)


@pytest.mark.parametrize("value", ["nan,10,10", "-1,10,10", "inf,1,1", "1,2", "a,b,c"])
def test_cli_refuses_bad_split_in_one_line(papers: Path, tmp_path: Path, capsys, value: str):
    from scitune.cli import main

    assert main(["ingest", str(papers), "--out", str(tmp_path / "o"), f"--split={value}"]) == 2
    err = capsys.readouterr().err
    assert "--split" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_layout_read_by_scitune_data_scicap(papers: Path, tmp_path: Path):
    from scitune.data.scicap import build_instructions, read_scicap

    out = tmp_path / "out"
    report = ingest([str(papers)], out, seed=3)
    assert report["counts"]["figures"] == 20
    provenance = json.loads((out / "provenance.json").read_text())
    split_of_paper: dict = {}
    for row in provenance:
        assert split_of_paper.setdefault(row["paper"], row["split"]) == row["split"]  # never straddles
        assert row["kind"] == "latex" and row["tex_file"] == "main.tex"
    records = [r for s in ("train", "val", "test") for r in read_scicap(out / f"{s}.json")]
    assert len(records) == 20 and all((out / "images" / r["image"]).is_file() for r in records)
    assert {r["figure_type"] for r in records} == {None}
    # describe omits the missing type; the figure-type task needs one and says so
    sample = build_instructions(records[:1], task="describe")[0]
    assert sample["conversations"][1]["value"].startswith(records[0]["caption_no_index"])
    with pytest.raises(ScituneError, match="no figure type"):
        build_instructions(records[:1], task="figure-type")
    # same seed, same output; a rerun into the folder it wrote is allowed
    first = (out / "train.json").read_bytes()
    ingest([str(papers)], out, seed=3)
    assert (out / "train.json").read_bytes() == first
    assert not list(out.rglob(".*.tmp*"))


def test_out_must_be_new_empty_or_ingest_output(papers: Path, tmp_path: Path):
    other = write_tree(tmp_path / "other", {"notes.txt": "mine"})
    with pytest.raises(ScituneError, match="folder is not empty and holds no scitune marker"):
        ingest([str(papers)], other)
    ingest([str(papers)], other, overwrite=True)
    assert (other / "notes.txt").read_text() == "mine" and (other / "ingest.json").is_file()


def test_overlap_images_and_captions(tmp_path: Path):
    from PIL import Image

    png = draw_figure("line")
    resized = io.BytesIO()
    Image.open(io.BytesIO(png)).resize((100, 80)).save(resized, format="PNG")
    train = [Item("t", "a", ["Energy of the device over four days with a rising trend in spring"], png),
             Item("t", "b", ["Something else entirely about bars and groups"], draw_figure("bar"))]
    evals = [Item("e", "x", ["We plot the energy of the device over four days with a rising trend too"], resized.getvalue()),
             Item("e", "y", ["Unrelated text about rocks and minerals in the field"], None)]
    found = find_overlaps(train, evals)
    assert {(o["kind"], o["train"], o["eval"]) for o in found} == {("image", "a", "x"), ("caption", "a", "x")}
    assert find_overlaps(train, evals, min_share=0.95, hash_distance=0, compare_images=False) == []


def test_ingest_fails_on_overlap_with_an_eval_set(papers: Path, tmp_path: Path):
    ingest([str(papers)], tmp_path / "first", seed=0, ratios=(1, 0, 0))
    report = ingest([str(papers)], tmp_path / "second", against=[str(tmp_path / "first" / "train.json")],
                    fail_on_overlap=True)
    assert report["written"] is False and report["overlaps"]
    assert not (tmp_path / "second" / "train.json").exists()
    items = load_items(str(tmp_path / "first"), split="train")
    assert len(items) == 20 and items[0].image.is_file()


def test_ingest_guard_fails_closed_on_images_it_cannot_check(papers: Path, tmp_path: Path):
    ingest([str(papers)], tmp_path / "first", seed=0, ratios=(1, 0, 0))
    empty = tmp_path / "no-images"
    empty.mkdir()
    # a wrong images folder: no eval image can be compared, so nothing may be written
    spec = f"{tmp_path / 'other' / 'train.json'}={empty}"
    (tmp_path / "other").mkdir()
    data = json.loads((tmp_path / "first" / "train.json").read_text())
    for a in data["annotations"]:
        a["caption_no_index"] = "an unrelated caption about other things entirely " + a["id"]
    (tmp_path / "other" / "train.json").write_text(json.dumps(data))
    report = ingest([str(papers)], tmp_path / "second", against=[spec], eval_split="train", fail_on_overlap=True)
    assert report["overlaps"] == []
    assert len(report["unchecked"]) == 20 and {u["side"] for u in report["unchecked"]} == {"eval"}
    assert report["written"] is False and not (tmp_path / "second" / "train.json").exists()
    saved = json.loads((tmp_path / "second" / "ingest.json").read_text())
    assert len(saved["unchecked"]) == 20
    # without --fail-on-overlap the split files are written and the unchecked items still reported
    report = ingest([str(papers)], tmp_path / "third", against=[spec], eval_split="train")
    assert report["written"] is True and len(report["unchecked"]) == 20


def test_cli_ingest_then_data_scicap_then_overlap(papers: Path, tmp_path: Path, capsys):
    from scitune.cli import main

    out = tmp_path / "mine"
    assert main(["ingest", str(papers), "--out", str(out), "--split", "60,20,20"]) == 0
    assert "wrote 20 figures from 10 papers" in capsys.readouterr().out
    assert main(["data", "scicap", "--input", str(out / "train.json"), "--images", str(out / "images"),
                 "--out", str(tmp_path / "align.json")]) == 0
    assert main(["data", "overlap", str(tmp_path / "align.json"), "--images", str(out / "images"),
                 "--against", str(out / "train.json"), "--fail"]) == 1
    assert main(["data", "overlap", str(tmp_path / "align.json"), "--images", str(out / "images"),
                 "--against", str(out / "test.json"), "--fail", "--no-images"]) == 0  # the fixture reuses two images


def test_cli_names_the_extra_when_missing(monkeypatch, tmp_path: Path, capsys):
    import builtins

    from scitune.cli import main

    real_import = builtins.__import__

    def no_pdfium(name, *args, **kwargs):
        if name == "pypdfium2":
            raise ImportError("no pypdfium2", name="pypdfium2")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pdfium)
    assert main(["ingest", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert 'pip install -e ".[ingest]"' in capsys.readouterr().err
