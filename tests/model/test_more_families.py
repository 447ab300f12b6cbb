"""LLaVA-NeXT (LLaVA-1.6) and InternVL: families the same code serves (scitune.model.families).

- One align step on a batch from the family's own input path (its processor through the
  `Renderer`, pixels from the collator's `ImageLoader`) changes exactly the connector's tensors
  (LLaVA-NeXT's `image_newline` included), one instruct step exactly the connector's and the
  language model's.
- InternVL writes an image as `<IMG_CONTEXT>`, which its processor expands into `<img>`, one run of
  `image_seq_length` context tokens per tile, `</img>`; the tiles are the loader's pixels.
- The image settings a processor class passes on every call (InternVL's `crop_to_patches`) are
  set on a loaded checkpoint's image processor, so the loader's pixels match the processor's
  token count; `model.image_processor` cannot set them otherwise.
- A vision config's sizes given per axis (InternVL's `image_size: [h, w]`) are bounded axis by axis.

Predict/eval/serve per family: tests/test_family_matrix.py; ids, pixels and greedy tokens against
plain transformers: tests/prompting/test_families_render.py; both SciTune stages, export and LoRA
through `run_recipe`: tests/model/test_family_training.py (every tiny family preset)."""

from __future__ import annotations

import json
import re

import pytest
import torch

from scitune.config import ModelConfig, StageConfig
from scitune.errors import ScituneError
from scitune.model import apply_stage, build_model, load_model, save_model
from scitune.model.files import check_config_sizes
from scitune.prompting import IGNORE_INDEX, ImageLoader, PaddingCollator, Renderer, model_inputs
from tests.model.helpers import figure

# Written out here (not read from the table under test): where each family keeps its parts.
CONNECTOR = {
    "tiny-llava-next": ("model.multi_modal_projector.", "model.image_newline"),
    "tiny-internvl": ("model.multi_modal_projector.",),
}
VISION = "model.vision_tower."


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("more_families")
    figure(3, (60, 40)).save(root / "wide.png")
    figure(4, (30, 90)).save(root / "tall.png")
    return root


def _sample(i: int, image: str, answer: str) -> dict:
    return {"id": f"s{i}", "image": image,
            "conversations": [{"from": "human", "value": "<image>\nWhat type of figure is this?"}, {"from": "gpt", "value": answer}]}


def _batch(processor, images) -> dict:
    """Two figures of different shapes (different tile counts), as training collates them."""
    loader = ImageLoader(processor.image_processor, images)
    renderer = Renderer(processor, images=loader)
    items = [renderer.train(_sample(0, "wide.png", "A bar chart.")), renderer.train(_sample(1, "tall.png", "A table."))]
    return model_inputs(PaddingCollator(processor.tokenizer.pad_token_id, loader, image_inputs=renderer.family.image_inputs)(items))


def _step(model, batch) -> set[str]:
    """Names of the tensors one SGD step on `batch` changes."""
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    model.train()
    model(**batch).loss.backward()
    optimizer.step()
    return {n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())}


def _is(name: str, prefixes) -> bool:
    return any(name.startswith(p) for p in prefixes)


@pytest.mark.parametrize("preset", list(CONNECTOR))
@pytest.mark.parametrize("stage", ["align", "instruct"])
def test_one_stage_step_changes_exactly_its_parts(preset, stage, images):
    model, processor = build_model(ModelConfig(preset=preset, vocab_size=300, seed=0))
    apply_stage(model, StageConfig(name=stage))
    changed = _step(model, _batch(processor, images))
    names = [n for n, _ in model.named_parameters()]
    connector = {n for n in names if _is(n, CONNECTOR[preset])}
    assert len(connector) >= 2 and all(any(n.startswith(p) for n in connector) for p in CONNECTOR[preset])
    if stage == "align":
        assert changed == connector
    else:
        tower = {n for n in names if n.startswith(VISION)}
        assert tower and changed == set(names) - tower  # the connector, the LM and the lm_head


def test_internvl_expands_each_image_into_its_tiles_context_tokens(images):
    _, processor = build_model(ModelConfig(preset="tiny-internvl", vocab_size=300))
    tokenizer = processor.tokenizer
    start, context, end = (tokenizer.convert_tokens_to_ids(t) for t in ("<img>", "<IMG_CONTEXT>", "</img>"))
    loader = ImageLoader(processor.image_processor, images)
    renderer = Renderer(processor, images=loader)
    for image in ("wide.png", "tall.png"):
        sample = _sample(0, image, "A bar chart.")
        assert renderer.text(sample).count("<IMG_CONTEXT>") == 1  # the template writes the marker once
        item = renderer.train(sample)
        ids = item["input_ids"]
        tiles = loader([image]).shape[0]
        assert tiles > 1  # cropped to tiles (and a thumbnail), as InternVLProcessor asks
        first = ids.index(start)
        assert ids[first + 1 : first + 1 + 4 * tiles] == [context] * (4 * tiles)
        assert ids[first + 1 + 4 * tiles] == end and ids.count(context) == 4 * tiles
        assert all(label == IGNORE_INDEX for label in item["labels"][: first + 2 + 4 * tiles])


def test_a_checkpoint_whose_image_processor_does_not_tile_is_loaded_tiling_as_its_processor_does(tmp_path, images):
    from PIL import Image

    model, processor = build_model(ModelConfig(preset="tiny-internvl", vocab_size=300))
    folder = save_model(model, processor, tmp_path / "m")
    config_file = folder / "processor_config.json"
    config = json.loads(config_file.read_text())
    assert config["image_processor"]["crop_to_patches"] is True
    config["image_processor"]["crop_to_patches"] = False  # as a hub checkpoint may say it
    config_file.write_text(json.dumps(config))

    _, loaded = load_model(folder)
    assert loaded.image_processor.crop_to_patches is True
    loader = ImageLoader(loaded.image_processor, images)
    renderer = Renderer(loaded, images=loader)
    sample = _sample(0, "wide.png", "A bar chart.")
    with Image.open(images / "wide.png") as img:
        plain = loaded(text=[renderer.text(sample)], images=[[img.convert("RGB")]], return_tensors="pt")
    assert renderer.train(sample)["input_ids"] == plain["input_ids"][0].tolist()
    assert torch.equal(loader(["wide.png"]), plain["pixel_values"])


def test_image_processor_settings_the_processor_fixes_are_refused_and_others_apply(images):
    with pytest.raises(ScituneError) as err:
        build_model(ModelConfig(preset="tiny-internvl", vocab_size=300, image_processor={"crop_to_patches": False}))
    message = str(err.value)
    assert "\n" not in message and message.startswith("model.image_processor: InternVLProcessor always calls") and "crop_to_patches=True" in message
    _, processor = build_model(ModelConfig(preset="tiny-internvl", vocab_size=300, image_processor={"max_patches": 1}))
    assert ImageLoader(processor.image_processor, images)(["wide.png"]).shape[0] == 1  # one tile, no thumbnail


def test_sizes_given_per_axis_are_bounded_axis_by_axis():
    check_config_sizes({"vision_config": {"image_size": [448, 448], "patch_size": [14, 14]}}, "checkpoint 'm'")
    for size, reason in (([448, 0], "is [448, 0]; expected 1 to"), ([448, "x"], "must be an integer"), ([10**9, 448], "is [1000000000, 448]; expected 1 to 8,192")):
        with pytest.raises(ScituneError, match="^" + re.escape(f"checkpoint 'm': vision_config.image_size {reason}")):
            check_config_sizes({"vision_config": {"image_size": size}}, "checkpoint 'm'")
