"""The corpus build: determinism, counts per split, the real layouts, the command line."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from scitune.cli import main
from scitune.data.corpus import FIGURE_TYPES, build_corpus

N_FIGURES, SEED, SIZE = 20, 3, 64  # as in conftest.py (checked by test_fixture_is_what_the_tests_assume)

SPLITS = ("train", "val", "test")


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_fixture_is_what_the_tests_assume(corpus):
    assert (corpus.n_figures, corpus.seed, corpus.size) == (N_FIGURES, SEED, SIZE)


def test_same_seed_gives_identical_bytes_with_any_worker_count(corpus, tmp_path):
    build_corpus(tmp_path / "again", figures=N_FIGURES, seed=SEED, image_size=SIZE, workers=2)
    first, second = _files(corpus.root), _files(tmp_path / "again")
    assert sorted(first) == sorted(second)
    different = [name for name in first if first[name] != second[name]]
    assert different == []
    assert len([n for n in first if n.endswith(".png")]) == 2 * N_FIGURES


def test_another_seed_gives_other_figures(corpus, tmp_path):
    build_corpus(tmp_path / "other", figures=N_FIGURES, seed=SEED + 1, image_size=SIZE, workers=1)
    other = _files(tmp_path / "other")
    mine = _files(corpus.root)
    assert other["scienceqa/problems.json"] != mine["scienceqa/problems.json"]
    pngs = [n for n in mine if n.startswith("scicap/images/")]
    assert sum(other[n] != mine[n] for n in pngs) >= len(pngs) - 1


def test_counts_per_split_match_the_files(corpus):
    counts = corpus.manifest["counts"]
    assert json.loads((corpus.root / "manifest.json").read_text()) == corpus.manifest
    assert corpus.manifest["seed"] == SEED and corpus.manifest["version"]
    # 80/10/10 of the figures, and every figure type equally often
    assert {s: len(corpus.scicap[s]["images"]) for s in SPLITS} == {"train": 16, "val": 2, "test": 2}
    assert counts["scicap"] == {s: len(corpus.scicap[s]["images"]) for s in SPLITS}
    types = Counter(img["figure_type"] for s in SPLITS for img in corpus.scicap[s]["images"])
    assert types == {t: N_FIGURES // 5 for t in FIGURE_TYPES}
    for s in SPLITS:
        assert counts["figure_type"][s] == dict(Counter(i["figure_type"] for i in corpus.scicap[s]["images"]))
    # val and test hold figures of different types even in a tiny corpus
    assert len({i["figure_type"] for s in ("val", "test") for i in corpus.scicap[s]["images"]}) >= 2
    # ScienceQA: one image problem per figure plus text-only problems, splits consistent
    assert len(corpus.problems) == N_FIGURES + max(7, N_FIGURES // 2)
    assert sorted(sum(corpus.pid_splits.values(), []), key=int) == sorted(corpus.problems, key=int)
    for s in SPLITS:
        assert all(corpus.problems[pid]["split"] == s for pid in corpus.pid_splits[s])
        assert counts["scienceqa"][s] == len(corpus.pid_splits[s])
        kinds = Counter(corpus.data["problems"][pid]["kind"] for pid in corpus.pid_splits[s])
        assert counts["question_kind"][s] == dict(kinds)
    with_image = [pid for pid, p in corpus.problems.items() if p["image"]]
    assert len(with_image) == N_FIGURES
    # a figure's ScienceQA problem is in the same split as its SciCap record
    split_of_file = {i["file_name"]: s for s in SPLITS for i in corpus.scicap[s]["images"]}
    for figure in corpus.data["figures"]:
        assert split_of_file[figure["file_name"]] == figure["split"] == corpus.problems[figure["pid"]]["split"]


def test_every_image_exists_where_the_layouts_say(corpus):
    for s in SPLITS:
        for image in corpus.scicap[s]["images"]:
            assert (corpus.root / "scicap" / "images" / image["file_name"]).is_file()
    for pid, problem in corpus.problems.items():
        path = corpus.root / "scienceqa" / "images" / problem["split"] / pid / "image.png"
        assert path.is_file() == (problem["image"] == "image.png")
        assert problem["image"] in ("image.png", None)
    scienceqa_pngs = list((corpus.root / "scienceqa" / "images").rglob("*.png"))
    assert len(scienceqa_pngs) == N_FIGURES
    from PIL import Image

    with Image.open(scienceqa_pngs[0]) as im:
        assert im.size == (SIZE, SIZE) and im.mode == "RGB"


def test_scienceqa_records_have_the_real_schema(corpus, shared_data):
    real = json.loads((shared_data / "scienceqa" / "problems_subset.json").read_text())
    real_keys = {tuple(p) for p in real.values()}
    assert len(real_keys) == 1
    real_values = {k: {p[k] for p in real.values()} for k in ("task", "subject")}
    real_grades = {p["grade"] for p in real.values()}
    for pid, problem in corpus.problems.items():
        assert pid.isdigit()
        assert tuple(problem) in real_keys  # same fields, same order
        assert problem["task"] in real_values["task"]
        assert problem["subject"] in real_values["subject"]
        assert problem["grade"] in real_grades | {"grade10"}
        assert isinstance(problem["answer"], int) and 0 <= problem["answer"] < len(problem["choices"])
        assert len(set(problem["choices"])) == len(problem["choices"]) >= 2
        assert all(isinstance(problem[k], str) for k in ("question", "hint", "lecture", "solution", "topic",
                                                           "category", "skill"))
        assert problem["question"] and problem["solution"] and problem["lecture"]
    real_splits = json.loads((shared_data / "scienceqa" / "pid_splits.json").read_text())
    assert set(SPLITS) <= set(real_splits) and set(corpus.pid_splits) == set(SPLITS)
    assert all(isinstance(pid, str) for pids in corpus.pid_splits.values() for pid in pids)


def test_scicap_records_have_the_challenge_layout(corpus, shared_data):
    real = json.loads((shared_data / "scicap" / "1001.0025v1-Figure2-1.json").read_text())
    for s in SPLITS:
        data = corpus.scicap[s]
        assert list(data) == ["images", "annotations"]
        by_id = {}
        for image in data["images"]:
            assert list(image) == ["id", "file_name", "figure_type", "ocr"]
            assert isinstance(image["id"], int) and image["file_name"] == f"{image['id']:012d}.png"
            assert image["figure_type"] in FIGURE_TYPES
            assert image["ocr"] and all(isinstance(t, str) and t for t in image["ocr"])
            by_id[image["id"]] = image
        assert real["figure-type"] in FIGURE_TYPES
        for ann in data["annotations"]:
            assert list(ann) == ["image_id", "id", "caption", "caption_no_index", "paragraph", "mention"]
            assert ann["image_id"] in by_id and ann["id"] != ann["image_id"]
            number, _, rest = ann["caption"].partition(": ")
            assert number.startswith("Figure ") and number[7:].isdigit() and rest == ann["caption_no_index"]
            assert all(isinstance(p, str) and p for p in ann["paragraph"])
            # mention: one list of sentences per citing paragraph, each sentence from a paragraph
            assert ann["mention"] and all(isinstance(m, list) and m for m in ann["mention"])
            for sentences in ann["mention"]:
                for sentence in sentences:
                    assert number in sentence and any(sentence[:-1] in p for p in ann["paragraph"])
        assert len(data["annotations"]) == len(data["images"])


def test_cli_builds_and_rebuilds_in_place(tmp_path, capsys):
    out = tmp_path / "c"
    assert main(["corpus", "build", "--out", str(out), "--figures", "10", "--image-size", "48"]) == 0
    assert "train" in capsys.readouterr().out
    assert len(list((out / "scicap" / "images").iterdir())) == 10
    # an earlier corpus is replaced only with --overwrite
    before = (out / "manifest.json").read_bytes()
    assert main(["corpus", "build", "--out", str(out), "--figures", "5", "--image-size", "48", "--seed", "2"]) == 2
    assert "holds an earlier corpus; pass --overwrite" in capsys.readouterr().err
    assert (out / "manifest.json").read_bytes() == before
    # a rebuild replaces the earlier corpus: no stale images remain
    assert main(["corpus", "build", "--out", str(out), "--figures", "5", "--image-size", "48", "--seed", "2",
                 "--overwrite"]) == 0
    assert len(list((out / "scicap" / "images").iterdir())) == 5
    assert json.loads((out / "manifest.json").read_text())["figures"] == 5


@pytest.mark.parametrize(
    "args, message",
    [
        (["--figures", "3"], "--figures"),
        (["--image-size", "8"], "--image-size"),
        (["--seed", "-1"], "--seed"),
        (["--workers", "0"], "--workers"),
    ],
)
def test_cli_rejects_bad_options(tmp_path, capsys, args, message):
    assert main(["corpus", "build", "--out", str(tmp_path / "c"), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("scitune: error: ") and message in err and err.count("\n") == 1


def test_cli_refuses_a_folder_that_is_not_a_corpus(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["corpus", "build", "--out", str(tmp_path), "--figures", "5"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_workers_run_from_a_script_without_a_main_guard(tmp_path):
    """Render processes must not re-import the caller's main module (multiprocessing's spawn
    would run this script again in every worker and fail)."""
    import subprocess
    import sys

    import scitune

    script = tmp_path / "make_corpus.py"
    script.write_text(
        "from scitune.data.corpus import build_corpus\n"
        f"build_corpus({str(tmp_path / 'c')!r}, figures=12, seed=1, image_size=32, workers=2)\n"
        "print('built')\n"
    )
    src = str(Path(scitune.__file__).resolve().parents[1])
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": src, "PATH": "/usr/bin:/bin", "PYTHONHASHSEED": "12345"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("built") == 1
    assert len(list((tmp_path / "c" / "scicap" / "images").iterdir())) == 12
    # another interpreter (other hash seed), other worker count: the same bytes
    build_corpus(tmp_path / "here", figures=12, seed=1, image_size=32, workers=1)
    assert _files(tmp_path / "c") == _files(tmp_path / "here")
