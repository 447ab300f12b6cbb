"""Training data that streams: an index of byte offsets, samples rendered when a batch needs them.

- `build_index`: one pass over a LLaVA `.json` list or `.jsonl` file that records where each
  record lies (byte offsets), checks it as `scitune data validate` does (structure, placeholders,
  images: each distinct image path opened once) and renders it once for its token length and
  supervised-token count (both needed before training: the loss is normalised by a global batch's
  supervised tokens, and length grouping sorts by length). The pass runs in `workers` processes,
  each over its own slice of records, and its result is cached under the cache folder by the
  sha256 of the file and everything the rendering depends on (image root, tokenizer, template,
  max_length, placement): a second run, and every other process of a distributed run, reads
  the cache instead (a few arrays: 21 bytes per record).
- `IndexedSamples`: a map-style dataset over the kept records; `__getitem__` reads one record
  at its offset and renders it through `scitune.prompting.Renderer`.
- `BatchCollate`: the collator (padding or packing) run inside DataLoader workers, which is where
  images are decoded.
- `modality_grouped_order`: LLaVA's modality-length grouping.
Memory per process is the index (and whatever batches are in flight), not the file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scitune.errors import ScituneError

log = logging.getLogger(__name__)

INDEX_VERSION = 1
OK, BAD, DROPPED = 0, 1, 2
MAX_RECORD_BYTES = 64 * 1024**2  # one record (a conversation) larger than this is refused
MAX_PROBLEMS_KEPT = 10_000  # problems kept for the report (all are counted)


def cache_dir() -> Path:
    """`$SCITUNE_CACHE/data-index`, or `~/.cache/scitune/data-index`."""
    root = os.environ.get("SCITUNE_CACHE") or Path.home() / ".cache" / "scitune"
    return Path(root) / "data-index"


# ---------------------------------------------------------------- record offsets


def record_offsets(path: str | Path) -> np.ndarray:
    """(start, end) byte offsets of every record of a `.jsonl` (non-blank lines) or `.json`
    (elements of the top-level list) file, as an (N, 2) int64 array."""
    from scitune.io import read

    path = Path(path)
    read.check_file(path, what="sample file")
    if path.suffix == ".jsonl":
        spans = []
        position = 0
        with open(path, "rb") as handle:
            for line in handle:
                if line.strip():
                    spans.append((position, position + len(line)))
                position += len(line)
        return np.asarray(spans, dtype=np.int64).reshape(-1, 2)
    if path.suffix != ".json":
        raise ScituneError(f"{path}: expected a .json or .jsonl file of samples")
    # Latin-1 maps each byte to one character, so character offsets are byte offsets; JSON's
    # structure is ASCII, so element boundaries are found right whatever the strings hold.
    text = path.read_bytes().decode("latin-1")
    decoder = json.JSONDecoder()
    spans = []
    at = _skip(text, 0)
    if not text.startswith("[", at):
        raise ScituneError(f"{path}: expected a JSON list of samples")
    at = _skip(text, at + 1)
    if text.startswith("]", at):
        return np.zeros((0, 2), dtype=np.int64)
    while True:
        try:
            _, end = decoder.raw_decode(text, at)
        except json.JSONDecodeError as err:
            raise ScituneError(f"{path}: not valid JSON near byte {err.pos} ({err.msg})") from None
        spans.append((at, end))
        at = _skip(text, end)
        if text.startswith(",", at):
            at = _skip(text, at + 1)
            continue
        if text.startswith("]", at):
            break
        raise ScituneError(f"{path}: not valid JSON near byte {at} (expected , or ])")
    return np.asarray(spans, dtype=np.int64).reshape(-1, 2)


def _skip(text: str, at: int) -> int:
    while at < len(text) and text[at] in " \t\r\n":
        at += 1
    return at


class RecordReader:
    """Reads record `i` of a file at its offsets (one open handle per process)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._handle = None
        self._pid = None

    def __getstate__(self):
        return {"path": self.path, "_handle": None, "_pid": None}

    def read(self, start: int, end: int, where: str) -> dict[str, Any]:
        from scitune.io.read import decode_text, parse_json

        if end - start > MAX_RECORD_BYTES:
            raise ScituneError(f"{where}: record is {end - start} bytes, over the limit of {MAX_RECORD_BYTES}")
        if self._handle is None or self._pid != os.getpid():
            self._handle, self._pid = open(self.path, "rb"), os.getpid()
        self._handle.seek(int(start))
        record = parse_json(decode_text(self._handle.read(int(end - start)), where), where)
        if not isinstance(record, dict):
            raise ScituneError(f"{where}: expected a JSON object, got {type(record).__name__}")
        return record


# ---------------------------------------------------------------- the index pass


@dataclass
class DataIndex:
    """What the training loop needs of every kept record, plus the validation outcome."""

    offsets: np.ndarray  # (N, 2) int64, kept records only, in file order
    lengths: np.ndarray  # int32 tokens
    targets: np.ndarray  # int32 supervised tokens
    n_images: np.ndarray  # int16
    records: int  # records in the file
    bad: int  # records dropped as bad (on_bad_record: skip)
    dropped: dict[str, int] = field(default_factory=dict)  # too long, by reason
    problems: list[list[str]] = field(default_factory=list)  # [id, reason, detail], the first MAX_PROBLEMS_KEPT
    problem_counts: dict[str, int] = field(default_factory=dict)
    bad_ids: int = 0


def renderer_key(renderer) -> str:
    """A digest of everything a rendering depends on besides the sample."""
    tokenizer = renderer.tokenizer
    backend = getattr(tokenizer, "backend_tokenizer", None)
    vocab = backend.to_str() if backend is not None else json.dumps(sorted(tokenizer.get_vocab().items()))
    parts = [vocab, renderer.template, str(renderer.max_length), renderer.image_placement, str(renderer.image_tokens),
             str(renderer.image_id), json.dumps(getattr(tokenizer, "added_tokens_decoder", {}) and sorted(map(str, tokenizer.added_tokens_decoder.values())))]
    if getattr(renderer, "family", None) is not None:  # a family's image expansion follows its image processor
        parts.append(renderer.processor.image_processor.to_json_string())
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


_WORKER: dict[str, Any] = {}


def _init_worker(path: str, image_root: str | None, renderer) -> None:
    _WORKER.update(reader=RecordReader(path), root=image_root, renderer=renderer, images={})


def _check_slice(task: tuple[int, np.ndarray]) -> dict[str, Any]:
    """Validates and renders records `first..` (their offsets given); runs in a worker."""
    from scitune.data.validate import validate_samples
    from scitune.prompting.render import DroppedSample

    first, spans = task
    reader, root, renderer = _WORKER["reader"], _WORKER["root"], _WORKER["renderer"]
    n = len(spans)
    status = np.zeros(n, np.uint8)
    lengths, targets, n_images = np.zeros(n, np.int32), np.zeros(n, np.int32), np.zeros(n, np.int16)
    ids, problems, dropped = [], [], Counter()
    for k, (start, end) in enumerate(spans):
        where = f"{reader.path} record {first + k}"
        try:
            sample: Any = reader.read(start, end, where)
        except ScituneError:
            sample = None
        report = validate_samples([sample], root)
        sample_id = str(sample.get("id")) if isinstance(sample, dict) and sample.get("id") not in (None, "") else f"#{first + k}"
        ids.append(sample_id)
        if not report.ok:
            status[k] = BAD
            problems += [[sample_id if p.id == "#0" else p.id, p.reason, p.detail] for p in report.problems]
            continue
        try:
            item = renderer.train(sample)
        except DroppedSample as err:
            status[k] = DROPPED
            dropped[err.reason] += 1
            continue
        lengths[k] = item["length"]
        targets[k] = sum(1 for label in item["labels"][1:] if label != -100)
        n_images[k] = len(item["images"])
    return {"first": first, "status": status, "lengths": lengths, "targets": targets, "n_images": n_images,
            "ids": ids, "problems": problems, "dropped": dropped}


def _scan(path: Path, spans: np.ndarray, image_root: str | None, renderer, workers: int) -> list[dict[str, Any]]:
    chunk = max(1, min(2000, -(-len(spans) // max(1, workers * 4))))
    tasks = [(i, spans[i : i + chunk]) for i in range(0, len(spans), chunk)]
    if workers <= 0 or len(tasks) <= 1:
        _init_worker(str(path), image_root, renderer)
        return [_check_slice(t) for t in tasks]
    import multiprocessing

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # fork: the workers share the renderer (tokenizer) without pickling it
    with multiprocessing.get_context("fork").Pool(workers, _init_worker, (str(path), image_root, renderer)) as pool:
        return pool.map(_check_slice, tasks)


def _merge(path: Path, spans: np.ndarray, parts: list[dict[str, Any]]) -> tuple[DataIndex, np.ndarray]:
    status = np.concatenate([p["status"] for p in parts]) if parts else np.zeros(0, np.uint8)
    lengths = np.concatenate([p["lengths"] for p in parts]) if parts else np.zeros(0, np.int32)
    targets = np.concatenate([p["targets"] for p in parts]) if parts else np.zeros(0, np.int32)
    n_images = np.concatenate([p["n_images"] for p in parts]) if parts else np.zeros(0, np.int16)
    problems = [q for p in parts for q in p["problems"]]
    dropped: Counter[str] = Counter()
    for p in parts:
        dropped.update(p["dropped"])
    # ids as 8-byte digests: duplicates found without keeping the strings
    digests = np.fromiter(
        (int.from_bytes(hashlib.blake2b(i.encode(), digest_size=8).digest(), "little") for p in parts for i in p["ids"]),
        dtype=np.uint64, count=len(status),
    )
    order = np.argsort(digests, kind="stable")
    repeated = np.zeros(len(status), bool)
    same = digests[order][1:] == digests[order][:-1]
    repeated[order[1:][same]] = True
    for index in np.flatnonzero(repeated):
        problems.append([f"#{index}", "duplicate_id", f"record {index}"])
    # the bad-record policy's rule (scitune.data.validate.enforce_policy): every record of an id with a problem goes
    bad_digests = set(digests[repeated].tolist())
    bad_digests |= {int.from_bytes(hashlib.blake2b(p[0].encode(), digest_size=8).digest(), "little") for p in problems if not p[0].startswith("#")}
    bad = (status == BAD) | np.isin(digests, np.fromiter(bad_digests, np.uint64, len(bad_digests)))
    keep = (~bad) & (status == OK)
    counts = Counter(p[1] for p in problems)
    index = DataIndex(
        offsets=spans[keep], lengths=lengths[keep], targets=targets[keep], n_images=n_images[keep],
        records=len(status), bad=int(bad.sum()), dropped=dict(dropped), problems=problems[:MAX_PROBLEMS_KEPT],
        problem_counts=dict(counts), bad_ids=int(bad.sum()),
    )
    return index, bad


def _save(index: DataIndex, stem: Path) -> None:
    from safetensors.numpy import save

    from scitune.io.atomic import write_bytes, write_json

    arrays = {"offsets": index.offsets, "lengths": index.lengths, "targets": index.targets, "n_images": index.n_images}
    write_bytes(stem.with_suffix(".safetensors"), save({k: np.ascontiguousarray(v) for k, v in arrays.items()}))
    write_json(stem.with_suffix(".json"), {
        "version": INDEX_VERSION, "records": index.records, "bad": index.bad, "dropped": index.dropped,
        "problems": index.problems, "problem_counts": index.problem_counts, "bad_ids": index.bad_ids,
    })


def _load(stem: Path) -> DataIndex | None:
    from safetensors.numpy import load_file

    from scitune.io.read import read_json

    try:
        meta = read_json(stem.with_suffix(".json"))
        arrays = load_file(str(stem.with_suffix(".safetensors")))
    except (ScituneError, OSError, ValueError):
        return None
    if not isinstance(meta, dict) or meta.get("version") != INDEX_VERSION:
        return None
    try:
        return DataIndex(
            offsets=arrays["offsets"], lengths=arrays["lengths"], targets=arrays["targets"], n_images=arrays["n_images"],
            records=meta["records"], bad=meta["bad"], dropped=meta["dropped"], problems=meta["problems"],
            problem_counts=meta["problem_counts"], bad_ids=meta["bad_ids"],
        )
    except KeyError:
        return None


def index_key(data_sha256: str, image_root: str | None, renderer) -> str:
    root = str(Path(image_root).resolve()) if image_root else ""
    return hashlib.sha256(f"v{INDEX_VERSION}\x00{data_sha256}\x00{root}\x00{renderer_key(renderer)}".encode()).hexdigest()


def build_index(path: str | Path, data_sha256: str, image_root: str | None, renderer, workers: int = 0) -> tuple[DataIndex, bool]:
    """The file's index, from the cache when this file (by sha256) was indexed before with the
    same rendering; otherwise one pass in `workers` processes, then cached. Returns (index, cached)."""
    path = Path(path)
    stem = cache_dir() / index_key(data_sha256, image_root, renderer)
    found = _load(stem)
    if found is not None:
        return found, True
    spans = record_offsets(path)
    parts = _scan(path, spans, image_root, renderer, workers)
    index, _ = _merge(path, spans, parts)
    try:
        stem.parent.mkdir(parents=True, exist_ok=True)
        _save(index, stem)
    except (OSError, ScituneError) as err:
        log.warning("%s: the data index was not cached (%s)", path, err)
    return index, False


def load_index(path: str | Path, data_sha256: str, image_root: str | None, renderer) -> DataIndex:
    """The cached index (another process built it); an error when it is missing."""
    found = _load(cache_dir() / index_key(data_sha256, image_root, renderer))
    if found is None:
        raise ScituneError(f"{path}: the data index was not found in {cache_dir()} (the main process could not cache it)")
    return found


def report_of(index: DataIndex):
    """The index's problems as a `ValidationReport` (for its summary table)."""
    from scitune.data.validate import Problem, ValidationReport

    report = ValidationReport(n_samples=index.records)
    report.problems = [Problem(i, r, d) for i, r, d in index.problems]
    return report


def apply_bad_record_policy(path: str | Path, index: DataIndex, on_bad_record: str) -> None:
    """`fail`: raise naming the bad records (scitune.data.validate.enforce_policy); `skip`: the
    index already leaves them out."""
    from scitune.data.validate import enforce_policy

    enforce_policy(on_bad_record, index.bad, index.records, [(i, r) for i, r, _ in index.problems[:20]],
                   sum(index.problem_counts.values()), where=f"{path}: ")


# ---------------------------------------------------------------- the dataset


class IndexedSamples(torch.utils.data.Dataset):
    """Kept record `i`, read at its offsets and rendered for training."""

    def __init__(self, path: str | Path, index: DataIndex, renderer):
        self.path = Path(path)
        self.offsets = index.offsets
        self.renderer = renderer
        self.reader = RecordReader(path)

    def __len__(self) -> int:
        return len(self.offsets)

    def __getitem__(self, i: int) -> dict[str, Any]:
        start, end = self.offsets[i]
        return self.renderer.train(self.reader.read(start, end, f"{self.path} (kept record {i})"))


class BatchCollate:
    """The training collator (padding or packing), run in the DataLoader's workers: images are
    decoded there. Adds `image_paths` (what the feature cache needs) when the collator does not."""

    def __init__(self, collate):
        self.collate = collate

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.collate(items)
        batch.setdefault("image_paths", [p for item in items for p in item["images"]])
        return batch


# ---------------------------------------------------------------- modality-length grouping


def modality_grouped_order(lengths: np.ndarray, has_image: np.ndarray, group: int, seed: int, epoch: int,
                           mega: int = 50) -> np.ndarray:
    """LLaVA's modality-length grouping: samples with images and text-only samples are shuffled
    apart, cut into mega-batches of `group * mega` sorted by length (longest first) and into
    global batches of `group`; the full batches of both kinds are shuffled together, the two
    incomplete ones go last, together."""
    rng = random.Random(f"{seed}:{epoch}:modality")
    batches, rest = [], []
    for kind in (True, False):
        members = [int(i) for i in np.flatnonzero(has_image == kind)]
        rng.shuffle(members)
        size = group * mega
        for start in range(0, len(members), size):
            chunk = sorted(members[start : start + size], key=lambda i: -int(lengths[i]))
            for b in range(0, len(chunk), group):
                piece = chunk[b : b + group]
                (batches if len(piece) == group else rest).append(piece)
    rng.shuffle(batches)
    leftovers = [i for piece in rest for i in piece]
    return np.asarray([i for piece in batches for i in piece] + leftovers, dtype=np.int64)
