"""Packed multimodal batches: the same samples give the same loss and gradients packed as
unpacked (plain and LoRA, every attention layout), and a packed training run equals an unpacked
one and resumes exactly."""

from __future__ import annotations

import random

import pytest
import torch
from safetensors.torch import load_file

from scitune.config import LoraConfig, StageConfig, load_recipe
from scitune.model.attention import use_varlen_attention
from scitune.prompting import IGNORE_INDEX, ImageLoader, PaddingCollator, Renderer, model_inputs
from scitune.prompting.packing import PackingCollator, attention_layout, first_fit, padded_tokens
from scitune.train.features import TrainingModule
from scitune.train.log import read_metrics
from scitune.train.loop import supervised_tokens
from scitune.train.run import run_recipe
from tests.train.data import write_dataset, write_recipe


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("packing"), n=16, text_only=4)


def _items(processor, dataset, n=10):
    import json

    train, _ = dataset
    samples = json.loads(train.read_text())
    rng = random.Random(0)
    # vary the lengths (multi-turn, long answers) so rows hold different numbers of samples
    for k, sample in enumerate(samples):
        if k % 3 == 0:
            sample["conversations"][1]["value"] += " because " + " and ".join(["the bars rise"] * rng.randint(1, 6))
        if k % 4 == 1:
            sample["conversations"] += [{"from": "human", "value": "Why?"}, {"from": "gpt", "value": "It shows data."}]
    renderer = Renderer(processor, max_length=256)
    chosen = samples[:8] + samples[16:18]  # 8 with images, 2 text-only
    return [renderer.train(s) for s in chosen[:n]]


# ------------------------------------------------------------------------------- the packing itself


def test_first_fit_keeps_rows_within_capacity_and_uses_every_item():
    rng = random.Random(1)
    lengths = [rng.randint(1, 50) for _ in range(40)]
    rows = first_fit(lengths, 60)
    assert sorted(i for row in rows for i in row) == list(range(40))
    assert all(sum(lengths[i] for i in row) <= 60 for row in rows)
    # first-fit decreasing is within 11/9 OPT + 1 rows; OPT >= total / capacity
    assert len(rows) <= 11 / 9 * (sum(lengths) / 60) + 2
    assert first_fit(lengths, 60) == rows  # a pure function of the lengths
    with pytest.raises(Exception, match="exceeds"):
        first_fit([10, 70], 60)


def test_collator_restarts_positions_masks_seams_and_orders_images(tiny, dataset):
    processor = tiny.processor
    items = _items(processor, dataset)
    images = ImageLoader(processor.image_processor, dataset[1])
    batch = PackingCollator(processor.tokenizer.pad_token_id, images, layout="bool")(items)
    rows, ids = batch["rows"], batch["input_ids"]
    assert len(rows) < len(items)  # something was packed
    assert batch["ids"] == [items[i]["id"] for row in rows for i in row]
    assert batch["image_paths"] == [p for row in rows for i in row for p in items[i]["images"]]
    assert batch["pixel_values"].shape[0] == len(batch["image_paths"])
    mask = batch["attention_mask"]
    for r, row in enumerate(rows):
        at = 0
        for i in row:
            n = items[i]["length"]
            assert ids[r, at : at + n].tolist() == items[i]["input_ids"]
            assert batch["position_ids"][r, at : at + n].tolist() == list(range(n))
            assert batch["labels"][r, at].item() == IGNORE_INDEX
            assert batch["labels"][r, at + 1 : at + n].tolist() == items[i]["labels"][1:]
            # a token sees its own sample's earlier tokens and nothing else
            block = mask[r, 0, at : at + n]
            assert block[:, at : at + n].equal(torch.ones(n, n, dtype=torch.bool).tril())
            assert not block[:, :at].any() and not block[:, at + n :].any()
            at += n
        assert (batch["labels"][r, at:] == IGNORE_INDEX).all()
    # the supervised-token count (the loss normaliser) is unchanged by packing
    assert int((batch["labels"][:, 1:] != IGNORE_INDEX).sum()) == sum(supervised_tokens(i) for i in items)


def test_padding_fraction_counts():
    lengths = [10, 2, 3, 5]
    assert padded_tokens(lengths, [[0, 1, 2, 3]], packing=False) == (20, 40)
    assert padded_tokens(lengths, [[0, 1, 2, 3]], packing=True, row_length=10) == (20, 20)  # rows [10], [5, 3, 2]
    assert padded_tokens([6, 6, 5, 5], [[0, 1, 2, 3]], packing=True) == (22, 24)  # at the longest: 4 rows x 6
    assert padded_tokens([6, 6, 5, 5], [[0, 1, 2, 3]], packing=True, limit=12) == (22, 22)  # 2 rows x 11


def test_unknown_attention_implementation_is_refused():
    assert attention_layout("sdpa") == "flat" and attention_layout("flash_attention_2") == "flat"
    assert attention_layout("eager") == "float"
    with pytest.raises(Exception, match="not supported with packing"):
        attention_layout("flex_attention")


# ------------------------------------------------------------------------------- packed == unpacked


def _loss_and_grads(model, batch, normaliser):
    model.zero_grad(set_to_none=True)
    loss = TrainingModule(model)(batch, num_items_in_batch=normaliser)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad and p.grad is not None}


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
@pytest.mark.parametrize("layout", ["bool", "float", "flat", "varlen"])
def test_packed_loss_and_gradients_equal_unpacked(tiny, dataset, lora, layout):
    """"flat" with SDPA: transformers builds a dense block mask from the position ids; "varlen":
    the same flat row through scitune.model.attention (SDPA per sample, what training uses)."""
    import copy

    from scitune.model import apply_stage

    processor = tiny.processor
    model = copy.deepcopy(tiny.model)  # the session's model is shared: this test changes its copy
    model = apply_stage(model, StageConfig(name="instruct", lora=lora, lora_config=LoraConfig(r=4, dropout=0.0)))
    if lora:  # adapters start at zero (B = 0); give them weight so their gradients are not trivial
        with torch.no_grad():
            for name, param in model.named_parameters():
                if "lora_B" in name:
                    param.normal_(0, 0.02)
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    base.set_attn_implementation({"bool": "sdpa", "float": "eager", "flat": "sdpa", "varlen": "sdpa"}[layout])
    model.train()
    items = _items(processor, dataset)
    images = ImageLoader(processor.image_processor, dataset[1])
    normaliser = sum(supervised_tokens(i) for i in items)
    plain = model_inputs(PaddingCollator(processor.tokenizer.pad_token_id, images)(items))
    packed = model_inputs(PackingCollator(processor.tokenizer.pad_token_id, images, layout=layout.replace("varlen", "flat"), limit=256)(items))
    assert packed["input_ids"].numel() < plain["input_ids"].numel()
    loss_a, grads_a = _loss_and_grads(model, plain, normaliser)
    if layout == "varlen":
        use_varlen_attention(base)
        with pytest.raises(ValueError, match="needs cu_seq_lens_q"):  # a padded batch is refused, not misread
            _loss_and_grads(model, plain, normaliser)
    loss_b, grads_b = _loss_and_grads(model, packed, normaliser)
    assert grads_a.keys() == grads_b.keys() and len(grads_a) > 4
    assert abs(float(loss_a) - float(loss_b)) <= 1e-5
    for name in grads_a:
        torch.testing.assert_close(grads_b[name], grads_a[name], rtol=0, atol=1e-5, msg=name)
    # and a batch packed wrongly (no seam masking) would differ: the test can fail
    leaky = dict(packed)
    leaky["position_ids"] = torch.arange(packed["input_ids"].shape[1]).expand_as(packed["input_ids"])
    leaky.pop("attention_mask", None)
    if "cu_seq_lens" in leaky:  # one sample spanning the row
        leaky["cu_seq_lens"] = torch.tensor([0, packed["input_ids"].shape[1]], dtype=torch.int32)
    loss_c, _ = _loss_and_grads(model, leaky, normaliser)
    assert abs(float(loss_c) - float(loss_a)) > 1e-4


# ------------------------------------------------------------------------------- training


def _losses(run, stage="instruct"):
    return [r["loss"] for r in read_metrics(run / stage / "metrics.jsonl")]


def _recipe(tmp_path, dataset, name, **instruct):
    settings = {"data": {"train": str(dataset[0]), "images": str(dataset[1]), "max_length": 64, **instruct.pop("data", {})},
                "init_from": None, "epochs": 2, "batch_size": 4, "grad_accum": 2, **instruct}
    path = write_recipe(tmp_path / f"{name}.yaml", *dataset, tmp_path / name, with_instruct=True, instruct=settings)
    recipe = load_recipe(str(path))
    recipe.stages = recipe.stages[1:]  # the instruct stage alone
    return recipe


def test_packed_training_equals_unpacked_and_resumes_exactly(tmp_path, dataset):
    plain = _recipe(tmp_path, dataset, "plain")
    packed = _recipe(tmp_path, dataset, "packed", data={"packing": True}, feature_cache=True)
    seen = []
    run_recipe(plain)
    run_recipe(packed, hooks=[lambda runner, step: seen.append(type(runner.collate))])
    assert seen and set(seen) == {PackingCollator}
    la, lb = _losses(tmp_path / "plain"), _losses(tmp_path / "packed")
    assert len(la) == 6 and la == pytest.approx(lb, abs=1e-5)
    wa = load_file(str(tmp_path / "plain" / "instruct" / "final" / "model.safetensors"))
    wb = load_file(str(tmp_path / "packed" / "instruct" / "final" / "model.safetensors"))
    for key in wa:
        torch.testing.assert_close(wb[key], wa[key], rtol=0, atol=1e-5, msg=key)

    # stopped after step 3 (the checkpoint on disk is step 2), then resumed: the same run exactly
    stopped = _recipe(tmp_path, dataset, "stopped", data={"packing": True}, feature_cache=True)
    stopped.run.save_every = 2

    def stop(runner, step):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(Exception, match="step-0000002"):
        run_recipe(stopped, hooks=[stop])
    run_recipe(stopped, resume=True)
    wc = load_file(str(tmp_path / "stopped" / "instruct" / "final" / "model.safetensors"))
    assert all(torch.equal(wb[k], wc[k]) for k in wb)
    assert _losses(tmp_path / "stopped") == _losses(tmp_path / "packed")


def test_varlen_attention_reads_sample_starts_from_position_ids():
    """Without cu_seq_lens_q (the families' packed rows), the per-sample attention finds the
    samples where the 1-D positions restart at 0: the same output as with the boundaries given,
    different from one causal sequence over the row; a sample longer than a sliding window is
    refused, not silently attended past the window."""
    from types import SimpleNamespace

    from scitune.model.attention import varlen_sdpa

    torch.manual_seed(0)
    sizes = [5, 3, 7]
    q, k, v = (torch.randn(1, 2, sum(sizes), 8) for _ in range(3))
    positions = torch.cat([torch.arange(n) for n in sizes]).unsqueeze(0)
    bounds = torch.tensor([0, 5, 8, 15], dtype=torch.int32)
    module = SimpleNamespace(num_key_value_groups=1)
    given, _ = varlen_sdpa(module, q, k, v, None, cu_seq_lens_q=bounds)
    found, _ = varlen_sdpa(module, q, k, v, None, position_ids=positions)
    whole, _ = varlen_sdpa(module, q, k, v, None, position_ids=torch.arange(15).unsqueeze(0))
    assert torch.equal(found, given)
    assert not torch.allclose(whole, given)
    with pytest.raises(ValueError, match="longer than the sliding window"):
        varlen_sdpa(SimpleNamespace(num_key_value_groups=1, sliding_window=6), q, k, v, None, position_ids=positions)
