"""A newcomer's path with a family checkpoint as the hub lays it out: the image processor in
preprocessor_config.json, the family's own chat template (no {% generation %} blocks), no scitune
settings. Untouched, the folder answers through `scitune predict` and `scitune serve` with its own
template; a recipe that points `model.checkpoint` at it and sets nothing else runs both SciTune
stages (scitune's template in the family's turn format, said in the log), and the tuned folder
answers through predict and serve alike. No code change, no template named."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest
import yaml

from scitune.cli import main
from scitune.config import ModelConfig
from scitune.model import build_model, save_model
from tests.model.helpers import to_hub_layout
from tests.train.data import write_dataset, write_recipe

# the style of a Qwen-VL checkpoint's own template: turns in ChatML, images as vision markers
NATIVE_CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% if m['content'] is string %}{{ m['content'] }}{% else %}"
    "{% for c in m['content'] %}{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>{% else %}"
    "{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# SmolVLM's: "User:<image>...<end_of_utterance>\nAssistant: ..."
NATIVE_SMOLVLM = (
    "{{ bos_token }}{% for m in messages %}{{ m['role'] | capitalize }}:{% if m['content'] is string %}{{ m['content'] }}"
    "{% else %}{% for c in m['content'] %}{% if c['type'] == 'image' %}<image>{% else %}{{ c['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}"
)
CASES = {"tiny-qwen2.5-vl": ("chatml", NATIVE_CHATML), "tiny-smolvlm": ("idefics", NATIVE_SMOLVLM)}


def _hub_folder(preset: str, root: Path) -> Path:
    template, native = CASES[preset]
    model, processor = build_model(ModelConfig(preset=preset, vocab_size=300, chat_template=template))
    processor.tokenizer.chat_template = processor.chat_template = native
    return to_hub_layout(save_model(model, processor, root / preset))


def _served_answer(folder: Path, image: Path) -> str:
    from fastapi.testclient import TestClient

    from scitune.serve.app import create_app
    from scitune.serve.limits import ServeLimits
    from scitune.serve.models import load_slot

    url = "data:image/png;base64," + base64.b64encode(image.read_bytes()).decode()
    body = {"model": "m", "max_tokens": 4, "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": "What type of figure is this?"}]}]}
    with TestClient(create_app({"m": load_slot("m", folder)}, ServeLimits(window_ms=0))) as client:
        response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    return response.json()["choices"][0]["message"]["content"]


def _predicted(folder: Path, image: Path, capsys) -> str:
    capsys.readouterr()
    assert main(["predict", "--model", str(folder), "--image", str(image), "--max-new-tokens", "4",
                 "What type of figure is this?"]) == 0
    return capsys.readouterr().out.rstrip("\n").split("\n")[-1]


@pytest.mark.parametrize("preset", CASES)
def test_a_hub_laid_out_checkpoint_answers_then_trains_both_stages_with_nothing_set(preset, tmp_path, capsys, caplog):
    hub = _hub_folder(preset, tmp_path)
    train, images = write_dataset(tmp_path / "data", n=8, text_only=2)
    image = next(images.glob("*.png"))
    # untouched: its own template renders the prompt, and predict equals serve
    assert _predicted(hub, image, capsys) == _served_answer(hub, image)

    recipe = write_recipe(tmp_path / "r.yaml", train, images, tmp_path / "run", model={"checkpoint": str(hub), "preset": None})
    data = yaml.safe_load(recipe.read_text())
    data["model"].pop("vocab_size")
    for stage in data["stages"]:
        stage["data"]["max_length"] = 256
    recipe.write_text(yaml.safe_dump(data))
    with caplog.at_level(logging.INFO, logger="scitune"):
        assert main(["train", str(recipe)]) == 0
    assert f"using scitune's {CASES[preset][0]!r} template" in caplog.text
    tuned = tmp_path / "run" / "instruct" / "final"
    assert (tuned / "model.safetensors").is_file() and (tmp_path / "run" / "align" / "final" / "model.safetensors").is_file()
    assert "{%- generation -%}" in (tuned / "chat_template.jinja").read_text()
    assert _predicted(tuned, image, capsys) == _served_answer(tuned, image)
