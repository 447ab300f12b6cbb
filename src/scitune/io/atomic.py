"""Atomic writes: nothing scitune writes ever replaces a good file with a half-written one.

- Files are written to a temporary name in the same folder, flushed to disk (fsync) and renamed
  into place (`os.replace`, atomic on POSIX): a crash or a full disk leaves the old file intact.
- Folders are written under a temporary name, synced, and swapped into place.

Where a command may write (never on, over or inside an input; never over an existing product
without --overwrite) is `scitune.io.outputs`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, IO

from scitune.errors import ScituneError


def _fsync_path(path: Path) -> None:
    """Flushes a file or a folder (its entries) to disk; one that cannot be opened or synced is passed over."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)



@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Yields a handle on a temporary file beside `path`; on success it is synced and renamed
    to `path`, on any failure it is removed and `path` is untouched."""
    path = Path(path)
    if path.is_dir():
        raise ScituneError(f"{path}: is a folder; expected a file path")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    binary = "b" in mode
    try:
        with os.fdopen(fd, mode, encoding=None if binary else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists():
            with contextlib.suppress(OSError):
                os.chmod(tmp, path.stat().st_mode & 0o7777)
        else:
            with contextlib.suppress(OSError):
                os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_path(path.parent)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_file(path, "wb") as handle:
        handle.write(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_file(path, "w") as handle:
        handle.write(text)
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2, ensure_ascii: bool = False) -> Path:
    """Writes `obj` as JSON (and a final newline)."""
    with atomic_file(path, "w") as handle:
        json.dump(obj, handle, indent=indent, ensure_ascii=ensure_ascii)
        handle.write("\n")
    return Path(path)


def write_jsonl(path: str | os.PathLike, rows: Iterable[Any], ensure_ascii: bool = False) -> Path:
    """Writes one JSON value per line."""
    with atomic_file(path, "w") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=ensure_ascii) + "\n")
    return Path(path)


def sync_tree(root: Path) -> None:
    for folder, _, files in os.walk(root):
        for name in files:
            _fsync_path(Path(folder) / name)
        _fsync_path(Path(folder))


def write_dir_atomically(out_dir: str | os.PathLike, write: Callable[[Path], Any]) -> Path:
    """Calls `write(tmp_dir)` on a new temporary folder beside `out_dir`, syncs it, then puts it
    in place of `out_dir` (an older `out_dir` is replaced only once the new one is complete).
    Callers that must not replace an existing folder call `claim_output` first."""
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists() and not out.is_dir():
        raise ScituneError(f"{out}: exists and is not a folder")
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        write(tmp)
        sync_tree(tmp)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
            os.rmdir(old)
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_path(out.parent)
    return out


@contextlib.contextmanager
def atomic_dir(out_dir: str | os.PathLike) -> Iterator[Path]:
    """`with atomic_dir(out) as tmp:` write into `tmp`; it becomes `out` when the block ends well."""
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

    def move(target: Path) -> None:
        target.rmdir()
        tmp.rename(target)

    write_dir_atomically(out, move)
