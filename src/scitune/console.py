"""Messages on the terminal: how the `scitune` command shows what the library logs.

Library code says what it does through `logging.getLogger(__name__)` (every logger sits under
`scitune`) and configures nothing itself, so a library user silences or redirects it with the
logging module, e.g. `logging.getLogger("scitune").setLevel(logging.WARNING)`. The `scitune`
command calls `configure` once: messages are written bare, one per line, to stdout (stderr and a
prefix for `scitune serve`, whose stdout is the server's). Under a distributed launch (RANK set by
`accelerate launch` or torchrun) only rank 0 shows progress; the other ranks show warnings and
errors, unless SCITUNE_LOG_ALL_RANKS=1 asks for all (each line then names its rank).
"""

from __future__ import annotations

import logging
import os
import sys

ROOT = "scitune"


def process_rank() -> int:
    """This process's rank under a distributed launch (0 when not launched that way)."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


class _TerminalHandler(logging.StreamHandler):
    """Writes to sys.stdout or sys.stderr as they are when a message is logged (so a redirect made
    after `configure`, such as pytest's capture, sees the messages)."""

    def __init__(self, stream_name: str):
        super().__init__()
        self.stream_name = stream_name

    @property
    def stream(self):
        return getattr(sys, self.stream_name)

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ sets one; ours is looked up each time
        pass


def configure(stream: str = "stdout", prefix: str = "") -> logging.Logger:
    """Shows the `scitune` loggers' messages on `stream` ("stdout" or "stderr"), each after `prefix`;
    calling it again replaces what an earlier call set up (one handler at any time)."""
    logger = logging.getLogger(ROOT)
    for handler in [h for h in logger.handlers if isinstance(h, _TerminalHandler)]:
        logger.removeHandler(handler)
    rank, all_ranks = process_rank(), os.environ.get("SCITUNE_LOG_ALL_RANKS", "") not in ("", "0")
    handler = _TerminalHandler(stream)
    handler.setFormatter(logging.Formatter(prefix + (f"[rank {rank}] " if rank and all_ranks else "") + "%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if rank == 0 or all_ranks else logging.WARNING)
    return logger
