"""Writes ingested papers in the SciCap challenge layout that `scitune data scicap` reads, plus a
provenance record per figure and the ingest report.

    OUT/images/<paper>-fig<N>.png
    OUT/{train,val,test}.json   {"images": [{id, file_name, figure_type, ocr}],
                                 "annotations": [{image_id, id, caption, caption_no_index, paragraph, mention}]}
    OUT/provenance.json         [{image_id, file_name, split, paper, source, kind, licence, tex_file/label or page/box, ...}]
    OUT/ingest.json             what was read, written, skipped and why (marks OUT as ingest's own)

Splits are by paper, never by figure: the papers are shuffled with the seed and cut by the
ratios, so all figures of one paper land in one split. Every file is written to a temporary
name and moved into place.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

from scitune.data.ingest.records import Paper
from scitune.errors import ScituneError

SPLITS = ("train", "val", "test")
REPORT = "ingest.json"
OUTPUT_FILES = ("train.json", "val.json", "test.json", "provenance.json", REPORT)


def safe_name(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-")
    return name[:80] or "paper"


def assign_splits(names: list[str], seed: int, ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> dict[str, str]:
    """Paper name -> split: the sorted names shuffled with `seed`, cut by the ratios (largest
    remainders get the rounding; with three or more papers val and test get at least one each
    when their ratio is above zero)."""
    if len(ratios) != 3 or any(r < 0 for r in ratios) or sum(ratios) <= 0:
        raise ScituneError(f"--split: expected three non-negative ratios, got {ratios}")
    total = sum(ratios)
    ratios = tuple(r / total for r in ratios)
    order = sorted(names)
    random.Random(seed).shuffle(order)
    n = len(order)
    exact = [r * n for r in ratios]
    counts = [int(e) for e in exact]
    for i in sorted(range(3), key=lambda i: exact[i] - counts[i], reverse=True)[: n - sum(counts)]:
        counts[i] += 1
    if n >= 3:
        for i in (1, 2):
            if ratios[i] > 0 and counts[i] == 0 and counts[0] > 1:
                counts[i] += 1
                counts[0] -= 1
    out, start = {}, 0
    for split, count in zip(SPLITS, counts):
        for name in order[start : start + count]:
            out[name] = split
        start += count
    return out


def prepare_out(out: Path, overwrite: bool) -> None:
    """`out` may be new, empty, or an earlier ingest output (ingest.json); anything else needs
    `overwrite`. An earlier output's files are removed before writing."""
    if out.exists() and not out.is_dir():
        raise ScituneError(f"--out {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not (out / REPORT).is_file() and not overwrite:
            raise ScituneError(f"--out {out}: folder is not empty and was not written by scitune ingest "
                               "(no ingest.json); choose a new folder or pass --overwrite")
        for name in OUTPUT_FILES:
            if (out / name).is_file():
                (out / name).unlink()
        if (out / "images").is_dir():
            shutil.rmtree(out / "images")
    out.mkdir(parents=True, exist_ok=True)


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_json(path: Path, obj: Any) -> None:
    write_atomic(path, (json.dumps(obj, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))


def figure_rows(papers: list[Paper], splits: dict[str, str]) -> list[dict[str, Any]]:
    """One row per figure: its ids, split, SciCap image and annotation entries, provenance."""
    rows = []
    for paper in papers:
        seen: set[str] = set()
        for k, figure in enumerate(paper.figures):
            tag = f"fig{figure.number}" if figure.number and figure.number not in seen else f"figure{k + 1}"
            seen.add(figure.number)
            image_id = f"{paper.name}-{tag}"
            file_name = f"{image_id}.png"
            rows.append({
                "image_id": image_id,
                "file_name": file_name,
                "split": splits[paper.name],
                "png": figure.png,
                "image": {"id": image_id, "file_name": file_name, "figure_type": None, "ocr": figure.ocr},
                "annotation": {"image_id": image_id, "id": image_id, "caption": figure.caption,
                               "caption_no_index": figure.caption_no_index, "paragraph": figure.paragraphs,
                               "mention": figure.mentions},
                "provenance": {"image_id": image_id, "file_name": file_name, "split": splits[paper.name],
                               "paper": paper.name, "source": paper.source, "kind": paper.kind,
                               "licence": paper.licence, "figure_number": figure.number, **figure.provenance},
            })
    return rows


def write_output(out: Path, rows: list[dict[str, Any]], report: dict[str, Any]) -> None:
    (out / "images").mkdir(parents=True, exist_ok=True)
    for row in rows:
        write_atomic(out / "images" / row["file_name"], row["png"])
    for split in SPLITS:
        chosen = [r for r in rows if r["split"] == split]
        write_json(out / f"{split}.json", {"images": [r["image"] for r in chosen],
                                           "annotations": [r["annotation"] for r in chosen]})
    write_json(out / "provenance.json", [r["provenance"] for r in rows])
    write_json(out / REPORT, report)
