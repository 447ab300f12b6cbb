"""`scitune ingest`: a group's own papers (LaTeX sources or PDFs) -> stage-1 data in the SciCap
challenge layout, with per-figure provenance, splits by paper, and an optional leakage check.

    from scitune.data.ingest import ingest
    report = ingest(["papers/"], "data/mine", seed=0)

Modules: `archive` (safe unpacking), `texparse` + `latex` (LaTeX sources), `pdf` (PDF papers and
PDF figure files), `images` (figure files -> PNG), `writer` (layout, splits, provenance),
`overlap` (the leakage guard), `limits` (every outside size bound).
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path
from typing import Callable

from scitune.data.ingest.archive import extract_archive, is_archive
from scitune.data.ingest.limits import DEFAULT_LIMITS, Limits
from scitune.data.ingest.records import Figure, Paper
from scitune.data.ingest.writer import SPLITS, assign_splits, figure_rows, prepare_out, safe_name, write_output
from scitune.errors import ScituneError

__all__ = ["Figure", "Limits", "Paper", "discover", "ingest", "read_paper"]

MAX_INPUTS = 100_000  # papers found under the given paths
MAX_DEPTH = 3  # folders of papers are searched this deep


def _source_name(path: Path) -> str:
    name = path.name
    for suffix in (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tar", ".gz", ".pdf"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def discover(paths: list[str]) -> list[tuple[str, Path]]:
    """(kind, path) of each paper under `paths`: "latex" (a folder with .tex files), "archive"
    or "pdf"; a folder without .tex files is a folder of papers (searched up to MAX_DEPTH down)."""
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
            found.append(("archive", path))
        elif top:
            raise ScituneError(f"{path}: not a LaTeX source folder, a source archive (.tar.gz, .tgz, .tar, .gz) or a PDF")

    for value in paths:
        path = Path(value)
        if not path.exists():
            raise ScituneError(f"{path}: no such file or folder")
        one(path, True)
    return found


def read_paper(kind: str, path: Path, name: str, dpi: int = 150, limits: Limits = DEFAULT_LIMITS,
               counts: dict | None = None) -> Paper:
    from scitune.data.ingest.latex import read_latex_paper
    from scitune.data.ingest.pdf import read_pdf_paper

    if kind == "pdf":
        return read_pdf_paper(path, name, str(path), dpi, limits)
    if kind == "latex":
        return read_latex_paper(path, name, str(path), dpi, limits, counts)
    with tempfile.TemporaryDirectory(prefix="scitune-ingest-") as tmp:
        root = extract_archive(path, Path(tmp) / "src", limits)
        paper = read_latex_paper(root, name, str(path), dpi, limits, counts)
    return paper


def ingest(paths: list[str], out: str | Path, *, seed: int = 0, ratios: tuple[float, float, float] = (0.8, 0.1, 0.1),
           dpi: int = 150, limits: Limits = DEFAULT_LIMITS, overwrite: bool = False,
           classify: Callable[[list[dict]], list[tuple[str, float] | None]] | None = None,
           against: list[str] | None = None, fail_on_overlap: bool = False, eval_split: str = "test",
           log: Callable[[str], None] | None = None) -> dict:
    """Reads the papers under `paths`, writes OUT in the SciCap layout and returns the report.

    `classify(rows)` (optional) gets the figure rows (with `png`) and returns, per row, the
    figure type and its probability (or None). With `against`, the training split is checked
    for overlap with those evaluation sets first; with `fail_on_overlap`, nothing is written
    when any is found (the report lists them)."""
    if not 30 <= dpi <= 600:
        raise ScituneError(f"--dpi: must be 30..600, got {dpi}")
    log = log or (lambda message: None)
    out = Path(out)
    prepare_out(out, overwrite)
    found = discover(paths)
    if not found:
        raise ScituneError(f"no papers (LaTeX folders, source archives or PDFs) under {', '.join(paths)}")
    papers: list[Paper] = []
    failed: list[dict] = []
    # one paper given as its source and as a PDF: the source is read (exact captions and
    # labels), the PDF skipped, so the two copies never land in different splits
    sources = {_source_name(p) for kind, p in found if kind != "pdf"}
    duplicates = [(k, p) for k, p in found if k == "pdf" and _source_name(p) in sources]
    found = [f for f in found if f not in duplicates]

    counts: dict = {}
    names: Counter = Counter()
    for kind, path in found:
        base = safe_name(_source_name(path))
        names[base] += 1
        name = base if names[base] == 1 else f"{base}-{names[base]}"
        try:
            paper = read_paper(kind, path, name, dpi, limits, counts)
        except ScituneError as err:
            failed.append({"source": str(path), "reason": str(err)})
            log(f"skipped {path}: {err}")
            continue
        papers.append(paper)
        log(f"{path}: {len(paper.figures)} figures" + (f", {len(paper.unpaired)} not paired" if paper.unpaired else ""))
    splits = assign_splits([p.name for p in papers], seed, ratios)
    rows = figure_rows(papers, splits)
    if classify is not None and rows:
        for row, guess in zip(rows, classify(rows)):
            if guess is not None:
                row["image"]["figure_type"] = guess[0]
                row["image"]["figure_type_probability"] = round(float(guess[1]), 4)
    overlaps: list[dict] = []
    if against:
        from scitune.data.ingest.overlap import Item, find_overlaps, load_items

        train = [Item("ingest train", r["image_id"], [r["annotation"]["caption_no_index"]], r["png"])
                 for r in rows if r["split"] == "train"]
        evals = [item for spec in against for item in load_items(spec, eval_split)]
        overlaps = find_overlaps(train, evals)
    report = {
        "inputs": [str(p) for _, p in found],
        "seed": seed,
        "ratios": list(ratios),
        "dpi": dpi,
        "papers": [{"name": p.name, "source": p.source, "kind": p.kind, "split": splits[p.name],
                    "licence": p.licence, "figures": len(p.figures), "unpaired": p.unpaired} for p in papers],
        "failed": failed,
        "pdfs_with_source": [str(p) for _, p in duplicates],
        "counts": {
            "papers": len(papers),
            "failed_papers": len(failed),
            "pdfs_with_source": len(duplicates),
            "figures": len(rows),
            "unpaired": sum(len(p.unpaired) for p in papers),
            "without_mentions": sum(not f.mentions for p in papers for f in p.figures),
            "missing_files": counts.get("missing_files", 0),
            "eps_skipped": counts.get("eps_skipped", 0),
            "split_figures": {s: sum(r["split"] == s for r in rows) for s in SPLITS},
            "split_papers": {s: sum(v == s for v in splits.values()) for s in SPLITS},
        },
        "overlaps": overlaps,
    }
    if overlaps and fail_on_overlap:
        report["written"] = False
        return report
    write_output(out, rows, report)
    report["written"] = True
    return report
