"""Evaluation throughput: items per second on the same ScienceQA questions for
batch 1 (the old one-by-one loop), batch N (left-padded greedy generation), likelihood mode
(shared-prefix option scoring, N questions a batch), and batch-1 generation of answers as long as
the ones a ScienceQA-tuned LLaVA writes.

    python benchmarks/eval_throughput.py [--model CKPT] [--items 32] [--batch-size 8]
                                         [--max-new-tokens 16] [--device cpu] [--threads N]
                                         [--out FILE.json]

Without --model it builds the tiny preset (random weights). Questions are the real ScienceQA test
records from SCITUNE_SHARED_DATA (those whose images are present, and text-only ones) when the
folder exists, otherwise synthetic questions with generated images. It also checks that batch 1
and batch N give identical predictions. Prints a table and writes JSON (default
benchmarks/results/eval_throughput.json).

"Generate, batch 1, LLaVA-13B's lengths": a model trained on SciTune's QCM-LEPA format (and
LLaVA's ScienceQA model) answers with a lecture, an explanation and then "The answer is X.", so
generation pays for every one of those tokens before the answer. For each question this row
generates exactly as many tokens (`min_new_tokens` = `max_new_tokens`) as LLaVA-13B's published
ScienceQA output for the same problem has in this model's tokenizer
(scienceqa/predictions/llava_13b_v0_test.json in the shared data), capped at --lepa-cap. The
tokens themselves do not matter for the timing; their count does.

Threads follow scitune's policy (scitune.threads: passive waits, one thread per usable core);
--threads overrides it.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from scitune.io.atomic import write_json


def questions(count: int, workdir: Path):
    from scitune.eval.answers import letter
    from scitune.inference import EvalItem
    from scitune.eval.tasks.scienceqa.scoring import option_count
    from scitune.settings import shared_data_dir

    root = shared_data_dir() / "scienceqa"
    key_file = root / "llava_test_CQM-A.json"
    if key_file.is_file():
        images = root / "images" / "test"
        records = json.loads(key_file.read_text())
        usable = [r for r in records if "image" not in r or (images / r["image"]).is_file()]
        chosen = [r for r in usable if "image" in r] + [r for r in usable if "image" not in r]
        chosen = sorted(chosen[: max(count, 1) * 4], key=lambda r: "image" not in r)
        # interleave image and text-only questions, as the test split mixes them
        with_img = [r for r in chosen if "image" in r]
        without = [r for r in chosen if "image" not in r]
        mixed = []
        while len(mixed) < count and (with_img or without):
            if with_img:
                mixed.append(with_img.pop(0))
            if without and len(mixed) < count:
                mixed.append(without.pop(0))
        out = []
        for r in mixed:
            prompt = r["conversations"][0]["value"]
            n = option_count(prompt)
            paths = (str(images / r["image"]),) if "image" in r else ()
            out.append(EvalItem(r["id"], prompt, paths, tuple(letter(i) for i in range(n))))
        return out, f"ScienceQA test records from {root}"
    from PIL import Image

    out = []
    for i in range(count):
        image = workdir / f"q{i}.png"
        Image.new("RGB", (64, 64), ((40 * i) % 256, 120, 200)).save(image)
        prompt = f"<image>\nWhich color dominates figure {i}?" + " Look closely." * (i % 5) + "\nA. blue\nB. red\nC. green"
        out.append(EvalItem(str(i), prompt, (str(image),), ("A", "B", "C")))
    return out, "synthetic questions (shared data not found)"


def reference_lengths(items, tokenizer, cap: int) -> list[int] | None:
    """Per item, the token count of LLaVA-13B's published ScienceQA answer (lecture, solution,
    answer), capped at `cap`; None when the predictions file is missing or lacks an item."""
    from scitune.settings import shared_data_dir

    path = shared_data_dir() / "scienceqa" / "predictions" / "llava_13b_v0_test.json"
    if not path.is_file():
        return None
    outputs = dict(json.loads(path.read_text())["outputs"])
    lengths = []
    for item in items:
        text = outputs.get(item.question_id)
        if text is None:
            return None
        text = text.removeprefix("Assistant:").strip()
        lengths.append(min(cap, len(tokenizer(text, add_special_tokens=False)["input_ids"])))
    return lengths


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="checkpoint directory (default: the tiny preset, random weights)")
    parser.add_argument("--items", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--lepa-cap", type=int, default=512, help="most tokens generated per question in the LLaVA-length row")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: scitune's policy)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "eval_throughput.json"))
    args = parser.parse_args(argv)
    if min(args.items, args.batch_size, args.max_new_tokens, args.lepa_cap) < 1:
        parser.error("--items, --batch-size, --max-new-tokens and --lepa-cap must be >= 1")

    from scitune import threads

    threads.configure(args.threads)  # before torch loads
    import torch

    from scitune.inference import Engine
    from scitune.eval.runner import predict

    if args.model:
        from scitune.model import load_model

        model, processor = load_model(args.model, dtype=args.dtype, device=args.device)
    else:
        from scitune.config import ModelConfig
        from scitune.model import build_model

        model, processor = build_model(ModelConfig(preset="tiny"))
        model = model.to(args.device)
    model.eval()
    with tempfile.TemporaryDirectory() as tmp:
        items, source = questions(args.items, Path(tmp))
        engine = Engine(model, processor)  # items carry absolute image paths
        lengths = reference_lengths(items, processor.tokenizer, args.lepa_cap)
        predict(engine, items[:2], "generate", batch_size=2, max_new_tokens=2)  # warm-up
        one, t_one = timed(lambda: [r["text"] for r in predict(engine, items, "generate", 1, args.max_new_tokens)])
        many, t_many = timed(lambda: [r["text"] for r in predict(engine, items, "generate", args.batch_size, args.max_new_tokens)])
        picks, t_like = timed(lambda: predict(engine, items, "likelihood", args.batch_size))
        if lengths:
            def long_answers():
                for item, n in zip(items, lengths):
                    prompt = engine.renderer.prompt(item.sample(), reserve=n)
                    engine.generate_batch([prompt], max_new_tokens=n, min_new_tokens=n)

            _, t_long = timed(long_answers)

    n = len(items)
    rows = [
        ("generate, batch 1", t_one, n / t_one),
        (f"generate, batch {args.batch_size}", t_many, n / t_many),
        (f"likelihood (shared prefix, batch {args.batch_size})", t_like, n / t_like),
    ]
    if lengths:
        median = statistics.median(lengths)
        rows.append((f"generate, batch 1, LLaVA-13B's lengths (median {median:g})", t_long, n / t_long))
    result = {
        "items": n,
        "source": source,
        "model": args.model or "tiny preset (random weights)",
        "device": args.device,
        "dtype": str(next(model.parameters()).dtype),
        "max_new_tokens": args.max_new_tokens,
        "reference_lengths": lengths,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "batch1_equals_batchN": one == many,
        "modes": {name: {"seconds": s, "items_per_second": ips} for name, s, ips in rows},
        "speedup_batchN_over_batch1": t_one / t_many,
        "likelihood_over_batch1": t_one / t_like,
        "likelihood_over_batch1_llava_lengths": t_long / t_like if lengths else None,
    }
    width = max(len(r[0]) for r in rows)
    print(f"{n} items ({source}); model: {result['model']}; device {args.device}; max_new_tokens {args.max_new_tokens}; "
          f"threads {result['threads']}")
    print(f"{'mode'.ljust(width)}  {'seconds':>8}  {'items/s':>8}")
    for name, seconds, ips in rows:
        print(f"{name.ljust(width)}  {seconds:8.2f}  {ips:8.2f}")
    print(f"batch {args.batch_size} vs batch 1: {result['speedup_batchN_over_batch1']:.2f}x; identical predictions: {one == many}")
    print(f"likelihood vs generate batch 1: {result['likelihood_over_batch1']:.2f}x (at most {args.max_new_tokens} new tokens)"
          + (f"; {result['likelihood_over_batch1_llava_lengths']:.2f}x (LLaVA-13B's answer lengths)" if lengths else ""))
    write_json(args.out, result)  # atomic; makes the folder
    print(f"wrote {args.out}")
    return 0 if one == many else 1


if __name__ == "__main__":
    sys.exit(main())
