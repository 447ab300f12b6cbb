"""`scitune train RECIPE.yaml [key=value ...] [--out DIR] [--resume]`."""

from __future__ import annotations

import argparse

from scitune.cli import add_command


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "train",
        "Run a recipe's stages (align, instruct): resumable, logged, distributed under accelerate.",
        "scitune train recipes/tiny-cpu.yaml align.lr=1e-3 run.seed=1 --out runs/tiny\n"
        "  accelerate launch --multi_gpu --num_processes 8 -m scitune train recipes/scitune-llama2-13b.yaml",
    )
    parser.add_argument("recipe", help="YAML recipe (see recipes/)")
    parser.add_argument("overrides", nargs="*", help="key=value settings: model.preset=tiny, align.lr=1e-3, run.seed=1")
    parser.add_argument("--out", help="run directory (overrides run.out)")
    parser.add_argument("--resume", action="store_true", help="continue from the run directory's last checkpoints")
    parser.add_argument("--overwrite", action="store_true",
                        help="start over in a run directory that holds an earlier run (or other files)")
    parser.add_argument("--stage", action="append", help="run only this stage (repeatable)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, hooks=()) -> int:
    """`hooks`: called after every training step (`scitune.train.loop.StepHook`), for tests."""
    from scitune.config import load_recipe
    from scitune.train.loop import TrainingInterrupted
    from scitune.train.run import run_recipe

    overrides = list(args.overrides) + ([f"run.out={args.out}"] if args.out else [])
    recipe = load_recipe(args.recipe, overrides)
    try:
        results = run_recipe(recipe, resume=args.resume, stages=args.stage, hooks=hooks, overwrite=args.overwrite)
    except TrainingInterrupted as stop:
        print(f"scitune: interrupted; checkpoint {stop.checkpoint}; continue with --resume")
        return 130
    for result in results:
        loss = "n/a" if result.final_loss is None else f"{result.final_loss:.4f}"
        print(f"[{result.name}] {result.steps} steps, {result.samples} samples, final loss {loss}, {result.seconds:.1f}s -> {result.directory / 'final'}")
    return 0
