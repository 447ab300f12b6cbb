"""`scitune predict`: one answer from a checkpoint, or many from a JSONL file (batched, greedy)."""

from __future__ import annotations

import argparse

from scitune.cli import add_command


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "predict",
        "Answer a question about an image (greedy); --batch runs a JSONL file and writes predictions JSONL.",
        'scitune predict --model runs/instruct/final --image figure.png "What type of figure is this?"',
    )
    parser.add_argument("question", nargs="?", help="the question (one prediction)")
    parser.add_argument("--model", required=True, help="checkpoint directory (standard HF Llava)")
    parser.add_argument("--image", help="image file for the question")
    parser.add_argument(
        "--batch",
        help="JSONL (or LLaVA JSON) of items: `question_id`/`id`, `prompt`/`text` or LLaVA `conversations`, optional `image`",
    )
    parser.add_argument("--images", help="with --batch: folder the items' image paths are relative to")
    parser.add_argument("--out", help="with --batch: predictions JSONL to write (default: print to stdout)")
    parser.add_argument("--batch-size", type=int, default=8, help="prompts per batch (default 8)")
    parser.add_argument("--max-new-tokens", type=int, default=128, help="generation length limit (default 128)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, ... (default cpu)")
    parser.add_argument("--dtype", default="float32", help="float32 (default), bfloat16, float16, auto")
    parser.set_defaults(func=run)


def _with_image_placeholder(prompt: str, has_image: bool) -> str:
    if has_image and "<image>" not in prompt:
        return "<image>\n" + prompt
    return prompt


def read_batch(path: str, image_root: str | None) -> list:
    """EvalItems from a batch file: JSONL rows or LLaVA conversation records."""
    from pathlib import Path

    from scitune.data.sample import read_samples
    from scitune.errors import ScituneError
    from scitune.eval.generate import EvalItem

    items = []
    for number, row in enumerate(read_samples(path), start=1):
        qid = row.get("question_id", row.get("id"))
        if "conversations" in row:
            turns = [t.get("value") for t in row["conversations"] if t.get("from") == "human"]
            prompt = turns[0] if turns else None
        else:
            prompt = row.get("prompt", row.get("text"))
        if qid is None or not isinstance(prompt, str):
            raise ScituneError(f"{path}: item {number} needs `question_id` (or `id`) and `prompt` (or `text`)")
        image = row.get("image")
        if image is not None and not isinstance(image, str):
            raise ScituneError(f"{path}: item {qid}: `image` must be one path")
        images = ()
        if image:
            images = (str(Path(image_root) / image) if image_root else image,)
        items.append(EvalItem(str(qid), _with_image_placeholder(prompt, bool(images)), images))
    if not items:
        raise ScituneError(f"{path}: no items")
    return items


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from scitune.errors import ScituneError
    from scitune.eval.generate import EvalItem, generate
    from scitune.eval.predictions import write_predictions
    from scitune.model import load_model

    if (args.question is None) == (args.batch is None):
        raise ScituneError('give either a question ("...") or --batch FILE.jsonl')
    if args.batch:
        items = read_batch(args.batch, args.images)
    else:
        images = (args.image,) if args.image else ()
        items = [EvalItem("0", _with_image_placeholder(args.question, bool(images)), images)]
    model, processor = load_model(args.model, dtype=args.dtype, device=args.device)
    progress = bool(args.batch) and sys.stderr.isatty()
    texts = generate(
        model, processor, items, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens, progress=progress
    )
    if not args.batch:
        print(texts[0])
        return 0
    rows = [
        {"question_id": item.question_id, "prompt": item.prompt, "text": text, "model_id": str(args.model)}
        for item, text in zip(items, texts)
    ]
    if args.out:
        write_predictions(args.out, rows)
        print(f"wrote {len(rows)} predictions to {args.out}")
    else:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
    return 0
