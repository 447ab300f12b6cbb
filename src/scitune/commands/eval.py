"""`scitune eval <task>`: score a model or a predictions file, one subcommand per evaluation task.

The subcommands are generated from the task registry (`scitune.eval.registry`): each task folder
declares its arguments, how to build the task for `--model` and how to score its predictions;
this module adds the options every task shares, claims `--out`, and runs the task
(`scitune.eval.runner.run_task`) or its scorer."""

from __future__ import annotations

import argparse
from functools import partial
from pathlib import Path

from scitune.cli import add_command, positive_int
from scitune.errors import ScituneError


def register(subparsers) -> None:
    from scitune.eval.registry import task_clis

    parser = add_command(
        subparsers,
        "eval",
        "Score a model or a predictions file: ScienceQA, figure type, captions.",
        "scitune eval scienceqa --answer-key llava_test_CQM-A.json --predictions preds.jsonl --out runs/eval",
    )
    sub = parser.add_subparsers(dest="eval_command", metavar="TASK", required=True)
    for task_cli in task_clis():
        task_parser = add_command(sub, task_cli.name, task_cli.help, task_cli.example)
        task_cli.add_arguments(task_parser)
        _model_options(task_parser, modes=len(task_cli.modes) > 1)
        task_parser.add_argument("--out", help=task_cli.out_help)
        task_parser.add_argument(
            "--overwrite", action="store_true", help="write into a non-empty --out folder (an earlier eval's included)"
        )
        task_parser.set_defaults(func=partial(run, task_cli))


def _model_options(parser: argparse.ArgumentParser, modes: bool) -> None:
    group = parser.add_argument_group("with --model")
    group.add_argument("--images", help="folder the samples' image paths are relative to")
    if modes:
        group.add_argument(
            "--mode", default="generate", help="generate, likelihood, or both as generate,likelihood (default generate)"
        )
    group.add_argument("--batch-size", type=positive_int, default=8, help="prompts per generation batch (default 8)")
    group.add_argument("--max-new-tokens", type=positive_int, default=64, help="generation length limit (default 64)")
    group.add_argument("--limit", type=positive_int, help="only the first N items (a quick look)")
    group.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default cpu)")
    group.add_argument("--dtype", default="float32", help="float32 (default), bfloat16, float16, auto")
    group.add_argument(
        "--image-placement", default="front", choices=("front", "keep"),
        help="front (as LLaVA trains: <image> moved to the start of its turn; default) or keep",
    )


def run(task_cli, args: argparse.Namespace) -> int:
    """--model: the task through the model in each mode; otherwise the task's own scorer."""
    _claim_out(args, task_cli.inputs)
    if not args.model:
        return task_cli.score(args)
    from scitune.eval.runner import parse_modes

    task = task_cli.build(args)
    modes = parse_modes(args.mode, task_cli.modes) if len(task_cli.modes) > 1 else list(task_cli.modes)
    _run(task, args, modes)
    return 0


_INPUTS = ("problems", "answer_key", "predictions", "references", "data", "pairs", "model", "images")


def _claim_out(args, task_inputs: tuple[str, ...] = ()) -> None:
    """Before any reading or scoring: --out (a folder; nothing is written without it) may not be
    on, over or inside any input (with --problems FILE, also the pid_splits.json and captions.json
    read beside it), and a non-empty folder needs --overwrite (`scitune.io.outputs`)."""
    from scitune.io.outputs import claim_output

    if args.out is None:
        if getattr(args, "model", None):
            raise ScituneError("--out is required with --model (predictions and metrics are written there)")
        return
    inputs = [getattr(args, name, None) for name in _INPUTS + tuple(task_inputs)]
    problems = getattr(args, "problems", None)
    if problems and Path(problems).is_file():
        inputs += [Path(problems).parent / "pid_splits.json", Path(problems).parent / "captions.json"]
    claim_output(args.out, inputs=inputs, overwrite=args.overwrite, kind="dir")


def _run(task, args, modes: list[str]) -> None:
    """Loads --model, runs `task` in `modes` into --out, prints each mode's summary."""
    from scitune.eval.registry import print_failures
    from scitune.eval.runner import run_task
    from scitune.inference import Engine
    from scitune.model.folders import load_for_inference

    model, processor, _ = load_for_inference(args.model, dtype=args.dtype, device=args.device)
    engine = Engine(model, processor, image_root=args.images, image_placement=args.image_placement)
    for run in run_task(task, engine, modes, args.out, args.batch_size, args.max_new_tokens, progress=True):
        print(task.summary(run.result, run.mode))
        print_failures(task.failures(run.result) or [], f"{run.mode}: ")
    print(f"wrote {args.out}")
