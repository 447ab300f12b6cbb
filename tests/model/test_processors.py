"""Family processors without torchvision (scitune.model.processors): the images-only form of a
class that holds a video processor keeps the family's class name and settings through a save, gives
the ids and pixels the saved one gave, loads the older hub layout, and carries a checkpoint's video
processor settings through a save so plain transformers with torchvision can load the folder."""

from __future__ import annotations

import json

import pytest
import torch

from scitune.config import ModelConfig
from scitune.errors import ScituneError
from scitune.model import build_model, save_model
from scitune.model.processors import has_torchvision, load_processor
from tests.model.helpers import figure, to_hub_layout

VIDEO_FAMILIES = ["tiny-qwen2.5-vl", "tiny-smolvlm", "tiny-llava-onevision"]
MARKER = {"tiny-qwen2.5-vl": "<|vision_start|><|image_pad|><|vision_end|>"}


@pytest.fixture(scope="module", params=VIDEO_FAMILIES)
def saved(request, tmp_path_factory):
    model, processor = build_model(ModelConfig(preset=request.param, vocab_size=300))
    folder = save_model(model, processor, tmp_path_factory.mktemp("p") / "model")
    return request.param, processor, folder


def _encode(processor, preset):
    text = f"Look {MARKER.get(preset, '<image>')} here"
    return processor(text=[text], images=[[figure(1, (50, 30))]], return_tensors="pt")


def test_a_saved_family_processor_loads_with_its_class_name_settings_ids_and_pixels(saved):
    preset, processor, folder = saved
    loaded = load_processor(folder)
    config = json.loads((folder / "processor_config.json").read_text())
    assert config["processor_class"] == type(processor).__name__ == type(loaded).__name__
    assert loaded.tokenizer.chat_template == processor.tokenizer.chat_template
    before, after = _encode(processor, preset), _encode(loaded, preset)
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_the_older_hub_layout_loads(saved, tmp_path):
    """preprocessor_config.json (the image processor, naming the processor class) and no
    processor class in processor_config.json: how many hub checkpoints are laid out."""
    preset, processor, folder = saved
    import shutil

    old = to_hub_layout(shutil.copytree(folder, tmp_path / "hub"))
    loaded = load_processor(old)
    assert type(loaded).__name__ == type(processor).__name__
    before, after = _encode(processor, preset), _encode(loaded, preset)
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.skipif(has_torchvision(), reason="with torchvision the folder loads through plain AutoProcessor")
def test_a_checkpoints_video_processor_settings_survive_a_save(saved, tmp_path):
    import shutil

    _, _, folder = saved
    source = shutil.copytree(folder, tmp_path / "src")
    video = {"video_processor_type": "SomeVideoProcessor", "fps": 2.0, "size": {"longest_edge": 96}}
    (source / "video_preprocessor_config.json").write_text(json.dumps(video))
    loaded = load_processor(source)
    out = tmp_path / "out"
    loaded.save_pretrained(out)
    assert json.loads((out / "processor_config.json").read_text())["video_processor"] == video


def test_a_damaged_processor_config_is_one_line(saved, tmp_path):
    import shutil

    _, _, folder = saved
    broken = shutil.copytree(folder, tmp_path / "broken")
    (broken / "processor_config.json").write_text("{not json")
    with pytest.raises(ScituneError) as err:
        load_processor(broken)
    assert "processor_config.json" in str(err.value) and "\n" not in str(err.value)
