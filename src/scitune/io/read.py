"""Bounded readers: JSON, JSONL, YAML and text files whose size, encoding and nesting are
checked, every failure a one-line ScituneError naming the file.

Limits (module constants, so that a test can lower them):
- `MAX_DATA_BYTES`: data files (samples, releases, answer keys, predictions);
- `MAX_CONFIG_BYTES`: recipes and model config.json files;
- `MAX_DEPTH`: nesting of JSON/YAML values (a deeply nested file is refused, not a crash);
- `MAX_YAML_ALIASES`, `MAX_YAML_NODES`: YAML alias references, and values once aliases are
  expanded (an "alias bomb" expands exponentially).
YAML is read with a safe loader: python tags (`!!python/object`) are refused.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from scitune.errors import ScituneError

MAX_DATA_BYTES = 8 * 1024**3
MAX_CONFIG_BYTES = 1024**2
MAX_TEXT_BYTES = 1024**3
MAX_DEPTH = 64
MAX_YAML_ALIASES = 100
MAX_YAML_NODES = 1_000_000  # values once aliases are expanded


def _limit(name: str, given: int | None) -> int:
    return given if given is not None else globals()[name]


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def check_file(path: str | os.PathLike, limit: int | None = None, what: str = "file") -> None:
    """Refuses a missing path, a folder, or a file over `limit` bytes (default MAX_DATA_BYTES)."""
    path = Path(path)
    limit = _limit("MAX_DATA_BYTES", limit)
    try:
        if path.is_dir():
            raise ScituneError(f"{path}: is a folder; expected a {what}")
        size = path.stat().st_size
    except FileNotFoundError:
        raise ScituneError(f"{path}: no such file") from None
    except OSError as err:
        raise ScituneError(f"{path}: cannot read ({err.strerror or err})") from None
    if size > limit:
        raise ScituneError(f"{path}: {what} is {_size(size)}, over the limit of {_size(limit)}")


def _open(path: Path):
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise ScituneError(f"{path}: no such file") from None
    except OSError as err:
        raise ScituneError(f"{path}: cannot read ({err.strerror or err})") from None


def read_bytes(path: str | os.PathLike, max_bytes: int | None = None, what: str = "file") -> bytes:
    """The bytes of a file no larger than `max_bytes` (default MAX_DATA_BYTES)."""
    path = Path(path)
    limit = _limit("MAX_DATA_BYTES", max_bytes)
    check_file(path, limit, what)
    with _open(path) as handle:
        try:
            data = handle.read(limit + 1)
        except OSError as err:
            raise ScituneError(f"{path}: cannot read ({err.strerror or err})") from None
    if len(data) > limit:
        raise ScituneError(f"{path}: {what} is over the limit of {_size(limit)}")
    return data


def decode_text(data: bytes, where: str) -> str:
    """UTF-8 text (a leading byte-order mark is dropped); other encodings are refused."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ScituneError(f"{where}: not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start})") from None


def read_text(path: str | os.PathLike, max_bytes: int | None = None, what: str = "text file") -> str:
    return decode_text(read_bytes(path, _limit("MAX_TEXT_BYTES", max_bytes), what), str(path))


def check_depth(value: Any, where: str, max_depth: int | None = None) -> Any:
    """Refuses values nested deeper than `max_depth` lists/objects."""
    limit = _limit("MAX_DEPTH", max_depth)
    stack = [(value, 1)]
    seen: set[int] = set()
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                raise ScituneError(f"{where}: nested more than {limit} levels deep")
            if id(item) in seen:  # YAML aliases share objects: each is walked once
                continue
            seen.add(id(item))
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return value


def parse_json(text: str, where: str, max_depth: int | None = None) -> Any:
    """Parses JSON text; errors name `where` (a file, or file:line)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ScituneError(f"{where}: not valid JSON ({err.msg} at line {err.lineno} column {err.colno})") from None
    except RecursionError:
        raise ScituneError(f"{where}: nested more than {_limit('MAX_DEPTH', max_depth)} levels deep") from None
    return check_depth(value, where, max_depth)


def read_json(path: str | os.PathLike, max_bytes: int | None = None, what: str = "JSON file") -> Any:
    """Reads a JSON file within the size limit (default MAX_DATA_BYTES)."""
    return parse_json(decode_text(read_bytes(path, max_bytes, what), str(path)), str(path))


def iter_jsonl(path: str | os.PathLike, max_bytes: int | None = None) -> Iterator[tuple[int, Any]]:
    """(line number, value) for each non-blank line of a JSONL file within the size limit."""
    path = Path(path)
    limit = _limit("MAX_DATA_BYTES", max_bytes)
    check_file(path, limit, "JSONL file")
    handle = _open(path)
    total = 0
    with handle:
        for number, raw in enumerate(handle, start=1):
            total += len(raw)
            if total > limit:
                raise ScituneError(f"{path}: JSONL file is over the limit of {_size(limit)}")
            where = f"{path}:{number}"
            line = decode_text(raw, where)
            if not line.strip():
                continue
            yield number, parse_json(line, where)


class BoundedSafeLoader(yaml.SafeLoader):
    """PyYAML's safe loader (no python tags) that refuses more than MAX_YAML_ALIASES aliases."""

    def compose_node(self, parent, index):  # noqa: D102 - PyYAML hook
        if self.check_event(yaml.AliasEvent):
            self.alias_count = getattr(self, "alias_count", 0) + 1
            if self.alias_count > MAX_YAML_ALIASES:
                event = self.peek_event()
                raise yaml.YAMLError(
                    f"more than {MAX_YAML_ALIASES} aliases (line {event.start_mark.line + 1}); "
                    "write the values out instead"
                )
        return super().compose_node(parent, index)


def parse_yaml(text: str, where: str, max_depth: int | None = None) -> Any:
    """Parses YAML text safely; errors name `where`."""
    try:
        value = yaml.load(text, Loader=BoundedSafeLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        raise ScituneError(f"{where}: not valid YAML ({_yaml_reason(err)})") from None
    except RecursionError:
        raise ScituneError(f"{where}: nested more than {_limit('MAX_DEPTH', max_depth)} levels deep") from None
    check_depth(value, where, max_depth)
    if _expanded_size(value, {}) > MAX_YAML_NODES:
        raise ScituneError(f"{where}: aliases expand to more than {MAX_YAML_NODES} values")
    return value


def _expanded_size(value: Any, memo: dict[int, int]) -> int:
    """How many values `value` holds once shared (aliased) parts are counted at each use."""
    if not isinstance(value, (dict, list)):
        return 1
    if id(value) not in memo:
        children = list(value.values()) + list(value.keys()) if isinstance(value, dict) else value
        memo[id(value)] = 1 + sum(_expanded_size(child, memo) for child in children)
    return memo[id(value)]


def _yaml_reason(err: yaml.YAMLError) -> str:
    problem = getattr(err, "problem", None)
    mark = getattr(err, "problem_mark", None)
    if problem:
        text = problem + (f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else "")
    else:
        text = str(err).strip()
    return " ".join(text.split())


def read_yaml(path: str | os.PathLike, max_bytes: int | None = None, what: str = "YAML file") -> Any:
    """Reads a YAML file within the size limit (default MAX_CONFIG_BYTES)."""
    limit = _limit("MAX_CONFIG_BYTES", max_bytes)
    return parse_yaml(decode_text(read_bytes(path, limit, what), str(path)), str(path))
