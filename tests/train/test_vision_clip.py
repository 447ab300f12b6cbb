import pytest
import torch

from scitune.train.vision_clip import patch_features, pretrain_vision_tower
from tests.fixtures import build_tiny


def _images_and_captions(n=24):
    """Two kinds of image (bright left half / bright right half), each with its own caption words."""
    g = torch.Generator().manual_seed(0)
    pixels = torch.randn(n, 3, 128, 128, generator=g) * 0.1
    captions = []
    for i in range(n):
        if i % 2:
            pixels[i, :, :, :64] += 1.0
            captions.append([5, 6, 7])
        else:
            pixels[i, :, :, 64:] += 1.0
            captions.append([8, 9, 10])
    return pixels, captions


def test_contrastive_pretraining_trains_the_tower_only_and_separates_the_kinds():
    torch.set_num_threads(1)
    model, processor = build_tiny(texts=["a b c d e f"] * 8, vocab_size=300)
    vision = model.model.vision_tower
    pixels, captions = _images_and_captions()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    vision.requires_grad_(False)  # frozen as a stage leaves it; training must put the flags back
    flags = {n: p.requires_grad for n, p in model.named_parameters()}
    losses = pretrain_vision_tower(model, pixels, captions, vocab_size=len(processor.tokenizer), steps=40,
                                   batch_size=8, lr=2e-3, feature_layer=model.config.vision_feature_layer)
    assert len(losses) == 40 and sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.3
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all("vision_tower" in n for n in changed)
    assert {n: p.requires_grad for n, p in model.named_parameters()} == flags
    # the pooled features of the two kinds now lie apart
    with torch.no_grad():
        pooled = patch_features(vision, pixels, model.config.vision_feature_layer).mean(1)
    pooled = torch.nn.functional.normalize(pooled - pooled.mean(0), dim=-1)
    same = (pooled[0::2] @ pooled[0::2].T).mean()
    across = (pooled[0::2] @ pooled[1::2].T).mean()
    assert same - across > 0.5


def test_pretraining_rejects_mismatched_or_empty_captions():
    model, processor = build_tiny(texts=["a b c d e f"] * 8, vocab_size=300)
    pixels, captions = _images_and_captions(4)
    with pytest.raises(ValueError, match="4 images but 3 captions"):
        pretrain_vision_tower(model, pixels, captions[:3], vocab_size=300, steps=1)
    with pytest.raises(ValueError, match="non-empty caption"):
        pretrain_vision_tower(model, pixels, captions[:3] + [[]], vocab_size=300, steps=1)
