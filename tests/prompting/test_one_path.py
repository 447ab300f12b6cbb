"""Every inference path sees the pixels training saw: a model trained with `pad_to_square` on a
real, non-square SciCap figure (461x534) is evaluated, served by `scitune predict` and read by
plain transformers with the same padded pixels, because the padding lives in the saved processor."""

import json
import shutil

import pytest
import torch
from PIL import Image
from transformers import AutoProcessor, CLIPImageProcessorPil, LlavaForConditionalGeneration

from scitune.cli import main
from scitune.config import load_recipe
from scitune.train.run import run_recipe

from ..train.data import write_dataset, write_recipe

FIGURE = "1001.0025v1-Figure2-1.png"


@pytest.fixture(scope="module")
def trained(tmp_path_factory, shared_data):
    root = tmp_path_factory.mktemp("one-path")
    train, images = write_dataset(root / "data", n=8)
    shutil.copy(shared_data / "scicap" / FIGURE, images / FIGURE)
    samples = json.loads(train.read_text())
    question = {"from": "human", "value": "<image>\nWhat type of figure is this?"}
    samples.append({"id": "scicap", "image": FIGURE, "conversations": [question, {"from": "gpt", "value": "Graph Plot"}]})
    train.write_text(json.dumps(samples))
    recipe = write_recipe(
        root / "r.yaml", train, images, root / "run",
        align={"epochs": 1, "data": {"train": str(train), "images": str(images), "max_length": 64, "pad_to_square": True}},
        with_instruct=False,
    )
    seen = {}

    def capture(runner, step):  # the training collator's pixels for the SciCap figure
        if "train" not in seen:
            item = next(i for i in runner.items if i["id"] == "scicap")
            seen["train"] = runner.collate([item])["pixel_values"]

    run_recipe(load_recipe(str(recipe)), hooks=[capture])
    return root / "run" / "align" / "final", images, train, seen["train"]


def _capturing_generate(monkeypatch):
    """Records the pixel_values that reach the model's generate."""
    seen = []
    original = LlavaForConditionalGeneration.generate

    def generate(self, *args, **kwargs):
        if kwargs.get("pixel_values") is not None:
            seen.append(kwargs["pixel_values"].detach().clone())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(LlavaForConditionalGeneration, "generate", generate)
    return seen


def test_figure_is_really_wide_and_padding_matters(trained, shared_data):
    final, images, _, train_pixels = trained
    with Image.open(images / FIGURE) as image:
        assert image.size == (461, 534)
    size = train_pixels.shape[-1]
    cropped = CLIPImageProcessorPil(size={"shortest_edge": size}, crop_size={"height": size, "width": size})(
        images=[Image.open(images / FIGURE).convert("RGB")], return_tensors="pt"
    )["pixel_values"]
    assert (cropped - train_pixels).abs().max() > 0.5  # a centre crop would differ a lot
    config = json.loads((final / "processor_config.json").read_text())  # transformers 5 keeps it here
    assert config["image_processor"]["do_pad"] is True


def test_plain_transformers_sees_the_training_pixels(trained):
    final, images, _, train_pixels = trained
    processor = AutoProcessor.from_pretrained(final)
    pixels = processor(images=[Image.open(images / FIGURE).convert("RGB")], text="<image>", return_tensors="pt")["pixel_values"]
    assert torch.equal(pixels, train_pixels)


def test_predict_sees_the_training_pixels(trained, monkeypatch, capsys):
    final, images, _, train_pixels = trained
    seen = _capturing_generate(monkeypatch)
    assert main(["predict", "--model", str(final), "--image", str(images / FIGURE), "--max-new-tokens", "2", "What is this?"]) == 0
    assert len(seen) == 1 and torch.equal(seen[0], train_pixels)


def test_eval_sees_the_training_pixels(trained, monkeypatch, tmp_path):
    final, images, train, train_pixels = trained
    data = tmp_path / "one.json"
    data.write_text(json.dumps([s for s in json.loads(train.read_text()) if s["id"] == "scicap"]))
    seen = _capturing_generate(monkeypatch)
    code = main([
        "eval", "figure-type", "--model", str(final), "--data", str(data), "--images", str(images),
        "--max-new-tokens", "2", "--out", str(tmp_path / "eval"),
    ])
    assert code == 0
    assert len(seen) == 1 and torch.equal(seen[0], train_pixels)
