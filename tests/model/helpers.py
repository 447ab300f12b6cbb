"""Small inputs for model tests."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image


def to_hub_layout(folder: Path) -> Path:
    """Rewrites a saved family folder as many hub checkpoints are laid out: the image processor in
    preprocessor_config.json (naming the processor class), no processor class in
    processor_config.json, the image processor's type without the PIL backend's suffix."""
    config = json.loads((folder / "processor_config.json").read_text())
    image = config.pop("image_processor")
    image["processor_class"] = config.pop("processor_class")
    image["image_processor_type"] = image["image_processor_type"].removesuffix("Pil")
    (folder / "preprocessor_config.json").write_text(json.dumps(image))
    (folder / "processor_config.json").write_text(json.dumps(config))
    return folder


def figure(seed: int, size=(96, 72)) -> Image.Image:
    """A deterministic non-blank RGB image."""
    img = Image.new("RGB", size, (255, 255, 255))
    for x in range(size[0]):
        for y in range(size[1]):
            if (x * (seed + 3) + y * (seed + 5)) % 11 < 4:
                img.putpixel((x, y), ((37 * seed) % 256, (x * 3) % 256, (y * 5) % 256))
    return img


def batch(processor, n: int = 2, answer: str = "Bar Chart"):
    """A right-padded training batch of `n` image conversations, labels = input ids (pad masked)."""
    texts = []
    for i in range(n):
        msgs = [
            {"role": "user", "content": f"<image>\nWhat type of figure is number {i}?"},
            {"role": "assistant", "content": answer},
        ]
        texts.append(processor.tokenizer.apply_chat_template(msgs, tokenize=False))
    enc = processor(text=texts, images=[figure(i) for i in range(n)], return_tensors="pt", padding=True)
    labels = enc["input_ids"].clone()
    labels[enc["attention_mask"] == 0] = -100
    enc["labels"] = labels
    return enc
