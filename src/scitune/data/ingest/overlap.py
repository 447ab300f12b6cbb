"""Leakage guard: figures and captions of a training set that also occur in evaluation sets.

Images are compared by a perceptual hash (imagehash's pHash, 64 bits: a DCT of the 32x32 grey
image; resizing, recompression and small edits move it by a few bits), pairs within
`hash_distance` bits are listed. Texts are compared by word n-grams: a training text and an
evaluation text overlap when they share at least `min_share` of the shorter one's n-grams
(texts shorter than n words are compared whole when they have at least `min_words` words).

Readers for the sets this project knows, picked from what the path holds:
- a SciCap challenge-layout JSON (texts: caption; images: `<file's folder>/images` unless given),
  or a folder of one (its `<split>.json`), such as an ingest output or the corpus' `scicap/`;
- a ScienceQA original-release folder (problems.json + pid_splits.json; texts: question, hint,
  lecture, solution; images: `images/<split>/<pid>/<image>`);
- the built-in corpus folder (its SciCap and ScienceQA parts, `--split` of each);
- any LLaVA JSON/JSONL (texts: the gpt turns, never the instructions, which repeat by design;
  images relative to `<file's folder>` unless given).
A path may carry its image folder as `PATH=IMAGES`.

The guard fails closed: an image it cannot check (missing, as with a wrong image folder;
unreadable, truncated or over the limits of `scitune.io.images`, the one opener every path uses;
a path that escapes its folder) is never skipped silently. `find_overlaps` returns the overlaps
as a list that also carries `.unchecked`, one entry per such item, and the callers (`scitune data
overlap --fail`, training's `data.fail_on_overlap_with`) fail when any item could not be checked.
Blank images (all one grey) are checked and hash alike, so they are not compared.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from scitune.data.ingest.limits import DEFAULT_LIMITS, Limits
from scitune.errors import ScituneError

BLANK_STD = 2.0  # grey-level spread under which an image is blank (all blank images hash alike)


@dataclass
class Item:
    source: str
    id: str
    texts: list[str]
    image: Path | bytes | None = None
    problem: str | None = None  # why its image cannot be checked (found while reading the set)


class Overlaps(list):
    """The overlaps found (a list of dicts), and `unchecked`: the items whose image could not be
    checked, each `{"side": "train"|"eval", "id", "source", "reason", "detail"}`."""

    def __init__(self, rows=(), unchecked=()):
        super().__init__(rows)
        self.unchecked: list[dict] = list(unchecked)


def _image_item(source: str, item_id: str, texts: list[str], root: Path, relative) -> Item:
    """An item whose image is `root / relative`, or carries the reason its path is refused."""
    from scitune.io.images import ImageProblem, image_path

    if not relative:
        return Item(source, item_id, texts)
    if not isinstance(relative, str):
        return Item(source, item_id, texts, problem=f"image_unreadable: image field {relative!r} is not a path")
    try:
        return Item(source, item_id, texts, image_path(root, relative, str(root / relative)))
    except ImageProblem as problem:
        return Item(source, item_id, texts, problem=f"{problem.reason}: {problem}")


# ----------------------------------------------------------------------------- readers


def _scicap_items(path: Path, images: Path, source: str) -> list[Item]:
    from scitune.data.scicap import read_scicap

    items = []
    for record in read_scicap(path):
        texts = [t for t in (record.get("caption_no_index") or record.get("caption"),) if t]
        items.append(_image_item(source, record["id"], texts, images, record.get("image")))
    return items


def _scienceqa_items(root: Path, split: str, source: str) -> list[Item]:
    from scitune.io.read import read_json

    problems = read_json(root / "problems.json")
    if not isinstance(problems, dict):
        raise ScituneError(f"{root / 'problems.json'}: expected an object mapping problem ids to problems")
    splits_file = root / "pid_splits.json"
    splits = read_json(splits_file) if splits_file.is_file() else {split: list(problems)}
    pids = splits.get(split, []) if isinstance(splits, dict) else []
    if not isinstance(pids, list):
        raise ScituneError(f"{splits_file}: split {split!r} must be a list of problem ids")
    items = []
    for pid in pids:
        problem = problems.get(str(pid))
        if not isinstance(problem, dict):
            continue
        texts = [problem.get(k) for k in ("question", "hint", "lecture", "solution") if isinstance(problem.get(k), str) and problem.get(k).strip()]
        items.append(_image_item(source, str(pid), texts, root / "images" / split / str(pid), problem.get("image")))
    return items


def _llava_items(path: Path, images: Path, source: str) -> list[Item]:
    from scitune.data.sample import image_paths, read_samples

    items = []
    for sample in read_samples(path):
        texts = [turn.get("value", "") for turn in sample.get("conversations", []) if turn.get("from") == "gpt"]
        paths = image_paths(sample)
        items.append(_image_item(source, str(sample.get("id")), [t for t in texts if t.strip()], images,
                                 paths[0] if paths else None))
    return items


def load_items(spec: str, split: str = "test", images: str | None = None) -> list[Item]:
    """The items of one set (see the module doc for what a path may be)."""
    if "=" in spec and not Path(spec).exists():
        spec, images = spec.split("=", 1)
    path = Path(spec)
    if not path.exists():
        raise ScituneError(f"{path}: no such file or folder")
    image_dir = Path(images) if images else None
    if path.is_dir():
        if (path / "problems.json").is_file():
            return _scienceqa_items(path, split, f"{path} (ScienceQA {split})")
        if (path / "scicap" / f"{split}.json").is_file() and (path / "scienceqa" / "problems.json").is_file():
            return (_scicap_items(path / "scicap" / f"{split}.json", path / "scicap" / "images", f"{path} (corpus SciCap {split})")
                    + _scienceqa_items(path / "scienceqa", split, f"{path} (corpus ScienceQA {split})"))
        if (path / f"{split}.json").is_file():
            return _scicap_items(path / f"{split}.json", image_dir or path / "images", f"{path / (split + '.json')}")
        raise ScituneError(f"{path}: not a ScienceQA, corpus or SciCap-layout folder (no problems.json or {split}.json)")
    if path.suffix == ".json":
        try:
            with path.open(encoding="utf-8") as handle:
                head = handle.read(4096).lstrip()
        except OSError as err:
            raise ScituneError(f"{path}: cannot read ({err.strerror})") from None
        if head.startswith("{"):
            return _scicap_items(path, image_dir or path.parent / "images", str(path))
    return _llava_items(path, image_dir or path.parent, str(path))


# ----------------------------------------------------------------------------- comparing


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def ngrams(text: str, n: int, min_words: int) -> set[tuple[str, ...]]:
    words = _words(text)
    if len(words) < min_words:
        return set()
    if len(words) < n:
        return {tuple(words)}
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def hash_image(image: Path | bytes, where: str = "image") -> tuple[int | None, str | None]:
    """(64-bit pHash, None); (None, None) for a blank image; (None, "reason: message") for one
    that cannot be checked (through `scitune.io.images.open_image`, the one checked opener)."""
    import imagehash
    import numpy as np

    from scitune.io.images import ImageProblem, open_image

    try:
        grey = open_image(image, where).convert("L")
    except ImageProblem as problem:
        return None, f"{problem.reason}: {problem}"
    if float(np.asarray(grey, dtype=np.float32).std()) < BLANK_STD:
        return None, None
    bits = imagehash.phash(grey).hash.flatten()
    return int("".join("1" if b else "0" for b in bits), 2), None


def image_hash(image: Path | bytes, limits: Limits = DEFAULT_LIMITS) -> int | None:
    """64-bit pHash of an image, or None for a blank or unreadable one (`hash_image` says which)."""
    return hash_image(image)[0]


def find_overlaps(train: list[Item], evals: list[Item], hash_distance: int = 4, ngram: int = 8,
                  min_share: float = 0.5, min_words: int = 5, compare_images: bool = True) -> list[dict]:
    """Every (training item, evaluation item) pair whose images are within `hash_distance` bits
    or whose texts share `min_share` of their n-grams, as `Overlaps`: with `compare_images`, its
    `unchecked` lists every item whose image could not be checked."""
    import numpy as np

    found = Overlaps()
    # texts: an index from n-gram to the evaluation texts holding it
    index: dict[tuple[str, ...], list[int]] = defaultdict(list)
    eval_texts: list[tuple[int, str, int]] = []  # (item index, text, n-gram count)
    for i, item in enumerate(evals):
        for text in item.texts:
            grams = ngrams(text, ngram, min_words)
            if grams:
                k = len(eval_texts)
                eval_texts.append((i, text, len(grams)))
                for gram in grams:
                    index[gram].append(k)
    for item in train:
        for text in item.texts:
            grams = ngrams(text, ngram, min_words)
            if not grams:
                continue
            shared = Counter(k for gram in grams for k in index.get(gram, ()))
            for k, count in shared.items():
                i, other, size = eval_texts[k]
                share = count / min(len(grams), size)
                if share >= min_share:
                    found.append({"kind": "caption", "train": item.id, "train_source": item.source,
                                  "eval": evals[i].id, "eval_source": evals[i].source, "share": round(share, 3),
                                  "train_text": text[:200], "eval_text": other[:200]})
    if compare_images:
        train_hashes = _hashes(train, "train", found.unchecked)
        eval_hashes = _hashes(evals, "eval", found.unchecked)
        if train_hashes and eval_hashes:
            targets = np.array([h for _, h in eval_hashes], dtype=np.uint64)
            for item, h in train_hashes:
                distances = np.bitwise_count(targets ^ np.uint64(h))
                for j in np.nonzero(distances <= hash_distance)[0]:
                    other = eval_hashes[int(j)][0]
                    found.append({"kind": "image", "train": item.id, "train_source": item.source,
                                  "eval": other.id, "eval_source": other.source, "distance": int(distances[j])})
    return found


def _hashes(items: list[Item], side: str, unchecked: list[dict]) -> list[tuple[Item, int]]:
    """(item, hash) for each item with a checkable, non-blank image; the others into `unchecked`."""
    hashes = []
    for item in items:
        if item.problem is None and item.image is None:
            continue
        where = str(item.image) if isinstance(item.image, Path) else f"{item.source} {item.id}"
        value, problem = (None, item.problem) if item.problem else hash_image(item.image, where)
        if problem:
            reason, _, detail = problem.partition(": ")
            unchecked.append({"side": side, "id": item.id, "source": item.source, "reason": reason, "detail": detail})
        elif value is not None:
            hashes.append((item, value))
    return hashes


def unchecked_listing(unchecked: list[dict], limit: int = 50) -> str:
    lines = [f"unchecked {row['side']} {row['id']} ({row['source']}): {row['reason']}: {row['detail']}"
             for row in unchecked[:limit]]
    if len(unchecked) > limit:
        lines.append(f"... and {len(unchecked) - limit} more")
    return "\n".join(lines)


def unchecked_summary(unchecked: list[dict]) -> str:
    """One line: how many items could not be checked, by reason, and the first."""
    reasons = Counter(row["reason"] for row in unchecked)
    first = unchecked[0]
    counts = ", ".join(f"{n} {reason}" for reason, n in reasons.most_common())
    return f"{len(unchecked)} image(s) could not be checked ({counts}; first: {first['side']} {first['id']}: {first['detail']})"


def listing(overlaps: list[dict], limit: int = 50) -> str:
    lines = []
    for row in overlaps[:limit]:
        if row["kind"] == "image":
            lines.append(f"image    {row['train']} ~ {row['eval']} ({row['eval_source']}): {row['distance']} bits apart")
        else:
            lines.append(f"caption  {row['train']} ~ {row['eval']} ({row['eval_source']}): {100 * row['share']:.0f}% "
                         f"shared n-grams: {row['train_text'][:80]!r}")
    if len(overlaps) > limit:
        lines.append(f"... and {len(overlaps) - limit} more")
    return "\n".join(lines)
