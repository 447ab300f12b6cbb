"""Rendered items -> model batches, one padding collator for training and for prompts.

- Training batches are right-padded (labels -100 on padding).
- Prompt batches (generation, option scoring) are left-padded, so every prompt ends where
  generation starts, with position ids that start at 0 on each row's first real token: a row's
  tokens see exactly what they would see alone.
- Pixel values come from an `ImageLoader` (the processor's image processor), in item order.
"""

from __future__ import annotations

from typing import Any

import torch

from scitune.errors import ScituneError
from scitune.prompting.images import ImageLoader
from scitune.prompting.render import IGNORE_INDEX

# per-token inputs some families take (1 on image feature tokens): padded with 0
TOKEN_TYPE_INPUTS = ("token_type_ids", "mm_token_type_ids")
# per-image inputs some families' image processors give besides pixel_values
IMAGE_INPUTS = ("image_grid_thw", "pixel_attention_mask", "image_sizes")
MODEL_INPUTS = (
    "input_ids", "attention_mask", "labels", "pixel_values", "position_ids", "cu_seq_lens", "max_seq_len",
    *TOKEN_TYPE_INPUTS, *IMAGE_INPUTS,
)


def _pad(rows: list[list[int]], value: int, left: bool) -> torch.Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([([value] * (width - len(r)) + r) if left else (r + [value] * (width - len(r))) for r in rows])


class PaddingCollator:
    """`{input_ids, attention_mask, labels?, position_ids?, pixel_values?, ids}`.

    `side="right"` (training, items from `Renderer.train`, labels padded with -100) or
    `side="left"` (prompts from `Renderer.prompt`, with position ids).
    """

    def __init__(
        self, pad_token_id: int | None, images: ImageLoader | None = None, side: str = "right",
        image_inputs: tuple[str, ...] = (), position_ids: bool = True,
    ):
        """`image_inputs`: the family's per-image inputs besides pixel_values (`Family.image_inputs`);
        `position_ids`: whether left-padded prompts get 1-D position ids (Qwen's M-RoPE computes
        its own 3-D positions from the attention mask, and must not get them)."""
        if pad_token_id is None:
            raise ScituneError("the tokenizer has no pad token")
        if side not in ("left", "right"):
            raise ValueError(f"side must be left or right, got {side!r}")
        self.pad_token_id = pad_token_id
        self.images = images
        self.left = side == "left"
        self.image_inputs = tuple(image_inputs)
        self.position_ids = position_ids

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        batch: dict[str, Any] = {
            "input_ids": _pad([i["input_ids"] for i in items], self.pad_token_id, self.left),
            "attention_mask": _pad([i["attention_mask"] for i in items], 0, self.left),
        }
        if "labels" in items[0]:
            batch["labels"] = _pad([i["labels"] for i in items], IGNORE_INDEX, self.left)
        for key in TOKEN_TYPE_INPUTS:
            if key in items[0]:
                batch[key] = _pad([i[key] for i in items], 0, self.left)
        if self.left and self.position_ids:
            batch["position_ids"] = (batch["attention_mask"].cumsum(-1) - 1).clamp(min=0)
        batch["ids"] = [i["id"] for i in items]
        paths = [p for item in items for p in item.get("images", [])]
        if paths:
            if self.images is None:
                raise ScituneError(f"sample {items[0]['id']!r} has images but the collator has no image processor")
            if self.image_inputs:
                batch.update(self.images.inputs(paths, self.image_inputs))
            else:  # pixel values alone (an ImageLoader subclass may supply them: serving's request images)
                batch["pixel_values"] = self.images(paths)
        return batch


def model_inputs(batch: dict[str, Any]) -> dict[str, Any]:
    """The batch's tensors that the model takes (drops `ids`)."""
    return {k: v for k, v in batch.items() if k in MODEL_INPUTS}
