"""The per-paper function and the engines that run it.

`read_task(task, dpi, limits)` is pure: a Task in, a result out (the paper's figures with their
PNG bytes, what it could not pair, or why it failed), nothing written. Every engine runs that same
function and yields the results in plan order, so the output does not depend on the engine:

- `run_local`: one paper after another, in this process (`--workers 1`);
- `run_pool`: a process pool (`--workers N`), at most 2 x N papers in flight;
- `ray_engine.run_ray`: Ray Data tasks (`--engine ray`), on one machine or a cluster.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import tempfile
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from scitune.data.ingest.limits import DEFAULT_LIMITS, Limits
from scitune.data.ingest.records import Paper
from scitune.data.ingest.sources import Task
from scitune.errors import RunFailed, ScituneError

Result = dict[str, Any]


def _read_latex_dir(root: Path, task: Task, dpi: int, limits: Limits, counts: dict) -> Paper:
    from scitune.data.ingest.latex import read_latex_paper

    return read_latex_paper(root, task.name, task.source, dpi, limits, counts)


def _read_pdf_file(path: Path, task: Task, dpi: int, limits: Limits) -> Paper:
    from scitune.data.ingest.pdf import read_pdf_paper

    return read_pdf_paper(path, task.name, task.source, dpi, limits)


def _read_archive_file(path: Path, task: Task, dpi: int, limits: Limits, counts: dict, tmp: Path) -> Paper:
    from scitune.data.ingest.archive import extract_archive

    return _read_latex_dir(extract_archive(path, tmp / "src", limits), task, dpi, limits, counts)


def _member_kind(data: bytes, where: str, limits: Limits) -> str:
    """What a bulk member holds: "pdf", "gzip-pdf", "archive" (gzipped tar or single gzipped .tex) or "tar"."""
    if data.startswith(b"%PDF"):
        return "pdf"
    if data.startswith(b"\x1f\x8b"):
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as handle:
                head = handle.read(5)
        except (OSError, EOFError) as err:
            raise ScituneError(f"{where}: malformed gzip member ({err})") from None
        return "gzip-pdf" if head.startswith(b"%PDF") else "archive"
    if len(data) >= 512 and data[257:262] == b"ustar":
        return "tar"
    raise ScituneError(f"{where}: neither a PDF, a gzip file nor a tar archive; refused")


def read_local(task: Task, dpi: int, limits: Limits, counts: dict) -> Paper:
    """One task's paper, read in this process (the one reading path of every engine)."""
    with tempfile.TemporaryDirectory(prefix="scitune-ingest-") as name:
        try:
            return _read_in(task, dpi, limits, counts, Path(name))
        except Exception as err:  # noqa: BLE001 - any error reading one paper is that paper's failure
            # A paper given as bytes is read from a temporary copy: name the input, not the copy
            # (and the message is the same whichever machine read it). A library's own error on a
            # hostile or broken input (pypdfium2, PIL, tarfile, zlib, ...) is that paper's failure,
            # in its words with its type, so one paper out of thousands never stops a run.
            message = str(err) if isinstance(err, ScituneError) else \
                f"{task.source}: {type(err).__name__}: {' '.join(str(err).split())[:500]}"
            for copy in sorted(Path(name).iterdir(), key=lambda p: -len(str(p))):
                message = message.replace(str(copy), task.source)
            raise ScituneError(message.replace(name, task.source)) from None


def _read_in(task: Task, dpi: int, limits: Limits, counts: dict, tmp: Path) -> Paper:
    if task.path is not None:
        path = Path(task.path)
        if task.kind == "latex":
            return _read_latex_dir(path, task, dpi, limits, counts)
        if task.kind == "pdf":
            return _read_pdf_file(path, task, dpi, limits)
        return _read_archive_file(path, task, dpi, limits, counts, tmp)
    data = task.data or b""
    kind = task.kind
    file_name = Path(task.source.rsplit(":", 1)[-1].rsplit("/", 1)[-1]).name or "paper"
    if kind == "member":
        kind = _member_kind(data, task.source, limits)
        if kind == "gzip-pdf":
            try:
                data = gzip.GzipFile(fileobj=io.BytesIO(data)).read(limits.pdf_bytes + 1)
            except (OSError, EOFError) as err:
                raise ScituneError(f"{task.source}: malformed gzip member ({err})") from None
            if len(data) > limits.pdf_bytes:
                raise ScituneError(f"{task.source}: the PDF is more than {limits.pdf_bytes} bytes; refused")
            kind = "pdf"
        if kind == "tar":
            file_name = f"{task.name}.tar"
    if kind == "pdf":
        path = tmp / "paper.pdf"
        path.write_bytes(data)
        return _read_pdf_file(path, task, dpi, limits)
    if kind == "latex" or kind == "tar":
        # a source folder packed by `sources.portable`, or a bulk member that is a plain tar
        path = tmp / (file_name if file_name.endswith(".tar") else "source.tar")
        path.write_bytes(data)
        return _read_archive_file(path, task, dpi, limits, counts, tmp)
    path = tmp / file_name  # keeps ".gz" / ".tar.gz": extract_archive reads the suffix
    path.write_bytes(data)
    return _read_archive_file(path, task, dpi, limits, counts, tmp)


def figure_fields(figure) -> dict[str, Any]:
    """A Figure as a plain dict: every field, including ones added later (e.g. caption_latex)."""
    return {f.name: getattr(figure, f.name) for f in dataclasses.fields(figure)}


def read_task(task: Task, dpi: int = 150, limits: Limits = DEFAULT_LIMITS) -> Result:
    """The figures of one paper, or why it failed. Never raises for a bad paper: one paper's
    failure is that paper's result, so a run over thousands goes on."""
    result: Result = task.header()
    if task.failed:
        result["failed"] = task.failed
        return result
    counts: dict = {}
    try:
        paper = read_local(task, dpi, limits, counts)
    except ScituneError as err:
        result["failed"] = str(err)
        return result
    result.update(kind=paper.kind, found_licence=paper.licence, unpaired=paper.unpaired, counts=counts,
                  figures=[figure_fields(f) for f in paper.figures])
    return result


# ----------------------------------------------------------------------------- engines


def run_local(tasks: Iterable[Task], read: Callable[[Task], Result]) -> Iterator[Result]:
    for task in tasks:
        yield read(task)


def run_pool(tasks: Iterable[Task], read: Callable[[Task], Result], workers: int) -> Iterator[Result]:
    """`read` over `tasks` in `workers` processes; results in task order, at most 2 x workers in flight."""
    import multiprocessing

    # spawn: a fresh interpreter per worker (no fork of a process that may hold threads or a model)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending: deque = deque()
        try:
            for task in tasks:
                pending.append(pool.submit(read, task))
                if len(pending) >= 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        except GeneratorExit:  # the caller stopped (an error, Ctrl-C): drop the papers not started
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        except BrokenProcessPool as err:
            raise RunFailed(f"a reading process died ({err}); the papers written so far are kept: re-run the same "
                            "command to resume (from a script, call ingest under `if __name__ == \"__main__\":`)") from None

