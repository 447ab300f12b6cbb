"""What `scitune ingest` reads, as one `Task` per paper, planned in a fixed order.

Inputs are local paths (a LaTeX source folder, a paper's source archive, a PDF, a folder of
those) or fsspec URLs of files (`s3://bucket/arXiv_src_*.tar`, `gs://...`, `file://...`; a glob
is expanded). An arXiv bulk tar is read member by member (`arxiv.iter_members`), never unpacked.

Each paper is keyed by the sha256 of its content (the PDF's or archive's bytes, a bulk member's
bytes, or a source folder's files with their relative paths), so a paper given twice is read once
and a re-run skips the papers an earlier run finished. Names (the prefix of its image ids) come
from the arXiv id or the file name; a name already taken gets the first 8 hex digits of its key.

Planning runs in one process, in input order; the engines only read the planned tasks.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tarfile
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Iterator

from scitune.data.ingest.archive import is_archive
from scitune.data.ingest.arxiv import (PaperMeta, Selection, arxiv_id, first_member, is_bulk_tar, iter_members,
                                       member_names)
from scitune.data.ingest.licence import licence_id
from scitune.data.ingest.limits import DEFAULT_LIMITS, Limits
from scitune.data.ingest.writer import safe_name
from scitune.errors import ScituneError

MAX_INPUTS = 100_000  # papers found under the given local paths (bulk tars are streamed, not counted)
MAX_DEPTH = 3  # folders of papers are searched this deep
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(value: str) -> bool:
    return bool(_URL.match(value))


@contextmanager
def open_input(value: str) -> Iterator[IO[bytes]]:
    """A local path or an fsspec URL, opened for binary reading."""
    if is_url(value):
        try:
            import fsspec
        except ImportError:
            raise ScituneError(f"{value}: reading URLs needs fsspec: pip install 'scitune[ray]'") from None
        try:
            handle = fsspec.open(value, "rb").open()
        except (OSError, ValueError, ImportError) as err:
            raise ScituneError(f"{value}: cannot open ({err})") from None
    else:
        try:
            handle = open(value, "rb")
        except OSError as err:
            raise ScituneError(f"{value}: cannot open ({err.strerror})") from None
    try:
        yield handle
    finally:
        handle.close()


@dataclass
class Task:
    """One paper to read. `path` (a local file or folder the reader opens) or `data` (its bytes)."""

    index: int  # position in the plan: the order of the output
    kind: str  # "latex" (source folder), "archive" (one paper's source archive), "pdf", "member" (of a bulk tar)
    name: str  # unique in OUT: its image ids start with it
    source: str  # as given: a path, a URL, or "ARCHIVE:MEMBER"
    key: str  # sha256 of the content
    path: str | None = None
    data: bytes | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # provenance: arxiv_id, archive, member, categories, licence_url
    licence: str | None = None  # from the metadata; wins over a licence found in the source
    failed: str | None = None  # refused while planning (too large, unreadable): not read

    def header(self) -> dict[str, Any]:
        """The task without its bytes (what a result carries back)."""
        return {"index": self.index, "kind": self.kind, "name": self.name, "source": self.source, "key": self.key,
                "extra": self.extra, "licence": self.licence}


def _source_name(name: str) -> str:
    for suffix in (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tar", ".gz", ".pdf"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def discover(paths: list[str]) -> list[tuple[str, Path]]:
    """(kind, path) of each paper under the local `paths`: "latex" (a folder with .tex files),
    "archive" (or "bulk" for an arXiv bulk tar) or "pdf"; a folder without .tex files is a folder
    of papers (searched up to MAX_DEPTH down)."""
    found: list[tuple[str, Path]] = []

    def one(path: Path, top: bool, depth: int = 0) -> None:
        if len(found) > MAX_INPUTS:
            raise ScituneError(f"more than {MAX_INPUTS} papers under the given paths")
        if path.is_dir():
            if any(p.suffix == ".tex" for p in path.iterdir() if p.is_file()):
                found.append(("latex", path))
            elif depth < MAX_DEPTH:
                for child in sorted(path.iterdir()):
                    if child.name.startswith(".") or child.is_symlink():
                        continue
                    one(child, False, depth + 1)
        elif path.suffix.lower() == ".pdf":
            found.append(("pdf", path))
        elif is_archive(path):
            found.append((_archive_kind(str(path), path.name), path))
        elif top:
            raise ScituneError(f"{path}: not a LaTeX source folder, a source archive (.tar.gz, .tgz, .tar, .gz), "
                               "an arXiv bulk tar or a PDF")

    for value in paths:
        path = Path(value)
        if not path.exists():
            raise ScituneError(f"{path}: no such file or folder")
        one(path, True)
    return found


def _archive_kind(location: str, name: str) -> str:
    if not name.lower().endswith(".tar"):
        return "archive"
    if is_bulk_tar(name, None):
        return "bulk"
    try:
        with open_input(location) as handle:
            return "bulk" if is_bulk_tar(name, first_member(handle)) else "archive"
    except ScituneError:
        return "archive"  # the reader reports it


def expand_urls(value: str) -> list[tuple[str, str]]:
    """(kind, URL) of each file an fsspec URL (or glob) names."""
    try:
        from fsspec.core import url_to_fs
    except ImportError:
        raise ScituneError(f"{value}: reading URLs needs fsspec: pip install 'scitune[ray]'") from None
    try:
        fs, path = url_to_fs(value)
        matches = sorted(fs.glob(path)) if any(c in path for c in "*?[") else [path]
        files = [m for m in matches if fs.isfile(m)]
    except (OSError, ValueError) as err:
        raise ScituneError(f"{value}: cannot list ({err})") from None
    if not files:
        raise ScituneError(f"{value}: no such file (a URL names files: a PDF, a source archive or a bulk tar, or a glob of them)")
    out = []
    for item in files:
        url = fs.unstrip_protocol(item)
        name = url.rsplit("/", 1)[-1]
        if name.lower().endswith(".pdf"):
            out.append(("pdf", url))
        elif is_archive(Path(name)):
            out.append((_archive_kind(url, name), url))
        else:
            raise ScituneError(f"{url}: not a source archive, an arXiv bulk tar or a PDF")
    return out


def list_inputs(paths: list[str]) -> tuple[list[tuple[str, str]], list[str]]:
    """(kind, location) of every input in order, and the PDFs skipped because the same paper is
    also given as its LaTeX source (the source is read: exact captions and labels; the two copies
    never land in different splits)."""
    found: list[tuple[str, str]] = []
    for value in paths:
        if is_url(value):
            found += expand_urls(value)
        else:
            found += [(kind, str(p)) for kind, p in discover([value])]
    sources = {_source_name(Path(loc).name) for kind, loc in found if kind in ("latex", "archive")}
    skipped = [loc for kind, loc in found if kind == "pdf" and _source_name(Path(loc).name) in sources]
    return [f for f in found if f[0] != "pdf" or f[1] not in skipped], skipped


# ----------------------------------------------------------------------------- hashing


def _hash_file(path: Path, limit: int) -> str:
    size = path.stat().st_size
    if size > limit:
        raise ScituneError(f"{path}: {size} bytes, more than the limit of {limit}; refused")
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _folder_files(root: Path, limits: Limits) -> list[tuple[str, Path]]:
    files, total = [], 0
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        files.append((path.relative_to(root).as_posix(), path))
        total += path.stat().st_size
        if len(files) > limits.archive_members:
            raise ScituneError(f"{root}: more than {limits.archive_members} files; refused")
        if total > limits.archive_bytes:
            raise ScituneError(f"{root}: more than {limits.archive_bytes} bytes of files; refused")
    return files


def _hash_folder(root: Path, limits: Limits) -> str:
    digest = hashlib.sha256()
    for rel, path in _folder_files(root, limits):
        digest.update(rel.encode("utf-8") + b"\0" + str(path.stat().st_size).encode() + b"\0")
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def _read_url(url: str, limit: int) -> bytes:
    with open_input(url) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise ScituneError(f"{url}: more than {limit} bytes; refused")
    return data


def portable(task: Task, limits: Limits = DEFAULT_LIMITS) -> Task:
    """The task with its content as bytes, for a reader on another machine: a file's bytes, or a
    source folder packed as an uncompressed tar (which the reader unpacks safely)."""
    if task.data is not None or task.path is None or task.failed:
        return task
    path = Path(task.path)
    if task.kind == "latex":
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for rel, file in _folder_files(path, limits):
                tar.add(file, arcname=rel, recursive=False)
        return replace(task, path=None, data=buffer.getvalue())
    return replace(task, path=None, data=path.read_bytes())


# ----------------------------------------------------------------------------- planning


@dataclass
class PlanLog:
    """What planning skipped, for the report."""

    duplicates: list[dict[str, str]] = field(default_factory=list)  # {source, same_as}
    filtered: int = 0
    filtered_examples: list[dict[str, str]] = field(default_factory=list)
    resumed: int = 0  # papers an earlier run finished
    pdfs_with_source: list[str] = field(default_factory=list)
    keys: dict[str, str] = field(default_factory=dict)  # key -> name of every paper of this run


MAX_EXAMPLES = 1000  # filtered papers listed in the report (all are counted)


class Planner:
    """Turns the inputs into Tasks. `done`: key -> name of the papers earlier runs finished;
    `taken`: the names in use."""

    def __init__(self, limits: Limits, selection: Selection, metadata: dict[str, PaperMeta] | None,
                 done: dict[str, str], taken: set[str]):
        self.limits, self.selection, self.metadata = limits, selection, metadata
        self.done, self.taken = done, taken
        self.plan = PlanLog()
        self.index = 0

    def _meta(self, paper_id: str | None) -> tuple[PaperMeta | None, str | None]:
        if self.metadata is None:
            return None, None
        meta = self.metadata.get(paper_id) if paper_id else None
        return meta, self.selection.reason_to_skip(meta)

    def _skip(self, source: str, reason: str) -> None:
        self.plan.filtered += 1
        if len(self.plan.filtered_examples) < MAX_EXAMPLES:
            self.plan.filtered_examples.append({"source": source, "reason": reason})

    def _task(self, kind: str, base: str, source: str, key: str, paper_id: str | None, meta: PaperMeta | None,
              extra: dict[str, Any], **content: Any) -> Task | None:
        """A new task, or None when the key was read before (earlier run or this one)."""
        if key in self.plan.keys:
            self.plan.duplicates.append({"source": source, "same_as": self.plan.keys[key]})
            return None
        if key in self.done:
            self.plan.keys[key] = self.done[key]
            self.plan.resumed += 1
            return None
        name = safe_name(base)
        if name in self.taken:
            name = f"{name}-{key[:8]}"
        self.taken.add(name)
        self.plan.keys[key] = name
        extra = dict(extra)
        licence = None
        if paper_id:
            extra["arxiv_id"] = paper_id
        if meta is not None:
            extra["categories"] = list(meta.categories)
            extra["licence_url"] = meta.licence_url
            licence = licence_id(meta.licence_url)
        task = Task(self.index, kind, name, source, key, extra=extra, licence=licence, **content)
        self.index += 1
        return task

    def _refused(self, source: str, reason: str, extra: dict[str, Any] | None = None) -> Task | None:
        key = hashlib.sha256(f"refused:{source}".encode()).hexdigest()
        base = _source_name(source.rsplit("/", 1)[-1].rsplit(":", 1)[-1])
        return self._task("refused", base, source, key, None, None, extra or {}, failed=reason)

    def tasks(self, inputs: list[tuple[str, str]]) -> Iterator[Task]:
        for kind, location in inputs:
            if kind == "bulk":
                yield from self._bulk(location)
                continue
            name = _source_name(Path(location).name if not is_url(location) else location.rsplit("/", 1)[-1])
            paper_id = arxiv_id(name)
            meta, reason = self._meta(paper_id)
            if reason:
                self._skip(location, reason)
                continue
            try:
                if is_url(location):
                    limit = self.limits.pdf_bytes if kind == "pdf" else self.limits.archive_bytes
                    data = _read_url(location, limit)
                    task = self._task(kind, name, location, hashlib.sha256(data).hexdigest(), paper_id, meta, {}, data=data)
                elif kind == "latex":
                    key = _hash_folder(Path(location), self.limits)
                    task = self._task(kind, name, location, key, paper_id, meta, {}, path=location)
                else:
                    limit = self.limits.pdf_bytes if kind == "pdf" else self.limits.archive_bytes
                    key = _hash_file(Path(location), limit)
                    task = self._task(kind, name, location, key, paper_id, meta, {}, path=location)
            except (ScituneError, OSError) as err:
                task = self._refused(location, str(err) if isinstance(err, ScituneError) else f"{location}: {err}")
            if task is not None:
                yield task

    def _bulk(self, archive: str) -> Iterator[Task]:
        def selected(member: str) -> bool:
            _, reason = self._meta(arxiv_id(member))
            if reason:
                self._skip(f"{archive}:{member}", reason)
            return reason is None

        wanted = selected if self.metadata is not None and self.selection.active else None
        label = archive.rsplit("/", 1)[-1]
        try:
            with open_input(archive) as handle:
                for member in iter_members(handle, archive, self.limits, wanted):
                    source = f"{archive}:{member.name}"
                    paper_id = arxiv_id(member.name)
                    extra = {"archive": label, "member": member.name}
                    if member.data is None or paper_id is None:
                        reason = member.refused or f"{archive}: member {member.name!r} does not name an arXiv paper; refused"
                        task = self._refused(source, reason, extra)
                    else:
                        meta, _ = self._meta(paper_id)
                        key = hashlib.sha256(member.data).hexdigest()
                        task = self._task("member", paper_id, source, key, paper_id, meta, extra, data=member.data)
                    if task is not None:
                        yield task
        except ScituneError as err:
            task = self._refused(archive, str(err))
            if task is not None:
                yield task


def wanted_ids(inputs: list[tuple[str, str]], limits: Limits) -> set[str]:
    """The arXiv ids the inputs hold (bulk tars: from their member names, headers only)."""
    ids: set[str] = set()
    for kind, location in inputs:
        if kind == "bulk":
            with open_input(location) as handle:
                ids.update(i for i in map(arxiv_id, member_names(handle, location, limits)) if i)
        else:
            paper_id = arxiv_id(_source_name(location.rsplit("/", 1)[-1]))
            if paper_id:
                ids.add(paper_id)
    return ids


def local_inputs(paths: list[str]) -> list[str]:
    """The inputs on this machine (the output may not be on, over or inside one)."""
    return [os.fspath(p) for p in paths if not is_url(p)]
