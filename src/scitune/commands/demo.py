"""`scitune demo`: the whole SciTune pipeline on the built-in corpus, on a CPU, with a report."""

from __future__ import annotations

import argparse
from pathlib import Path

from scitune.cli import add_command


def register(subparsers) -> None:
    parser = add_command(
        subparsers, "demo",
        "Run the whole pipeline (corpus, both stages, the ablation, evaluation, report) on CPU with no downloads.",
        "scitune demo --out runs/demo            (about 8-11 minutes on 2 cores)\n  scitune demo --quick --out runs/quick",
    )
    parser.add_argument("--out", default="runs/demo", help="output directory (default runs/demo)")
    parser.add_argument("--preset", default="tiny", choices=("tiny", "smollm2-135m"))
    parser.add_argument("--quick", action="store_true", help="the same path at reduced size (about 3 minutes)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--overwrite", action="store_true", help="write into a non-empty folder (an earlier demo's included)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:

    from scitune.demo import run_demo, serve_command, summary_table

    summary = run_demo(args.out, preset=args.preset, quick=args.quick, seed=args.seed, overwrite=args.overwrite)
    print()
    print(summary_table(summary))
    print(f"\nreport: {Path(args.out) / 'report.html'}\nmetrics: {Path(args.out) / 'metrics.json'}")
    print(f"\nask the models about a figure (API and page at http://127.0.0.1:8000/):\n  {serve_command(args.out)}")
    return 0
