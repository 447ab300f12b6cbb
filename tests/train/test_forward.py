"""The training forward: the loss from logits at supervised positions only equals transformers'
full causal-LM loss, and per-sample (varlen) attention equals a block-diagonal causal mask."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from scitune.config import StageConfig
from scitune.model.attention import varlen_sdpa
from scitune.prompting import IGNORE_INDEX
from scitune.prompting.packing import block_causal_mask
from scitune.train.features import TrainingModule
from tests.fixtures import build_tiny


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_supervised_positions_loss_equals_full_logits_loss():
    from scitune.model import apply_stage

    model, _ = build_tiny(vocab_size=300)
    model = apply_stage(model, StageConfig(name="instruct"))
    model.train()
    torch.manual_seed(0)
    ids = torch.randint(5, 290, (3, 40))
    labels = ids.clone()
    labels[:, :25] = IGNORE_INDEX  # the prompt
    labels[1, 33:] = IGNORE_INDEX  # a shorter answer
    labels[2, :] = IGNORE_INDEX  # a row with nothing supervised
    attention = torch.ones_like(ids)
    attention[1, 36:] = 0
    normaliser = int((labels[:, 1:] != IGNORE_INDEX).sum()) + 3  # a global count larger than this batch's
    other = copy.deepcopy(model)

    ours = TrainingModule(model)({"input_ids": ids, "labels": labels, "attention_mask": attention}, num_items_in_batch=normaliser)
    ours.backward()
    theirs = other(input_ids=ids, attention_mask=attention, labels=labels, num_items_in_batch=normaliser).loss
    theirs.backward()
    ours, theirs = ours.detach(), theirs.detach()
    assert abs(float(ours) - float(theirs)) <= 1e-6 and float(ours) > 0
    a, b = _grads(model), _grads(other)
    # a text-only batch keeps the projector in the graph with a zero term (DDP needs every parameter)
    assert b.keys() <= a.keys() and len(b) > 4
    assert all(not a[name].any() for name in a.keys() - b.keys())
    for name in b:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-6, msg=name)
    # the normaliser matters: the same batch over its own count is a different loss
    own = TrainingModule(model)({"input_ids": ids, "labels": labels, "attention_mask": attention}, num_items_in_batch=normaliser - 3)
    assert abs(float(own.detach()) - float(ours)) > 1e-4


class _Attention(torch.nn.Module):
    num_key_value_groups = 2


def test_varlen_attention_equals_a_block_diagonal_mask():
    torch.manual_seed(0)
    sizes = [5, 1, 7, 3]
    total = sum(sizes)
    q = torch.randn(1, 4, total, 8, requires_grad=True)
    k = torch.randn(1, 2, total, 8, requires_grad=True)
    v = torch.randn(1, 2, total, 8, requires_grad=True)
    bounds = torch.tensor([0, *sizes]).cumsum(0)
    out, _ = varlen_sdpa(_Attention(), q, k, v, None, scaling=0.3, cu_seq_lens_q=bounds)
    segments = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))[None]
    mask = block_causal_mask(segments)
    reference = F.scaled_dot_product_attention(
        q, k.repeat_interleave(2, dim=1), v.repeat_interleave(2, dim=1), attn_mask=mask, scale=0.3
    ).transpose(1, 2)
    torch.testing.assert_close(out, reference, rtol=0, atol=1e-6)
    weights = torch.randn_like(out)
    grads = torch.autograd.grad((out * weights).sum(), (q, k, v))
    expected = torch.autograd.grad((reference * weights).sum(), (q, k, v))
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
    # one sample over the whole row is not the same thing: the boundaries are used
    whole, _ = varlen_sdpa(_Attention(), q, k, v, None, scaling=0.3, cu_seq_lens_q=torch.tensor([0, total]))
    assert (whole - out).abs().max() > 1e-3


@pytest.mark.parametrize(
    "bounds, message",
    [([0, 5, 15], "does not cover"), ([1, 16], "does not cover"), ([0, 9, 9, 16], "does not cover")],
)
def test_varlen_attention_refuses_bad_boundaries(bounds, message):
    q = torch.randn(1, 2, 16, 4)
    with pytest.raises(ValueError, match=message):
        varlen_sdpa(torch.nn.Module(), q, q, q, None, cu_seq_lens_q=torch.tensor(bounds))
    with pytest.raises(ValueError, match="needs cu_seq_lens_q"):  # a padded batch without boundaries
        varlen_sdpa(torch.nn.Module(), q.expand(2, -1, -1, -1), q.expand(2, -1, -1, -1), q.expand(2, -1, -1, -1), None)
