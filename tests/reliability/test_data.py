"""`scitune data ...` with hostile files and outputs: one line, exit 2, nothing overwritten."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
from PIL import Image

from tests.reliability.harness import check_failure, check_unchanged, run_case

SCICAP = {
    "images": [{"id": 1, "file_name": "1.png", "figure_type": "Bar Chart", "ocr": ["a"]}],
    "annotations": [{"image_id": 1, "caption": "Figure 1: Sales.", "caption_no_index": "Sales.", "paragraph": [], "mention": []}],
}


def _png(size=(8, 8)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(buffer, format="PNG")
    return buffer.getvalue()


def _file(name: str, data: bytes | str):
    def make(root: Path) -> Path:
        path = root / name
        path.write_bytes(data if isinstance(data, bytes) else data.encode())
        return path

    return make


# (id, file name, content, pattern) for `data validate FILE --images images`
BAD_SAMPLE_FILES = [
    ("latin1-json", "s.json", '[{"id": "caf\xe9"}]'.encode("latin-1"), r"s\.json: not UTF-8 text"),
    ("latin1-jsonl", "s.jsonl", b'{"id": "1"}\n{"id": "caf\xe9"}\n', r"s\.jsonl:2: not UTF-8 text"),
    ("empty-list", "s.json", b"[]", r"s\.json: no samples to validate"),
    ("empty-jsonl", "s.jsonl", b"\n\n", r"s\.jsonl: no samples to validate"),
    ("empty-file", "s.json", b"", r"s\.json: not valid JSON"),
    ("object", "s.json", b'{"id": 1}', r"expected a JSON list of samples, got a dict"),
    ("number-record", "s.json", b"[1, 2]", r"record 0 is a int"),
    ("truncated", "s.json", b'[{"id": "1", "conv', r"not valid JSON \(Unterminated string"),
    ("deep-json", "s.json", b"[" * 100_000 + b"]" * 100_000, r"nested more than 64 levels deep"),
    ("deep-record", "s.json", b'[{"id": "1", "x": ' + b"[" * 70 + b"]" * 70 + b"}]", r"nested more than 64"),
    ("jsonl-bad-line", "s.jsonl", b'{"id": "1"}\n{oops\n', r"s\.jsonl:2: not valid JSON"),
    ("jsonl-list-line", "s.jsonl", b'[1]\n', r"s\.jsonl:1: expected a JSON object, got list"),
    ("jsonl-deep", "s.jsonl", b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}\n", r"s\.jsonl:1: nested more than 64"),
    ("wrong-suffix", "s.txt", b"[]", r"expected a \.json or \.jsonl file"),
    ("nan-literal", "s.json", b'[{"id": NaN, "conversations": [', r"not valid JSON"),
]


@pytest.mark.parametrize("name, filename, data, pattern", BAD_SAMPLE_FILES, ids=[b[0] for b in BAD_SAMPLE_FILES])
def test_validate_refuses_bad_files(tmp_path, name, filename, data, pattern):
    (tmp_path / "images").mkdir()
    (tmp_path / filename).write_bytes(data)
    check_failure(run_case(tmp_path, ["data", "validate", tmp_path / filename, "--images", tmp_path / "images"]), 2, pattern)


def test_validate_missing_file_and_folder(tmp_path):
    check_failure(run_case(tmp_path, ["data", "validate", tmp_path / "none.json"]), 2, r"none\.json: no such file")
    check_failure(run_case(tmp_path, ["data", "validate", tmp_path]), 2, r"no such file")


def test_validate_over_the_size_limit(tmp_path, monkeypatch):
    import scitune.io.read as read

    monkeypatch.setattr(read, "MAX_DATA_BYTES", 50)
    (tmp_path / "s.json").write_text(json.dumps([{"id": str(i)} for i in range(20)]))
    check_failure(run_case(tmp_path, ["data", "validate", tmp_path / "s.json"]), 2, r"over the limit of 50 bytes")
    (tmp_path / "s.jsonl").write_text("".join(json.dumps({"id": str(i)}) + "\n" for i in range(20)))
    check_failure(run_case(tmp_path, ["data", "validate", tmp_path / "s.jsonl"]), 2, r"over the limit of 50 bytes")


ODD_TURNS = [
    ("from-list", {"from": ["human"], "value": "hi"}, "unknown_role"),
    ("from-dict", {"from": {"a": 1}, "value": "hi"}, "unknown_role"),
    ("from-number", {"from": 3, "value": "hi"}, "unknown_role"),
    ("value-list", {"from": "human", "value": ["hi"]}, "empty_turn"),
    ("turn-string", "hello", "missing_turns"),
]


@pytest.mark.parametrize("name, turn, reason", ODD_TURNS, ids=[o[0] for o in ODD_TURNS])
def test_validate_reports_odd_turns_without_a_traceback(tmp_path, name, turn, reason):
    (tmp_path / "s.json").write_text(json.dumps([{"id": "1", "conversations": [turn, {"from": "gpt", "value": "x"}]}]))
    outcome = run_case(tmp_path, ["data", "validate", tmp_path / "s.json"])
    assert outcome.code == 1 and outcome.err == "" and reason in outcome.out
    check_unchanged(outcome)


# --- builders: outputs that are inputs, folders, bad inputs --------------------------------


def _scicap(root: Path) -> Path:
    (root / "images").mkdir(exist_ok=True)
    (root / "images" / "1.png").write_bytes(_png())
    path = root / "scicap.json"
    path.write_text(json.dumps(SCICAP))
    return path


BUILDER_CASES = [
    ("scicap-out-is-input", lambda r: ["data", "scicap", "--input", _scicap(r), "--images", r / "images", "--out", r / "scicap.json"], r"--out .*scicap\.json: is the input"),
    ("scicap-out-is-folder", lambda r: (r / "runs").mkdir() or ["data", "scicap", "--input", _scicap(r), "--images", r / "images", "--out", r / "runs"], r"--out .*runs: is a folder"),
    ("scicap-out-is-images", lambda r: ["data", "scicap", "--input", _scicap(r), "--images", r / "images", "--out", r / "images" / "x.json"], r"--out .*x\.json: lies inside the input .*images"),
    ("scicap-out-exists", lambda r: _file("o.json", "[1]")(r) and ["data", "scicap", "--input", _scicap(r), "--images", r / "images", "--out", r / "o.json"], r"--out .*o\.json: exists; pass --overwrite"),
    ("scicap-out-inside-input-folder", lambda r: (_scicap(r), ["data", "scicap", "--input", r / "images", "--images", r / "images", "--out", r / "images" / "x.json"])[1], r"lies inside the input"),
    ("scicap-bad-suffix", lambda r: ["data", "scicap", "--input", _scicap(r), "--images", r / "images", "--out", r / "out.txt"], r"expected a \.json or \.jsonl output path"),
    ("scicap-latin1", lambda r: ["data", "scicap", "--input", _file("s.json", b'{"images": "caf\xe9"}')(r), "--images", r / "img", "--out", r / "o.json"], r"s\.json: not UTF-8 text"),
    ("scicap-not-scicap", lambda r: ["data", "scicap", "--input", _file("s.json", "[1]")(r), "--images", r / "img", "--out", r / "o.json"], r"not a SciCap file"),
    ("scicap-dangling-annotation", lambda r: ["data", "scicap", "--input", _file("s.json", json.dumps({"images": [], "annotations": [{"image_id": 9}]}))(r), "--images", r / "img", "--out", r / "o.json"], r"refers to image_id 9, which is not in images"),
    ("scicap-empty", lambda r: ["data", "scicap", "--input", _file("s.json", json.dumps({"images": [], "annotations": []}))(r), "--images", r / "img", "--out", r / "o.json"], r"no samples to write"),
    ("scicap-seed-negative", lambda r: ["data", "scicap", "--input", _scicap(r), "--images", r / "images", "--out", r / "o.json", "--seed", "-1"], r"--seed: must be >= 0"),
    ("scicap-task-unknown", lambda r: ["data", "scicap", "--input", _scicap(r), "--images", r / "images", "--out", r / "o.json", "--task", "x"], r"--task: invalid choice"),
    ("vistext-out-is-input", lambda r: ["data", "vistext", "--input", _file("v.json", "[]")(r), "--images", r, "--out", r / "v.json"], r"is the input"),
    ("vistext-missing-fields", lambda r: ["data", "vistext", "--input", _file("v.json", '[{"caption_id": "1"}]')(r), "--images", r / "img", "--out", r / "o.json"], r"missing or non-text field"),
    ("vistext-empty", lambda r: ["data", "vistext", "--input", _file("v.json", "[]")(r), "--images", r / "img", "--out", r / "o.json"], r"no samples to write"),
    ("vistext-deep", lambda r: ["data", "vistext", "--input", _file("v.json", "[" * 3000 + "]" * 3000)(r), "--images", r / "img", "--out", r / "o.json"], r"nested more than 64"),
    ("arxivcap-out-is-input", lambda r: ["data", "arxivcap", "--input", _file("a.json", "[]")(r), "--images", r / "img", "--out", r / "a.json"], r"is the input"),
    ("arxivcap-images-holds-input", lambda r: ["data", "arxivcap", "--input", _file("a.json", "[]")(r), "--images", r, "--out", r / "o.json"], r"--images .*contains the input"),
    ("arxivcap-no-pairs", lambda r: ["data", "arxivcap", "--input", _file("a.json", '[{"caption_images": [{"caption": "c"}]}]')(r), "--images", r / "img", "--out", r / "o.json"], r"expected caption and cil_pairs"),
    ("arxivcap-caption-not-text", lambda r: ["data", "arxivcap", "--input", _file("a.json", json.dumps([{"caption_images": [{"caption": ["c"], "cil_pairs": [{"image_file": "a.png"}]}]}]))(r), "--images", r / "img", "--out", r / "o.json"], r"caption must be text"),
    ("arxivcap-empty-captions", lambda r: ["data", "arxivcap", "--input", _file("a.json", json.dumps([{"caption_images": [{"caption": " ", "cil_pairs": [{"image_file": "a.png", "sub_caption": ""}]}]}]))(r), "--images", r / "img", "--out", r / "o.json"], r"no caption"),
    ("scienceqa-out-is-problems", lambda r: ["data", "scienceqa", "--root", r / "sqa", "--problems", _file("p.json", "{}")(r), "--out", r / "p.json"], r"is the input"),
    ("scienceqa-out-inside-release", lambda r: ["data", "scienceqa", "--root", r, "--out", r / "o.json"], r"lies inside the input"),
    ("scienceqa-not-a-release", lambda r: (r / "sqa").mkdir() or ["data", "scienceqa", "--root", r / "sqa", "--out", r / "o.json"], r"not a ScienceQA release"),
    ("scienceqa-orders-zero", lambda r: ["data", "scienceqa", "--root", r / "sqa", "--out", r / "o.json", "--orders", "0"], r"--orders: must be >= 1"),
    ("scienceqa-orders-text", lambda r: ["data", "scienceqa", "--root", r / "sqa", "--out", r / "o.json", "--orders", "two"], r"--orders: expected an integer"),
]


@pytest.mark.parametrize("name, argv, pattern", BUILDER_CASES, ids=[b[0] for b in BUILDER_CASES])
def test_builders_refuse(tmp_path, name, argv, pattern):
    args = argv(tmp_path)
    check_failure(run_case(tmp_path, args), 2, pattern)


def _release(root: Path, splits) -> Path:
    problem = {"question": "q?", "choices": ["a", "b"], "answer": 0, "hint": "", "image": None, "split": "test"}
    (root / "problems.json").write_text(json.dumps({"1": problem, "2": problem}))
    (root / "pid_splits.json").write_text(json.dumps(splits))
    return root


SPLIT_CASES = [
    ("split-string", {"test": "12"}, r"split 'test' must be a list of problem ids, got str"),
    ("split-unknown-problem", {"test": ["1", "99"]}, r"names 1 problem\(s\) not in problems\.json \(99\)"),
    ("split-missing", {"train": ["1"]}, r"no split 'test'"),
    ("splits-list", [["1"]], r"expected an object mapping split"),
    ("split-nested", {"test": [["1"]]}, r"must be a list of problem ids"),
]


@pytest.mark.parametrize("name, splits, pattern", SPLIT_CASES, ids=[s[0] for s in SPLIT_CASES])
def test_scienceqa_split_lists(tmp_path, name, splits, pattern):
    (tmp_path / "sqa").mkdir()
    _release(tmp_path / "sqa", splits)
    check_failure(run_case(tmp_path, ["data", "scienceqa", "--root", tmp_path / "sqa", "--out", tmp_path / "o.json"]), 2, pattern)


def _arxivcap_with_image(root: Path, image_file: str, data: bytes) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(
        [{"arxiv_id": "p1", "caption_images": [{"caption": "A plot.", "cil_pairs": [
            {"image_file": image_file, "sub_caption": "", "image": {"bytes": data}}]}]}]
    )
    pq.write_table(table, root / "papers.parquet")
    return root / "papers.parquet"


def test_arxivcap_export_does_not_follow_a_symlink_out_of_images(tmp_path):
    pytest.importorskip("pyarrow")
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "img").mkdir()
    os.symlink(outside, tmp_path / "img" / "link")
    paper = _arxivcap_with_image(tmp_path, "link/fig.png", _png())
    outcome = run_case(tmp_path, ["data", "arxivcap", "--input", paper, "--images", tmp_path / "img", "--out", tmp_path / "o.json"])
    check_failure(outcome, 2, r"leads out of .*img through a link")
    assert not any(outside.iterdir())


@pytest.mark.parametrize(
    "image_file, data, pattern",
    [
        ("../escape.png", _png(), r"escapes the image folder"),
        ("/tmp/abs.png", _png(), r"escapes the image folder"),
        ("fig.png", b"\x89PNG\r\n\x1a\nnot really", r"not an image PIL can read|unreadable image|image file is truncated"),
        ("fig.png", _png((10000, 10000)), r"decompression bomb"),
    ],
    ids=["dotdot", "absolute", "fake-png", "bomb"],
)
def test_arxivcap_export_refuses_bad_images(tmp_path, image_file, data, pattern):
    pytest.importorskip("pyarrow")
    paper = _arxivcap_with_image(tmp_path, image_file, data)
    outcome = run_case(tmp_path, ["data", "arxivcap", "--input", paper, "--images", tmp_path / "img", "--out", tmp_path / "o.json"])
    check_failure(outcome, 2, pattern)
