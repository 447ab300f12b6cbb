"""Where a command may write: the one rule every command that writes applies before any work.

- `refuse_overlap(out, inputs, flag)`: an output is never on, over or inside an input. `out`
  (resolved, links followed) may not be an input, lie inside an input folder, or contain an
  input (an input file or folder inside the output folder).
- `claim_output(out, inputs=..., overwrite=..., kind=..., marker=...)`: that rule, then "never
  over an existing product without --overwrite":
  - kind "file": an existing file is replaced only with `overwrite`; a folder is refused;
  - kind "dir": a new or empty folder is taken; a non-empty one only with `overwrite`, or, with
    `reuse`, when it holds scitune's marker of the same `marker` kind (a run folder that
    `--resume` continues); an existing file is refused. A folder holding nothing but a marker
    (a write that stopped before its first file) counts as empty.
  It checks and writes nothing: a command calls it before the work, and `write_marker` (synced
  to disk, as every scitune write) when it creates the folder.
- `write_marker`, `read_marker`: the `.scitune` file that says scitune made a folder and what
  it holds (`{"kind": ..., "scitune_version": ...}`).

Every refusal is a one-line ScituneError naming the option (`flag`) and the path.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from scitune.errors import ScituneError

# The marker file scitune writes into the folders it creates (run folders, corpora, demos).
MARKER = ".scitune"

KINDS = ("file", "dir")


def _resolved(path: str | os.PathLike) -> Path:
    return Path(path).expanduser().resolve(strict=False)


def _within(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def refuse_overlap(out: Path | str, inputs: Iterable[Path | str | None], flag: str = "--out") -> None:
    """Raises a one-line ScituneError when `out` is one of `inputs`, lies inside one, or contains
    one (paths resolved, links followed; None and "" inputs are skipped)."""
    target = _resolved(out)
    for item in inputs:
        if item is None or str(item) == "":
            continue
        source = _resolved(item)
        if target == source:
            relation = "is"
        elif _within(target, source):
            relation = "lies inside"
        elif _within(source, target):
            relation = "contains"
        else:
            continue
        raise ScituneError(f"{flag} {out}: {relation} the input {item}; choose an output apart from the inputs")


def claim_output(
    out: Path | str,
    *,
    inputs: Iterable[Path | str | None] = (),
    overwrite: bool = False,
    kind: str = "file",
    marker: str | None = None,
    reuse: bool = False,
    flag: str = "--out",
) -> Path:
    """Checks that a command may write `out` (see the module's rule); returns it as a Path.
    `marker`: the kind of scitune folder the command makes ("corpus", "run", "demo"); without
    `overwrite`, a folder holding another kind is refused by that kind's name."""
    if kind not in KINDS:
        raise ValueError(f"claim_output: kind must be one of {KINDS}, got {kind!r}")
    path = Path(out)
    if str(out) == "":
        raise ScituneError(f"{flag}: empty path")
    refuse_overlap(path, inputs, flag)
    if kind == "file":
        if path.is_dir():
            raise ScituneError(f"{flag} {path}: is a folder; expected a file path")
        if path.exists() and not overwrite:
            raise ScituneError(f"{flag} {path}: exists; pass --overwrite to replace it, or choose another path")
        return path
    if path.exists() and not path.is_dir():
        raise ScituneError(f"{flag} {path}: exists and is a file; expected a folder")
    if not path.is_dir() or overwrite:
        return path
    entries = [p.name for p in path.iterdir()]
    if not entries or entries == [MARKER]:
        return path
    found = read_marker(path)
    if found is None:
        raise ScituneError(
            f"{flag} {path}: folder is not empty and holds no scitune marker; "
            "choose a new or empty folder, or pass --overwrite"
        )
    held = found.get("kind")
    if marker is not None and held != marker:
        raise ScituneError(f"{flag} {path}: holds a scitune {held!r} folder, not a {marker}; choose another folder")
    if reuse and marker is not None:
        return path
    raise ScituneError(f"{flag} {path}: holds an earlier {held or 'scitune output'}; pass --overwrite to replace it")


def write_marker(folder: str | os.PathLike, kind: str, marker: str = MARKER) -> Path:
    """Writes (atomically, synced) the marker that says scitune made `folder` and what it holds."""
    from scitune import __version__
    from scitune.io.atomic import write_json

    return write_json(Path(folder) / marker, {"kind": kind, "scitune_version": __version__})


def read_marker(folder: str | os.PathLike, marker: str = MARKER) -> dict[str, Any] | None:
    """The marker's content, or None when the folder has none (or it is unreadable)."""
    path = Path(folder) / marker
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
