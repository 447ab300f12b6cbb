"""Contrastive (CLIP-style) pretraining of a vision tower on image-caption pairs, for bases that
start from random weights.

No pretrained vision encoder can be downloaded offline, so the tiny preset's tower learns what
a CLIP tower learns, at toy scale, before the two SciTune stages: to pick each image's own caption
out of a batch (symmetric InfoNCE, learnable temperature). The image side is the mean of the
patch features at the layer the projector reads (`vision_feature_layer`), so those features are
the ones trained; the text side is a bag of caption tokens. Both heads are thrown away afterwards;
only the tower is kept. Real recipes start from a pretrained CLIP/SigLIP tower and skip this.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from scitune.config import Trainable
from scitune.train.pretrain import OnStep, pretrain


class _CaptionEncoder(nn.Module):
    """Mean of token embeddings, then a linear head."""

    def __init__(self, vocab_size: int, width: int, dim: int):
        super().__init__()
        self.embed = nn.EmbeddingBag(vocab_size, width, mode="mean")
        self.head = nn.Linear(width, dim)

    def forward(self, token_ids: list[list[int]]) -> torch.Tensor:
        flat = torch.tensor([t for ids in token_ids for t in ids])
        offsets = torch.tensor([0] + np.cumsum([len(ids) for ids in token_ids])[:-1].tolist())
        return self.head(self.embed(flat, offsets))


def patch_features(vision, pixel_values: torch.Tensor, feature_layer: int) -> torch.Tensor:
    """(batch, patches, hidden) features at `feature_layer`, the CLS position dropped."""
    hidden = vision(pixel_values=pixel_values, output_hidden_states=True).hidden_states[feature_layer]
    return hidden[:, 1:]


def pretrain_vision_tower(
    model,
    pixel_values: torch.Tensor,
    caption_ids: list[list[int]],
    vocab_size: int,
    steps: int,
    batch_size: int = 128,
    lr: float = 1e-3,
    feature_layer: int | None = None,
    dim: int = 64,
    seed: int = 0,
    on_step: OnStep | None = None,
) -> list[float]:
    """Trains the vision tower of Llava model `model` so that its pooled features at
    `feature_layer` (the model's `vision_feature_layer` by default) match the captions' in a
    shared space; returns the loss per step. `pixel_values` holds the processed images,
    `caption_ids` each image's caption as token ids (no padding)."""
    if len(caption_ids) != len(pixel_values):
        raise ValueError(f"{len(pixel_values)} images but {len(caption_ids)} captions")
    if any(not ids for ids in caption_ids):
        raise ValueError("every image needs a non-empty caption")
    vision = model.model.vision_tower
    feature_layer = model.config.vision_feature_layer if feature_layer is None else feature_layer
    batch_size = min(batch_size, len(caption_ids))
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        text = _CaptionEncoder(vocab_size, 2 * dim, dim)
        image_head = nn.Linear(vision.config.hidden_size, dim)
    log_scale = nn.Parameter(torch.tensor(math.log(10.0)))
    targets = torch.arange(batch_size)

    def loss_at(step: int) -> torch.Tensor:
        index = torch.randperm(len(caption_ids), generator=generator)[:batch_size]
        images = patch_features(vision, pixel_values[index], feature_layer).mean(dim=1)
        images = nn.functional.normalize(image_head(images), dim=-1)
        captions = nn.functional.normalize(text([caption_ids[i] for i in index.tolist()]), dim=-1)
        logits = log_scale.clamp(max=math.log(100.0)).exp() * images @ captions.T
        return (nn.functional.cross_entropy(logits, targets) + nn.functional.cross_entropy(logits.T, targets)) / 2

    plan = Trainable(projector=False, language_model=False, vision_tower=True)
    heads = [*text.parameters(), *image_head.parameters(), log_scale]
    return pretrain(
        model, plan, loss_at, steps, lr, warmup=max(1, steps // 15), weight_decay=0.01, heads=heads,
        module=vision, on_step=on_step,
    )
