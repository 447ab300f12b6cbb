"""The reliability harness: run a command in-process, then check what a hostile user would.

`run_case(root, argv)` snapshots the bytes of every file under `root`, runs `scitune.cli.main`
with stdout/stderr captured, and returns the outcome; `check_failure` asserts the exit code, that
stderr is exactly one line (`scitune...: error: ...`) matching a pattern, that no traceback was
printed, that every file present before is byte-identical after, and that no temporary file was
left behind.
"""

from __future__ import annotations

import contextlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

from scitune.cli import main


@dataclass
class Outcome:
    code: int
    out: str
    err: str
    before: dict[str, bytes]
    after: dict[str, bytes]


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root` (symlinks not followed) -> its bytes."""
    files = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            files[str(path.relative_to(root))] = path.read_bytes()
    return files


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as stop:  # argparse usage errors
            code = stop.code if isinstance(stop.code, int) else 2
    return code, out.getvalue(), err.getvalue()


def run_case(root: Path, argv: list[str]) -> Outcome:
    before = snapshot(root)
    code, out, err = run_cli(argv)
    return Outcome(code, out, err, before, snapshot(root))


def check_unchanged(outcome: Outcome) -> None:
    changed = [name for name, data in outcome.before.items() if outcome.after.get(name) != data]
    assert not changed, f"files changed or removed: {changed}"
    leftovers = [name for name in outcome.after if re.search(r"\.(tmp|old)$", name) and name not in outcome.before]
    assert not leftovers, f"temporary files left behind: {leftovers}"


def check_failure(outcome: Outcome, code: int, pattern: str) -> None:
    """Exit `code`, one stderr line `scitune...: error: ...` matching `pattern`, no traceback,
    every earlier file byte-identical."""
    assert "Traceback" not in outcome.err + outcome.out
    lines = outcome.err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {outcome.err!r}"
    assert re.match(r"^scitune[\w -]*: error: ", lines[0]), lines[0]
    assert re.search(pattern, lines[0]), f"{pattern!r} not in {lines[0]!r}"
    assert outcome.code == code, f"exit {outcome.code}, expected {code}: {lines[0]}"
    check_unchanged(outcome)
