"""`scitune corpus build`: write the built-in science figure corpus (SciCap challenge and
ScienceQA layouts, plus the figures' data and a manifest)."""

from __future__ import annotations

import argparse
import time

from scitune.cli import add_command


def register(subparsers) -> None:
    corpus = add_command(subparsers, "corpus", "the built-in science figure corpus",
                         "scitune corpus build --out runs/corpus --figures 200 --seed 0")
    actions = corpus.add_subparsers(dest="corpus_command", metavar="ACTION")
    build = add_command(
        actions, "build",
        "render figures of SciCap's five types and write them in the SciCap challenge and ScienceQA layouts",
        "scitune corpus build --out runs/corpus --figures 200 --seed 0 --image-size 128")
    build.add_argument("--out", required=True, metavar="DIR", help="output folder (new or empty)")
    build.add_argument("--overwrite", action="store_true", help="write into a non-empty folder (an earlier corpus included)")
    build.add_argument("--figures", type=int, default=200, metavar="N", help="number of figures (default 200)")
    build.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    build.add_argument("--image-size", type=int, default=128, metavar="PX",
                       help="square image side in pixels (default 128)")
    build.add_argument("--workers", type=int, default=None, metavar="W",
                       help="render processes (default: 2 when the corpus is large enough, else 1)")
    build.add_argument("--papers", action="store_true",
                       help="also write the figures as small fake papers (LaTeX sources and two-column PDFs) "
                            "under DIR/papers, for `scitune ingest` (needs the ingest extra)")
    build.add_argument("--figures-per-paper", type=int, default=4, metavar="K", help="figures per paper (default 4)")
    build.set_defaults(func=run)
    corpus.set_defaults(func=lambda args: _usage(corpus))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run(args) -> int:

    from scitune.data.corpus import build_corpus

    start = time.perf_counter()
    manifest = build_corpus(args.out, figures=args.figures, seed=args.seed, image_size=args.image_size,
                            workers=args.workers, overwrite=args.overwrite)
    seconds = time.perf_counter() - start
    counts = manifest["counts"]
    print(f"wrote {args.out} (corpus version {manifest['version']}, seed {manifest['seed']}) in {seconds:.1f} s")
    print(f"{'split':<6} {'scicap':>7} {'scienceqa':>10}")
    for split in ("train", "val", "test"):
        print(f"{split:<6} {counts['scicap'][split]:>7} {counts['scienceqa'][split]:>10}")
    print("categories: " + "  ".join(f"{k} {v}" for k, v in counts["scienceqa_category"].items()))
    if args.papers:
        from scitune.data.corpus.papers import write_papers

        write_papers(args.out, figures_per_paper=args.figures_per_paper)
    return 0
