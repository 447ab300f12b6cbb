"""`scitune.io.outputs`: the one rule for where a command may write."""

from __future__ import annotations

import pytest

from scitune.errors import ScituneError
from scitune.io.outputs import claim_output, refuse_overlap, write_marker


def test_refuse_overlap_each_relation(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.json").write_text("[]")
    folder, file = tmp_path / "in", tmp_path / "in" / "a.json"
    cases = [(file, [file], "is the input"), (folder / "b.json", [folder], "lies inside the input"),
             (file / "x", [file], "lies inside the input"), (tmp_path, [file], "contains the input"),
             (folder, [folder], "is the input")]
    for out, inputs, relation in cases:
        with pytest.raises(ScituneError, match=f"--x {out}: {relation}"):
            refuse_overlap(out, [None, "", *inputs], "--x")
    refuse_overlap(tmp_path / "elsewhere.json", [tmp_path / "in"])  # apart: nothing raised


def test_refuse_overlap_follows_links(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "data")
    with pytest.raises(ScituneError, match="lies inside the input"):
        refuse_overlap(tmp_path / "alias" / "out.json", [tmp_path / "data"])


def test_claim_output_is_a_check_only(tmp_path):
    assert claim_output(tmp_path / "new" / "out", kind="dir") == tmp_path / "new" / "out"
    assert not (tmp_path / "new").exists()


def test_claim_output_of_a_marked_folder(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    write_marker(run, "run")
    assert claim_output(run, kind="dir", marker="run") == run  # only the marker: a stopped write, as empty
    (run / "weights").write_text("1")
    with pytest.raises(ScituneError, match="holds an earlier run; pass --overwrite"):
        claim_output(run, kind="dir", marker="run")
    assert claim_output(run, kind="dir", marker="run", reuse=True) == run
    assert claim_output(run, kind="dir", marker="corpus", overwrite=True) == run
    with pytest.raises(ValueError):
        claim_output(run, kind="folder")
