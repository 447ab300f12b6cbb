"""Command-line habits: key=value overrides anywhere, --quiet, progress bars only on a terminal,
TensorBoard asked for but not installed."""

import importlib.util

import pytest

from scitune import cli
from scitune.progress import progress_bar

from tests.train.data import write_dataset, write_recipe


def test_overrides_anywhere_on_the_line():
    parser = cli.build_parser()
    args = cli.parse(parser, ["train", "r.yaml", "--stage", "instruct", "align.lr=1e-3", "--resume", "run.seed=2"])
    assert args.overrides == ["align.lr=1e-3", "run.seed=2"] and args.stage == ["instruct"] and args.resume
    args = cli.parse(parser, ["train", "r.yaml", "run.seed=1", "--stage", "align"])
    assert args.overrides == ["run.seed=1"]


def test_unknown_words_are_still_refused(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.parse(cli.build_parser(), ["train", "r.yaml", "--stage", "align", "--bogus"])
    assert stop.value.code == 2 and "unrecognized arguments: --bogus" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # a command without overrides takes no key=value
        cli.parse(cli.build_parser(), ["predict", "--model", "m", "q", "a=b"])


def test_progress_bars_only_on_a_terminal_and_never_quiet(monkeypatch):
    monkeypatch.delenv("SCITUNE_QUIET", raising=False)
    monkeypatch.setattr("sys.stderr.isatty", lambda: False)
    assert progress_bar(range(3)).disable
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    assert not progress_bar(range(3)).disable
    assert progress_bar(range(3), enabled=False).disable  # e.g. not the main process
    monkeypatch.setenv("SCITUNE_QUIET", "1")
    assert progress_bar(range(3)).disable


def test_tensorboard_without_the_package_is_an_error(tmp_path, monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    train, images = write_dataset(tmp_path / "data", n=4)
    recipe = write_recipe(tmp_path / "r.yaml", train, images, tmp_path / "run", with_instruct=False)
    assert cli.main(["train", str(recipe), "run.tensorboard=true"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "scitune: error: run.tensorboard: true needs TensorBoard: pip install 'scitune[tensorboard]'"
    assert not (tmp_path / "run").exists()
