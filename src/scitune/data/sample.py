"""The Sample: one LLaVA conversation record, read and written as LLaVA JSON or JSONL.

    {"id": "5", "image": "5/image.png",
     "conversations": [{"from": "human", "value": "<image>\\nQuestion..."}, {"from": "gpt", "value": "B"}]}

`image` is optional (text-only samples) and is a path relative to an image root; a list of paths
is accepted for multi-image samples. Samples stay plain dicts, so users' existing files load and
save unchanged (unknown keys are kept). Checking them is `scitune.data.validate`'s job.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from scitune.errors import ScituneError
from scitune.io import atomic, read

IMAGE_TOKEN = "<image>"
# The letters that name multiple-choice options, in order (A for the first option, ...).
OPTION_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# LLaVA's roles -> chat-template roles.
ROLES = {"human": "user", "gpt": "assistant", "system": "system"}


def make_sample(sample_id: str, human: str, gpt: str, image: str | None = None) -> dict[str, Any]:
    """One single-turn sample; `human` holds the `<image>` placeholder when `image` is given."""
    sample: dict[str, Any] = {"id": str(sample_id)}
    if image is not None:
        sample["image"] = image
    sample["conversations"] = [{"from": "human", "value": human}, {"from": "gpt", "value": gpt}]
    return sample


def image_paths(sample: dict[str, Any]) -> list[str]:
    """The sample's image paths, in `<image>` order (empty for a text-only sample)."""
    image = sample.get("image")
    if image is None:
        return []
    if isinstance(image, str):
        return [image]
    if isinstance(image, list) and all(isinstance(p, str) for p in image):
        return list(image)
    raise ScituneError(f"sample {sample.get('id')!r}: image must be a path or a list of paths, got {image!r}")


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; a line that is not a JSON object is an error.
    Size, encoding and nesting are bounded (`scitune.io.read`)."""
    path = Path(path)
    for number, row in read.iter_jsonl(path):
        if not isinstance(row, dict):
            raise ScituneError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
        yield number, row


def read_samples(path: str | Path) -> list[dict[str, Any]]:
    """Reads a LLaVA JSON list (`.json`) or one record per line (`.jsonl`)."""
    path = Path(path)
    if not path.is_file():
        raise ScituneError(f"{path}: no such file")
    if path.suffix == ".jsonl":
        return [row for _, row in iter_jsonl(path)]
    if path.suffix == ".json":
        samples = read.read_json(path)
        if not isinstance(samples, list):
            raise ScituneError(f"{path}: expected a JSON list of samples, got a {type(samples).__name__}")
    else:
        raise ScituneError(f"{path}: expected a .json or .jsonl file of samples")
    for index, sample in enumerate(samples):
        if not isinstance(sample, dict):
            raise ScituneError(f"{path}: record {index} is a {type(sample).__name__}, expected an object")
    return samples


def write_samples(samples: list[dict[str, Any]], path: str | Path) -> Path:
    """Writes a JSON list (`.json`, indented like LLaVA's files) or JSONL (`.jsonl`), atomically
    (a failed write leaves an earlier file as it was)."""
    path = Path(path)
    if path.suffix not in (".json", ".jsonl"):
        raise ScituneError(f"{path}: expected a .json or .jsonl output path")
    if path.suffix == ".jsonl":
        return atomic.write_jsonl(path, samples)
    return atomic.write_json(path, list(samples))
