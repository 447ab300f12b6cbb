"""Language-model pretraining on plain text, for bases that start from random weights.

No pretrained LM can be downloaded offline, so the tiny preset's LM learns the corpus' language
first (causal LM on packed text, LM weights only), before the two SciTune stages. Real recipes
start from a pretrained LM and skip this.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from scitune.train.schedule import warmup_cosine


def pack_texts(tokenizer, texts: list[str], seq_len: int) -> torch.Tensor:
    """Texts -> one token stream (each text followed by EOS) cut into rows of `seq_len`."""
    stream: list[int] = []
    for text in texts:
        stream += tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    rows = len(stream) // seq_len
    if rows == 0:
        raise ValueError(f"{len(stream)} tokens of text cannot fill one row of {seq_len}")
    return torch.tensor(stream[: rows * seq_len]).view(rows, seq_len)


def pretrain_text_lm(
    model,
    tokenizer,
    texts: list[str],
    steps: int,
    batch_size: int = 16,
    seq_len: int = 128,
    lr: float = 3e-3,
    seed: int = 0,
    on_step: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Trains the LLM part of a Llava model (embeddings, decoder, lm_head) on `texts`; returns
    the loss per step. The vision tower and projector are left as they are."""
    rows = pack_texts(tokenizer, texts, seq_len)
    llm = [p for n, p in model.named_parameters() if "language_model" in n or n.startswith("lm_head")]
    saved = {id(p): p.requires_grad for p in model.parameters()}
    for p in model.parameters():
        p.requires_grad_(False)
    for p in llm:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(llm, lr=lr, weight_decay=0.0)
    rng = np.random.default_rng(seed)
    warmup = max(1, steps // 20)
    losses = []
    model.train()
    try:
        for step in range(steps):
            scale = warmup_cosine(step, steps, warmup)
            for group in optimizer.param_groups:
                group["lr"] = lr * scale
            batch = rows[torch.from_numpy(rng.integers(0, len(rows), size=batch_size))]
            loss = model(input_ids=batch, labels=batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(llm, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
            if on_step is not None:
                on_step(step + 1, losses[-1])
    finally:
        for p in model.parameters():
            p.requires_grad_(saved[id(p)])
    return losses
