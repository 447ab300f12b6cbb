"""The error types the command line turns into one line and an exit code.

- `ScituneError`: bad input from the user (a file, record, option or setting): exit code 2.
- `RunFailed`: the input was fine but the run could not finish (a training step failed, a
  device is missing, ...): exit code 1.
- `Interrupted`: Ctrl-C or SIGTERM after saving what a run resumes from: exit code 130.
All are shown as one line (`scitune: error: <message>`) with no traceback (unless `--debug`).
The message names the input (record, file, option) and the reason.
"""

import errno


class Interrupted(Exception):
    """A run stopped by Ctrl-C or SIGTERM after saving what it can resume from: exit code 130."""

    exit_code = 130


class ScituneError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""

    exit_code = 2


class RunFailed(Exception):
    """A run that could not finish for a reason other than bad input: one line, exit code 1."""

    exit_code = 1


# OSError numbers that mean the input named a bad path (exit 2); others (a full disk, an I/O
# error) mean the run failed (exit 1).
_INPUT_ERRNOS = {"ENOENT", "ENOTDIR", "EISDIR", "EACCES", "EPERM", "ENAMETOOLONG", "ELOOP", "EEXIST", "EROFS"}


def describe_failure(err: BaseException) -> tuple[str, int]:
    """One line and an exit code for any exception that reaches the command line."""

    if isinstance(err, (ScituneError, RunFailed)):
        return _one_line(str(err)), err.exit_code
    if isinstance(err, Interrupted):
        return _one_line(f"interrupted; {err}"), err.exit_code
    if isinstance(err, OSError):
        names = [str(n) for n in (err.filename, err.filename2) if n is not None]
        reason = err.strerror or str(err) or type(err).__name__
        code = 2 if errno.errorcode.get(err.errno or -1) in _INPUT_ERRNOS else 1
        return _one_line(f"{' -> '.join(names)}: {reason}" if names else reason), code
    if isinstance(err, UnicodeDecodeError):
        return _one_line(f"input is not UTF-8 text ({err.reason} at byte {err.start})"), 2
    if isinstance(err, RecursionError):
        return "input is nested too deeply to process", 2
    if isinstance(err, MemoryError):
        return "out of memory", 1
    text = _one_line(str(err)) or "(no message)"
    return f"{type(err).__name__}: {text} (run with --debug for the traceback)", 1


def _one_line(text: str) -> str:
    return " ".join(text.split())
