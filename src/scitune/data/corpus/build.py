"""Writes the built-in corpus: SciCap challenge layout, ScienceQA original layout, the figures'
data and a manifest.

Everything is drawn from random generators seeded by (seed, part, index), so figure i is the same
whatever the corpus size, and the same seed gives byte-identical files. Rendering may run in
worker subprocesses (`render_worker`); the bytes do not depend on how many.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from scitune import threads
from scitune.data.corpus import annotations as ann
from scitune.data.corpus import figures as figs
from scitune.data.corpus.drawing import render_png
from scitune.data.corpus import questions as qs
from scitune.data.corpus import text_questions as tq
from scitune.data.corpus.vocab import FIGURE_TYPES
from scitune.errors import ScituneError
from scitune.io.atomic import sync_tree
from scitune.io.outputs import MARKER, claim_output, write_marker

log = logging.getLogger(__name__)

CORPUS_VERSION = "1"
SPLITS = ("train", "val", "test")
# Position in a run of ten -> split: 80 % train, 10 % val, 10 % test.
SPLIT_PATTERN = ("train", "train", "train", "val", "train", "train", "train", "test", "train", "train")
MIN_FIGURES = len(FIGURE_TYPES)
# What the build writes under its folder; a rebuild replaces exactly these.
OUTPUTS = ("scicap", "scienceqa", "figure_data.json", "manifest.json")
PROBLEM_FIELDS = ("question", "choices", "answer", "hint", "image", "task", "grade", "subject", "topic",
                  "category", "skill", "lecture", "solution", "split")
IMAGE_HINT_RATE = 0.4


def figure_types(seed: int, count: int) -> list[str]:
    """Balanced figure types (counts differ by at most one), in a seeded random order."""
    types = [FIGURE_TYPES[i % len(FIGURE_TYPES)] for i in range(count)]
    order = np.random.default_rng([seed, 0]).permutation(count)
    return [types[int(i)] for i in order]


def figure_splits(types: list[str]) -> list[str]:
    """Splits stratified by figure type: within each type, the k-th figure takes
    SPLIT_PATTERN[(k + 2 * type index) % 10], so even a tiny corpus has val and test figures
    of different types."""
    seen: Counter = Counter()
    splits = []
    for t in types:
        offset = 2 * FIGURE_TYPES.index(t)
        splits.append(SPLIT_PATTERN[(seen[t] + offset) % len(SPLIT_PATTERN)])
        seen[t] += 1
    return splits


def _json_ready(obj: Any) -> Any:
    """`obj` as it reads back from JSON (tuples to lists, numpy scalars to Python)."""
    return json.loads(json.dumps(obj))


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


CORPUS_KIND = "corpus"


def _claim(out: Path, overwrite: bool) -> None:
    """A new or empty folder; a non-empty one (an earlier corpus included) only with `overwrite`."""
    claim_output(out, overwrite=overwrite, kind="dir", marker=CORPUS_KIND)


def _install(stage: Path, out: Path) -> None:
    """Moves the staged outputs into `out`, each replacing its older version only once all the
    new ones are complete; other files in `out` are left alone."""
    if not out.exists():
        stage.rename(out)
        return
    trash = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
    for name in (*OUTPUTS, MARKER):
        if (out / name).exists() or (out / name).is_symlink():
            (out / name).rename(trash / name)
        (stage / name).rename(out / name)
    shutil.rmtree(trash, ignore_errors=True)
    shutil.rmtree(stage, ignore_errors=True)


def _render_all(specs: list[dict], image_size: int, workers: int) -> list[bytes]:
    """PNG bytes of every spec, rendered here or by `workers` subprocesses (same bytes)."""
    if workers <= 1 or len(specs) < 2 * workers:
        return [render_png(spec, image_size) for spec in specs]

    import scitune

    # the processes share this process's thread budget (one thread each at the default of at most 2)
    env = dict(os.environ, **threads.child_env(threads.share(workers)))
    package_root = str(Path(scitune.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    with tempfile.TemporaryDirectory(prefix="scitune-corpus-") as tmp:
        processes = []
        for w in range(workers):  # interleaved, so each process gets every figure type
            jobs = Path(tmp) / f"jobs{w}.json"
            jobs.write_text(json.dumps({"image_size": image_size,
                                        "figures": [[i, specs[i]] for i in range(w, len(specs), workers)]}))
            processes.append(subprocess.Popen(
                [sys.executable, "-m", "scitune.data.corpus.render_worker", str(jobs), tmp],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        failures = []
        for process in processes:
            _, err = process.communicate()
            if process.returncode:
                failures.append(err.decode(errors="replace").strip().splitlines()[-1:] or ["(no message)"])
        if failures:
            raise RuntimeError(f"a corpus render process failed: {failures[0][0]}")
        return [(Path(tmp) / f"{i}.png").read_bytes() for i in range(len(specs))]


def default_workers(figures: int) -> int:
    """Render processes: one for a small corpus, else up to 2 within the thread budget."""
    return 1 if figures < 40 else max(1, min(2, threads.budget()))


def build_corpus(out: str | os.PathLike, figures: int = 200, seed: int = 0, image_size: int = 128,
                 workers: int | None = None,
                 overwrite: bool = False) -> dict:
    """Builds the corpus under `out` and returns its manifest.

    `out` is a new or empty folder or an earlier corpus; any other non-empty folder needs
    `overwrite`. Everything is written to a staging folder beside `out` first and moved into
    place at the end, so a failed build leaves an earlier corpus as it was.

    `figures` figures (each becomes one SciCap record and one ScienceQA image problem), plus
    max(7, figures // 2) text-only ScienceQA problems.
    """
    if not isinstance(figures, int) or figures < MIN_FIGURES:
        raise ScituneError(f"--figures: need at least {MIN_FIGURES} (one per figure type), got {figures}")
    if not isinstance(image_size, int) or not 32 <= image_size <= 2048:
        raise ScituneError(f"--image-size: must be 32..2048 pixels, got {image_size}")
    if not isinstance(seed, int) or seed < 0:
        raise ScituneError(f"--seed: must be a non-negative integer, got {seed}")
    workers = default_workers(figures) if workers is None else workers
    if workers < 1:
        raise ScituneError(f"--workers: must be at least 1, got {workers}")
    final = Path(out)
    _claim(final, overwrite)
    final.parent.mkdir(parents=True, exist_ok=True)
    out = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        manifest = _write_corpus(out, figures, seed, image_size, workers)
        write_marker(out, CORPUS_KIND)
        sync_tree(out)
        _install(out, final)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    return manifest


def _write_corpus(out: Path, figures: int, seed: int, image_size: int, workers: int) -> dict:

    types = figure_types(seed, figures)
    splits = figure_splits(types)
    records = []
    for i, figure_type in enumerate(types):
        rng = np.random.default_rng([seed, 1, i])
        spec = _json_ready(figs.sample_figure(rng, figure_type))
        number = int(rng.integers(1, 9))
        caption = ann.caption(spec, rng)
        paragraphs = ann.paragraph(spec, number, rng)
        problem = qs.figure_question(spec, rng)
        if rng.random() < IMAGE_HINT_RATE:
            problem["hint"] = qs.figure_hint(spec, rng)
        records.append({"spec": spec, "number": number, "caption": caption, "paragraphs": paragraphs,
                        "problem": problem, "split": splits[i]})
    n_text = max(len(tq.TEXT_KINDS), figures // 2)
    text_problems = []
    for j in range(n_text):
        rng = np.random.default_rng([seed, 2, j])
        problem = tq.text_question(tq.TEXT_KINDS[j % len(tq.TEXT_KINDS)], rng)
        text_problems.append((problem, SPLIT_PATTERN[j % len(SPLIT_PATTERN)]))

    log.info("rendering %d figures at %d px with %d worker(s)", figures, image_size, workers)
    pngs = _render_all([r["spec"] for r in records], image_size, workers)

    # SciCap challenge layout
    scicap_dir = out / "scicap"
    scicap = {split: {"images": [], "annotations": []} for split in SPLITS}
    figure_data = []
    for i, (record, png) in enumerate(zip(records, pngs)):
        image_id = i + 1
        file_name = f"{image_id:012d}.png"
        (scicap_dir / "images").mkdir(parents=True, exist_ok=True)
        (scicap_dir / "images" / file_name).write_bytes(png)
        spec, number, split = record["spec"], record["number"], record["split"]
        scicap[split]["images"].append({"id": image_id, "file_name": file_name,
                                        "figure_type": spec["figure_type"], "ocr": ann.ocr(spec)})
        scicap[split]["annotations"].append({
            "image_id": image_id,
            "id": 500000 + image_id,
            "caption": f"Figure {number}: {record['caption']}",
            "caption_no_index": record["caption"],
            "paragraph": record["paragraphs"],
            "mention": ann.mention(record["paragraphs"], number),
        })
        figure_data.append({"index": i, "image_id": image_id, "file_name": file_name, "split": split,
                            "pid": str(i + 1), "spec": spec})
    for split in SPLITS:
        _write_json(scicap_dir / f"{split}.json", scicap[split])

    # ScienceQA original layout
    sqa_dir = out / "scienceqa"
    problems: dict[str, dict] = {}
    problem_data: dict[str, dict] = {}
    pid_splits: dict[str, list[str]] = {split: [] for split in SPLITS}
    entries = [(r["problem"], r["split"], i) for i, r in enumerate(records)]
    entries += [(p, split, None) for p, split in text_problems]
    for k, (problem, split, figure_index) in enumerate(entries):
        pid = str(k + 1)
        record = dict(problem, image="image.png" if figure_index is not None else None, split=split)
        problems[pid] = {field: record[field] for field in PROBLEM_FIELDS}
        problem_data[pid] = {"kind": problem["kind"], "params": problem["params"], "figure": figure_index}
        pid_splits[split].append(pid)
        if figure_index is not None:
            image_dir = sqa_dir / "images" / split / pid
            image_dir.mkdir(parents=True, exist_ok=True)
            (image_dir / "image.png").write_bytes(pngs[figure_index])
    _write_json(sqa_dir / "problems.json", problems)
    _write_json(sqa_dir / "pid_splits.json", pid_splits)

    _write_json(out / "figure_data.json", {"version": CORPUS_VERSION, "seed": seed, "image_size": image_size,
                                           "figures": figure_data, "problems": problem_data})
    manifest = _manifest(seed, figures, image_size, records, problems, problem_data)
    _write_json(out / "manifest.json", manifest)
    return manifest


def scienceqa_categories(problem: dict) -> list[str]:
    """The official ScienceQA categories a problem counts in (NAT/SOC/LAN, TXT/IMG/NO, G1-6/G7-12)."""
    subject = {"natural science": "NAT", "social science": "SOC", "language science": "LAN"}[problem["subject"]]
    has_hint, has_image = bool(problem["hint"]), problem["image"] is not None
    context = [c for c, on in (("TXT", has_hint), ("IMG", has_image)) if on] or ["NO"]
    grade = int(problem["grade"].removeprefix("grade"))
    return [subject, *context, "G1-6" if grade <= 6 else "G7-12"]


def _manifest(seed, figures, image_size, records, problems, problem_data) -> dict:
    import matplotlib

    from scitune import __version__

    by_split = lambda items: {split: dict(sorted(Counter(k for s, k in items if s == split).items())) for split in SPLITS}
    categories = Counter(c for p in problems.values() for c in scienceqa_categories(p))
    return {
        "name": "scitune built-in science figure corpus",
        "version": CORPUS_VERSION,
        "scitune_version": __version__,
        "matplotlib_version": matplotlib.__version__,
        "seed": seed,
        "figures": figures,
        "image_size": image_size,
        "files": {
            "scicap": {split: f"scicap/{split}.json" for split in SPLITS},
            "scicap_images": "scicap/images",
            "scienceqa_problems": "scienceqa/problems.json",
            "scienceqa_splits": "scienceqa/pid_splits.json",
            "scienceqa_images": "scienceqa/images",
            "figure_data": "figure_data.json",
        },
        "counts": {
            "scicap": {split: sum(r["split"] == split for r in records) for split in SPLITS},
            "scienceqa": {split: sum(p["split"] == split for p in problems.values()) for split in SPLITS},
            "figure_type": by_split([(r["split"], r["spec"]["figure_type"]) for r in records]),
            "question_kind": by_split([(problems[pid]["split"], d["kind"]) for pid, d in problem_data.items()]),
            "scienceqa_category": {c: categories[c] for c in ("NAT", "SOC", "LAN", "TXT", "IMG", "NO", "G1-6", "G7-12")},
        },
    }
