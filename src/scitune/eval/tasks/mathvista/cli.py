"""`scitune eval mathvista`: its arguments, a model run's task, a predictions file's scores."""

from __future__ import annotations

import argparse

from scitune.eval.registry import TaskCLI, print_failures


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--problems", required=True, help="MathVista problems, e.g. testmini.json (pid -> record)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--predictions", help="the authors' output .json (with `extraction`) or our predictions .jsonl")
    source.add_argument("--model", help="checkpoint folder (any supported model family) or LoRA adapter folder to run on the problems (--images: their image folder)")
    parser.add_argument(
        "--extraction",
        default="auto",
        choices=("auto", "rules"),
        help="auto: a record's stored `extraction` where it has one, rules otherwise; rules: always from the text",
    )


def build(args: argparse.Namespace):
    from scitune.eval.tasks.mathvista.task import MathVistaTask

    return MathVistaTask.from_file(args.problems, args.limit)


def score(args: argparse.Namespace) -> int:
    """The authors' output file keeps its stored extractions (--extraction auto); the scores are
    written in the authors' layout (metrics.json) with scored.jsonl."""
    from scitune.eval.tasks.mathvista.scoring import score_files, write_results
    from scitune.eval.tasks.mathvista.task import summary_table

    result = score_files(args.problems, args.predictions, extraction=args.extraction)
    print(summary_table(result))
    by_rules = sum(item.extracted_by == "rules" for item in result.items)
    print(f"answers extracted by rules: {by_rules}, stored extractions used: {result.count - by_rules}")
    print_failures([{"question_id": item.pid} for item in result.failures])
    if result.regrouped:
        print(f"{len(result.regrouped)} problems grouped by the predictions file's own metadata (differs from --problems)")
    if args.out:
        print(f"wrote {write_results(result, args.out)}")
    return 0


CLI = TaskCLI(
    name="mathvista",
    help="MathVista accuracy by the authors' rules, overall and by question type, answer type, source, skill, ...",
    example="scitune eval mathvista --problems testmini.json --predictions output.json --out runs/eval-mathvista",
    add_arguments=add_arguments,
    build=build,
    score=score,
    out_help="folder for metrics.json (the authors' scores layout) and scored.jsonl",
    order=40,
)
