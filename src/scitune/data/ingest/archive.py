"""Safe unpacking of an arXiv-style source archive (`.tar`, `.tar.gz`, `.tgz`, or one gzipped
`.tex` file, which is what arXiv serves for single-file papers).

Refused, with the archive and member named: absolute paths, `..` components, links (symbolic or
hard) whose target leaves the folder, device files and FIFOs, more members or more bytes than the
limits allow. Python's `tarfile` `data` filter (3.12+, backported to 3.10.12/3.11.4) does the
per-member checks where it exists; the member count and size bounds are ours, checked before
anything is written.
"""

from __future__ import annotations

import gzip
import os
import tarfile
from pathlib import Path, PurePosixPath

from scitune.data.ingest.limits import DEFAULT_LIMITS, Limits
from scitune.errors import ScituneError
from scitune.io.read import check_file

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tar.xz", ".gz")


def is_archive(path: Path) -> bool:
    name = path.name.lower()
    return any(name.endswith(s) for s in ARCHIVE_SUFFIXES)


def _check_member(archive: Path, member: tarfile.TarInfo) -> None:
    name = member.name
    pure = PurePosixPath(name)
    if pure.is_absolute() or name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise ScituneError(f"{archive}: member {name!r} has an absolute path; refused")
    if ".." in pure.parts:
        raise ScituneError(f"{archive}: member {name!r} leaves the archive folder (..); refused")
    if member.isdev() or member.isfifo():
        raise ScituneError(f"{archive}: member {name!r} is a device file or FIFO; refused")
    if member.issym() or member.islnk():
        target = PurePosixPath(member.linkname)
        escapes = f"{archive}: link {name!r} points outside the archive ({member.linkname!r}); refused"
        if target.is_absolute():
            raise ScituneError(escapes)
        # a symlink's target is relative to its own folder, a hard link's to the archive root
        parts: list[str] = list(pure.parent.parts) if member.issym() else []
        for part in target.parts:
            if part == "..":
                if not parts:
                    raise ScituneError(escapes)
                parts.pop()
            elif part != ".":
                parts.append(part)


def extract_archive(archive: str | os.PathLike, dest: str | os.PathLike, limits: Limits = DEFAULT_LIMITS) -> Path:
    """Unpacks `archive` into the (new or empty) folder `dest` and returns `dest`."""
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    check_file(archive, limits.archive_bytes, "archive")
    try:
        is_tar = tarfile.is_tarfile(archive)
    except OSError as err:
        raise ScituneError(f"{archive}: cannot read ({err})") from None
    if not is_tar:
        if archive.name.lower().endswith(".gz") and not archive.name.lower().endswith((".tar.gz", ".tgz")):
            return _gunzip_single(archive, dest, limits)
        raise ScituneError(f"{archive}: not a tar archive (or a corrupt one)")
    try:
        with tarfile.open(archive) as tar:
            members = []
            total = 0
            for member in tar:  # streams the index; stops at the member limit
                members.append(member)
                if len(members) > limits.archive_members:
                    raise ScituneError(f"{archive}: more than {limits.archive_members} members; refused")
                _check_member(archive, member)
                if member.size > limits.member_bytes:
                    raise ScituneError(f"{archive}: member {member.name!r} is {member.size} bytes, "
                                       f"more than the limit of {limits.member_bytes}; refused")
                total += member.size
                if total > limits.archive_bytes:
                    raise ScituneError(f"{archive}: more than {limits.archive_bytes} bytes uncompressed; refused")
            kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(dest, members=members, **kwargs)
    except ScituneError:
        raise
    except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as err:
        raise ScituneError(f"{archive}: malformed archive ({err})") from None
    return dest


def _gunzip_single(archive: Path, dest: Path, limits: Limits) -> Path:
    """arXiv's single-file papers: one gzipped .tex, no tar around it."""
    out = dest / (archive.name[: -len(".gz")] or "main")
    if not out.name.lower().endswith(".tex"):
        out = out.with_name(out.name + ".tex")
    try:
        with gzip.open(archive, "rb") as handle:
            data = handle.read(limits.tex_bytes + 1)
    except (OSError, EOFError) as err:
        raise ScituneError(f"{archive}: malformed gzip file ({err})") from None
    if len(data) > limits.tex_bytes:
        raise ScituneError(f"{archive}: the gzipped file is more than {limits.tex_bytes} bytes; refused")
    out.write_bytes(data)
    return dest
