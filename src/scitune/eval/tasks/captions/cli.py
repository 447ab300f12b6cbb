"""`scitune eval captions`: its arguments, a model run's task, a pairs or predictions file's scores."""

from __future__ import annotations

import argparse

from scitune.eval.registry import TaskCLI, report_scored, require


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--pairs", help='the SciCap authors\' layout: {"hypo": [...], "gold": [...]}')
    source.add_argument("--predictions", help="predictions JSONL (`question_id`, `text`), with --references")
    source.add_argument("--model", help="checkpoint folder (any supported model family) or LoRA adapter folder to run on --data")
    parser.add_argument("--references", help="with --predictions: LLaVA records, id -> caption(s) JSON, or JSONL")
    parser.add_argument("--data", help="with --model: LLaVA conversation file whose answers are the captions")
    parser.add_argument(
        "--tokenize",
        default="auto",
        choices=("auto", "whitespace", "simple"),
        help="auto: whitespace for --pairs (pre-tokenised), simple (lower-case, split punctuation) otherwise",
    )
    parser.add_argument(
        "--bleu",
        default="coco",
        choices=("coco", "scicap"),
        help="BLEU convention: coco (pycocoevalcap) or scicap (NLTK corpus_bleu, as the SciCap authors ran it)",
    )
    parser.add_argument("--no-meteor", action="store_true", help="skip METEOR (it starts a Java process)")


def _task(args: argparse.Namespace, samples: list[dict]):
    from scitune.eval.tasks.captions.task import CaptionTask

    tokenizer = args.tokenize if args.tokenize != "auto" else ("whitespace" if args.pairs else "simple")
    metrics = ("BLEU", "ROUGE-L", "CIDEr") + (() if args.no_meteor else ("METEOR",))
    return CaptionTask(samples, tokenizer, args.bleu, metrics)


def build(args: argparse.Namespace):
    from scitune.data.sample import read_samples

    require(args, "data", because="with --model")
    samples = read_samples(args.data)
    return _task(args, samples[: args.limit] if args.limit else samples)


def score(args: argparse.Namespace) -> int:
    from scitune.eval.tasks.captions.scoring import pair_predictions, read_pairs

    task = _task(args, [])
    if args.pairs:
        pairs = read_pairs(args.pairs)
    else:
        require(args, "references", because="with --predictions")
        pairs = pair_predictions(args.predictions, args.references)
    report_scored(task, task.score_pairs(pairs), args.out)
    return 0


CLI = TaskCLI(
    name="captions",
    help="Caption metrics: corpus BLEU-1..4, ROUGE-L, CIDEr, and METEOR when Java is present.",
    example="scitune eval captions --pairs rule_based_captions_with_bleu.json --bleu scicap",
    add_arguments=add_arguments,
    build=build,
    score=score,
    out_help="folder for metrics.json (and predictions with --model)",
    order=30,
)
