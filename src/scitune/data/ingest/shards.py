"""The shards a run writes as it goes: OUT/shards/NNNNN.jsonl, one line per paper, appended as
soon as the paper is read (its images are in OUT/images before its line is), never rewritten.

A line is a paper's entry: `{key, name, source, kind, licence, extra, unpaired, counts,
figures: [{image, annotation, provenance}]}`, or, for a paper that failed, `{key, name, source,
extra, failed}`. A re-run of the same command reads the shards first (keys and names only) and
skips every paper whose key is there; each run appends to new shard files. A line cut short by a
killed run is dropped when the shards are next opened (its paper is read again).

OUT/shards/options.json holds what the content depends on (the --dpi): a re-run with another
value is refused rather than mixing two renderings.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator

from scitune.data.ingest.writer import SHARDS
from scitune.errors import ScituneError
from scitune.io.atomic import write_bytes, write_json

PAPERS_PER_SHARD = 1000
MAX_LINE = 256 << 20  # one paper's entry (captions, paragraphs and mentions of all its figures)
OPTIONS = "options.json"


class ShardStore:
    def __init__(self, out: Path, options: dict[str, Any]):
        self.out, self.dir = out, out / SHARDS
        self.options = options
        self.handle = None
        self.in_shard = 0

    def _shards(self) -> list[Path]:
        return sorted(p for p in self.dir.glob("*.jsonl") if p.stem.isdigit())

    def open(self) -> dict[str, str]:
        """Creates or checks OUT/shards; returns key -> name of every paper already there."""
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.out / "images").mkdir(exist_ok=True)
        options_file = self.dir / OPTIONS
        if options_file.is_file():
            try:
                earlier = json.loads(options_file.read_text(encoding="utf-8"))
            except ValueError:
                earlier = None
            if earlier != self.options:
                shown = ", ".join(f"--{k} {v}" for k, v in (earlier or {}).items())
                raise ScituneError(f"--out {self.out}: an earlier run wrote it with {shown or 'other settings'}; "
                                   "re-run with the same settings to resume, or pass --overwrite to start again")
        else:
            write_json(options_file, self.options, indent=1)
        done: dict[str, str] = {}
        for shard in self._shards():
            self._repair(shard)
            for entry in self._read(shard, fields=("key", "name")):
                done.setdefault(entry["key"], entry["name"])
        return done

    @staticmethod
    def _repair(shard: Path) -> None:
        """Drops a last line without its newline (a write cut short)."""
        size = shard.stat().st_size
        if size == 0:
            return
        with shard.open("rb+") as handle:
            handle.seek(size - 1)
            if handle.read(1) == b"\n":
                return
            end = size
            while end > 0:
                start = max(0, end - (1 << 16))
                handle.seek(start)
                block = handle.read(end - start)
                cut = block.rfind(b"\n")
                if cut >= 0:
                    handle.truncate(start + cut + 1)
                    return
                end = start
            handle.truncate(0)

    @staticmethod
    def _read(shard: Path, fields: tuple[str, ...] | None = None) -> Iterator[dict[str, Any]]:
        with shard.open("rb") as handle:
            number = 0
            while True:
                line = handle.readline(MAX_LINE + 1)
                if not line:
                    return
                number += 1
                if len(line) > MAX_LINE:
                    raise ScituneError(f"{shard}: line {number} is longer than {MAX_LINE} bytes")
                try:
                    entry = json.loads(line)
                except ValueError as err:
                    raise ScituneError(f"{shard}: line {number} is not JSON ({err}); "
                                       "pass --overwrite to start again") from None
                if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
                    raise ScituneError(f"{shard}: line {number} is not a paper entry")
                yield {k: entry.get(k) for k in fields} if fields else entry

    def entries(self) -> Iterator[dict[str, Any]]:
        """Every paper entry of every shard, in the order they were written."""
        for shard in self._shards():
            yield from self._read(shard)

    def append(self, entry: dict[str, Any], images: list[tuple[str, bytes]]) -> None:
        """Writes the paper's images, then its line (flushed and synced): a paper is in the
        shards only once all of it is on disk."""
        line = json.dumps(entry, ensure_ascii=False).encode("utf-8") + b"\n"
        if len(line) > MAX_LINE:  # it could not be read back: the paper fails instead
            images = []
            line = json.dumps({k: entry.get(k) for k in ("key", "name", "source", "extra")} | {
                "failed": f"{entry['source']}: its text is more than {MAX_LINE} bytes; refused"}).encode("utf-8") + b"\n"
        for file_name, png in images:
            write_bytes(self.out / "images" / file_name, png)  # synced before the line that lists it
        if self.handle is None or self.in_shard >= PAPERS_PER_SHARD:
            self.close()
            shards = self._shards()
            number = int(shards[-1].stem) + 1 if shards else 0
            self.handle = (self.dir / f"{number:05d}.jsonl").open("ab")
            self.in_shard = 0
        self.handle.write(line)
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.in_shard += 1

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()
            self.handle = None
