"""`scitune eval scienceqa`: its arguments, a model run's task, a predictions file's scores."""

from __future__ import annotations

import argparse

from scitune.eval.registry import TaskCLI, report_scored


def add_arguments(parser: argparse.ArgumentParser) -> None:
    key = parser.add_mutually_exclusive_group(required=True)
    key.add_argument("--problems", help="ScienceQA problems.json (or its release folder); subject and grade columns")
    key.add_argument("--answer-key", help="LLaVA conversation file, e.g. llava_test_CQM-A.json (no subject/grade)")
    parser.add_argument("--split", default="test", help="split of --problems (default test)")
    parser.add_argument("--format", default="CQM-A", help="prompt format with --problems and --model (default CQM-A)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--predictions", help="predictions JSONL (ours, LLaVA's) or ScienceQA results JSON")
    source.add_argument("--model", help="checkpoint folder (any supported model family) or LoRA adapter folder to run")
    parser.add_argument(
        "--source",
        default="auto",
        choices=("auto", "results", "outputs"),
        help="ScienceQA results JSON: score stored `results` indices or parse raw `outputs` (auto: results)",
    )


def build(args: argparse.Namespace):
    from scitune.eval.tasks.scienceqa.task import ScienceQATask

    if args.problems:
        from scitune.data.scienceqa import read_problems

        return ScienceQATask.from_problems(read_problems(args.problems, split=args.split), args.format, args.limit)
    return ScienceQATask.from_answer_key(args.answer_key, args.limit)


def score(args: argparse.Namespace) -> int:
    """Every problem of the key is scored (ScienceQA results JSON holds option indices, so this
    reads predictions itself rather than through `ScienceQATask.score`)."""
    from scitune.eval.tasks.scienceqa import scoring

    task = build(args)
    predictions = scoring.read_scienceqa_predictions(args.predictions, args.source)
    report_scored(task, scoring.score(task.key, predictions, source=args.predictions), args.out)
    return 0


CLI = TaskCLI(
    name="scienceqa",
    help="ScienceQA accuracy by category, ScienceQA's official columns and the SciTune paper's.",
    example=(
        "scitune eval scienceqa --problems data/scienceqa --split test --model runs/instruct/final "
        "--images data/scienceqa/images/test --mode generate,likelihood --out runs/eval-sqa"
    ),
    add_arguments=add_arguments,
    build=build,
    score=score,
    out_help="folder for metrics.json, parse_failures.jsonl (and predictions with --model)",
    modes=("generate", "likelihood"),
    order=10,
)
