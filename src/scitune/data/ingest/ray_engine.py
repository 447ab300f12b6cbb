"""`scitune ingest --engine ray`: the same per-paper function (`engine.read_task`) as Ray Data
tasks, on one machine or a Ray cluster (`ray job submit -- scitune ingest ...`).

This process plans (reads the inputs through fsspec: local paths, s3://, gs://, ...), sends each
paper's bytes with its task (so a worker needs no access to the inputs), and writes the shards
from the results in plan order: the output is the local engine's, byte for byte. Papers go in
windows (`WINDOW`) and results are streamed back in order, so memory here stays flat in the
number of papers.

Needs the ray extra: pip install "scitune[ray]" (on every worker too, with scitune itself).
"""

from __future__ import annotations

import dataclasses
import json
from itertools import islice
from typing import Any, Iterable, Iterator

from scitune.data.ingest.limits import Limits
from scitune.data.ingest.sources import Task, portable
from scitune.errors import RunFailed, ScituneError

WINDOW = 256  # papers per Ray Data dataset: their bytes are held here until sent (~0.5 GB for arXiv sources)


def _read_row(row: dict[str, Any], dpi: int, limits: dict[str, Any]) -> dict[str, Any]:
    """One Ray Data row (a task as JSON plus its bytes) -> the result as JSON plus its PNGs."""
    from scitune.data.ingest.engine import read_task

    header = json.loads(row["task"])
    task = Task(**header, data=bytes(row["data"]))
    result = read_task(task, dpi, Limits(**limits))
    pngs = [figure.pop("png") for figure in result.get("figures", [])]
    return {"index": task.index, "result": json.dumps(result), "pngs": pngs}


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    result = json.loads(row["result"])
    for figure, png in zip(result.get("figures", []), row["pngs"]):
        figure["png"] = bytes(png)
    return result


def run_ray(tasks: Iterable[Task], dpi: int, limits: Limits) -> Iterator[dict[str, Any]]:
    try:
        import ray
        import ray.data
    except ImportError:
        raise ScituneError('--engine ray needs the ray extra: pip install "scitune[ray]" (ray is not installed)') from None
    if not ray.is_initialized():
        ray.init()  # RAY_ADDRESS or `ray job submit`: the cluster; otherwise a local Ray on this machine
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.execution_options.preserve_order = True  # results in plan order: the local engine's bytes
    limit_fields = dataclasses.asdict(limits)
    tasks = iter(tasks)
    while True:
        window = [portable(t, limits) for t in islice(tasks, WINDOW)]
        if not window:
            return
        rows = [{"task": json.dumps({f.name: getattr(t, f.name) for f in dataclasses.fields(Task) if f.name != "data"}),
                 "data": t.data or b""} for t in window]
        dataset = ray.data.from_items(rows).map(_read_row, fn_kwargs={"dpi": dpi, "limits": limit_fields})
        expected = iter([t.index for t in window])
        del rows, window
        for row in dataset.iter_rows():  # streamed, in order (preserve_order): written as they come
            if row["index"] != next(expected, None):
                raise RunFailed("--engine ray: a result came out of order or twice; re-run the same command to resume")
            yield _decode(row)
        if next(expected, None) is not None:
            raise RunFailed("--engine ray: results are missing for some papers; re-run the same command to resume")
