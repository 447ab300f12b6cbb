"""Padding fraction of training batches, padded to each batch's longest sample (as LLaVA and TRL
batch) and packed (`data.packing: true`, scitune.prompting.packing), on the demo's instruct data
and on ScienceQA QCM-LEPA from the built-in corpus.

    python benchmarks/padding.py [--figures 1000] [--batch 16] [--json benchmarks/results/padding.json]

Samples are rendered by the tiny preset's renderer (a vocabulary trained on the corpus text, as
the demo does; 16 image tokens per image) at the demo recipe's instruct `max_length` (384), and
batched in the order the training loop takes them (`scitune.train.schedule.epoch_order`, seed 0,
epoch 0). The padding fraction is 1 - real tokens / tokens in the model's input. With SDPA (the
default) or flash attention, packing puts a micro-batch in one flat row with its sample
boundaries, so it has no padding at all ("flat": counted from the same batches, 0 by
construction). With eager attention it packs into rows of one width: "rows" is what training
does (the width between the batch's longest sample and `max_length` with the fewest input
tokens); the two other columns fix the width at the longest sample or `max_length`.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
MAX_LENGTH = 384  # recipes/tiny-cpu.yaml, instruct.data.max_length


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--figures", type=int, default=1000, help="corpus size (the demo's: 1000)")
    parser.add_argument("--batch", type=int, default=16, help="samples per micro-batch (the demo recipe's: 16)")
    parser.add_argument("--keep", help="build the corpus in this folder and keep it")
    parser.add_argument("--json", default=str(HERE / "results" / "padding.json"))
    args = parser.parse_args(argv)
    if args.figures < 20 or args.batch < 1:
        parser.error("--figures must be >= 20 and --batch >= 1")

    from scitune.config import ModelConfig
    from scitune.data.corpus import build_corpus
    from scitune.data.scienceqa import build_scienceqa_samples, read_problems
    from scitune.demo import corpus_texts, training_samples
    from scitune.model import build_model
    from scitune.prompting import Renderer, SampleTokenizer
    from scitune.prompting.packing import padded_tokens
    from scitune.train.schedule import epoch_order

    rows = []
    with tempfile.TemporaryDirectory(prefix="scitune-padding-") as tmp:
        corpus = Path(args.keep or tmp) / "corpus"
        if not (corpus / "scienceqa").is_dir():
            build_corpus(corpus, figures=args.figures, seed=0)
        _, processor = build_model(ModelConfig(preset="tiny", vocab_size=2048), texts=corpus_texts(corpus, 0, 3))
        renderer = Renderer(processor, max_length=MAX_LENGTH)
        datasets = {
            "demo instruct (CQM-A x3 orders, figure type, captions)": training_samples(corpus, seed=0, choice_orders=3)["instruct"],
            "ScienceQA QCM-LEPA (corpus train split)": build_scienceqa_samples(
                read_problems(corpus / "scienceqa", split="train"), format="QCM-LEPA"
            ),
        }
        for name, samples in datasets.items():
            start = time.perf_counter()
            tokenize = SampleTokenizer(renderer)
            lengths = [item["length"] for item in tokenize.tokenize_all(samples)]
            order = epoch_order(len(lengths), seed=0, epoch=0).tolist()
            batches = [order[i : i + args.batch] for i in range(0, len(order), args.batch)]
            row = {"data": name, "samples": len(lengths), "dropped": dict(tokenize.dropped), "batch": args.batch,
                   "mean_length": sum(lengths) / len(lengths), "max_length_seen": max(lengths)}
            for label, packing, limit, width in (("padded", False, None, None), ("packed_longest", True, None, None),
                                                 ("packed", True, MAX_LENGTH, None), ("packed_max_length", True, None, MAX_LENGTH)):
                real, total = padded_tokens(lengths, batches, packing, limit, width)
                row[label] = {"padding_fraction": 1 - real / total, "input_tokens": total, "real_tokens": real}
            real = sum(lengths[i] for batch in batches for i in batch)  # one flat row per micro-batch
            row["flat"] = {"padding_fraction": 0.0, "input_tokens": real, "real_tokens": real}
            row["seconds"] = round(time.perf_counter() - start, 1)
            rows.append(row)
    print(f"{'data':55s} {'samples':>7s} {'mean len':>8s} {'padded':>7s} {'flat':>6s} {'rows':>7s} {'rows=longest':>12s} {'rows=max_length':>15s}")
    for row in rows:
        print(f"{row['data']:55s} {row['samples']:7d} {row['mean_length']:8.1f} {row['padded']['padding_fraction']:7.1%}"
              f" {row['flat']['padding_fraction']:6.1%} {row['packed']['padding_fraction']:7.1%} {row['packed_longest']['padding_fraction']:12.1%}"
              f" {row['packed_max_length']['padding_fraction']:15.1%}")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"argv": [f"--figures={args.figures}", f"--batch={args.batch}"], "rows": rows}, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
