"""Variable-length attention for packed rows without flash attention.

A packed micro-batch (scitune.prompting.packing, layout "flat") is one row of several samples
with `cu_seq_lens` marking where each starts. Flash attention's variable-length kernel reads
those boundaries on a GPU. Without it (CPU, or a GPU without flash-attn) transformers would
build a dense (L, L) block-diagonal mask from the position ids and SDPA would still compute every
masked-out score, so a wide packed row paid for all the attention it hid, and packing was
slower than padding. This attention runs PyTorch's SDPA once per sample with `is_causal=True`
(its fused causal kernel), so the attention costs the sum of the squared sample lengths.

The boundaries come as `cu_seq_lens_q` (LLaVA's packed batches) or, when that is absent, from the
1-D position ids restarting at 0 on each sample (the model families' packed rows: their vision
towers take the model's keyword arguments too, so the boundaries do not travel as one).

It is registered with transformers' `AttentionInterface` under `VARLEN` and switched on for the
language model only (`use_varlen_attention`), for training with packing. The name is not
written to a saved config (transformers keeps the implementation out of config.json), and
`restore_attention` puts SDPA back before a model leaves the training loop. Written here
because transformers ships no CPU varlen path; the per-sample loop is the whole of it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

VARLEN = "scitune_sdpa_varlen"


def varlen_sdpa(module, query, key, value, attention_mask, dropout: float = 0.0, scaling: float | None = None, **kwargs):
    """transformers' attention-function signature: (batch, heads, length, dim) in, (batch,
    length, heads, dim) out. Needs `cu_seq_lens_q` (the packed row's sample starts and end) or
    `position_ids` restarting at 0 on each sample of the row."""
    bounds = kwargs.get("cu_seq_lens_q")
    if bounds is None:
        bounds = sample_bounds(kwargs.get("position_ids"), query, key, attention_mask)
    groups = getattr(module, "num_key_value_groups", 1)
    if groups > 1:
        key = key.repeat_interleave(groups, dim=1)
        value = value.repeat_interleave(groups, dim=1)
    if bounds is None:
        # no packing: an unpadded batch (no mask) is plain causal attention; anything else would
        # need the mask this implementation never asks transformers to build
        long_query = query.shape[2] > 1
        if attention_mask is not None or (long_query and (query.shape[0] > 1 or query.shape[2] != key.shape[2])):
            raise ValueError(f"{VARLEN} attention needs cu_seq_lens_q or position ids restarting per sample (a packed row), or one unpadded sequence")
        out = F.scaled_dot_product_attention(query, key, value, dropout_p=dropout, scale=scaling, is_causal=long_query)
        return out.transpose(1, 2).contiguous(), None
    if query.shape[0] != 1 or query.shape[2] != key.shape[2]:
        raise ValueError(f"{VARLEN} attention: a packed batch is one row without a cache, got query {tuple(query.shape)}")
    edges = bounds.tolist() if isinstance(bounds, torch.Tensor) else list(bounds)
    if edges[0] != 0 or edges[-1] != query.shape[2] or any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError(f"{VARLEN} attention: cu_seq_lens_q {edges[:8]} does not cover the row of {query.shape[2]}")
    # split, not one slice per sample: the backward of a split is one concatenation, while each
    # slice's backward writes a zero tensor as large as the whole row
    sizes = [b - a for a, b in zip(edges, edges[1:])]
    window = getattr(module, "sliding_window", None)
    if window is not None and max(sizes) > window:
        raise ValueError(f"{VARLEN} attention: a packed sample of {max(sizes)} tokens is longer than the sliding window ({window})")
    parts = [
        F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, scale=scaling, is_causal=True)
        for q, k, v in zip(query.split(sizes, dim=2), key.split(sizes, dim=2), value.split(sizes, dim=2))
    ]
    out = torch.cat(parts, dim=2) if len(parts) > 1 else parts[0]
    return out.transpose(1, 2).contiguous(), None


def sample_bounds(position_ids, query, key, attention_mask) -> list[int] | None:
    """The sample starts (and the row's end) of one packed row without a mask or cache, from
    its 1-D position ids (0 where each sample starts); None for anything else."""
    if position_ids is None or attention_mask is not None or query.shape[0] != 1 or query.shape[2] != key.shape[2]:
        return None
    positions = position_ids.reshape(-1) if position_ids.dim() == 2 and position_ids.shape[0] == 1 else None
    if positions is None or positions.numel() != query.shape[2] or int(positions[0]) != 0:
        return None
    starts = (positions == 0).nonzero().flatten().tolist()
    return [*starts, positions.numel()]


def register() -> None:
    from transformers import AttentionInterface

    AttentionInterface.register(VARLEN, varlen_sdpa)  # idempotent: the same function under the same name


def use_varlen_attention(llava) -> None:
    """The language model of `llava` (a LlavaForConditionalGeneration) attends per packed sample."""
    register()
    llava.set_attn_implementation({"text_config": VARLEN})


def restore_attention(llava) -> None:
    """SDPA again for the language model, if `use_varlen_attention` switched it."""
    if llava.config.text_config._attn_implementation == VARLEN:
        llava.set_attn_implementation({"text_config": "sdpa"})
