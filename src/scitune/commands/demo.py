"""`scitune demo`: the smallest end-to-end path that exists so far (to be replaced by the full
pipeline on the built-in corpus): build the tiny model, run a few align steps on drawn figures,
save a standard checkpoint, reload it with plain transformers and generate."""

from __future__ import annotations

import argparse

from scitune.cli import add_command


def register(subparsers) -> None:
    parser = add_command(subparsers, "demo", "Run the pipeline end to end on CPU with no downloads.", "scitune demo --out runs/demo")
    parser.add_argument("--out", default="runs/demo", help="output directory")
    parser.add_argument("--steps", type=int, default=30, help="align steps")
    parser.set_defaults(func=run)


def _figure(kind: int, seed: int):
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (64, 64), "white")
    draw = ImageDraw.Draw(img)
    if kind == 0:  # bars
        for i in range(4):
            h = 10 + (seed * 7 + i * 13) % 40
            draw.rectangle([6 + i * 14, 60 - h, 16 + i * 14, 60], fill=(40, 90, 200))
    else:  # a line
        pts = [(x, 32 + ((x * (seed + 2)) % 24) - 12) for x in range(4, 62, 6)]
        draw.line(pts, fill=(200, 40, 40), width=2)
    return img


def run(args: argparse.Namespace) -> int:
    import time

    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from scitune.config import ModelConfig, StageConfig
    from scitune.model import apply_stage, build_model, save_model
    from scitune.model.stages import format_parameter_table, parameter_table

    start = time.time()
    print("No pretrained weights can be downloaded here: the tiny preset starts from random weights.")
    model, processor = build_model(ModelConfig(preset="tiny"))
    model = apply_stage(model, StageConfig(name="align"))
    print(format_parameter_table(parameter_table(model)))
    names = ["Bar Chart", "Graph Plot"]
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-3)
    generator = torch.Generator().manual_seed(0)
    for step in range(args.steps):
        kinds = torch.randint(0, 2, (8,), generator=generator).tolist()
        texts = [
            processor.tokenizer.apply_chat_template(
                [{"role": "user", "content": "<image>\nWhat type of figure is this?"}, {"role": "assistant", "content": names[k]}],
                tokenize=False,
            )
            for k in kinds
        ]
        enc = processor(text=texts, images=[_figure(k, step * 8 + i) for i, k in enumerate(kinds)], return_tensors="pt", padding=True)
        labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
        loss = model(**enc, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if step % 10 == 0 or step == args.steps - 1:
            print(f"align step {step + 1}/{args.steps}  loss {loss.item():.3f}")
    out = save_model(model, processor, f"{args.out}/align")
    plain = AutoModelForImageTextToText.from_pretrained(out)
    plain_processor = AutoProcessor.from_pretrained(out)
    prompt = plain_processor.tokenizer.apply_chat_template(
        [{"role": "user", "content": "<image>\nWhat type of figure is this?"}], tokenize=False, add_generation_prompt=True
    )
    enc = plain_processor(text=[prompt], images=[_figure(0, 999)], return_tensors="pt")
    generated = plain.generate(**enc, max_new_tokens=8, do_sample=False)
    answer = plain_processor.tokenizer.decode(generated[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    print(f"saved {out}; reloaded with plain transformers; answer to a bar chart: {answer.strip()!r}")
    print(f"done in {time.time() - start:.1f}s")
    return 0
