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

Model families (scitune.model.families) pack the same way, each with what its samples need:
- per-token inputs (Qwen's `mm_token_type_ids`, Gemma 3's `token_type_ids`) are concatenated
  like the ids, and the per-image inputs (`image_grid_thw`, `pixel_attention_mask`,
  `image_sizes`) come from the image processor run once over the packed order of the images,
  which is the order each family's model consumes them in (every tower runs image by image);
- Qwen2-VL / Qwen2.5-VL / Qwen3-VL: the 3-D M-RoPE positions of each sample are the model's own
  `get_rope_index` on that sample alone (`SamplePositions`), concatenated; `position_ids` is
  (4, rows, width), row 0 the 1-D positions restarting per sample (transformers' packed form:
  the text model reads its sample boundaries from row 0, the rotary embedding rows 1-3);
- Idefics3 / SmolVLM, LLaVA-OneVision, LLaVA-NeXT, InternVL: 1-D positions restarting per
  sample, as for LLaVA;
- Gemma 3: a sample's image tokens attend to each other both ways, and its sliding-window layers
  see only the last `sliding_window` tokens. Packing is exact only when no sample is longer than
  the window (then the window never cuts inside a sample); its rows get a 4-D mask whose blocks
  are causal plus each image's span both ways (`image_blocks`). transformers' own packed mask
  (5.25) is not used for it: its sliding mask looks the image spans up at the in-sample
  positions (`remap_positions_for_packed_sequence` wraps the image overlay too), not the row's.
- the families' flat rows carry no `cu_seq_lens`: their vision towers take the model's keyword
  arguments too, and would read the text's sample boundaries as their own; the attention of
  scitune.model.attention (and flash attention) finds them from the restarting position ids.

Row length: by default the width between the micro-batch's longest item and `limit` (the
recipe's `max_length`) whose first-fit packing has the fewest input tokens (rows x width; the
narrowest on ties), so a batch is never wider than it needs to be. `row_length` fixes it instead
(at least the longest item).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from scitune.errors import ScituneError
from scitune.model.attention import VARLEN
from scitune.model.families import FAMILIES
from scitune.prompting.collate import TOKEN_TYPE_INPUTS
from scitune.prompting.images import ImageLoader
from scitune.prompting.render import IGNORE_INDEX

# attention implementation -> how the packed batch tells it where samples end ("sdpa" is switched
# to scitune.model.attention's per-sample SDPA, which reads the same boundaries as flash attention)
MASKS = {"sdpa": "flat", VARLEN: "flat", "eager": "float", "flash_attention_2": "flat", "flash_attention_3": "flat"}


def attention_layout(implementation: str | None, image_blocks: bool = False) -> str:
    """"flat" (one row with `cu_seq_lens`: SDPA, flash) or "float" (additive 4-D mask, eager).
    ("bool", a 4-D boolean mask, is the tests' reference layout.) `image_blocks` (Gemma 3's
    two-way image attention) needs a 4-D mask: "bool" on SDPA, "float" on eager."""
    name = implementation or "eager"
    if name not in MASKS or (image_blocks and name not in ("sdpa", VARLEN, "eager")):
        supported = ("sdpa", "eager") if image_blocks else MASKS
        why = " (Gemma 3's two-way image attention needs a 4-D mask)" if image_blocks else ""
        raise ScituneError(
            f"data.packing: attention implementation {name!r} is not supported with packing{why}; "
            f"use one of {', '.join(supported)}"
        )
    if image_blocks:
        return "float" if name == "eager" else "bool"
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


def block_causal_mask(segments: torch.Tensor, blocks: torch.Tensor | None = None) -> torch.Tensor:
    """(rows, 1, L, L) bool: position q may attend to k when k <= q and both are in the same
    segment. `segments` is (rows, L), one id per sample (each padding run is its own).
    `blocks` (rows, L): -1, or the id of the image span a token is in (unique in the batch, each
    inside one sample): the tokens of one span also attend to each other both ways (Gemma 3)."""
    width = segments.shape[1]
    causal = torch.ones(width, width, dtype=torch.bool).tril()
    same = segments[:, :, None] == segments[:, None, :]
    allowed = same & causal
    if blocks is not None:
        allowed |= (blocks[:, :, None] == blocks[:, None, :]) & (blocks[:, :, None] >= 0)
    return allowed.unsqueeze(1)


def image_spans(token_types: list[int]) -> list[tuple[int, int]]:
    """(start, end) of each run of 1s in a sample's token types (one image's feature tokens)."""
    spans, start = [], None
    for k, t in enumerate([*token_types, 0]):
        if t == 1 and start is None:
            start = k
        elif t != 1 and start is not None:
            spans.append((start, k))
            start = None
    return spans


class SamplePositions:
    """Qwen-VL's 3-D M-RoPE positions of one sample: the model's own `get_rope_index` on the
    sample alone (as it computes them for each row of an unpacked batch). `model` is the
    Qwen*VLForConditionalGeneration; only its config is read."""

    def __init__(self, model):
        self.rope_index = model.model.get_rope_index

    def __call__(self, input_ids: list[int], token_types: list[int], grid_thw: torch.Tensor | None) -> torch.Tensor:
        """(3, n) positions of a sample of n tokens with images of `grid_thw` (k, 3) (None: none)."""
        ids = torch.tensor([input_ids], dtype=torch.long)
        types = torch.tensor([token_types], dtype=torch.long)
        with torch.no_grad():
            positions, _ = self.rope_index(ids, types, image_grid_thw=grid_thw if grid_thw is not None and len(grid_thw) else None)
        return positions[:, 0]


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
    `{input_ids, labels, position_ids, attention_mask?, pixel_values?, <family inputs>, ids,
    image_paths, rows}`.

    `layout`: "bool" / "float" (4-D masks; rows as `pack` cuts them, at most `limit` wide unless an
    item is longer) or "flat" (one row, no mask, `cu_seq_lens` and `max_seq_len` when
    `boundaries`); see `attention_layout`. `ids` and `image_paths` are in packed order; `rows`
    lists the item indices of each row.

    A model family's needs (see the module's docstring): `image_inputs`, the per-image inputs
    besides pixel_values (`Family.image_inputs`); `positions`, a sample's 3-D positions
    (`SamplePositions`, Qwen-VL); `image_blocks`, each image span attends to itself both ways
    (Gemma 3) and no item may be longer than `window` (its sliding window).
    """

    def __init__(
        self,
        pad_token_id: int | None,
        images: ImageLoader | None = None,
        layout: str = "bool",
        row_length: int | None = None,
        mask_dtype: torch.dtype = torch.float32,
        limit: int | None = None,
        image_inputs: tuple[str, ...] = (),
        positions: Callable[[list[int], list[int], torch.Tensor | None], torch.Tensor] | None = None,
        image_blocks: bool = False,
        window: int | None = None,
        boundaries: bool = True,
    ):
        if pad_token_id is None:
            raise ScituneError("the tokenizer has no pad token")
        if layout not in ("bool", "float", "flat"):
            raise ValueError(f"layout must be bool, float or flat, got {layout!r}")
        if row_length is not None and row_length < 1:
            raise ValueError(f"row_length must be positive, got {row_length}")
        if image_blocks and layout == "flat":
            raise ValueError("image_blocks needs a 4-D mask (layout bool or float)")
        self.pad_token_id = pad_token_id
        self.images = images
        self.layout = layout
        self.row_length = row_length
        self.mask_dtype = mask_dtype
        self.limit = limit
        self.image_inputs = tuple(image_inputs)
        self.positions = positions
        self.image_blocks = image_blocks
        self.window = window
        self.boundaries = boundaries

    def rows(self, items: list[dict[str, Any]]) -> list[list[int]]:
        lengths = [len(item["input_ids"]) for item in items]
        if self.layout == "flat":
            return [list(range(len(items)))]
        return pack(lengths, self.limit, self.row_length)

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        if not items:
            raise ValueError("no items to pack")
        if self.window is not None:
            for item in items:
                if len(item["input_ids"]) > self.window:
                    raise ScituneError(
                        f"sample {item['id']!r}: {len(item['input_ids'])} tokens, longer than the sliding window "
                        f"({self.window}) inside which packing is exact"
                    )
        rows = self.rows(items)
        width = max(sum(len(items[i]["input_ids"]) for i in row) for row in rows)
        input_ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
        positions = torch.zeros((len(rows), width), dtype=torch.long)
        segments = torch.zeros((len(rows), width), dtype=torch.long)
        token_keys = [k for k in TOKEN_TYPE_INPUTS if k in items[0]]
        if self.image_blocks and not token_keys:
            raise ValueError("image_blocks needs the items' token types (1 on image feature tokens)")
        token_types = {k: torch.zeros((len(rows), width), dtype=torch.long) for k in token_keys}
        blocks = torch.full((len(rows), width), -1, dtype=torch.long) if self.image_blocks else None
        ids, paths, placed = [], [], []
        segment = block = 0
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
                for key in token_keys:
                    token_types[key][r, at : at + n] = torch.tensor(item[key])
                if blocks is not None:  # each image span of the sample: its own block id
                    for a, b in image_spans(item[token_keys[0]] if token_keys else []):
                        blocks[r, at + a : at + b] = block
                        block += 1
                placed.append((r, at, index))
                segment += 1
                at += n
                ids.append(item["id"])
                paths.extend(item.get("images", []))
            if at < width:  # the padding at the row's end: its own segment, positions from 0
                positions[r, at:] = torch.arange(width - at)
                segments[r, at:] = segment
                segment += 1
        batch: dict[str, Any] = {"input_ids": input_ids, "labels": labels, "position_ids": positions}
        batch.update(token_types)
        if self.layout == "flat":
            if self.boundaries:
                sizes = [len(items[i]["input_ids"]) for i in rows[0]]
                batch["cu_seq_lens"] = torch.tensor([0, *sizes], dtype=torch.int32).cumsum(0, dtype=torch.int32)
                batch["max_seq_len"] = max(sizes)
        else:
            mask = block_causal_mask(segments, blocks)
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
            if self.image_inputs:
                batch.update(self.images.inputs(paths, self.image_inputs))
            else:
                batch["pixel_values"] = self.images(paths)
        if self.positions is not None:
            batch["position_ids"] = self._positions_3d(items, placed, positions, batch.get("image_grid_thw"))
        return batch

    def _positions_3d(self, items, placed, positions: torch.Tensor, grid_thw: torch.Tensor | None) -> torch.Tensor:
        """(4, rows, width): row 0 the 1-D positions, rows 1-3 each sample's own 3-D positions
        (the padding keeps its 1-D positions in all four)."""
        out = positions.unsqueeze(0).repeat(4, 1, 1)
        first_image = 0
        for r, at, index in placed:
            item = items[index]
            n, k = len(item["input_ids"]), len(item.get("images", []))
            grid = grid_thw[first_image : first_image + k] if grid_thw is not None and k else None
            first_image += k
            out[1:, r, at : at + n] = self.positions(item["input_ids"], item["mm_token_type_ids"], grid)
        return out


def make_packing_collator(model, pad_token_id: int | None, images: ImageLoader | None, max_length: int | None, family=None) -> PackingCollator:
    """The packing collator of a training stage for `model` (the base model, not a peft wrapper):
    the layout its attention implementation needs, per-sample attention on SDPA
    (scitune.model.attention) and its family's inputs and positions. A family where packing is
    not exact is refused (`check_packing`)."""
    check_packing(model.config, max_length)
    implementation = model.config.text_config._attn_implementation
    image_blocks = family is FAMILIES["gemma3"]
    layout = attention_layout(implementation, image_blocks=image_blocks)
    if implementation == "sdpa" and layout == "flat":  # per-sample SDPA on the flat row
        from scitune.model.attention import use_varlen_attention

        use_varlen_attention(model)
    if family is None:  # LLaVA
        return PackingCollator(pad_token_id, images, layout, limit=max_length)
    qwen = family is FAMILIES["qwen_vl"]
    return PackingCollator(
        pad_token_id, images, layout, limit=max_length, image_inputs=family.image_inputs,
        positions=SamplePositions(model) if qwen else None, image_blocks=image_blocks,
        window=model.config.text_config.sliding_window if image_blocks else None, boundaries=False,
    )


def check_packing(config, max_length: int | None, where: str = "data.packing") -> None:
    """Refuses packing (a ScituneError in one line naming the family) where it is not exact:
    Gemma 3 when a sample may be longer than its sliding window."""
    model_type = getattr(config, "model_type", None)
    if model_type == "gemma3":
        window = config.text_config.sliding_window
        if max_length is None or max_length > window:
            raise ScituneError(
                f"{where}: not exact for the gemma3 family with max_length {max_length} (its sliding-window layers "
                f"see {window} tokens, and a longer sample would need the window inside the packed row); "
                f"set data.max_length <= {window} or data.packing: false"
            )
