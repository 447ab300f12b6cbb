"""`scitune ingest PATH... --out DIR`: your own papers (LaTeX sources or PDFs) or arXiv's bulk
source tars -> stage-1 data in the SciCap challenge layout that `scitune data scicap` reads.
Re-running the same command resumes; `--workers N` reads papers in N processes, `--engine ray`
as Ray Data tasks."""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

from scitune.cli import add_command, positive_int
from scitune.errors import ScituneError

EXAMPLE = ("scitune ingest papers/ --out data/mine && scitune data scicap --input data/mine/train.json "
           "--images data/mine/images --out data/align.json")
EXTRA_HINT = 'scitune ingest needs the "ingest" extra: pip install -e ".[ingest]" ({missing} is not installed)'


def register(subparsers) -> None:
    p = add_command(subparsers, "ingest", "LaTeX sources / PDFs of your papers, or arXiv bulk tars -> SciCap layout "
                    "(stage-1 data).", EXAMPLE)
    p.add_argument("paths", nargs="+", metavar="PATH", help="a LaTeX source folder, an arXiv-style .tar.gz, a PDF, "
                   "an arXiv bulk tar (arXiv_src_2301_001.tar), or a folder of those; files may be fsspec URLs "
                   "(s3://bucket/arXiv_src_*.tar)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (new, empty, or an earlier ingest "
                   "output, which the run resumes)")
    p.add_argument("--overwrite", action="store_true", help="start again: write into a non-empty folder that ingest "
                   "did not create, or replace an earlier ingest output instead of resuming it")
    p.add_argument("--workers", type=positive_int, default=1, help="papers read at once, each in its own process "
                   "(default 1)")
    p.add_argument("--engine", choices=("local", "ray"), default="local", help="local (this machine, --workers "
                   "processes) or ray (Ray Data tasks on the Ray cluster of RAY_ADDRESS / `ray job submit`, else a "
                   "local Ray; needs the ray extra)")
    p.add_argument("--metadata", metavar="FILE", help="arXiv's metadata snapshot (arxiv-metadata-oai-snapshot.json, "
                   "JSON lines): each paper's licence and categories")
    p.add_argument("--categories", metavar="CAT,...", help="with --metadata: only papers in these categories "
                   "(astro-ph matches astro-ph.GA)")
    p.add_argument("--licence", metavar="NAME,...", help="with --metadata: only papers under these licences "
                   "(cc-by, cc-by-sa, cc-by-nc-sa, cc0, arxiv-nonexclusive, ...)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split by paper (default 0)")
    p.add_argument("--split", default="80,10,10", metavar="TRAIN,VAL,TEST",
                   help="split ratios by paper (default 80,10,10)")
    p.add_argument("--dpi", type=int, default=150, help="resolution of figures rendered from PDF (default 150)")
    p.add_argument("--classify", metavar="MODEL", help="a trained scitune checkpoint: fill the figure type with its "
                   "most likely SciCap type (likelihood of each type name), keeping the probability")
    p.add_argument("--against", nargs="+", metavar="EVAL", help="evaluation sets to check the training split "
                   "against (ScienceQA folder, SciCap JSON, corpus folder, LLaVA JSON; PATH=IMAGES)")
    p.add_argument("--eval-split", default="test", help="split of the evaluation folders to compare (default test)")
    p.add_argument("--fail-on-overlap", action="store_true", help="write no split files and exit 1 when --against finds overlap or cannot check an image")
    p.add_argument("--list", type=int, default=20, help="list at most this many unpaired figures / overlaps")
    p.set_defaults(func=run)


def _ratios(value: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(v) for v in value.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3 or not all(math.isfinite(v) and v >= 0 for v in parts) or sum(parts) <= 0:
        raise ScituneError(f"--split: expected three finite, non-negative numbers TRAIN,VAL,TEST with a positive sum, "
                           f"got {value!r}")
    return parts  # type: ignore[return-value]


def _classifier(model_dir: str):
    """figure rows -> (most likely SciCap type, its probability) from the model's likelihood of
    each type name as the answer to the figure-type question."""

    from scitune.data.corpus.vocab import FIGURE_TYPES
    from scitune.data.instructions import FIGURE_TYPE
    from scitune.inference import Engine, EvalItem
    from scitune.model import load_model

    model, processor = load_model(model_dir)
    engine = Engine(model, processor)  # images are given by absolute path

    def classify(rows: list[dict]) -> list[tuple[str, float]]:
        out = []
        with tempfile.TemporaryDirectory(prefix="scitune-classify-") as tmp:
            for row in rows:
                path = Path(tmp) / row["file_name"]
                path.write_bytes(row["png"])
                item = EvalItem(row["image_id"], f"<image>\n{FIGURE_TYPE[0]}", (str(path),), tuple(FIGURE_TYPES))
                scores = engine.score_options(item)
                top = max(scores)
                weights = [math.exp(s - top) for s in scores]
                best = scores.index(top)
                out.append((FIGURE_TYPES[best], weights[best] / sum(weights)))
        return out

    return classify


def run(args: argparse.Namespace) -> int:
    try:
        import pylatexenc  # noqa: F401
        import pypdfium2  # noqa: F401
    except ImportError as err:
        raise ScituneError(EXTRA_HINT.format(missing=err.name)) from None
    from scitune.data.ingest import ingest
    from scitune.data.ingest.arxiv import parse_list
    ratios = _ratios(args.split)
    categories, licences = parse_list(args.categories, "--categories"), parse_list(args.licence, "--licence")
    classify = _classifier(args.classify) if args.classify else None
    report = ingest(args.paths, args.out, seed=args.seed, ratios=ratios, dpi=args.dpi, overwrite=args.overwrite,
                    classify=classify, against=args.against, fail_on_overlap=args.fail_on_overlap,
                    eval_split=args.eval_split, workers=args.workers, engine=args.engine, metadata=args.metadata,
                    categories=categories, licences=licences)
    counts = report["counts"]
    if report["unpaired"]:
        print(f"not paired, or noted on the sources ({counts.get('unpaired', 0) + counts.get('source_notes', 0)}):")
        for u in report["unpaired"][: args.list]:
            print(f"  {u['where']}: {u['reason']}")
    for failure in report["failed"][: args.list]:
        print(f"failed: {failure['reason']}")
    if counts["duplicates"]:
        print(f"read once: {counts['duplicates']} papers given more than once (same content); see ingest.json")
    if counts["filtered"]:
        print(f"left out by --categories/--licence: {counts['filtered']} papers")
    if counts["from_earlier_runs"]:
        print(f"resumed: {counts['from_earlier_runs']} papers were read by an earlier run into {args.out}")
    if report["pdfs_with_source"]:
        print(f"read the LaTeX source instead of the PDF for {len(report['pdfs_with_source'])} papers given both ways")
    if report["overlaps"]:
        from scitune.data.ingest.overlap import listing

        print(f"overlap with the evaluation sets ({len(report['overlaps'])}):")
        print(listing(report["overlaps"], args.list))
    if report["unchecked"]:
        from scitune.data.ingest.overlap import unchecked_listing

        print(f"not checked for overlap ({len(report['unchecked'])}):")
        print(unchecked_listing(report["unchecked"], args.list))
    if not report["written"]:
        why = "overlaps the evaluation sets" if report["overlaps"] else "could not be fully checked against the evaluation sets"
        print(f"nothing written to {args.out}: the training split {why} (--fail-on-overlap)")
        return 1
    if counts["failed_papers"] and not counts["papers"]:
        # one bad paper never stops a run, but a run that read none has nothing to give
        print(f"no paper could be read: {counts['failed_papers']} failed (listed in {Path(args.out) / 'ingest.json'})")
        return 1
    s, sp = counts["split_figures"], counts["split_papers"]
    print(f"wrote {counts['figures']} figures from {counts['papers']} papers to {args.out} "
          f"(train {s['train']}/{sp['train']} papers, val {s['val']}/{sp['val']}, test {s['test']}/{sp['test']}); "
          f"{counts['unpaired']} not paired, {counts['without_mentions']} without mentions, "
          f"{counts['source_notes']} notes on sources, "
          f"{counts['failed_papers']} papers failed (listed in {Path(args.out) / 'ingest.json'})")
    return 0
