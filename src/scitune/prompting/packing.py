"""Packed multimodal batches: several rendered training items, each with its image tokens,
concatenated into one row, so a batch is mostly real tokens instead of padding.

A micro-batch (the items the schedule gives one process for one accumulation step) is packed
into rows by first-fit decreasing on length. Inside a row:
- position ids restart at 0 for each sample, so every sample is positioned as it is alone;
- attention stays inside each sample. With SDPA or flash attention the whole micro-batch is one
  flat row without padding or mask, and `cu_seq_lens` (each sample's start, then the row's end)
  tells the attention where samples end: flash attention's variable-length kernel on a GPU, or
  `scitune.model.attention` (SDPA once per sample, causal) everywhere else, so attention costs
  the sum of the squared sample lengths, not the square of the row. Eager attention gets an
  additive 4-D block-diagonal mask (0 / dtype minimum) over rows cut by first-fit; the boolean
  form of that mask ("bool") is kept as the reference the tests compare against;
- the label at each sample's first position is -100, so no loss crosses a seam (the last token
  of one sample never learns to predict the first token of the next);
- image paths (and so pixel values) are listed in the order their image tokens appear in the
  flattened rows, which is the order Llava scatters image features in.

The same samples give the same loss and gradients packed or not (tested within 1e-5), and the
supervised-token count of the micro-batch does not change, so the global-batch loss
normalisation stays exact.

Row length: by default the width between the micro-batch's longest item and `limit` (the
recipe's `max_length`) whose first-fit packing has the fewest input tokens (rows x width; the
narrowest on ties), so a batch is never wider than it needs to be. `row_length` fixes it instead
(at least the longest item).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from scitune.errors import ScituneError
from scitune.model.attention import VARLEN
from scitune.prompting.images import ImageLoader
from scitune.prompting.render import IGNORE_INDEX

# attention implementation -> how the packed batch tells it where samples end ("sdpa" is switched
# to scitune.model.attention's per-sample SDPA, which reads the same boundaries as flash attention)
MASKS = {"sdpa": "flat", VARLEN: "flat", "eager": "float", "flash_attention_2": "flat", "flash_attention_3": "flat"}


def attention_layout(implementation: str | None) -> str:
    """"flat" (one row with `cu_seq_lens`: SDPA, flash) or "float" (additive 4-D mask, eager).
    ("bool", a 4-D boolean mask, is the tests' reference layout.)"""
    name = implementation or "eager"
    if name not in MASKS:
        raise ScituneError(
            f"data.packing: attention implementation {name!r} is not supported with packing; "
            f"use one of {', '.join(MASKS)}"
        )
    return MASKS[name]


def first_fit(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Indices grouped into rows of total length <= capacity: first-fit decreasing (ties by
    index, so the packing is a pure function of the lengths)."""
    rows: list[list[int]] = []
    room: list[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        length = lengths[index]
        if length > capacity:
            raise ScituneError(f"item {index}: length {length} exceeds the row length {capacity}")
        for row, left in enumerate(room):
            if length <= left:
                rows[row].append(index)
                room[row] -= length
                break
        else:
            rows.append([index])
            room.append(capacity - length)
    return rows


def block_causal_mask(segments: torch.Tensor) -> torch.Tensor:
    """(rows, 1, L, L) bool: position q may attend to k when k <= q and both are in the same
    segment. `segments` is (rows, L), one id per sample (each padding run is its own)."""
    width = segments.shape[1]
    causal = torch.ones(width, width, dtype=torch.bool).tril()
    same = segments[:, :, None] == segments[:, None, :]
    return (same & causal).unsqueeze(1)


def pack(lengths: Sequence[int], limit: int | None = None, row_length: int | None = None, candidates: int = 16) -> list[list[int]]:
    """Rows for one micro-batch: first-fit at `row_length`, or at the width in [longest, limit]
    (`candidates` evenly spaced widths) with the fewest input tokens, the narrowest on ties."""
    longest = max(lengths)
    if row_length is not None:
        return first_fit(lengths, max(row_length, longest))
    top = max(longest, limit or longest)
    widths = sorted({longest + (top - longest) * k // max(1, candidates - 1) for k in range(candidates)})
    best: tuple[int, list[list[int]]] | None = None
    for width in widths:
        rows = first_fit(lengths, width)
        used = max(sum(lengths[i] for i in row) for row in rows)  # the batch is as wide as its fullest row
        if best is None or len(rows) * used < best[0]:
            best = (len(rows) * used, rows)
    return best[1]


def padded_tokens(
    lengths: Sequence[int], batches: Sequence[Sequence[int]], packing: bool, limit: int | None = None, row_length: int | None = None
) -> tuple[int, int]:
    """(real tokens, tokens in the model's input) over `batches` (lists of item indices), padded
    to each batch's longest item, or packed as `PackingCollator` packs them."""
    real = total = 0
    for batch in batches:
        sizes = [lengths[i] for i in batch]
        real += sum(sizes)
        if packing:
            rows = pack(sizes, limit, row_length)
            total += len(rows) * max(sum(sizes[i] for i in row) for row in rows)
        else:
            total += len(sizes) * max(sizes)
    return real, total


class PackingCollator:
    """Rendered training items (`Renderer.train`) -> one packed batch:
    `{input_ids, labels, position_ids, attention_mask?, pixel_values?, ids, image_paths, rows}`.

    `layout`: "bool" / "float" (4-D masks; rows as `pack` cuts them, at most `limit` wide unless an
    item is longer) or "flat" (one row, no mask, `cu_seq_lens` and `max_seq_len`); see
    `attention_layout`. `ids` and `image_paths` are in packed order; `rows` lists the item indices
    of each row.
    """

    def __init__(
        self,
        pad_token_id: int | None,
        images: ImageLoader | None = None,
        layout: str = "bool",
        row_length: int | None = None,
        mask_dtype: torch.dtype = torch.float32,
        limit: int | None = None,
    ):
        if pad_token_id is None:
            raise ScituneError("the tokenizer has no pad token")
        if layout not in ("bool", "float", "flat"):
            raise ValueError(f"layout must be bool, float or flat, got {layout!r}")
        if row_length is not None and row_length < 1:
            raise ValueError(f"row_length must be positive, got {row_length}")
        self.pad_token_id = pad_token_id
        self.images = images
        self.layout = layout
        self.row_length = row_length
        self.mask_dtype = mask_dtype
        self.limit = limit

    def rows(self, items: list[dict[str, Any]]) -> list[list[int]]:
        lengths = [len(item["input_ids"]) for item in items]
        if self.layout == "flat":
            return [list(range(len(items)))]
        return pack(lengths, self.limit, self.row_length)

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        if not items:
            raise ValueError("no items to pack")
        rows = self.rows(items)
        width = max(sum(len(items[i]["input_ids"]) for i in row) for row in rows)
        input_ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
        positions = torch.zeros((len(rows), width), dtype=torch.long)
        segments = torch.zeros((len(rows), width), dtype=torch.long)
        ids, paths = [], []
        segment = 0
        for r, row in enumerate(rows):
            at = 0
            for index in row:
                item = items[index]
                n = len(item["input_ids"])
                input_ids[r, at : at + n] = torch.tensor(item["input_ids"])
                labels[r, at : at + n] = torch.tensor(item["labels"])
                labels[r, at] = IGNORE_INDEX  # nothing predicts a sample's first token across the seam
                positions[r, at : at + n] = torch.arange(n)
                segments[r, at : at + n] = segment
                segment += 1
                at += n
                ids.append(item["id"])
                paths.extend(item.get("images", []))
            if at < width:  # the padding at the row's end: its own segment, positions from 0
                positions[r, at:] = torch.arange(width - at)
                segments[r, at:] = segment
                segment += 1
        batch: dict[str, Any] = {"input_ids": input_ids, "labels": labels, "position_ids": positions}
        if self.layout == "flat":
            sizes = [len(items[i]["input_ids"]) for i in rows[0]]
            batch["cu_seq_lens"] = torch.tensor([0, *sizes], dtype=torch.int32).cumsum(0, dtype=torch.int32)
            batch["max_seq_len"] = max(sizes)
        else:
            mask = block_causal_mask(segments)
            if self.layout == "float":
                minimum = torch.finfo(self.mask_dtype).min
                mask = torch.zeros(mask.shape, dtype=self.mask_dtype).masked_fill_(~mask, minimum)
            batch["attention_mask"] = mask
        batch["ids"] = ids
        batch["image_paths"] = paths
        batch["rows"] = rows
        if paths:
            if self.images is None:
                raise ScituneError(f"sample {ids[0]!r} has images but the collator has no image processor")
            batch["pixel_values"] = self.images(paths)
        return batch
