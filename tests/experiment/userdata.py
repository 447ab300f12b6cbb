"""A small user-made dataset, written by the tests themselves: coloured shapes on 64 px images.

Stage 1 (LLaVA conversations): "describe the figure" -> "a red square" ...; stage 2: which colour
is the shape (two or three lettered options, the answer's letter), and a held-out answer key in
the same form. Images live beside the files, under images/.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

COLOURS = {"red": (220, 30, 30), "blue": (30, 60, 220), "green": (30, 170, 60)}
SHAPES = ("square", "disc")


def _draw(path: Path, colour: str, shape: str, offset: int) -> None:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (64, 64), "white")
    box = (8 + offset, 8 + offset, 40 + offset, 40 + offset)
    draw = ImageDraw.Draw(image)
    (draw.rectangle if shape == "square" else draw.ellipse)(box, fill=COLOURS[colour])
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def _question(rng: random.Random, colour: str) -> tuple[str, str]:
    options = [colour, *rng.sample([c for c in COLOURS if c != colour], rng.choice((1, 2)))]
    rng.shuffle(options)
    lines = "\n".join(f"{'ABC'[i]}. {o}" for i, o in enumerate(options))
    return f"<image>\nWhat colour is the shape?\n{lines}", "ABC"[options.index(colour)]


def write_user_data(root: Path, train: int = 24, test: int = 12, seed: int = 0) -> dict[str, Path]:
    """stage1.json, stage2.json, stage2-test.json and images/ under `root`; returns the files."""
    rng = random.Random(seed)
    stage1, stage2, key = [], [], []
    for i in range(train + test):
        colour, shape = rng.choice(list(COLOURS)), rng.choice(SHAPES)
        image = f"fig{i}.png"
        _draw(root / "images" / image, colour, shape, rng.randrange(0, 16))
        question, letter = _question(rng, colour)
        if i < train:
            stage1.append({"id": f"d{i}", "image": f"images/{image}", "conversations": [
                {"from": "human", "value": "<image>\nDescribe the figure."}, {"from": "gpt", "value": f"a {colour} {shape}"}]})
            stage2.append({"id": f"q{i}", "image": f"images/{image}", "conversations": [
                {"from": "human", "value": question}, {"from": "gpt", "value": letter}]})
        else:
            key.append({"id": f"t{i}", "image": f"images/{image}", "conversations": [
                {"from": "human", "value": question}, {"from": "gpt", "value": letter}]})
    files = {"stage1": root / "stage1.json", "stage2": root / "stage2.json", "test": root / "stage2-test.json"}
    for name, samples in (("stage1", stage1), ("stage2", stage2), ("test", key)):
        files[name].write_text(json.dumps(samples, indent=1))
    return files
