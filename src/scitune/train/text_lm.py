"""Language-model pretraining on plain text, for bases that start from random weights.

No pretrained LM can be downloaded offline, so the tiny preset's LM learns the corpus' language
first (causal LM on packed text, LM weights only), before the two SciTune stages. Real recipes
start from a pretrained LM and skip this.
"""

from __future__ import annotations

import numpy as np
import torch

from scitune.config import Trainable
from scitune.train.pretrain import OnStep, pretrain


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
    on_step: OnStep | None = None,
) -> list[float]:
    """Trains the LLM part of a Llava model (embeddings, decoder, lm_head) on `texts`; returns
    the loss per step. The vision tower and projector are left as they are."""
    rows = pack_texts(tokenizer, texts, seq_len)
    rng = np.random.default_rng(seed)

    def loss_at(step: int) -> torch.Tensor:
        batch = rows[torch.from_numpy(rng.integers(0, len(rows), size=batch_size))]
        return model(input_ids=batch, labels=batch).loss

    plan = Trainable(projector=False, language_model=True, vision_tower=False)
    return pretrain(model, plan, loss_at, steps, lr, warmup=max(1, steps // 20), on_step=on_step)
