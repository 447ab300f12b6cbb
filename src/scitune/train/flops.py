"""Estimated training FLOPs per step, for tokens/s -> model FLOPs utilisation (MFU).

Per token through a part with N parameters: forward 2N; backward 2N for activation gradients
when anything before that part trains (the projector always does, so the LM always backpropagates)
plus 2N for the weight gradients of its trainable parameters. Vision tokens (patches) go through
the vision tower; it backpropagates only when it trains. The output projection (lm_head) runs
only at positions with a supervised target (scitune.train.features), so it is counted for those
`logit_tokens` alone. Attention's sequence-length terms are left out (small at these lengths),
so this is a slight underestimate.
"""

from __future__ import annotations


def part_sizes(model) -> dict[str, dict[str, int]]:
    from scitune.model.stages import parameter_table

    sizes = {row["part"]: row for row in parameter_table(model)}
    # counted here as one language model with its head (the head's own share is taken out below)
    lm, own_head = sizes["language_model"], sizes["lm_head"]
    sizes["language_model"] = {"part": "language_model", "trainable": lm["trainable"] + own_head["trainable"],
                               "frozen": lm["frozen"] + own_head["frozen"]}
    embedding = model.get_input_embeddings().weight
    output = model.get_output_embeddings()
    tied = output is not None and output.weight is embedding
    sizes["embedding"] = {"part": "embedding", "trainable": 0 if tied else int(embedding.requires_grad) * embedding.numel(),
                          "frozen": 0 if tied else int(not embedding.requires_grad) * embedding.numel()}
    head = output.weight if output is not None else None
    sizes["lm_head"] = {"part": "lm_head", "trainable": int(head.requires_grad) * head.numel() if head is not None else 0,
                        "frozen": int(not head.requires_grad) * head.numel() if head is not None else 0}
    return sizes


def step_flops(sizes: dict[str, dict[str, int]], text_tokens: int, image_patches: int, logit_tokens: int | None = None) -> float:
    """FLOPs of one forward+backward over `text_tokens` LM positions and `image_patches` patches,
    with the lm_head at `logit_tokens` of those positions (all of them when None)."""
    lm, emb = sizes["language_model"], sizes.get("embedding", {"trainable": 0, "frozen": 0})
    head = sizes.get("lm_head", {"trainable": 0, "frozen": 0})
    n_head, head_trainable = head["trainable"] + head["frozen"], head["trainable"]
    n_lm = lm["trainable"] + lm["frozen"] - emb["trainable"] - emb["frozen"] - n_head
    lm = {"trainable": lm["trainable"] - emb["trainable"] - head_trainable}
    logit_tokens = text_tokens if logit_tokens is None else logit_tokens
    vis = sizes["vision_tower"]
    n_vis = vis["trainable"] + vis["frozen"]
    proj = sizes["projector"]
    n_proj = proj["trainable"] + proj["frozen"]
    flops = text_tokens * (2 * n_lm + 2 * n_lm + 2 * lm["trainable"])
    flops += logit_tokens * (2 * n_head + 2 * n_head + 2 * head_trainable)
    flops += image_patches * (2 * n_proj + 2 * proj["trainable"])
    flops += image_patches * 2 * n_vis
    if vis["trainable"]:
        flops += image_patches * (2 * n_vis + 2 * vis["trainable"])
    return float(flops)
