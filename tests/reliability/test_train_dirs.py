"""`scitune train` run folders: never written over without being asked, `--resume` only where
there is something to resume; every refusal happens before anything is written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.reliability.harness import check_failure, run_case


def _earlier_run(run: Path, finished: bool = True) -> Path:
    (run / "align" / "checkpoints" / "step-0000004").mkdir(parents=True)
    (run / ".scitune").write_text(json.dumps({"kind": "run"}))
    (run / "config.yaml").write_text("the config this run was trained with\n")
    (run / "align" / "metrics.jsonl").write_text('{"step": 1, "loss": 2.0}\n')
    if finished:
        (run / "align" / "done.json").write_text(json.dumps({"steps": 4}))
    return run


CASES = [
    ("out-is-a-file", lambda ws: ["train", ws / "recipe.yaml", "--out", ws / "notes" / "mine.txt"], r"run\.out .*mine\.txt: exists and is a file"),
    ("out-is-the-training-file", lambda ws: ["train", ws / "recipe.yaml", "--out", ws / "samples.json"], r"run\.out .*samples\.json: is the input"),
    ("out-inside-images", lambda ws: ["train", ws / "recipe.yaml", "--out", ws / "images" / "run"], r"run\.out .*run: lies inside the input .*images"),
    ("out-is-users-folder", lambda ws: ["train", ws / "recipe.yaml", "--out", ws / "notes"], r"run\.out .*notes: folder is not empty and holds no scitune marker"),
    ("resume-without-run", lambda ws: ["train", ws / "recipe.yaml", "--resume"], r"--resume: .*run holds no scitune run to continue"),
    ("resume-users-folder", lambda ws: ["train", ws / "recipe.yaml", "--out", ws / "notes", "--resume"], r"folder is not empty"),
    ("resume-and-overwrite", lambda ws: ["train", ws / "recipe.yaml", "--resume", "--overwrite"], r"--resume and --overwrite exclude each other"),
    ("finished-run-again", lambda ws: (_earlier_run(ws / "run"), ["train", ws / "recipe.yaml"])[1], r"holds a finished run; continue it with --resume, or start over with --overwrite"),
    ("unfinished-run-again", lambda ws: (_earlier_run(ws / "run", finished=False), ["train", ws / "recipe.yaml"])[1], r"holds an earlier run"),
    ("resume-without-checkpoint", lambda ws: ((ws / "run").mkdir(), (ws / "run" / ".scitune").write_text('{"kind": "run"}'), ["train", ws / "recipe.yaml", "--resume"])[-1], r"no checkpoint and no finished stage to continue from"),
    ("corpus-folder-as-run", lambda ws: ((ws / "run").mkdir(), (ws / "run" / ".scitune").write_text('{"kind": "corpus"}'), (ws / "run" / "manifest.json").write_text("{}"), ["train", ws / "recipe.yaml"])[-1], r"holds a scitune 'corpus' folder, not a run"),
    ("unknown-stage", lambda ws: ["train", ws / "recipe.yaml", "--stage", "pretrain"], r"--stage pretrain: the recipe has no such stage; it has align"),
    ("train-file-missing", lambda ws: ["train", ws / "recipe.yaml", "align.data.train=" + str(ws / "none.json")], r"align\.data\.train .*none\.json'?: no such file"),
    ("train-file-unset", lambda ws: ["train", ws / "recipe.yaml", "align.data.train="], r"align\.data\.train: must not be null"),
    ("train-file-empty-string", lambda ws: ["train", ws / "recipe.yaml", "align.data.train=''"], r"align\.data\.train: no training file given"),
    ("images-missing", lambda ws: ["train", ws / "recipe.yaml", "align.data.images=" + str(ws / "nope")], r"align\.data\.images .*nope'?: no such folder"),
    ("train-file-latin1", lambda ws: ((ws / "samples.json").write_bytes(b'[{"id": "caf\xe9"}]'), ["train", ws / "recipe.yaml"])[-1], r"samples\.json: not UTF-8 text"),
    ("train-file-deep", lambda ws: ((ws / "samples.json").write_bytes(b"[" * 50000 + b"]" * 50000), ["train", ws / "recipe.yaml"])[-1], r"nested more than 64"),
]


@pytest.mark.parametrize("name, argv, pattern", CASES, ids=[c[0] for c in CASES])
def test_run_folder_policy(ws, name, argv, pattern):
    args = argv(ws)
    outcome = run_case(ws, args)
    check_failure(outcome, 2, pattern)
    if name.startswith(("finished", "unfinished")):
        assert (ws / "run" / "config.yaml").read_text() == "the config this run was trained with\n"


def test_a_failed_fresh_run_leaves_no_config_over_a_finished_one(ws):
    """The bad-input run is refused before config.yaml is touched (checked byte for byte)."""
    _earlier_run(ws / "run")
    outcome = run_case(ws, ["train", ws / "recipe.yaml", "align.lr=2e-3"])
    check_failure(outcome, 2, r"holds a finished run")
