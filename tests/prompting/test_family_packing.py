"""Packing per model family: the same samples give the same loss and gradients packed as padded
(within 1e-5) on every family's tiny preset, with the family's own inputs concatenated
(pixel_values, image_grid_thw, pixel_attention_mask, image_sizes, token types) and its positions
(1-D restarting per sample; Qwen-VL's 3-D M-RoPE positions from its own get_rope_index per
sample), on SDPA (one flat row, scitune.model.attention) and eager (rows with a 4-D mask); a batch
packed without per-sample positions or attention differs, and Qwen's 1-D positions in place of
its 3-D ones give other gradients, so the test can fail. Gemma 3 packs with a 4-D mask (its
images attend both ways) only when no sample is longer than its sliding window, and the training
loop refuses it otherwise."""

from __future__ import annotations

import pytest
import torch

from scitune.config import ModelConfig
from scitune.errors import ScituneError
from scitune.model import build_model
from scitune.model.families import family_of, supported_model_types
from scitune.model.family_presets import FAMILY_PRESETS
from scitune.model.parts import part_of
from scitune.prompting import ImageLoader, PaddingCollator, Renderer, model_inputs
from scitune.prompting.packing import PackingCollator, attention_layout, check_packing, make_packing_collator
from scitune.train.features import TrainingModule
from scitune.train.loop import supervised_tokens
from tests.model.helpers import figure

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# every family's tiny preset: each packs (Gemma 3 within its sliding window); a family added to
# scitune.model.families is tested here too, and must be made exact or refused by check_packing
PACKED = [p for p, t in FAMILY_PRESETS.items() if t in supported_model_types()]
# Gemma 3's packing is exact while no sample is longer than its sliding window: the tiny
# preset's (64) would leave these samples nothing to pack, so its window is widened to this
GEMMA_WINDOW = 128


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("family_packing")
    figure(3, (60, 40)).save(root / "wide.png")
    figure(4, (30, 90)).save(root / "tall.png")
    figure(5, (40, 40)).save(root / "square.png")
    return root


def _samples():
    """Two images of different shapes (Qwen's grids differ), a text-only sample, a two-turn one
    and one with two images, so rows hold samples of different kinds and lengths."""
    def one(i, image, question, answer, more=()):
        conversations = [{"from": "human", "value": f"<image>\n{question}" if image else question}, {"from": "gpt", "value": answer}]
        sample = {"id": f"s{i}", "conversations": conversations + list(more)}
        if image:
            sample["image"] = image
        return sample

    two = one(4, "wide.png", "<image>\nCompare.", "Same.")
    two["image"] = ["wide.png", "square.png"]
    return [
        one(0, "wide.png", "Type?", "A bar chart."),
        one(1, "tall.png", "What is shown?", "Points.", [{"from": "human", "value": "Why?"}, {"from": "gpt", "value": "Data."}]),
        one(2, None, "Say hi.", "Hi there."),
        one(3, "square.png", "Axis?", "Time in s."),
        two,
    ]


@pytest.fixture(scope="module", params=PACKED)
def family(request, images):
    torch.manual_seed(0)
    model, processor = build_model(ModelConfig(preset=request.param, vocab_size=300))
    loader = ImageLoader(processor.image_processor, images)
    max_length = 1024
    if request.param == "tiny-gemma3":
        max_length = model.config.text_config.sliding_window = GEMMA_WINDOW
        for layer in model.model.language_model.layers:
            if layer.self_attn.sliding_window is not None:
                layer.self_attn.sliding_window = GEMMA_WINDOW
    renderer = Renderer(processor, max_length=max_length, images=loader)
    items = [renderer.train(s) for s in _samples()]
    assert all(i["length"] <= max_length for i in items)
    return request.param, model, processor, loader, renderer, items


def _loss_and_grads(model, batch, normaliser):
    model.zero_grad(set_to_none=True)
    loss = TrainingModule(model)(batch, num_items_in_batch=normaliser)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
def test_packed_loss_and_gradients_equal_unpacked(family, implementation):
    """SDPA: one flat row through scitune.model.attention (Gemma 3: rows with a 4-D bool mask);
    eager: rows cut by first-fit with an additive 4-D mask, padding at the rows' ends."""
    import copy

    preset, model, processor, loader, renderer, items = family
    model = copy.deepcopy(model)  # the collator switches the copy's attention
    model.set_attn_implementation(implementation)
    model.train()
    fam = renderer.family
    pad = processor.tokenizer.pad_token_id
    normaliser = sum(supervised_tokens(i) for i in items)
    assert sum(len(i["images"]) for i in items) == 5
    plain = model_inputs(PaddingCollator(pad, loader, image_inputs=fam.image_inputs)(items))
    loss_a, grads_a = _loss_and_grads(model, plain, normaliser)

    collate = make_packing_collator(model, pad, loader, renderer.max_length, fam)
    collated = collate(items)
    packed = model_inputs(collated)
    assert packed["input_ids"].numel() < plain["input_ids"].numel()  # something was packed
    assert len(collated["rows"]) < len(items)
    assert collate.layout == ("float" if implementation == "eager" else "bool" if preset == "tiny-gemma3" else "flat")
    for key in fam.image_inputs:  # the per-image inputs came along, in packed order
        assert key in packed
    if fam.token_type_input:
        assert packed[fam.token_type_input].shape == packed["input_ids"].shape
    loss_b, grads_b = _loss_and_grads(model, packed, normaliser)
    # the vision tower, connector and language model all got gradients
    assert {part_of(n) for n in grads_a} >= {"vision_tower", "projector", "language_model"}
    assert grads_a.keys() == grads_b.keys()
    assert abs(float(loss_a) - float(loss_b)) <= 1e-5, (float(loss_a), float(loss_b))
    for name in grads_a:
        torch.testing.assert_close(grads_b[name], grads_a[name], rtol=0, atol=1e-5, msg=name)

    # packed wrongly, the loss differs: positions running on across the row (and so, on a flat
    # row, one sample spanning it), and for Qwen 1-D positions in place of its 3-D ones
    leaky = dict(packed)
    width = packed["input_ids"].shape[1]
    running = torch.arange(width).expand_as(packed["input_ids"])
    leaky["position_ids"] = running.unsqueeze(0).repeat(4, 1, 1) if packed["position_ids"].dim() == 3 else running
    if "attention_mask" in leaky:  # one causal block per row
        causal = torch.ones(width, width, dtype=torch.bool).tril().expand(packed["input_ids"].shape[0], 1, width, width)
        mask = packed["attention_mask"]
        leaky["attention_mask"] = causal if mask.dtype == torch.bool else torch.zeros(causal.shape, dtype=mask.dtype).masked_fill(~causal, mask.min())
    loss_c, _ = _loss_and_grads(model, leaky, normaliser)
    assert abs(float(loss_c) - float(loss_a)) > 1e-4
    if packed["position_ids"].dim() == 3:
        flat = dict(packed)
        flat["position_ids"] = packed["position_ids"][0]
        loss_d, grads_d = _loss_and_grads(model, flat, normaliser)
        # the tiny model's loss barely moves with the positions of 4 image tokens a sample; its
        # gradients do, past the tolerance the packed ones meet
        worst = max(float((grads_d[n] - grads_a[n]).abs().max()) for n in grads_a)
        assert worst > 1e-4


@pytest.mark.parametrize("family", [p for p in PACKED if "qwen" in p], indirect=True)
def test_qwen_positions_are_the_models_own_per_sample(family):
    """Rows 1-3 of a packed Qwen batch's positions are get_rope_index on each sample alone; row 0
    restarts at 0 on each sample."""
    preset, model, processor, loader, renderer, items = family
    collate = make_packing_collator(model, processor.tokenizer.pad_token_id, loader, renderer.max_length, renderer.family)
    batch = collate(items)
    positions = batch["position_ids"]
    assert positions.shape == (4, 1, batch["input_ids"].shape[1])
    at = 0
    order = [i for row in batch["rows"] for i in row]
    for index in order:
        item = items[index]
        n = item["length"]
        alone = PaddingCollator(processor.tokenizer.pad_token_id, loader, image_inputs=renderer.family.image_inputs)([item])
        expected, _ = model.model.get_rope_index(
            alone["input_ids"], alone["mm_token_type_ids"], image_grid_thw=alone.get("image_grid_thw")
        )
        assert torch.equal(positions[1:, 0, at : at + n], expected[:, 0])
        assert positions[0, 0, at : at + n].tolist() == list(range(n))
        at += n
    # images of different shapes: 3-D positions that are not the 1-D ones
    assert not torch.equal(positions[1], positions[0])


def test_gemma3_packing_is_refused_past_its_sliding_window():
    from transformers import Gemma3Config

    config = Gemma3Config(text_config=dict(sliding_window=64))
    check_packing(config, 64)  # exact: no sample longer than the window
    with pytest.raises(ScituneError, match=r"^data.packing: not exact for the gemma3 family") as err:
        check_packing(config, 65)
    assert "\n" not in str(err.value)
    with pytest.raises(ScituneError, match="longer than the sliding window"):
        PackingCollator(0, layout="bool", window=4)([{"id": "x", "input_ids": [1] * 5, "labels": [1] * 5}])
    # its two-way image spans need a 4-D mask: flash attention's flat rows are refused
    assert attention_layout("sdpa", image_blocks=True) == "bool" and attention_layout("eager", image_blocks=True) == "float"
    with pytest.raises(ScituneError, match="flash_attention_2.*Gemma 3's two-way image attention needs a 4-D mask"):
        attention_layout("flash_attention_2", image_blocks=True)


def test_every_family_builds_its_packing_collator(family):
    preset, model, processor, loader, renderer, items = family
    collate = make_packing_collator(model, processor.tokenizer.pad_token_id, loader, renderer.max_length, renderer.family)
    assert family_of(model) is renderer.family
    gemma = preset == "tiny-gemma3"
    assert collate.layout == ("bool" if gemma else "flat")
    assert collate.image_blocks is gemma and collate.boundaries is False  # no cu_seq_lens into a vision tower


# ------------------------------------------------------------------------------- training


@pytest.mark.parametrize("preset", PACKED)
def test_packed_training_run_equals_unpacked(tmp_path, preset):
    """Through the training loop (`data.packing: true`, the loop's own collator putting several
    samples in a row), every family: the same losses and final weights as padded batches."""
    from safetensors.torch import load_file

    from scitune.config import load_recipe
    from scitune.train.log import read_metrics
    from scitune.train.run import run_recipe
    from tests.train.data import write_dataset, write_recipe

    train, images = write_dataset(tmp_path / "data", n=8, text_only=2)
    model = {"preset": preset, "vocab_size": 300}
    max_length = 192
    if preset == "tiny-gemma3":  # a checkpoint of it with a window wide enough for two samples
        from scitune.model import save_model

        gemma, processor = build_model(ModelConfig(preset=preset, vocab_size=300))
        gemma.config.text_config.sliding_window = max_length = GEMMA_WINDOW
        model = {"preset": None, "checkpoint": str(save_model(gemma, processor, tmp_path / "gemma"))}
    seen = []
    runs = {}
    for name, packing in (("plain", False), ("packed", True)):
        instruct = {"data": {"train": str(train), "images": str(images), "max_length": max_length, "packing": packing},
                    "init_from": None, "epochs": 1, "batch_size": 4, "grad_accum": 2}
        path = write_recipe(tmp_path / f"{name}.yaml", train, images, tmp_path / name, with_instruct=True, instruct=instruct,
                            model=model)
        recipe = load_recipe(str(path))
        recipe.stages = recipe.stages[1:]  # the instruct stage alone
        runners = []
        run_recipe(recipe, hooks=[lambda runner, step: (seen.append((name, type(runner.collate))), runners.append(runner))])
        if packing:  # the loop's collator put several of these samples in one row
            runner = runners[-1]
            some = [runner.items[i] for i in range(6)]
            assert len(runner.collate(some)["rows"]) < len(some)
        runs[name] = (
            [r["loss"] for r in read_metrics(tmp_path / name / "instruct" / "metrics.jsonl")],
            load_file(str(tmp_path / name / "instruct" / "final" / "model.safetensors")),
        )
    assert ("packed", PackingCollator) in seen and ("plain", PackingCollator) not in seen
    (la, wa), (lb, wb) = runs["plain"], runs["packed"]
    assert len(la) == 2 and la == pytest.approx(lb, abs=1e-5)
    # AdamW's first steps move a weight by about lr (1e-3) times g / (|g| + eps) whatever the
    # gradient's size, so where a gradient is itself of the size of eps (1e-8: a rare token's
    # embedding) float noise of 1e-9 in it can move the weight by ~1e-5: weights are compared at a
    # tenth of one step (the gradients themselves are compared at 1e-5 above)
    for key in wa:
        torch.testing.assert_close(wb[key], wa[key], rtol=0, atol=1e-4, msg=lambda m, key=key: f"{key}: {m}")
    assert wa.keys() == wb.keys()


def test_gemma3_packing_past_its_window_is_refused_by_the_training_loop(tmp_path):
    from scitune.config import load_recipe
    from scitune.train.run import run_recipe
    from tests.train.data import write_dataset, write_recipe

    train, images = write_dataset(tmp_path / "data", n=4, text_only=0)
    path = write_recipe(tmp_path / "r.yaml", train, images, tmp_path / "run", with_instruct=False,
                        align={"data": {"train": str(train), "images": str(images), "max_length": 96, "packing": True}},
                        model={"preset": "tiny-gemma3", "vocab_size": 300})
    with pytest.raises(ScituneError, match=r"^\[align\] data.packing: not exact for the gemma3 family with max_length 96 ") as err:
        run_recipe(load_recipe(str(path)))
    assert "\n" not in str(err.value)
