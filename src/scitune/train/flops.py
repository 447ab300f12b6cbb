"""Estimated training FLOPs per step, for tokens/s -> model FLOPs utilisation (MFU).

Per token through a part with N parameters: forward 2N; backward 2N for activation gradients
when anything before that part trains (the projector always does, so the LM always backpropagates)
plus 2N for the weight gradients of its trainable parameters. Vision tokens (patches) go through
the vision tower; it backpropagates only when it trains. Attention's sequence-length terms are
left out (small at these lengths), so this is a slight underestimate.
"""

from __future__ import annotations


def part_sizes(model) -> dict[str, dict[str, int]]:
    from scitune.model.stages import parameter_table

    return {row["part"]: row for row in parameter_table(model)}


def step_flops(sizes: dict[str, dict[str, int]], text_tokens: int, image_patches: int) -> float:
    """FLOPs of one forward+backward over `text_tokens` LM positions and `image_patches` patches."""
    lm = sizes["language_model"]
    n_lm = lm["trainable"] + lm["frozen"]
    vis = sizes["vision_tower"]
    n_vis = vis["trainable"] + vis["frozen"]
    proj = sizes["projector"]
    n_proj = proj["trainable"] + proj["frozen"]
    flops = text_tokens * (2 * n_lm + 2 * n_lm + 2 * lm["trainable"])
    flops += image_patches * (2 * n_proj + 2 * proj["trainable"])
    flops += image_patches * 2 * n_vis
    if vis["trainable"]:
        flops += image_patches * (2 * n_vis + 2 * vis["trainable"])
    return float(flops)
