"""Model families as data (scitune.model.families): per family (LLaVA's tiny preset included), one
align step changes exactly the connector's tensors, one instruct step exactly the connector's and
the language model's, LoRA adapters sit under the language model only; other model types are
refused in one line.

The tiny models are the families' real classes (scitune.model.family_presets); the inputs are
built here from each family's own image processor, with the image-token count each model expects,
so these tests need no processor class (several need torchvision in transformers 5)."""

from __future__ import annotations

import json

import pytest
import torch

from scitune.config import LoraConfig, ModelConfig, StageConfig
from scitune.errors import ScituneError
from scitune.model import apply_stage, build_model, load_model, save_model
from scitune.model.families import supported_model_types
from scitune.model.family_presets import tiny_family_image_processor, tiny_family_model, tiny_family_tokenizer
from tests.model.helpers import figure

FAMILY_TYPES = [
    t for t in ("llava_onevision", "llava_next", "idefics3", "smolvlm", "qwen2_vl", "qwen2_5_vl", "qwen3_vl", "gemma3", "internvl")
    if t in supported_model_types()
]

# the step tests run today's LLaVA composition too (the tiny preset, its MLP projector)
STEP_TYPES = ["llava", *FAMILY_TYPES]

# Written out here (not read from the table under test): where each family keeps its parts.
CONNECTOR = {
    "llava": ("model.multi_modal_projector.",),
    "llava_onevision": ("model.multi_modal_projector.", "model.image_newline"),
    "llava_next": ("model.multi_modal_projector.", "model.image_newline"),
    "internvl": ("model.multi_modal_projector.",),
    "idefics3": ("model.connector.",),
    "smolvlm": ("model.connector.",),
    "qwen2_vl": ("model.visual.merger.",),
    "qwen2_5_vl": ("model.visual.merger.",),
    "qwen3_vl": ("model.visual.merger.", "model.visual.deepstack_merger_list."),
    "gemma3": ("model.multi_modal_projector.",),
}
VISION = {
    "llava": "model.vision_tower.",
    "llava_onevision": "model.vision_tower.",
    "llava_next": "model.vision_tower.",
    "internvl": "model.vision_tower.",
    "idefics3": "model.vision_model.",
    "smolvlm": "model.vision_model.",
    "qwen2_vl": "model.visual.",
    "qwen2_5_vl": "model.visual.",
    "qwen3_vl": "model.visual.",
    "gemma3": "model.vision_tower.",
}
IMAGE_TOKEN = {
    "qwen2_vl": "<|image_pad|>", "qwen2_5_vl": "<|image_pad|>", "qwen3_vl": "<|image_pad|>", "gemma3": "<image_soft_token>",
    "internvl": "<IMG_CONTEXT>",
}


def _is(name: str, prefixes) -> bool:
    return any(name.startswith(p) for p in prefixes)


def _tiny(model_type: str):
    torch.manual_seed(0)
    tokenizer = tiny_family_tokenizer(model_type, vocab_size=300)
    return tiny_family_model(model_type, tokenizer), tokenizer


def _inputs(model_type: str, model, tokenizer) -> dict:
    """One image conversation, ids with as many image tokens as the model's features."""
    pixels = dict(tiny_family_image_processor(model_type)(images=[figure(1, (60, 40))], return_tensors="pt"))
    if model_type.startswith("qwen"):
        count = int(pixels["image_grid_thw"].prod(-1).sum()) // 4
    elif model_type in ("idefics3", "smolvlm"):
        count = pixels["pixel_values"].shape[1] * 4
    elif model_type == "gemma3":
        count = model.config.mm_tokens_per_image
    elif model_type == "internvl":  # tiles of image_seq_length tokens each
        count = pixels["pixel_values"].shape[0] * model.config.image_seq_length
    else:  # llava_onevision, llava_next: anyres tiles, unpadding and row newlines
        with torch.no_grad():
            features = model.model.get_image_features(pixels["pixel_values"], pixels["image_sizes"]).pooler_output
        count = sum(f.shape[0] for f in features)
    image_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN.get(model_type, "<image>"))
    words = tokenizer("USER: what is it?\nASSISTANT: A bar chart.", add_special_tokens=False)["input_ids"]
    ids = torch.tensor([[tokenizer.bos_token_id, *[image_id] * count, *words, tokenizer.eos_token_id]])
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.clone(), **pixels}
    if model_type == "gemma3":
        batch["token_type_ids"] = (ids == image_id).long()
    if model_type.startswith("qwen"):  # 0 text, 1 image: what M-RoPE's 3-D positions are computed from
        batch["mm_token_type_ids"] = (ids == image_id).long()
    return batch


def _step(model, batch) -> set[str]:
    """Names of the tensors one SGD step on `batch` changes."""
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=0.5)
    model.train()
    loss = model(**batch).loss
    loss.backward()
    optimizer.step()
    return {n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())}


def _model_and_batch(model_type: str):
    """A tiny model of the family (LLaVA: the tiny preset with an MLP projector, whose tensors all
    train) and one image conversation for it."""
    if model_type == "llava":
        from tests.model.helpers import batch

        model, processor = build_model(ModelConfig(preset="tiny", projector="mlp2x_gelu", seed=0))
        return model, dict(batch(processor, n=1))
    model, tokenizer = _tiny(model_type)
    return model, _inputs(model_type, model, tokenizer)


@pytest.mark.parametrize("model_type", STEP_TYPES)
def test_align_step_changes_exactly_the_connector(model_type):
    model, batch = _model_and_batch(model_type)
    apply_stage(model, StageConfig(name="align"))
    changed = _step(model, batch)
    connector = {n for n, _ in model.named_parameters() if _is(n, CONNECTOR[model_type])}
    assert connector and changed == connector


@pytest.mark.parametrize("model_type", STEP_TYPES)
def test_instruct_step_changes_exactly_the_connector_and_the_language_model(model_type):
    model, batch = _model_and_batch(model_type)
    apply_stage(model, StageConfig(name="instruct"))
    changed = _step(model, batch)
    names = [n for n, _ in model.named_parameters()]
    expected = {n for n in names if _is(n, CONNECTOR[model_type]) or not n.startswith(VISION[model_type])}
    assert any(n.startswith(VISION[model_type]) for n in set(names) - expected)  # the tower is there, frozen
    assert changed == expected


@pytest.mark.parametrize("model_type", FAMILY_TYPES)
def test_tune_vision_trains_the_tower_too(model_type):
    model, _ = _tiny(model_type)
    apply_stage(model, StageConfig(name="instruct", tune_vision=True))
    assert all(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("model_type", FAMILY_TYPES)
def test_lora_adapters_sit_under_the_language_model_and_the_connector_trains_in_full(model_type):
    model, tokenizer = _tiny(model_type)
    peft_model = apply_stage(model, StageConfig(name="instruct", lora=True, lora_config=LoraConfig(r=4, alpha=8)))
    trainable = {n for n, p in peft_model.named_parameters() if p.requires_grad}
    lora = {n for n in trainable if "lora_" in n}
    language_model = "text_model" if model_type in ("idefics3", "smolvlm") else "language_model"
    assert lora and all(f".model.{language_model}.layers." in n for n in lora)
    saved = {n for n in trainable if ".modules_to_save." in n}
    assert saved and trainable == lora | saved
    changed = _step(peft_model, _inputs(model_type, peft_model, tokenizer))
    assert changed == trainable - {n for n in trainable if n.endswith("lora_A.default.weight")}  # B starts at 0: A gets no gradient


def test_another_model_type_is_refused_in_one_line_listing_the_families(tmp_path):
    folder = tmp_path / "bert"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ScituneError) as err:
        load_model(folder)
    message = str(err.value)
    assert "\n" not in message and "model_type 'bert'" in message
    for model_type in ("llava", *FAMILY_TYPES):
        assert repr(model_type) in message


@pytest.mark.parametrize("preset", ["tiny-gemma3", "tiny-idefics3"])
def test_a_tiny_family_preset_saves_and_loads_with_its_own_classes(preset, tmp_path):
    model, processor = build_model(ModelConfig(preset=preset, vocab_size=300))
    out = save_model(model, processor, tmp_path / "m")
    loaded, loaded_processor = load_model(out)
    assert type(loaded) is type(model) and type(loaded_processor) is type(processor)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
    assert loaded_processor.tokenizer.chat_template == processor.tokenizer.chat_template
