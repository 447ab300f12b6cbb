"""Stopping a stage on a signal: SIGINT (Ctrl-C) and SIGTERM are noted and acted on between
optimizer steps (scitune.train.loop), so the checkpoint written then holds the weights, optimizer
and step counter of one consistent state. A second Ctrl-C stops at once without a checkpoint.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

from scitune.errors import Interrupted


class TrainingInterrupted(Interrupted):
    """Ctrl-C or SIGTERM: a checkpoint was saved; `--resume` continues from it."""

    def __init__(self, checkpoint: Path | None):
        super().__init__(f"checkpoint {checkpoint}; continue with --resume")
        self.checkpoint = checkpoint


class StopRequests:
    """SIGINT / SIGTERM noted as a request to stop after the current step (main thread only);
    a second SIGINT raises KeyboardInterrupt at once. `signal_name` is the signal noted (None
    while none was)."""

    def __init__(self):
        self.signal_name: str | None = None
        self._previous: dict[int, Any] = {}

    def _note(self, signum, frame) -> None:
        if self.signal_name is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name

    def __enter__(self) -> StopRequests:
        self.signal_name = None
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._note)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
