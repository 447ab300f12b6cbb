"""Library messages go through the `scitune` loggers: a library user hears them with logging,
silences or redirects them there; the `scitune` command shows them on the terminal (rank 0 only
under a distributed launch)."""

from __future__ import annotations

import logging

import pytest

from scitune import console
from scitune.data.corpus import build_corpus
from scitune.data.corpus.build import MIN_FIGURES


@pytest.fixture
def scitune_logger():
    """The `scitune` logger, put back as it was (handlers and level) after the test."""
    logger = logging.getLogger("scitune")
    handlers, level = list(logger.handlers), logger.level
    yield logger
    logger.handlers[:] = handlers
    logger.setLevel(level)


def _build(tmp_path, name: str) -> None:
    build_corpus(tmp_path / name, figures=MIN_FIGURES, image_size=32, workers=1)


def test_a_library_call_reports_progress_through_its_logger(tmp_path, caplog, scitune_logger):
    scitune_logger.setLevel(logging.INFO)
    _build(tmp_path, "heard")
    (record,) = [r for r in caplog.records if r.name == "scitune.data.corpus.build"]
    assert record.levelno == logging.INFO and record.getMessage().startswith(f"rendering {MIN_FIGURES} figures at 32 px")


def test_silencing_the_scitune_logger_silences_the_library(tmp_path, caplog, scitune_logger, capsys):
    console.configure()  # as the command sets it up: shown on stdout
    scitune_logger.setLevel(logging.WARNING)
    _build(tmp_path, "quiet")
    assert not [r for r in caplog.records if r.name.startswith("scitune")]
    assert "rendering" not in capsys.readouterr().out


def test_the_command_shows_messages_on_stdout_once_however_often_configured(capsys, scitune_logger, monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    console.configure()
    console.configure()
    logging.getLogger("scitune.some.module").info("step %d done", 3)
    assert capsys.readouterr().out == "step 3 done\n"
    console.configure(stream="stderr", prefix="scitune serve: ")
    logging.getLogger("scitune.serve.models").info("loaded")
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == "scitune serve: loaded\n"


def test_other_ranks_show_only_warnings_unless_asked(capsys, scitune_logger, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.delenv("SCITUNE_LOG_ALL_RANKS", raising=False)
    console.configure()
    logger = logging.getLogger("scitune.train.loop")
    logger.info("progress")
    logger.warning("a problem")
    assert capsys.readouterr().out == "a problem\n"
    monkeypatch.setenv("SCITUNE_LOG_ALL_RANKS", "1")
    console.configure()
    logger.info("progress")
    assert capsys.readouterr().out == "[rank 1] progress\n"
