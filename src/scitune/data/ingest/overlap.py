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
"""

from __future__ import annotations

import io
import json
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


# ----------------------------------------------------------------------------- readers


def _scicap_items(path: Path, images: Path, source: str) -> list[Item]:
    from scitune.data.scicap import read_scicap

    items = []
    for record in read_scicap(path):
        texts = [t for t in (record.get("caption_no_index") or record.get("caption"),) if t]
        items.append(Item(source, record["id"], texts, images / record["image"]))
    return items


def _scienceqa_items(root: Path, split: str, source: str) -> list[Item]:
    problems = json.loads((root / "problems.json").read_text(encoding="utf-8"))
    splits_file = root / "pid_splits.json"
    pids = json.loads(splits_file.read_text(encoding="utf-8")).get(split, []) if splits_file.is_file() else list(problems)
    items = []
    for pid in pids:
        problem = problems.get(str(pid))
        if not isinstance(problem, dict):
            continue
        texts = [problem.get(k) for k in ("question", "hint", "lecture", "solution") if isinstance(problem.get(k), str) and problem.get(k).strip()]
        image = root / "images" / split / str(pid) / problem["image"] if problem.get("image") else None
        items.append(Item(source, str(pid), texts, image))
    return items


def _llava_items(path: Path, images: Path, source: str) -> list[Item]:
    from scitune.data.sample import image_paths, read_samples

    items = []
    for sample in read_samples(path):
        texts = [turn.get("value", "") for turn in sample.get("conversations", []) if turn.get("from") == "gpt"]
        paths = image_paths(sample)
        items.append(Item(source, str(sample.get("id")), [t for t in texts if t.strip()], images / paths[0] if paths else None))
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


def image_hash(image: Path | bytes, limits: Limits = DEFAULT_LIMITS) -> int | None:
    """64-bit pHash of an image, or None for a blank or unreadable one."""
    import imagehash
    import numpy as np
    from PIL import Image

    try:
        handle = Image.open(io.BytesIO(image) if isinstance(image, bytes) else image)
    except (OSError, ValueError):
        return None
    with handle:
        if handle.width * handle.height > limits.image_pixels:
            return None
        grey = handle.convert("L")
    if float(np.asarray(grey, dtype=np.float32).std()) < BLANK_STD:
        return None
    bits = imagehash.phash(grey).hash.flatten()
    return int("".join("1" if b else "0" for b in bits), 2)


def find_overlaps(train: list[Item], evals: list[Item], hash_distance: int = 4, ngram: int = 8,
                  min_share: float = 0.5, min_words: int = 5, compare_images: bool = True) -> list[dict]:
    """Every (training item, evaluation item) pair whose images are within `hash_distance` bits
    or whose texts share `min_share` of their n-grams."""
    import numpy as np

    found: list[dict] = []
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
        train_hashes = [(item, image_hash(item.image)) for item in train if item.image is not None]
        eval_hashes = [(item, image_hash(item.image)) for item in evals if item.image is not None]
        train_hashes = [(it, h) for it, h in train_hashes if h is not None]
        eval_hashes = [(it, h) for it, h in eval_hashes if h is not None]
        if train_hashes and eval_hashes:
            targets = np.array([h for _, h in eval_hashes], dtype=np.uint64)
            for item, h in train_hashes:
                distances = np.bitwise_count(targets ^ np.uint64(h))
                for j in np.nonzero(distances <= hash_distance)[0]:
                    other = eval_hashes[int(j)][0]
                    found.append({"kind": "image", "train": item.id, "train_source": item.source,
                                  "eval": other.id, "eval_source": other.source, "distance": int(distances[j])})
    return found


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
