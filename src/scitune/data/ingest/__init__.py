"""`scitune ingest`: a group's own papers (LaTeX sources, PDFs, arXiv bulk source tars) -> stage-1
data in the SciCap challenge layout, with per-figure provenance, splits by paper, and an optional
leakage check.

    from scitune.data.ingest import ingest
    report = ingest(["papers/"], "data/mine", seed=0, workers=2)

How a run goes: `sources` plans one Task per paper (content-keyed; duplicates and papers an
earlier run finished are skipped; `arxiv` reads bulk tars member by member and filters by the
metadata snapshot); an engine (`engine`: in process or a process pool; `ray_engine`: Ray Data)
runs the pure per-paper function `engine.read_task` on each; this process appends each result to
`shards` in plan order (images first); at the end `writer` streams the shards into the split
files. Readers: `archive` (safe unpacking), `texparse` + `latex` (LaTeX sources), `pdf` (PDF
papers and figure files), `images` (figure files -> PNG); `overlap` (the leakage guard),
`limits` (every outside size bound).
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any, Callable, Iterator

from scitune.data.ingest.arxiv import Selection, read_metadata
from scitune.data.ingest.engine import read_task
from scitune.data.ingest.limits import DEFAULT_LIMITS, Limits
from scitune.data.ingest.records import Figure, Paper
from scitune.data.ingest.sources import Planner, discover, list_inputs, local_inputs, wanted_ids
from scitune.data.ingest.writer import (REPORT, SPLITS, check_ratios, paper_rows, prepare_out, remove_layout, split_of,
                                        write_layout)
from scitune.errors import ScituneError
from scitune.io.atomic import write_json

__all__ = ["ENGINES", "SPLITS", "Figure", "Limits", "Paper", "discover", "ingest", "read_paper"]

log = logging.getLogger(__name__)

ENGINES = ("local", "ray")


def read_paper(kind: str, path: Path, name: str, dpi: int = 150, limits: Limits = DEFAULT_LIMITS,
               counts: dict | None = None) -> Paper:
    """One paper from a local path: kind "pdf", "latex" (a source folder) or "archive", read by
    the engine's own reader (errors are ScituneErrors naming `path`)."""
    from scitune.data.ingest.engine import read_local
    from scitune.data.ingest.sources import Task

    task = Task(index=0, kind=kind, name=name, source=str(path), key="", path=str(path))
    return read_local(task, dpi, limits, {} if counts is None else counts)


def _entry(result: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A result as its shard line (no PNG bytes)."""
    base = {"key": result["key"], "name": result["name"], "source": result["source"], "extra": result.get("extra", {})}
    if "failed" in result:
        return {**base, "failed": result["failed"]}
    return {**base, "kind": result["kind"], "licence": result.get("licence") or result.get("found_licence"),
            "unpaired": result["unpaired"], "counts": result["counts"],
            "figures": [{"image": r["image"], "annotation": r["annotation"], "provenance": r["provenance"]} for r in rows]}


def ingest(paths: list[str], out: str | Path, *, seed: int = 0, ratios: tuple[float, float, float] = (0.8, 0.1, 0.1),
           dpi: int = 150, limits: Limits = DEFAULT_LIMITS, overwrite: bool = False,
           classify: Callable[[list[dict]], list[tuple[str, float] | None]] | None = None,
           against: list[str] | None = None, fail_on_overlap: bool = False, eval_split: str = "test",
           workers: int = 1, engine: str = "local", metadata: str | None = None,
           categories: tuple[str, ...] = (), licences: tuple[str, ...] = ()) -> dict:
    """Reads the papers under `paths` (local paths or fsspec URLs), writes OUT in the SciCap
    layout and returns the report. Re-running the same call resumes: papers already in OUT's
    shards are not read again.

    `workers` > 1: a process pool (started with "spawn": from a script, call `ingest` under
    `if __name__ == "__main__":`); `engine="ray"`: Ray Data tasks. `metadata`: arXiv's JSON-lines
    snapshot, which gives each arXiv paper its licence and, with `categories` / `licences`,
    selects the papers read. `classify(rows)` (optional) gets one paper's figure rows (with `png`)
    and returns, per row, the figure type and its probability (or None). With `against`, the
    training split is checked for overlap with those evaluation sets; with `fail_on_overlap`, the
    split files are not written when any is found (the report lists them)."""
    if not 30 <= dpi <= 600:
        raise ScituneError(f"--dpi: must be 30..600, got {dpi}")
    if engine not in ENGINES:
        raise ScituneError(f"--engine: expected one of {', '.join(ENGINES)}, got {engine!r}")
    if not isinstance(workers, int) or workers < 1:
        raise ScituneError(f"--workers: must be a positive integer, got {workers}")
    ratios = check_ratios(ratios)
    selection = Selection(tuple(categories), tuple(licences))
    if selection.active and not metadata:
        raise ScituneError("--categories / --licence select papers by arXiv's metadata: pass --metadata FILE too")
    out = Path(out)
    paths = [str(p) for p in paths]
    inputs, pdfs_with_source = list_inputs(paths)
    if not inputs:
        raise ScituneError(f"no papers (LaTeX folders, source archives, arXiv bulk tars or PDFs) under {', '.join(paths)}")
    prepare_out(out, overwrite, local_inputs(paths + ([metadata] if metadata else [])))

    meta = None
    if metadata:
        meta = read_metadata(metadata, wanted_ids(inputs, limits), limits)
        log.info("%s: metadata for %d of the papers given", metadata, len(meta))

    from scitune.data.ingest.shards import ShardStore

    store = ShardStore(out, {"dpi": dpi})
    done = store.open()
    planner = Planner(limits, selection, meta, done, set(done.values()))
    read = functools.partial(read_task, dpi=dpi, limits=limits)
    tasks = planner.tasks(inputs)
    if engine == "ray":
        from scitune.data.ingest.ray_engine import run_ray

        results = run_ray(tasks, dpi, limits)
    elif workers > 1:
        from scitune.data.ingest.engine import run_pool

        results = run_pool(tasks, read, workers)
    else:
        from scitune.data.ingest.engine import run_local

        results = run_local(tasks, read)
    read_now = 0
    try:
        for result in results:
            rows = [] if "failed" in result else paper_rows(result)
            if rows and classify is not None:
                for row, guess in zip(rows, classify(rows)):
                    if guess is not None:
                        row["image"]["figure_type"] = guess[0]
                        row["image"]["figure_type_probability"] = round(float(guess[1]), 4)
            store.append(_entry(result, rows), [(r["file_name"], r["png"]) for r in rows])
            read_now += 1
            if "failed" in result:
                log.info("skipped %s: %s", result["source"], result["failed"])
            else:
                unpaired = len(result["unpaired"])
                log.info(f"{result['source']}: {len(rows)} figures" + (f", {unpaired} not paired" if unpaired else ""))
    finally:
        store.close()

    plan = planner.plan
    keys = plan.keys
    failed: list[dict[str, Any]] = []

    def papers(collect_failed: bool) -> Iterator[dict[str, Any]]:
        """This run's papers from the shards, each once, with its split (and its failures into `failed`)."""
        seen: set[str] = set()
        for entry in store.entries():
            if entry["key"] not in keys or entry["key"] in seen:
                continue
            seen.add(entry["key"])
            if "failed" in entry:
                if collect_failed:
                    failed.append({"source": entry["source"], "reason": entry["failed"],
                                   **{k: v for k, v in entry["extra"].items() if k in ("archive", "member", "arxiv_id")}})
                continue
            yield {**entry, "split": split_of(entry["name"], seed, ratios)}

    overlaps: list[dict] = []
    unchecked: list[dict] = []  # items the leakage check could not compare: a guard that cannot check fails closed
    if against:
        from scitune.data.ingest.overlap import Item, find_overlaps, load_items

        train = [Item("ingest train", f["image"]["id"], [f["annotation"]["caption_no_index"]],
                      out / "images" / f["image"]["file_name"])
                 for p in papers(False) if p["split"] == "train" for f in p["figures"]]
        evals = [item for spec in against for item in load_items(spec, eval_split)]
        overlaps = find_overlaps(train, evals)
        unchecked = list(overlaps.unchecked)
        if unchecked:
            log.warning(f"leakage check: {len(unchecked)} image(s) could not be checked; listed in ingest.json")
    report: dict[str, Any] = {
        "inputs": paths,
        "seed": seed,
        "ratios": list(ratios),
        "dpi": dpi,
        "metadata": metadata,
        "categories": list(selection.categories),
        "licences": list(selection.licences),
    }
    if (overlaps or unchecked) and fail_on_overlap:
        remove_layout(out)
        for _ in papers(True):
            pass
        counts = {}
        written = False
    else:
        counts = write_layout(out, papers(True))
        written = True
    unpaired = counts.pop("unpaired_listed", [])
    report.update({
        "failed": failed,
        "duplicates": plan.duplicates,
        "pdfs_with_source": pdfs_with_source,
        "filtered": {"count": plan.filtered, "listed": plan.filtered_examples},
        "counts": {
            "papers": sum(counts.get("split_papers", {}).values()),
            "failed_papers": len(failed),
            "duplicates": len(plan.duplicates),
            "pdfs_with_source": len(pdfs_with_source),
            "filtered": plan.filtered,
            "read_now": read_now,
            "from_earlier_runs": plan.resumed,
            **counts,
        },
        "unpaired": unpaired,
        "overlaps": overlaps,
        "unchecked": unchecked,
        "written": written,
    })
    write_json(out / REPORT, report, indent=1)
    return report

