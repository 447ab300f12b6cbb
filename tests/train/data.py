"""A small figure-question dataset written to disk, for training tests."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, ImageDraw

KINDS = ("Bar Chart", "Graph Plot")


def draw(kind: int, seed: int) -> Image.Image:
    img = Image.new("RGB", (64, 64), "white")
    d = ImageDraw.Draw(img)
    if kind == 0:
        for i in range(4):
            h = 10 + (seed * 7 + i * 13) % 40
            d.rectangle([6 + i * 14, 60 - h, 16 + i * 14, 60], fill=(40, 90, 200))
    else:
        d.line([(x, 32 + (x * (seed + 2)) % 24 - 12) for x in range(4, 62, 6)], fill=(200, 40, 40), width=2)
    return img


def write_dataset(root: Path, n: int = 16, text_only: int = 0) -> tuple[Path, Path]:
    """`root/images/*.png` and `root/train.json` (LLaVA conversations); returns (json, images)."""
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    samples = []
    for i in range(n):
        kind = i % 2
        draw(kind, i).save(images / f"fig{i}.png")
        samples.append({
            "id": f"fig{i}",
            "image": f"fig{i}.png",
            "conversations": [
                {"from": "human", "value": "<image>\nWhat type of figure is this?"},
                {"from": "gpt", "value": KINDS[kind] + (" with bars" if kind == 0 and i % 4 == 0 else "")},
            ],
        })
    for j in range(text_only):
        samples.append({
            "id": f"text{j}",
            "conversations": [
                {"from": "human", "value": f"Which number is larger, {j} or {j + 3}?"},
                {"from": "gpt", "value": f"The answer is {j + 3}."},
            ],
        })
    path = root / "train.json"
    path.write_text(json.dumps(samples))
    return path, images


def write_recipe(path: Path, train: Path, images: Path, out: Path, with_instruct: bool = True,
                 align: dict | None = None, instruct: dict | None = None, model: dict | None = None,
                 run: dict | None = None) -> Path:
    """The test suite's recipe on the tiny preset: an align stage and (with_instruct) an instruct
    stage on `train`/`images`, into `out`; `align`, `instruct`, `model` and `run` update those
    sections' settings."""
    import yaml

    def stage(name: str, settings: dict, changes: dict | None) -> dict:
        return {"stage": {"name": name}, "data": {"train": str(train), "images": str(images), "max_length": 64},
                **settings, **(changes or {})}

    stages = [stage("align", {"epochs": 2, "batch_size": 4, "lr": 1e-2, "warmup_ratio": 0.1}, align)]
    if with_instruct:
        stages.append(stage("instruct", {"init_from": "projector", "epochs": 1, "batch_size": 4, "lr": 1e-3}, instruct))
    recipe = {"model": {"preset": "tiny", "vocab_size": 400, **(model or {})}, "stages": stages,
              "run": {"out": str(out), "seed": 0, "save_every": 2, "keep_last": 2, "tensorboard": False, **(run or {})}}
    path.write_text(yaml.safe_dump(recipe))
    return path
