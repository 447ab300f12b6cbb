"""Writes ingested papers in the SciCap challenge layout that `scitune data scicap` reads, plus a
provenance record per figure and the ingest report.

    OUT/shards/NNNNN.jsonl      one line per paper as it is read (figures, provenance, or why it
                                failed): what a killed run resumes from (see `shards`)
    OUT/images/<paper>-fig<N>.png
    OUT/{train,val,test}.json   {"images": [{id, file_name, figure_type, ocr}],
                                 "annotations": [{image_id, id, caption, caption_no_index, paragraph, mention, ...}]}
    OUT/provenance.json         [{image_id, file_name, split, paper, source, kind, licence, tex_file/label or page/box, ...}]
    OUT/papers.jsonl            one line per paper: name, source, split, licence, figures, what was not paired
    OUT/ingest.json             what was read, written, skipped and why (marks OUT as ingest's own)

The split files are written at the end of a run from the shards, streamed: one paper's rows in
memory at a time, never the images. Splits are by paper, never by figure: a paper's split comes
from sha256("<seed>:<paper name>") as a number in [0, 1) cut by the ratios, so adding papers
never moves another paper to a different split. Every file is written to a temporary name and
moved into place.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
from pathlib import Path
from typing import Any, Iterator

from scitune.errors import ScituneError
from scitune.io.atomic import atomic_file
from scitune.io.outputs import claim_output, read_marker, refuse_overlap, write_marker

SPLITS = ("train", "val", "test")
REPORT = "ingest.json"
INGEST_KIND = "ingest"  # the marker kind of an ingest output folder
SHARDS = "shards"
OUTPUT_FILES = ("train.json", "val.json", "test.json", "provenance.json", "papers.jsonl", REPORT)
PAPER_COUNTS = ("missing_files", "eps_skipped", "tikz_skipped")  # a reader's own counts, summed over papers
UNPAIRED_LISTED = 1000  # unpaired figures listed in the report (all are counted)
# the Figure fields with a place of their own in a row; any other field (added by a reader,
# e.g. caption_latex) goes into the annotation as it is
_FIGURE_KNOWN = {"number", "caption", "caption_no_index", "png", "paragraphs", "mentions", "ocr", "provenance"}


def safe_name(text: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-")
    return name[:80] or "paper"


def check_ratios(ratios) -> tuple[float, float, float]:
    """Three finite, non-negative ratios with a positive sum, normalised to sum to 1."""
    try:
        values = tuple(float(r) for r in ratios)
    except (TypeError, ValueError):
        values = ()
    if len(values) != 3 or not all(math.isfinite(v) and v >= 0 for v in values) or sum(values) <= 0:
        raise ScituneError(f"--split: expected three finite, non-negative ratios TRAIN,VAL,TEST with a positive sum, "
                           f"got {','.join(str(r) for r in ratios) if isinstance(ratios, (list, tuple)) else ratios}")
    total = sum(values)
    return tuple(v / total for v in values)  # type: ignore[return-value]


def split_of(paper: str, seed: int, ratios: tuple[float, float, float]) -> str:
    """The split of one paper: sha256("<seed>:<paper>") as a number in [0, 1), cut by the
    (normalised) ratios. Depends on nothing but the paper's name, the seed and the ratios."""
    u = int.from_bytes(hashlib.sha256(f"{seed}:{paper}".encode("utf-8")).digest()[:8], "big") / 2.0**64
    edge = 0.0
    for split, ratio in zip(SPLITS, ratios):
        edge += ratio
        if u < edge and ratio > 0:
            return split
    return next(s for s, r in zip(reversed(SPLITS), reversed(ratios)) if r > 0)


def assign_splits(names: list[str], seed: int, ratios: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> dict[str, str]:
    """Paper name -> split (`split_of` for each)."""
    ratios = check_ratios(ratios)
    return {name: split_of(name, seed, ratios) for name in names}


def prepare_out(out: Path, overwrite: bool, inputs: list[str] = ()) -> bool:
    """Claims `out` the one way every command does (scitune.io.outputs.claim_output): new, empty,
    or an earlier ingest output (its marker; one from before markers is known by ingest.json or
    shards/); anything else needs `overwrite`; never on, over or inside an input. Returns whether
    an earlier run's shards are kept (a re-run resumes); with `overwrite`, ingest's own earlier
    files are removed (nothing else in the folder is)."""
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", str(out)):
        raise ScituneError(f"--out {out}: write to a local or mounted folder (URLs are read, not written)")
    refuse_overlap(out, inputs, "--out")
    earlier = out.is_dir() and ((out / REPORT).is_file() or (out / SHARDS).is_dir())
    if earlier and read_marker(out) is None:
        write_marker(out, INGEST_KIND)  # an ingest output written before ingest marked its folders
    claim_output(out, inputs=inputs, overwrite=overwrite, kind="dir", marker=INGEST_KIND, reuse=True)
    resume = False
    if earlier:
        resume = not overwrite and (out / SHARDS).is_dir()
        if not resume:
            for name in OUTPUT_FILES:
                if (out / name).is_file():
                    (out / name).unlink()
            for folder in ("images", SHARDS):
                if (out / folder).is_dir():
                    shutil.rmtree(out / folder)
    out.mkdir(parents=True, exist_ok=True)
    if read_marker(out) is None:
        write_marker(out, INGEST_KIND)
    return resume


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool, list, dict))


def paper_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per figure of a read paper: its ids, PNG, SciCap image and annotation entries and
    provenance (the split is added when the split files are written)."""
    rows, seen = [], set()
    name = result["name"]
    licence = result.get("licence") or result.get("found_licence")
    for k, figure in enumerate(result["figures"]):
        number = figure["number"]
        tag = f"fig{number}" if number and number not in seen else f"figure{k + 1}"
        seen.add(number)
        image_id = f"{name}-{tag}"
        file_name = f"{image_id}.png"
        annotation = {"image_id": image_id, "id": image_id, "caption": figure["caption"],
                      "caption_no_index": figure["caption_no_index"], "paragraph": figure["paragraphs"],
                      "mention": figure["mentions"]}
        annotation.update({k: v for k, v in figure.items() if k not in _FIGURE_KNOWN and v is not None and _plain(v)})
        rows.append({
            "image_id": image_id,
            "file_name": file_name,
            "png": figure["png"],
            "image": {"id": image_id, "file_name": file_name, "figure_type": None, "ocr": figure["ocr"]},
            "annotation": annotation,
            "provenance": {"image_id": image_id, "file_name": file_name, "paper": name, "source": result["source"],
                           "kind": result["kind"], "licence": licence, **result.get("extra", {}),
                           "figure_number": number, **figure["provenance"]},
        })
    return rows


class StreamedFile:
    """A file written bit by bit through scitune.io.atomic's `atomic_file`: `commit` syncs it and
    moves it into place, `abort` removes it (the file at `path` is untouched until `commit`)."""

    def __init__(self, path: Path):
        self.path = path
        self._file = atomic_file(path)
        self.handle = self._file.__enter__()

    def commit(self) -> None:
        self._file.__exit__(None, None, None)

    def abort(self) -> None:
        self._file.__exit__(_Aborted, _Aborted(), None)


class _Aborted(Exception):
    """Given to `atomic_file` to have it remove what was written."""


class JsonListWriter:
    """A JSON list written one item at a time, synced and moved into place by `close`."""

    def __init__(self, path: Path):
        self.path, self.file = path, StreamedFile(path)
        self.handle = self.file.handle
        self.handle.write("[")
        self.count = 0

    def add(self, item: Any) -> None:
        self.handle.write(("\n" if self.count == 0 else ",\n") + json.dumps(item, ensure_ascii=False))
        self.count += 1

    def close(self) -> None:
        self.handle.write("\n]\n")
        self.file.commit()

    def abort(self) -> None:
        self.file.abort()


class SplitWriter:
    """One split's `{"images": [...], "annotations": [...]}` file, streamed: the two lists go to
    two temporary files that `close` joins."""

    def __init__(self, path: Path):
        self.path = path
        self.images = JsonListWriter(path.with_name(f".{path.name}.images"))
        self.annotations = JsonListWriter(path.with_name(f".{path.name}.annotations"))

    def add(self, image: dict[str, Any], annotation: dict[str, Any]) -> None:
        self.images.add(image)
        self.annotations.add(annotation)

    def close(self) -> None:
        self.images.close()
        self.annotations.close()
        with atomic_file(self.path) as out:
            out.write('{"images": ')
            for part, tail in ((self.images.path, ',\n"annotations": '), (self.annotations.path, "}\n")):
                with part.open(encoding="utf-8") as handle:
                    shutil.copyfileobj(handle, out)  # ends with "]\n"
                out.write(tail)
                part.unlink()

    def abort(self) -> None:
        self.images.abort()
        self.annotations.abort()


def write_layout(out: Path, entries: Iterator[dict[str, Any]]) -> dict[str, Any]:
    """The split files, provenance.json and papers.jsonl from the papers' shard entries (each
    with its `split`); returns the counts. Streams: one paper in memory at a time."""
    splits = {s: SplitWriter(out / f"{s}.json") for s in SPLITS}
    provenance = JsonListWriter(out / "provenance.json")
    papers = StreamedFile(out / "papers.jsonl")
    counts = {"figures": 0, "unpaired": 0, "source_notes": 0, "without_mentions": 0,
              **dict.fromkeys(PAPER_COUNTS, 0), "split_figures": dict.fromkeys(SPLITS, 0), "split_papers": dict.fromkeys(SPLITS, 0)}
    unpaired: list[dict[str, Any]] = []
    try:
        for entry in entries:
            split = entry["split"]
            for figure in entry["figures"]:
                splits[split].add(figure["image"], figure["annotation"])
                provenance.add({**figure["provenance"], "split": split})
                counts["without_mentions"] += not figure["annotation"]["mention"]
            counts["figures"] += len(entry["figures"])
            counts["split_figures"][split] += len(entry["figures"])
            counts["split_papers"][split] += 1
            # a figure or caption not written, or a note on the source (a .tex file not read,
            # unbalanced braces): counted apart, all listed
            notes = sum(item.get("what") == "tex file" for item in entry["unpaired"])
            counts["source_notes"] += notes
            counts["unpaired"] += len(entry["unpaired"]) - notes
            for name in PAPER_COUNTS:
                counts[name] += entry["counts"].get(name, 0)
            for item in entry["unpaired"]:
                if len(unpaired) < UNPAIRED_LISTED:
                    unpaired.append({"paper": entry["name"], **item})
            papers.handle.write(json.dumps({
                "name": entry["name"], "source": entry["source"], "kind": entry["kind"], "split": split,
                "licence": entry["licence"], "key": entry["key"], **entry.get("extra", {}),
                "figures": len(entry["figures"]), "unpaired": entry["unpaired"]}, ensure_ascii=False) + "\n")
    except BaseException:
        for writer in (*splits.values(), provenance):
            writer.abort()
        papers.abort()
        raise
    for writer in (*splits.values(), provenance):
        writer.close()
    papers.commit()
    counts["unpaired_listed"] = unpaired
    return counts


def remove_layout(out: Path) -> None:
    """Removes the split files (an earlier run's, now out of date), so nothing reads them."""
    for name in ("train.json", "val.json", "test.json", "provenance.json", "papers.jsonl"):
        (out / name).unlink(missing_ok=True)
