"""`scitune eval figure-type`: its arguments, a model run's task, a predictions file's scores."""

from __future__ import annotations

import argparse

from scitune.eval.registry import TaskCLI, report_scored, require


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--predictions", help="predictions JSONL (`question_id`, `text`)")
    source.add_argument("--model", help="checkpoint folder (any supported model family) or LoRA adapter folder to run on --data")
    parser.add_argument("--references", help="with --predictions: id -> label (JSON object, JSONL or LLaVA records)")
    parser.add_argument("--data", help="with --model: LLaVA conversation file whose answers are the figure types")
    parser.add_argument("--labels", help="comma-separated label set (default: the labels of the references)")


def _labels(args: argparse.Namespace) -> list[str] | None:
    return [label.strip() for label in args.labels.split(",") if label.strip()] if args.labels else None


def build(args: argparse.Namespace):
    from scitune.data.sample import read_samples
    from scitune.eval.tasks.figure_type.task import FigureTypeTask

    require(args, "data", because="with --model")
    samples = read_samples(args.data)
    return FigureTypeTask(samples[: args.limit] if args.limit else samples, _labels(args), source=args.data)


def score(args: argparse.Namespace) -> int:
    from scitune.eval.predictions import read_predictions
    from scitune.eval.references import read_references
    from scitune.eval.tasks.figure_type.task import FigureTypeTask

    labels = _labels(args)
    require(args, "references", because="with --predictions")
    references = [
        {"id": k, "conversations": [{"from": "gpt", "value": v[0]}]} for k, v in read_references(args.references).items()
    ]
    task = FigureTypeTask(references, labels, source=args.references)
    rows = [{"question_id": str(r["question_id"]), "text": r["text"]} for r in read_predictions(args.predictions)]
    report_scored(task, task.score(rows, "generate"), args.out)
    return 0


CLI = TaskCLI(
    name="figure-type",
    help="Figure-type accuracy, macro-F1, per-type precision/recall, confusion matrix (JSON + PNG).",
    example="scitune eval figure-type --predictions preds.jsonl --references scicap_types.json --out runs/eval-types",
    add_arguments=add_arguments,
    build=build,
    score=score,
    out_help="folder for metrics.json, confusion_matrix.json/.png (and predictions)",
    modes=("generate", "likelihood"),
    order=20,
)
