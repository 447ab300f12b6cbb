"""The io layer on its own: atomic writes keep the old file on failure (a full disk), output
claims, and the one-line failure of any exception at the command line."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from scitune.errors import RunFailed, ScituneError, describe_failure
from scitune.io import atomic, outputs
from tests.reliability.harness import check_failure, run_case


def _full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize(
    "write",
    [
        lambda p: atomic.write_text(p, "new" * 1000),
        lambda p: atomic.write_bytes(p, b"new" * 1000),
        lambda p: atomic.write_json(p, {"new": list(range(1000))}),
        lambda p: atomic.write_jsonl(p, [{"i": i} for i in range(1000)]),
    ],
    ids=["text", "bytes", "json", "jsonl"],
)
def test_a_full_disk_keeps_the_old_file(tmp_path, monkeypatch, write):
    path = tmp_path / "good.json"
    path.write_text('{"good": true}\n')
    monkeypatch.setattr(os, "fsync", _full_disk)
    with pytest.raises(OSError):
        write(path)
    assert path.read_text() == '{"good": true}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["good.json"]


def test_a_failed_folder_write_keeps_the_old_folder(tmp_path):
    out = tmp_path / "model"
    out.mkdir()
    (out / "weights").write_text("old")

    def write(tmp: Path) -> None:
        (tmp / "weights").write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError):
        atomic.write_dir_atomically(out, write)
    assert (out / "weights").read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["model"]
    atomic.write_dir_atomically(out, lambda tmp: (tmp / "weights").write_text("new"))
    assert (out / "weights").read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["model"]


def test_atomic_write_keeps_the_file_mode(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("x")
    path.chmod(0o600)
    atomic.write_text(path, "y")
    assert path.read_text() == "y" and (path.stat().st_mode & 0o777) == 0o600


CLAIMS = [
    ("same-as-input", dict(path="a.json", inputs=["a.json"]), r"is the input"),
    ("input-inside", dict(path="d", inputs=["d/x.json"], kind="dir"), r"contains the input"),
    ("inside-input", dict(path="d/sub", inputs=["d"], kind="dir"), r"lies inside the input"),
    ("inside-input-file", dict(path="d/x.json/y", inputs=["d/x.json"]), r"lies inside the input"),
    ("file-for-folder", dict(path="a.json", kind="dir"), r"exists and is a file"),
    ("folder-for-file", dict(path="d"), r"is a folder; expected a file path"),
    ("existing-file", dict(path="a.json"), r"exists; pass --overwrite"),
    ("foreign-folder", dict(path="d", kind="dir"), r"folder is not empty"),
    ("earlier-product", dict(path="run", kind="dir", marker="run"), r"holds an earlier run; pass --overwrite"),
    ("other-product", dict(path="run", kind="dir", marker="corpus"), r"holds a scitune 'run' folder, not a corpus"),
]


@pytest.mark.parametrize("name, kwargs, pattern", CLAIMS, ids=[c[0] for c in CLAIMS])
def test_claim_output_refuses(tmp_path, name, kwargs, pattern):
    (tmp_path / "a.json").write_text("{}")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.json").write_text("{}")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "weights").write_text("1")
    outputs.write_marker(tmp_path / "run", "run")
    kwargs = dict(kwargs)
    path = tmp_path / kwargs.pop("path")
    kwargs["inputs"] = [tmp_path / i for i in kwargs.get("inputs", [])]
    with pytest.raises(ScituneError, match=pattern):
        outputs.claim_output(path, **kwargs)


def test_claim_output_follows_links_to_inputs(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.json").write_text("[]")
    (tmp_path / "link").symlink_to(tmp_path / "data")
    with pytest.raises(ScituneError, match="is the input"):
        outputs.claim_output(tmp_path / "link" / "train.json", inputs=[tmp_path / "data" / "train.json"], overwrite=True)


def test_claim_output_allows(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x").write_text("1")
    (tmp_path / "a.json").write_text("{}")
    assert outputs.claim_output(tmp_path / "new", kind="dir") == tmp_path / "new"
    assert outputs.claim_output(tmp_path / "new.json") == tmp_path / "new.json"
    assert outputs.claim_output(tmp_path / "a.json", overwrite=True) == tmp_path / "a.json"
    assert outputs.claim_output(tmp_path / "d", overwrite=True, kind="dir") == tmp_path / "d"
    outputs.write_marker(tmp_path / "d", "run")
    assert outputs.claim_output(tmp_path / "d", kind="dir", marker="run", reuse=True) == tmp_path / "d"
    assert outputs.read_marker(tmp_path / "d")["kind"] == "run"
    (tmp_path / "stopped").mkdir()
    outputs.write_marker(tmp_path / "stopped", "corpus")  # a write that stopped before its first file
    assert outputs.claim_output(tmp_path / "stopped", kind="dir", marker="corpus") == tmp_path / "stopped"


FAILURES = [
    (OSError(errno.ENOSPC, "No space left on device", "/data/out.json"), 1, r"/data/out\.json: No space left on device"),
    (OSError(errno.ENOENT, "No such file or directory", "x.png"), 2, r"x\.png: No such file or directory"),
    (OSError(errno.EACCES, "Permission denied", "/root/x"), 2, r"/root/x: Permission denied"),
    (OSError(errno.EIO, "Input/output error"), 1, r"Input/output error"),
    (b"\xff".decode("utf-8", "replace") and UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"), 2, r"not UTF-8 text"),
    (RecursionError("maximum recursion depth exceeded"), 2, r"nested too deeply"),
    (MemoryError(), 1, r"out of memory"),
    (ValueError("a\nb"), 1, r"ValueError: a b \(run with --debug for the traceback\)"),
    (RunFailed("training stopped at step 3"), 1, r"training stopped at step 3"),
    (ScituneError("bad\ninput"), 2, r"^bad input$"),
]


@pytest.mark.parametrize("error, code, pattern", FAILURES, ids=[type(f[0]).__name__ + str(i) for i, f in enumerate(FAILURES)])
def test_any_failure_is_one_line_with_an_exit_code(tmp_path, monkeypatch, error, code, pattern):
    message, got = describe_failure(error)
    assert got == code and "\n" not in message
    import re

    assert re.search(pattern, message)

    import scitune.commands.corpus as corpus

    def fail(args):
        raise error

    monkeypatch.setattr(corpus, "run", fail)
    check_failure(run_case(tmp_path, ["corpus", "build", "--out", tmp_path / "c"]), code, pattern.lstrip("^").rstrip("$"))


def test_debug_shows_the_traceback(tmp_path, monkeypatch):
    import scitune.commands.corpus as corpus
    from scitune.cli import main

    monkeypatch.setattr(corpus, "run", lambda args: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left")))
    with pytest.raises(OSError):
        main(["--debug", "corpus", "build", "--out", str(tmp_path / "c")])


def test_ctrl_c_is_130(tmp_path, monkeypatch):
    import scitune.commands.corpus as corpus

    monkeypatch.setattr(corpus, "run", lambda args: (_ for _ in ()).throw(KeyboardInterrupt()))
    outcome = run_case(tmp_path, ["corpus", "build", "--out", tmp_path / "c"])
    assert outcome.code == 130 and outcome.err == "scitune: interrupted\n"


ARGUMENTS = [
    (["corpus", "build", "--out", "{t}/c", "--figures", "abc"], r"argument --figures: invalid int value"),
    (["corpus", "build", "--out", "{t}/c", "--figures", "3"], r"--figures: need at least"),
    (["corpus", "build", "--out", "{t}/a.txt"], r"exists and is a file"),
    (["corpus", "build", "--out", "{t}/notes"], r"folder is not empty"),
    (["data", "validate", "{t}/a.txt", "--list", "-1"], r"--list: must be >= 0, got -1"),
    (["data", "validate", "{t}/a.txt", "--image-tokens", "0"], r"--image-tokens: must be >= 1"),
    (["data", "validate", "{t}/a.txt", "--max-length", "-5"], r"--max-length: must be >= 1"),
    (["data", "nonsense"], r"invalid choice: 'nonsense'"),
    (["train"], r"the following arguments are required: recipe"),
    (["model", "build", "--vision-feature-layer", "x", "--out", "{t}/m"], r"invalid int value"),
]


@pytest.mark.parametrize("argv, pattern", ARGUMENTS, ids=[" ".join(a[0][:3]) + str(i) for i, a in enumerate(ARGUMENTS)])
def test_bad_arguments_are_one_line(tmp_path, argv, pattern):
    (tmp_path / "a.txt").write_text("x")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "n").write_text("mine")
    check_failure(run_case(tmp_path, [a.replace("{t}", str(tmp_path)) for a in argv]), 2, pattern)
