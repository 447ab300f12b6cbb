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

    sizes = {row["part"]: row for row in parameter_table(model)}
    embedding = model.get_input_embeddings().weight
    output = model.get_output_embeddings()
    tied = output is not None and output.weight is embedding
    sizes["embedding"] = {"part": "embedding", "trainable": 0 if tied else int(embedding.requires_grad) * embedding.numel(),
                          "frozen": 0 if tied else int(not embedding.requires_grad) * embedding.numel()}
    return sizes


def step_flops(sizes: dict[str, dict[str, int]], text_tokens: int, image_patches: int) -> float:
    """FLOPs of one forward+backward over `text_tokens` LM positions and `image_patches` patches."""
    lm, emb = sizes["language_model"], sizes.get("embedding", {"trainable": 0, "frozen": 0})
    n_lm = lm["trainable"] + lm["frozen"] - emb["trainable"] - emb["frozen"]
    lm = {"trainable": lm["trainable"] - emb["trainable"]}
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
