"""Outputs never land on, over or inside inputs, and never over an earlier product without
`--overwrite`: every command that writes refuses before doing its work (one line, exit 2, every
earlier file byte-identical)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.reliability.harness import check_failure, run_case

from ..train.data import write_dataset

KEY = [{"id": "1", "conversations": [{"from": "human", "value": "Which?\nA. a\nB. b"}, {"from": "gpt", "value": "A"}]}]


def _eval_inputs(root: Path) -> dict[str, Path]:
    (root / "preds").mkdir()
    (root / "key.json").write_text(json.dumps(KEY))
    (root / "preds" / "p.jsonl").write_text(json.dumps({"question_id": "1", "text": "A"}) + "\n")
    release = root / "sqa"
    release.mkdir()
    (release / "problems.json").write_text(json.dumps({"1": {"question": "q?", "choices": ["a", "b"], "answer": 0,
                                                             "hint": "", "image": None, "split": "test"}}))
    (release / "pid_splits.json").write_text(json.dumps({"test": ["1"]}))
    (root / "done").mkdir()
    (root / "done" / "metrics.json").write_text("{}\n")
    return {"key": root / "key.json", "preds": root / "preds" / "p.jsonl", "release": release}


def _eval(root: Path, out: Path, *extra) -> list:
    files = _eval_inputs(root)
    return ["eval", "scienceqa", "--answer-key", files["key"], "--predictions", files["preds"], "--out", out, *extra]


EVAL_CASES = [
    ("eval-out-is-the-predictions", lambda r: _eval(r, r / "preds" / "p.jsonl"), r"--out .*p\.jsonl: is the input"),
    ("eval-out-holds-the-predictions", lambda r: _eval(r, r / "preds"), r"--out .*preds: contains the input .*p\.jsonl"),
    ("eval-out-is-the-answer-key", lambda r: _eval(r, r / "key.json"), r"--out .*key\.json: is the input"),
    ("eval-out-inside-the-release", lambda r: ["eval", "scienceqa", "--problems", (_eval_inputs(r), r / "sqa")[1],
                                               "--predictions", r / "preds" / "p.jsonl", "--out", r / "sqa" / "eval"],
     r"--out .*eval: lies inside the input .*sqa"),
    ("eval-out-beside-problems-json", lambda r: ["eval", "scienceqa", "--problems", (_eval_inputs(r), r / "sqa" / "problems.json")[1],
                                                 "--predictions", r / "preds" / "p.jsonl", "--out", r / "sqa"],
     r"--out .*sqa: contains the input"),
    ("eval-over-an-earlier-eval", lambda r: _eval(r, r / "done"), r"--out .*done: folder is not empty .* pass --overwrite"),
    ("mathvista-out-is-the-problems", lambda r: ["eval", "mathvista", "--problems", (_eval_inputs(r), r / "key.json")[1],
                                                                     "--predictions", r / "preds" / "p.jsonl", "--out", r / "key.json"],
     r"is the input"),
]


@pytest.mark.parametrize("name, argv, pattern", EVAL_CASES, ids=[c[0] for c in EVAL_CASES])
def test_eval_refuses_outputs_over_inputs_before_scoring(tmp_path, name, argv, pattern):
    outcome = run_case(tmp_path, argv(tmp_path))
    check_failure(outcome, 2, pattern)
    assert "Avg" not in outcome.out and "accuracy" not in outcome.out.lower()  # nothing was scored


def test_eval_writes_into_a_new_folder_and_over_its_own_only_with_overwrite(tmp_path):
    argv = _eval(tmp_path, tmp_path / "eval")
    first = run_case(tmp_path, argv)
    assert first.code == 0, first.err
    assert (tmp_path / "eval" / "metrics.json").is_file()
    again = run_case(tmp_path, argv)
    check_failure(again, 2, r"--out .*eval: folder is not empty")
    assert run_case(tmp_path, [*argv, "--overwrite"]).code == 0


def _overlap_inputs(root: Path) -> tuple[Path, Path]:
    train, images = write_dataset(root / "train", n=2)
    evals, _ = write_dataset(root / "eval", n=2)
    return train, evals


OTHER_CASES = [
    ("overlap-out-is-the-training-file", lambda r: ["data", "overlap", _overlap_inputs(r)[0], "--against", r / "eval" / "train.json",
                                                    "--out", r / "train" / "train.json"], r"--out .*train\.json: is the input"),
    ("overlap-out-inside-the-images", lambda r: ["data", "overlap", _overlap_inputs(r)[0], "--images", r / "train" / "images",
                                                 "--against", r / "eval" / "train.json", "--out", r / "train" / "images" / "o.json"],
     r"lies inside the input"),
    ("overlap-out-exists", lambda r: (r / "report.json").write_text("{}") and ["data", "overlap", _overlap_inputs(r)[0], "--against",
                                                                                r / "eval" / "train.json", "--out", r / "report.json"],
     r"--out .*report\.json: exists; pass --overwrite"),
    ("predict-out-is-the-batch", lambda r: (r / "b.jsonl").write_text('{"id": "1", "prompt": "hi"}\n') and
     ["predict", "--model", r / "m", "--batch", r / "b.jsonl", "--out", r / "b.jsonl"], r"--out .*b\.jsonl: is the input"),
    ("predict-out-exists", lambda r: (r / "b.jsonl").write_text('{"id": "1", "prompt": "hi"}\n') and (r / "p.jsonl").write_text("x\n") and
     ["predict", "--model", r / "m", "--batch", r / "b.jsonl", "--out", r / "p.jsonl"], r"--out .*p\.jsonl: exists; pass --overwrite"),
    ("predict-out-inside-the-model", lambda r: (r / "b.jsonl").write_text('{"id": "1", "prompt": "hi"}\n') and (r / "m").mkdir() or
     ["predict", "--model", r / "m", "--batch", r / "b.jsonl", "--out", r / "m" / "p.jsonl"], r"lies inside the input .*m"),
    ("predict-empty-question", lambda r: ["predict", "--model", r / "m", ""], r"the question is empty"),
    ("predict-blank-question", lambda r: ["predict", "--model", r / "m", "  \n "], r"the question is empty"),
]


@pytest.mark.parametrize("name, argv, pattern", OTHER_CASES, ids=[c[0] for c in OTHER_CASES])
def test_commands_refuse_outputs_over_inputs(tmp_path, name, argv, pattern):
    check_failure(run_case(tmp_path, argv(tmp_path)), 2, pattern)


def test_corpus_build_over_an_earlier_corpus_needs_overwrite(tmp_path):
    from scitune.data.corpus import build_corpus

    build_corpus(tmp_path / "c", figures=5, seed=0, image_size=32, workers=1)
    outcome = run_case(tmp_path, ["corpus", "build", "--out", tmp_path / "c", "--figures", "6", "--image-size", "32"])
    check_failure(outcome, 2, r"--out .*c: holds an earlier corpus; pass --overwrite")


def test_demo_over_an_earlier_demo_needs_overwrite(tmp_path):
    from scitune.demo import claim_demo_folder
    from scitune.errors import ScituneError
    from scitune.io.outputs import write_marker

    (tmp_path / "demo").mkdir()
    write_marker(tmp_path / "demo", "demo")
    (tmp_path / "demo" / "metrics.json").write_text("{}")
    with pytest.raises(ScituneError, match=r"holds an earlier demo; pass --overwrite"):
        claim_demo_folder(tmp_path / "demo")
    assert claim_demo_folder(tmp_path / "demo", overwrite=True) == tmp_path / "demo"


def test_scienceqa_parquet_images_over_an_earlier_export_need_overwrite(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import io

    import pyarrow.parquet as pq
    from PIL import Image

    png = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(png, format="PNG")
    row = {"image": {"bytes": png.getvalue(), "path": None}, "question": "q?", "choices": ["a", "b"], "answer": 0,
           "hint": "", "task": "closed choice", "grade": "grade1", "subject": "natural science", "topic": "t",
           "category": "c", "skill": "s", "lecture": "", "solution": ""}
    (tmp_path / "sqa" / "data").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist([row]), tmp_path / "sqa" / "data" / "test-00000-of-00001.parquet")
    argv = ["data", "scienceqa", "--root", tmp_path / "sqa", "--out", tmp_path / "out" / "a.json"]
    first = run_case(tmp_path, argv)
    assert first.code == 0, first.err
    assert (tmp_path / "out" / "images" / "test").is_dir()
    again = run_case(tmp_path, [*argv[:-1], tmp_path / "out" / "b.json"])
    check_failure(again, 2, r"--images-out .*images/test: folder is not empty")
    assert run_case(tmp_path, [*argv[:-1], tmp_path / "out" / "b.json", "--overwrite"]).code == 0
