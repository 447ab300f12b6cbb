"""arXiv's bulk data: the source tars (`arXiv_src_2301_001.tar`, members `2301/2301.00001.gz`,
`2301/2301.00002.pdf`, old-style `0101/hep-th0101001.gz`) and the metadata snapshot
(`arxiv-metadata-oai-snapshot.json`, one JSON object a line: `id`, `categories`, `license`, ...).

- `arxiv_id(member)`: the paper id a member holds ("2301.00001", "hep-th/0101001"), or None.
- `is_bulk_tar(name, first_member)`: whether a tar is a bulk archive rather than one paper's source.
- `iter_members(fileobj, where, limits)`: (member name, bytes) of each regular member, one at a
  time, read straight from the tar (nothing unpacked to disk); a member over the size limit is
  returned as a refusal for that member alone.
- `read_metadata(path, ids, limits)`: the categories and licence of the papers in `ids`, streamed
  line by line (the snapshot is several GB; only the wanted ids are kept, lines are bounded).
- `Selection`: the `--categories` / `--licence` filter.
"""

from __future__ import annotations

import json
import re
import tarfile
from dataclasses import dataclass
from typing import IO, Iterator

from scitune.data.ingest.licence import LICENCE_NAMES, licence_name
from scitune.data.ingest.limits import DEFAULT_LIMITS, Limits
from scitune.errors import ScituneError

# member stems: "2301.00001" (new style, since 2007-04) and "hep-th0101001" / "math.AG0101001" (old)
_NEW_ID = re.compile(r"^(\d{4}\.\d{4,5})(v\d+)?$")
_OLD_ID = re.compile(r"^([a-z][a-z-]*(?:\.[A-Z]{2})?)(\d{7})(v\d+)?$")
_BULK_NAME = re.compile(r"^arxiv_(src|pdf)_.*\.tar$", re.IGNORECASE)
_BULK_MEMBER = re.compile(r"^\d{4}/[^/]+\.(gz|pdf)$")


def arxiv_id(member: str) -> str | None:
    """The arXiv id of a bulk member ("2301/2301.00001.gz" -> "2301.00001",
    "0101/hep-th0101001.gz" -> "hep-th/0101001"), or of a file name; None when it names none."""
    stem = member.rsplit("/", 1)[-1]
    for suffix in (".tar.gz", ".tgz", ".gz", ".pdf", ".tar"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    match = _NEW_ID.match(stem)
    if match:
        return match.group(1)
    match = _OLD_ID.match(stem)
    if match:
        return f"{match.group(1)}/{match.group(2)}"
    return None


def is_bulk_tar(name: str, first_member: str | None) -> bool:
    """A bulk archive is named arXiv_src_*.tar / arXiv_pdf_*.tar, or its first file is `YYMM/<paper>.gz|pdf`."""
    return bool(_BULK_NAME.match(name)) or bool(first_member and _BULK_MEMBER.match(first_member))


def first_member(fileobj: IO[bytes]) -> str | None:
    """The name of the first regular file in an uncompressed or compressed tar, or None."""
    try:
        with tarfile.open(fileobj=fileobj, mode="r:*") as tar:
            for member in tar:
                if member.isfile():
                    return member.name
    except (tarfile.TarError, EOFError, OSError):
        return None
    return None


@dataclass
class Member:
    name: str
    data: bytes | None  # None when refused
    refused: str | None = None


def iter_members(fileobj: IO[bytes], where: str, limits: Limits = DEFAULT_LIMITS,
                 wanted=None) -> Iterator[Member]:
    """Each regular member of a bulk tar with its bytes (`wanted(name)` False: skipped unread).
    Only one member's bytes are held at a time; a member larger than `limits.member_bytes` is
    yielded refused, its bytes unread. A malformed tar stops with a ScituneError naming it."""
    count = 0
    try:
        with tarfile.open(fileobj=fileobj, mode="r:*") as tar:
            for member in tar:
                count += 1
                if count > limits.bulk_members:
                    raise ScituneError(f"{where}: more than {limits.bulk_members} members; refused")
                tar.members.clear()  # tarfile keeps every header it read; we need none of them
                if not member.isfile():
                    continue
                if wanted is not None and not wanted(member.name):
                    continue
                if member.size > limits.member_bytes:
                    yield Member(member.name, None, f"{where}: member {member.name!r} is {member.size} bytes, "
                                                    f"more than the limit of {limits.member_bytes}; refused")
                    continue
                handle = tar.extractfile(member)
                data = handle.read(limits.member_bytes + 1) if handle is not None else b""
                yield Member(member.name, data)
    except ScituneError:
        raise
    except (tarfile.TarError, EOFError, OSError) as err:
        raise ScituneError(f"{where}: malformed tar archive ({err})") from None


def member_names(fileobj: IO[bytes], where: str, limits: Limits = DEFAULT_LIMITS) -> list[str]:
    """The regular members' names, reading headers only (an uncompressed tar is skipped through)."""
    names: list[str] = []
    for _ in iter_members(fileobj, where, limits, wanted=lambda name: names.append(name) and False):
        pass
    return names


# ----------------------------------------------------------------------------- metadata


@dataclass(frozen=True)
class PaperMeta:
    categories: tuple[str, ...]
    licence_url: str | None

    @property
    def licence(self) -> str:
        return licence_name(self.licence_url)


def read_metadata(path: str, ids: set[str], limits: Limits = DEFAULT_LIMITS) -> dict[str, PaperMeta]:
    """id -> categories and licence for the ids in `ids`, streamed from arXiv's JSON-lines
    snapshot (`path` local or an fsspec URL). A line longer than `limits.metadata_line_bytes` or
    not a JSON object is refused with its line number."""
    from scitune.data.ingest.sources import open_input

    found: dict[str, PaperMeta] = {}
    with open_input(path) as handle:
        number = 0
        while True:
            line = handle.readline(limits.metadata_line_bytes + 1)
            if not line:
                break
            number += 1
            if len(line) > limits.metadata_line_bytes:
                raise ScituneError(f"--metadata {path}: line {number} is longer than {limits.metadata_line_bytes} bytes")
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as err:
                raise ScituneError(f"--metadata {path}: line {number} is not JSON ({err})") from None
            if not isinstance(record, dict) or not isinstance(record.get("id"), str):
                raise ScituneError(f"--metadata {path}: line {number} is not an object with an \"id\"")
            if record["id"] not in ids:
                continue
            categories = record.get("categories")
            licence = record.get("license")
            found[record["id"]] = PaperMeta(
                tuple(categories.split()) if isinstance(categories, str) else (),
                licence if isinstance(licence, str) and licence.strip() else None,
            )
    return found


def parse_list(value: str | None, flag: str) -> tuple[str, ...]:
    if value is None:
        return ()
    items = tuple(v.strip() for v in value.split(",") if v.strip())
    if not items:
        raise ScituneError(f"{flag}: expected a comma-separated list, got {value!r}")
    return items


@dataclass(frozen=True)
class Selection:
    """Which papers to read, by their metadata: any of `categories` (a prefix such as "astro-ph"
    matches "astro-ph.GA"), any of `licences` (names from `licence.LICENCE_NAMES`)."""

    categories: tuple[str, ...] = ()
    licences: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = [name for name in self.licences if name not in LICENCE_NAMES]
        if unknown:
            raise ScituneError(f"--licence: unknown licence name(s) {', '.join(unknown)}; "
                               f"expected some of {', '.join(LICENCE_NAMES)}")

    @property
    def active(self) -> bool:
        return bool(self.categories or self.licences)

    def reason_to_skip(self, meta: PaperMeta | None) -> str | None:
        """None when the paper is selected, else why not."""
        if not self.active:
            return None
        if meta is None:
            return "not in the metadata"
        if self.categories and not any(c == want or c.startswith(want + ".")
                                       for c in meta.categories for want in self.categories):
            return f"categories {' '.join(meta.categories) or '(none)'} not selected"
        if self.licences and meta.licence not in self.licences:
            return f"licence {meta.licence} not selected"
        return None
