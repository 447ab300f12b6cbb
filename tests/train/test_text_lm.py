import torch

from scitune.config import ModelConfig
from scitune.model import build_model, save_model
from scitune.train.text_lm import pack_texts, pretrain_text_lm
from tests.fixtures import build_tiny

TEXTS = [f"The pressure rises with depth {i} metres below the surface of the lake." for i in range(40)]


def test_pretraining_lowers_the_loss_and_touches_only_the_llm(tmp_path):
    torch.set_num_threads(1)
    model, processor = build_tiny(texts=TEXTS, vocab_size=300)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    losses = pretrain_text_lm(model, processor.tokenizer, TEXTS, steps=30, batch_size=4, seq_len=32, lr=5e-3)
    assert len(losses) == 30 and losses[-1] < losses[0] - 1.0
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all("language_model" in n or n.startswith("lm_head") for n in changed)
    assert all(p.requires_grad for p in model.parameters())  # flags restored

    # the trained base is a checkpoint a recipe can start from
    save_model(model, processor, tmp_path / "base")
    again, _ = build_model(ModelConfig(checkpoint=str(tmp_path / "base")))
    assert all(torch.equal(p, dict(again.named_parameters())[n]) for n, p in model.named_parameters())


def test_pack_texts_rows():
    _, processor = build_tiny(texts=TEXTS, vocab_size=300)
    rows = pack_texts(processor.tokenizer, TEXTS, 16)
    assert rows.shape[1] == 16 and (rows == processor.tokenizer.eos_token_id).sum() >= len(TEXTS) - 1
