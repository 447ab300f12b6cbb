"""Tokenized items -> model batches.

- Images are opened as RGB and processed by the model's image processor. `pad_to_square` pads
  an image to a square with the processor's mean colour first (LLaVA-1.5's "pad" aspect mode), so
  the processor's center crop keeps the whole figure; wide figures otherwise lose their sides.
- Training batches are right-padded (labels -100 on padding); generation batches are
  left-padded, so every prompt ends where generation starts.
- `LengthGroupedSampler` batches items of similar length together (less padding), in an order
  that is shuffled by a seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scitune.data.tokenize import IGNORE_INDEX
from scitune.errors import ScituneError


def load_image(path: str | Path, pad_to_square: bool = False, background: tuple[int, int, int] = (0, 0, 0)):
    """The image as RGB; padded to a centred square with `background` when asked."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            image = im.convert("RGB")
    except (OSError, ValueError) as err:
        raise ScituneError(f"{path}: cannot read image ({err})") from None
    if pad_to_square and image.width != image.height:
        side = max(image.width, image.height)
        square = Image.new("RGB", (side, side), background)
        square.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
        image = square
    return image


def processor_background(image_processor) -> tuple[int, int, int]:
    """The processor's mean colour in 0-255 (what normalises to zero)."""
    mean = getattr(image_processor, "image_mean", None) or (0.0, 0.0, 0.0)
    return tuple(int(round(m * 255)) for m in mean)


class ImageLoader:
    """Opens a batch's images under `image_root` and runs the image processor on them."""

    def __init__(self, image_processor, image_root: str | Path, pad_to_square: bool = False):
        self.image_processor = image_processor
        self.image_root = Path(image_root)
        self.pad_to_square = pad_to_square
        self.background = processor_background(image_processor)

    def __call__(self, paths: list[str]):
        images = [load_image(self.image_root / p, self.pad_to_square, self.background) for p in paths]
        return self.image_processor(images=images, return_tensors="pt")["pixel_values"]


def _pad(rows: list[list[int]], value: int, left: bool) -> list[list[int]]:
    width = max(len(r) for r in rows)
    return [([value] * (width - len(r)) + r) if left else (r + [value] * (width - len(r))) for r in rows]


class _PaddingCollator:
    """Pads token rows to the batch's longest (on the side `left` says) and adds pixel values."""

    left = False

    def __init__(self, pad_token_id: int, images: ImageLoader | None = None):
        if pad_token_id is None:
            raise ScituneError("the tokenizer has no pad token")
        self.pad_token_id = pad_token_id
        self.images = images

    def _pad(self, items: list[dict[str, Any]], key: str, value: int):
        import torch

        return torch.tensor(_pad([i[key] for i in items], value, left=self.left))

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        batch = {
            "input_ids": self._pad(items, "input_ids", self.pad_token_id),
            "attention_mask": self._pad(items, "attention_mask", 0),
            **self._extra(items),
            "ids": [i["id"] for i in items],
        }
        _add_pixels(batch, items, self.images)
        return batch

    def _extra(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        return {}


class TrainCollator(_PaddingCollator):
    """Items from `tokenize_sample` -> `{input_ids, attention_mask, labels, pixel_values?, ids}`, right-padded."""

    def _extra(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        return {"labels": self._pad(items, "labels", IGNORE_INDEX)}


class GenerationCollator(_PaddingCollator):
    """Items from `tokenize_prompt` -> `{input_ids, attention_mask, pixel_values?, ids, targets}`, left-padded."""

    left = True

    def _extra(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        return {"targets": [i.get("target") for i in items]}


MODEL_INPUTS = ("input_ids", "attention_mask", "labels", "pixel_values")


def model_inputs(batch: dict[str, Any]) -> dict[str, Any]:
    """The batch's tensors that the model takes (drops `ids` and `targets`)."""
    return {k: v for k, v in batch.items() if k in MODEL_INPUTS}


def _add_pixels(batch: dict[str, Any], items: list[dict[str, Any]], images: ImageLoader | None) -> None:
    paths = [p for item in items for p in item.get("images", [])]
    if not paths:
        return
    if images is None:
        raise ScituneError(f"sample {items[0]['id']!r} has images but the collator has no image processor")
    batch["pixel_values"] = images(paths)


class LengthGroupedSampler:
    """Indices in batches of similar length: shuffled with `seed` (and the epoch), split into
    mega-batches of `batch_size * mega` items, each sorted by length (longest first)."""

    def __init__(self, lengths: list[int], batch_size: int, seed: int = 0, mega: int = 50):
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.mega = mega
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        import random

        order = list(range(len(self.lengths)))
        random.Random(f"{self.seed}:{self.epoch}").shuffle(order)
        size = self.batch_size * self.mega
        for start in range(0, len(order), size):
            chunk = sorted(order[start : start + size], key=lambda i: -self.lengths[i])
            yield from chunk
