import pytest
import torch
from PIL import Image

from scitune.data.sample import make_sample
from scitune.errors import ScituneError
from scitune.prompting import (
    IGNORE_INDEX,
    ImageLoader,
    PaddingCollator,
    Renderer,
    SampleTokenizer,
    model_inputs,
    open_image,
    set_pad_to_square,
)
from scitune.train.schedule import LengthGroupedSampler
from tests.fixtures import build_tiny


def wide_figure(path):
    """128x32: red 16-px bands at both ends, blue in between."""
    image = Image.new("RGB", (128, 32), (0, 0, 255))
    for x0 in (0, 112):
        image.paste((255, 0, 0), (x0, 0, x0 + 16, 32))
    image.save(path)
    return path


def test_open_image_rgb_and_checked(tmp_path):
    Image.new("L", (10, 4), 128).save(tmp_path / "gray.png")
    image = open_image("gray.png", tmp_path)
    assert image.mode == "RGB" and image.size == (10, 4)
    (tmp_path / "bad.png").write_text("no")
    with pytest.raises(ScituneError, match="bad.png: not an image PIL can read"):
        open_image("bad.png", tmp_path)
    with pytest.raises(ScituneError, match="escapes the image folder"):
        open_image("../gray.png", tmp_path / "sub")
    Image.new("RGBA", (4, 4), (255, 0, 0, 0)).save(tmp_path / "clear.png")
    assert open_image("clear.png", tmp_path).getpixel((0, 0)) == (255, 255, 255)  # transparency on white
    Image.new("L", (2100, 100)).save(tmp_path / "strip.png")
    with pytest.raises(ScituneError, match=r"strip\.png: image is 2100x100, more than 20:1"):
        open_image("strip.png", tmp_path)


def test_pad_to_square_keeps_the_sides_of_wide_figures(tmp_path, image_processor):
    wide_figure(tmp_path / "wide.png")

    class Processor:  # what set_pad_to_square changes: the processor's image processor
        pass

    processor = Processor()
    processor.image_processor = image_processor
    cropped = ImageLoader(processor.image_processor, tmp_path)(["wide.png"])
    set_pad_to_square(processor, True)
    assert processor.image_processor.do_pad and processor.image_processor is not image_processor
    padded = ImageLoader(processor.image_processor, tmp_path)(["wide.png"])
    assert cropped.shape == padded.shape == (1, 3, 64, 64)
    # red channel minus blue channel along the middle row: the crop shows only blue
    redness = lambda pixels: (pixels[0, 0, 32] - pixels[0, 2, 32])  # noqa: E731
    assert redness(cropped).max() < 0
    assert redness(padded)[:4].min() > 0 and redness(padded)[-4:].min() > 0
    # the padding has the processor's mean colour, which normalises to ~0
    assert padded[0, :, 0, 32].abs().max() < 0.05
    set_pad_to_square(processor, False)
    assert torch.equal(ImageLoader(processor.image_processor, tmp_path)(["wide.png"]), cropped)


def items_for(tokenizer, tmp_path, per_image=4):
    Image.new("RGB", (20, 20), (0, 255, 0)).save(tmp_path / "a.png")
    samples = [
        make_sample("img", "<image>\nWhat type of figure is this?", "Graph Plot", "a.png"),
        make_sample("text", "Which is bigger, 2 or 3?", "3"),
        make_sample("img2", "<image>\nDescribe it at length please.", "A long answer with several words.", "a.png"),
    ]
    return samples, SampleTokenizer(Renderer(tokenizer, "plain", image_tokens=per_image)).tokenize_all(samples)


def test_train_collator_right_pads(tiny_tokenizer, image_processor, tmp_path):
    samples, items = items_for(tiny_tokenizer, tmp_path)
    collate = PaddingCollator(tiny_tokenizer.pad_token_id, ImageLoader(image_processor, tmp_path))
    batch = collate(items)
    lengths = [i["length"] for i in items]
    assert batch["input_ids"].shape == (3, max(lengths))
    for row, item in enumerate(items):
        n = item["length"]
        assert batch["input_ids"][row, :n].tolist() == item["input_ids"]
        assert (batch["input_ids"][row, n:] == tiny_tokenizer.pad_token_id).all()
        assert batch["attention_mask"][row].tolist() == [1] * n + [0] * (max(lengths) - n)
        assert (batch["labels"][row, n:] == IGNORE_INDEX).all()
    assert batch["pixel_values"].shape == (2, 3, 64, 64)
    assert batch["ids"] == ["img", "text", "img2"]


def test_prompt_collator_left_pads(tiny_tokenizer, image_processor, tmp_path):
    samples, _ = items_for(tiny_tokenizer, tmp_path)
    prompts = [Renderer(tiny_tokenizer, "plain", image_tokens=4).prompt(s) for s in samples]
    batch = PaddingCollator(tiny_tokenizer.pad_token_id, ImageLoader(image_processor, tmp_path), side="left")(prompts)
    width = max(len(p["input_ids"]) for p in prompts)
    for row, prompt in enumerate(prompts):
        n = len(prompt["input_ids"])
        assert batch["input_ids"][row, width - n :].tolist() == prompt["input_ids"]
        assert batch["attention_mask"][row].tolist() == [0] * (width - n) + [1] * n
        # positions start at 0 on each row's first real token
        assert batch["position_ids"][row, width - n :].tolist() == list(range(n))
    assert "labels" not in batch
    # text-only batches carry no pixel_values
    assert "pixel_values" not in PaddingCollator(tiny_tokenizer.pad_token_id, side="left")([prompts[1]])
    with pytest.raises(ScituneError, match="no image processor"):
        PaddingCollator(tiny_tokenizer.pad_token_id, side="left")(prompts[:1])


def test_length_grouped_sampler():
    lengths = [5, 100, 7, 80, 3, 60, 50, 9, 70, 1, 2, 90]
    sampler = LengthGroupedSampler(lengths, batch_size=2, seed=0, mega=3)
    order = list(sampler)
    assert sorted(order) == list(range(len(lengths)))
    assert order == list(LengthGroupedSampler(lengths, batch_size=2, seed=0, mega=3))
    for start in range(0, len(order), 6):
        chunk = [lengths[i] for i in order[start : start + 6]]
        assert chunk == sorted(chunk, reverse=True)
    sampler.set_epoch(1)
    assert list(sampler) != order


def test_dataloader_with_tiny_model(tmp_path):
    """Our token layout is exactly what the model's processor makes, and a real forward runs."""

    model, processor = build_tiny()
    vision = model.config.vision_config
    per_image = (vision.image_size // vision.patch_size) ** 2
    wide_figure(tmp_path / "fig.png")
    sample = make_sample("fig", "<image>\nWhat type of figure is this?", "Bar Chart", "fig.png")
    renderer = Renderer(processor)  # the processor's own template and image token count
    assert renderer.image_tokens == per_image
    tokenize = SampleTokenizer(renderer)
    items = tokenize.tokenize_all([sample, make_sample("t", "Name a unit of energy.", "Joule")])
    text = processor.tokenizer.apply_chat_template(
        [{"role": "user", "content": "<image>\nWhat type of figure is this?"}, {"role": "assistant", "content": "Bar Chart"}],
        tokenize=False,
    )
    expected = processor(text=[text], images=[Image.open(tmp_path / "fig.png").convert("RGB")], return_tensors="pt")
    assert items[0]["input_ids"] == expected["input_ids"][0].tolist()

    loader = torch.utils.data.DataLoader(
        items, batch_size=2, collate_fn=PaddingCollator(processor.tokenizer.pad_token_id, ImageLoader(processor.image_processor, tmp_path))
    )
    batch = next(iter(loader))
    with torch.no_grad():
        loss = model(**model_inputs(batch)).loss
    assert torch.isfinite(loss)
