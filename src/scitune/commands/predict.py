"""`scitune predict`: one answer from a checkpoint, or many from a JSONL file (batched, greedy)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from scitune.cli import add_command, positive_int
from scitune.errors import ScituneError


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "predict",
        "Answer a question about an image (greedy); --batch runs a JSONL file and writes predictions JSONL.",
        'scitune predict --model runs/instruct/final --image figure.png "What type of figure is this?"',
    )
    parser.add_argument("question", nargs="?", help="the question (one prediction)")
    parser.add_argument("--model", required=True, help="checkpoint folder of any supported model family (LLaVA, LLaVA-OneVision, LLaVA-NeXT, Idefics3/SmolVLM, Qwen-VL, Gemma 3, InternVL), or a LoRA adapter folder (merged onto its base)")
    parser.add_argument("--image", help="image file for the question")
    parser.add_argument(
        "--batch",
        help="JSONL (or LLaVA JSON) of items: `question_id`/`id`, `prompt`/`text` or LLaVA `conversations`, optional `image`",
    )
    parser.add_argument(
        "--images", help="with --batch: folder the items' image paths are relative to (default: the batch file's folder)"
    )
    parser.add_argument("--out", help="with --batch: predictions JSONL to write (default: print to stdout)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="prompts per batch (default 8)")
    parser.add_argument("--max-new-tokens", type=positive_int, default=128, help="generation length limit (default 128)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, ... (default cpu)")
    parser.add_argument("--dtype", default="float32", help="float32 (default), bfloat16, float16, auto")
    parser.add_argument(
        "--image-placement", default="front", choices=("front", "keep"),
        help="front (as LLaVA trains: <image> moved to the start of its turn; default) or keep",
    )
    parser.set_defaults(func=run)


def _with_image_placeholder(prompt: str, has_image: bool) -> str:
    if has_image and "<image>" not in prompt:
        return "<image>\n" + prompt
    return prompt


def read_batch(path: str) -> list:
    """EvalItems from a batch file: JSONL rows (`question_id`/`id`, `prompt`/`text`, `image`) or
    LLaVA conversation records (the first human turn)."""
    from scitune.data.sample import image_paths, read_samples
    from scitune.inference import EvalItem

    items = []
    for number, row in enumerate(read_samples(path), start=1):
        qid = row.get("question_id", row.get("id"))
        if "conversations" in row:
            item = EvalItem.from_sample({**row, "id": qid})
        else:
            prompt = row.get("prompt", row.get("text"))
            if not isinstance(prompt, str):
                raise ScituneError(f"{path}: item {number} needs `prompt` (or `text`) as a string")
            images = tuple(image_paths({"id": qid, "image": row.get("image")}))
            item = EvalItem(str(qid), prompt, images)
        if qid is None:
            raise ScituneError(f"{path}: item {number} needs `question_id` (or `id`)")
        if len(item.images) > 1:
            raise ScituneError(f"{path}: item {qid}: `image` must be one path")
        items.append(EvalItem(item.question_id, _with_image_placeholder(item.prompt, bool(item.images)), item.images))
    if not items:
        raise ScituneError(f"{path}: no items")
    return items


def run(args: argparse.Namespace) -> int:
    from scitune.inference import Engine, EvalItem
    from scitune.eval.predictions import write_predictions
    from scitune.model.folders import load_for_inference

    if (args.question is None) == (args.batch is None):
        raise ScituneError('give either a question ("...") or --batch FILE.jsonl')
    if args.question is not None and not args.question.strip():
        raise ScituneError("the question is empty; ask something about the image")
    if args.out and not args.batch:
        raise ScituneError("--out goes with --batch (one answer is printed)")
    if args.batch:
        items = read_batch(args.batch)
        image_root = args.images or str(Path(args.batch).resolve().parent)
    else:
        images = (Path(args.image).name,) if args.image else ()
        items = [EvalItem("0", _with_image_placeholder(args.question, bool(images)), images)]
        image_root = str(Path(args.image).parent) if args.image else None
        if args.image:  # a bad image is refused before the model is loaded
            from scitune.prompting import open_image

            open_image(args.image).close()
    if args.out:
        from scitune.io.outputs import claim_output

        claim_output(args.out, inputs=[args.batch, args.images, args.model], overwrite=args.overwrite, kind="file")
    model, processor, _ = load_for_inference(args.model, dtype=args.dtype, device=args.device)
    engine = Engine(model, processor, image_root=image_root, image_placement=args.image_placement)
    texts = engine.generate(items, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens, progress=bool(args.batch))
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
