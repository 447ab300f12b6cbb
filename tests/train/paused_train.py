"""A `scitune train` run that pauses at a chosen step, so a test can kill or interrupt it there.

Child: `python -m tests.train.paused_train STEP scitune-train-args...` runs `scitune train` with a
step hook that, on reaching step STEP, prints `PAUSED STEP` (main process) and holds the run
until a signal is noted (SIGINT/SIGTERM then stop the run after that step, as they would any
run; SIGKILL ends it where it is). Parent: `PausedRun` starts such a command and reads its output
on a thread, so `wait_paused` can wait for that line with a bound instead of guessing a delay.
"""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
PAUSED = "PAUSED"


def pause_at(at: int, limit: float = 300.0):
    """The step hook: at step `at`, announce it and wait for the runner to note a signal."""

    def hook(runner, step: int) -> None:
        if step != at:
            return
        if runner.accelerator.is_main_process:
            print(f"{PAUSED} {step}", flush=True)
        # the signal handler (main thread) sets the name
        wait_until(lambda: runner.stop.signal_name is not None, limit, f"a signal while paused at step {step}")

    return hook


class PausedRun:
    """A child process whose output is read line by line on a thread."""

    def __init__(self, command: list[str], env: dict[str, str] | None = None):
        self.proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.output: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def text(self) -> str:
        return "".join(self.output)

    def wait_paused(self, timeout: float = 300.0) -> None:
        """Reads output until the `PAUSED` line (failing if the run ends first, or after `timeout`)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"the run did not pause within {timeout:.0f}s:\n{self.text()[-3000:]}") from None
            if line is None:
                raise AssertionError(f"the run ended (code {self.proc.wait()}) before pausing:\n{self.text()[-3000:]}")
            self.output.append(line)
            if line.startswith(PAUSED):
                return

    def finish(self, timeout: float = 300.0) -> tuple[int, str]:
        """Waits for the process to end; returns its exit code and all its output."""
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=timeout)
        while not self._lines.empty():
            line = self._lines.get()
            if line is not None:
                self.output.append(line)
        return code, self.text()


def main() -> int:
    from scitune.cli import build_parser
    from scitune.commands import train

    at = int(sys.argv[1])
    args = build_parser().parse_args(["train", *sys.argv[2:]])
    return train.run(args, hooks=[pause_at(at)])


if __name__ == "__main__":
    raise SystemExit(main())
