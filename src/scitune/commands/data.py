"""`scitune data ...`: build instruction files from the real datasets, and validate sample files."""

from __future__ import annotations

import argparse
from pathlib import Path

from scitune.cli import HelpFormatter, add_command, nonnegative_int, positive_int
from scitune.errors import ScituneError

EXAMPLE = "scitune data scicap --input scicap/train.json --images scicap/images --out runs/data/align.json"


def _sub(subparsers, name: str, help: str, example: str) -> argparse.ArgumentParser:
    return subparsers.add_parser(
        name, help=help, description=help, epilog=f"example:\n  {example}", formatter_class=HelpFormatter
    )


def register(subparsers) -> None:
    parser = add_command(subparsers, "data", "Build instruction files from datasets; validate sample files.", EXAMPLE)
    commands = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])

    p = _sub(commands, "scicap", "SciCap figures -> stage-1 instructions (LLaVA JSON).", EXAMPLE)
    p.add_argument("--input", required=True, help="challenge-layout JSON, an original per-figure JSON, a folder of "
                   "those, or a `scitune ingest` output folder")
    p.add_argument("--split", default="train", choices=("train", "val", "test"),
                   help="with an ingest output folder as --input: the split to read (default train)")
    p.add_argument("--images", required=True, help="folder holding the figure images (checked unless --no-check)")
    p.add_argument("--out", required=True, help="output .json or .jsonl")
    p.add_argument("--task", default="describe", choices=("describe", "figure-type", "figure-type-choice", "caption"))
    p.add_argument("--fields", default="caption,type,ocr,mention", help="describe target fields, comma-separated "
                   "(caption,type,ocr,paragraph,mention; default: CTOM, the paper's best)")
    p.add_argument("--keep-figure-word", action="store_true", help='do not replace "Figure N"/"Fig. N" by the figure type')
    p.add_argument("--seed", type=nonnegative_int, default=0, help="seed for the choice of instruction phrasing")
    p.add_argument("--no-check", action="store_true", help="skip validating the written file")
    _overwrite(p)
    p.set_defaults(func=run_scicap)

    p = _sub(commands, "vistext", "VisText charts -> captioning samples.",
             "scitune data vistext --input vistext/data/data_train.json --images vistext/data/images --out vistext.json")
    p.add_argument("--input", required=True, help="a VisText data_<split>.json")
    p.add_argument("--images", required=True, help="the release's images folder (<img_id>.png)")
    p.add_argument("--out", required=True)
    p.add_argument("--level", default="L2L3", choices=("L1", "L2L3", "both"))
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("--no-check", action="store_true")
    _overwrite(p)
    p.set_defaults(func=run_vistext)

    p = _sub(commands, "arxivcap", "ArxivCap papers -> captioning samples.",
             "scitune data arxivcap --input arXiv_src_2112_060.parquet --images arxivcap/images --out arxivcap.json")
    p.add_argument("--input", required=True, help="a paper file (.parquet, .json or .jsonl)")
    p.add_argument("--images", required=True, help="image folder: inline images are written here")
    p.add_argument("--out", required=True)
    p.add_argument("--whole-caption", action="store_true", help="always use the whole caption, not sub-captions")
    p.add_argument("--seed", type=nonnegative_int, default=0)
    p.add_argument("--no-check", action="store_true")
    _overwrite(p)
    p.set_defaults(func=run_arxivcap)

    p = _sub(commands, "scienceqa", "ScienceQA -> stage-2 instructions in a LLaVA prompt format.",
             "scitune data scienceqa --root ScienceQA/data/scienceqa --split test --format CQM-A --out sqa_test.json")
    p.add_argument("--root", required=True, help="the original release folder (problems.json, pid_splits.json, images/) "
                   "or the parquet release folder (data/<split>-*.parquet)")
    p.add_argument("--problems", help="a problems JSON to use instead of <root>/problems.json")
    p.add_argument("--captions", help="captions.json (default: <root>/captions.json when present)")
    p.add_argument("--split", default="test")
    p.add_argument("--format", default="CQM-A", help="CQM-A (LLaVA-1.5's published layout) or a LLaVA-1 format "
                   "such as QCM-LEPA, QCM-LEA, QCM-ALE, QCM-A")
    p.add_argument("--use-caption", action="store_true", help="append the image caption to the context")
    p.add_argument("--orders", type=positive_int, default=1, help="training augmentation: each problem also in up to N-1 "
                   "shuffled option orders (ids <pid>-order<k>); keep 1 for evaluation files")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="seed for the shuffled option orders")
    p.add_argument("--images-out", help="parquet release: where to write the images (default: <out dir>/images/<split>)")
    p.add_argument("--out", required=True)
    _overwrite(p)
    p.set_defaults(func=run_scienceqa)

    p = _sub(commands, "validate", "Report every bad record of a sample file; exit 1 when any is found.",
             "scitune data validate runs/data/align.json --images scicap/images")
    p.add_argument("file", help="LLaVA .json or .jsonl sample file")
    p.add_argument("--images", help="image root the samples' image paths are relative to")
    p.add_argument("--tokenizer", help="tokenizer folder (a checkpoint); with --max-length, checks the tokenized length")
    p.add_argument("--max-length", type=positive_int)
    p.add_argument("--image-tokens", type=positive_int, default=576, help="tokens per image in the model (576 for CLIP ViT-L/14-336)")
    p.add_argument("--chat-template", help="template name (plain, vicuna_v1, llama2, chatml, gemma, idefics); default: the tokenizer's")
    p.add_argument("--image-placement", default="front", choices=("front", "keep"),
                   help="front (LLaVA's: <image> moved to the start of its turn; default) or keep")
    p.add_argument("--list", type=nonnegative_int, default=50, help="list at most this many problems (default 50)")
    p.set_defaults(func=run_validate)

    p = _sub(commands, "overlap", "Leakage guard: training figures/captions that also occur in evaluation sets.",
             "scitune data overlap data/align.json --images data/mine/images --against ScienceQA data/corpus --fail")
    p.add_argument("train", help="training file: LLaVA JSON/JSONL, a SciCap-layout JSON, or an ingest output folder")
    p.add_argument("--images", help="image folder of the training file (default: next to it)")
    p.add_argument("--against", nargs="+", required=True, metavar="EVAL", help="evaluation sets: a ScienceQA folder, "
                   "a SciCap JSON or folder, a corpus folder, a LLaVA JSON; PATH=IMAGES gives an image folder")
    p.add_argument("--split", default="test", help="split of the evaluation folders (default test)")
    p.add_argument("--train-split", default="train", help="split of a training folder (default train)")
    p.add_argument("--hash-distance", type=int, default=4, help="images within this many pHash bits overlap (default 4)")
    p.add_argument("--ngram", type=int, default=8, help="word n-gram length for texts (default 8)")
    p.add_argument("--min-share", type=float, default=0.5, help="texts sharing this share of n-grams overlap (default 0.5)")
    p.add_argument("--no-images", action="store_true", help="compare texts only")
    p.add_argument("--out", help="write the report as JSON here: {overlaps, unchecked, counts}")
    p.add_argument("--fail", action="store_true", help="exit 1 when any overlap is found or any image could not be checked")
    p.add_argument("--list", type=int, default=50)
    _overwrite(p)
    p.set_defaults(func=run_overlap)


def _overwrite(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file")


def _claim(args, *inputs: str | None) -> None:
    """Before any work: --out may not be on, over or inside an input, nor replace an existing
    file without --overwrite (`scitune.io.outputs`)."""
    from scitune.io.outputs import claim_output

    claim_output(args.out, inputs=inputs, overwrite=args.overwrite, kind="file")


def _finish(samples, out: str, images: str | None, check: bool) -> int:
    from scitune.data.sample import write_samples
    from scitune.data.validate import validate_samples

    if not samples:
        raise ScituneError(f"--out {out}: no samples to write (the input holds no records)")
    path = write_samples(samples, out)
    print(f"wrote {len(samples)} samples to {path}")
    if check and images is not None:
        report = validate_samples(samples, images)
        if not report.ok:
            print(report.listing(limit=20))
            print(report.summary_table())
            return 1
        print(f"all {len(samples)} samples valid against {images}")
    return 0


def run_scicap(args) -> int:
    from scitune.data.scicap import build_instructions, read_scicap

    _claim(args, args.input, args.images)
    records = read_scicap(args.input, split=args.split)
    fields = [f.strip() for f in args.fields.split(",") if f.strip()]
    samples = build_instructions(
        records, task=args.task, fields=fields, seed=args.seed, replace_figure_word=not args.keep_figure_word
    )
    return _finish(samples, args.out, args.images, not args.no_check)


def run_vistext(args) -> int:
    from scitune.data.vistext import build_vistext_samples, read_vistext

    _claim(args, args.input, args.images)
    samples = build_vistext_samples(read_vistext(args.input), level=args.level, seed=args.seed)
    return _finish(samples, args.out, args.images, not args.no_check)


def run_arxivcap(args) -> int:
    from scitune.data.arxivcap import build_arxivcap_samples, export_images, read_arxivcap

    from scitune.io.outputs import refuse_overlap

    _claim(args, args.input)
    refuse_overlap(args.images, [args.input], "--images")  # images are written there
    figures = read_arxivcap(args.input)
    written = export_images(figures, args.images)
    if written:
        print(f"wrote {written} images to {args.images}")
    samples = build_arxivcap_samples(figures, use_sub_caption=not args.whole_caption, seed=args.seed)
    return _finish(samples, args.out, args.images, not args.no_check)


def run_scienceqa(args) -> int:
    from scitune.data.sample import write_samples
    from scitune.data.scienceqa import build_scienceqa_samples, export_images, read_problems
    from scitune.io.outputs import claim_output, refuse_overlap

    inputs = [args.root, args.problems, args.captions]
    _claim(args, *inputs)
    if args.images_out:
        refuse_overlap(args.images_out, inputs, "--images-out")
    problems = read_problems(args.problems or args.root, split=args.split, captions=args.captions)
    if not problems:
        raise ScituneError(f"{args.problems or args.root}: no problems in split {args.split!r}")
    if any(p.get("image_bytes") for p in problems):
        image_root = Path(args.images_out or Path(args.out).parent / "images" / args.split)
        # images of a parquet release are written there: an earlier export only with --overwrite
        claim_output(image_root, inputs=inputs, overwrite=args.overwrite, kind="dir", flag="--images-out")
        print(f"wrote {export_images(problems, image_root)} images to {image_root}")
    samples = build_scienceqa_samples(problems, format=args.format, use_caption=args.use_caption, orders=args.orders, seed=args.seed)
    path = write_samples(samples, args.out)
    with_image = sum("image" in s for s in samples)
    print(f"wrote {len(samples)} samples ({with_image} with an image) in format {args.format} to {path}")
    if with_image:
        print(f"image paths are relative to the split's image folder (<root>/images/{args.split} in the original release)")
    return 0


def run_validate(args) -> int:
    from scitune.data.validate import validate_file

    if (args.tokenizer is None) != (args.max_length is None):
        raise ScituneError("--tokenizer and --max-length go together (the length check needs both)")
    renderer = None
    if args.tokenizer:
        from transformers import AutoTokenizer

        from scitune.prompting import Renderer

        tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
        renderer = Renderer(
            tokenizer, args.chat_template, args.max_length, args.image_placement, image_tokens=args.image_tokens
        )
    report = validate_file(args.file, args.images, renderer)
    if report.n_samples == 0:
        raise ScituneError(f"{args.file}: no samples to validate")
    if report.problems:
        print(report.listing(limit=args.list))
    print(report.summary_table())
    return 0 if report.ok else 1


def run_overlap(args) -> int:
    from scitune.data.ingest.overlap import find_overlaps, listing, load_items, unchecked_listing, unchecked_summary
    from scitune.io.atomic import write_json

    if args.hash_distance < 0 or args.ngram < 1 or not 0 < args.min_share <= 1:
        raise ScituneError("--hash-distance must be >= 0, --ngram >= 1, --min-share in (0, 1]")
    if args.out:
        inputs = [args.train, args.images, *(part for spec in args.against for part in (spec, *spec.split("=", 1)))]
        _claim(args, *inputs)
    train = load_items(args.train, args.train_split, args.images)
    evals = [item for spec in args.against for item in load_items(spec, args.split)]
    overlaps = find_overlaps(train, evals, hash_distance=args.hash_distance, ngram=args.ngram,
                             min_share=args.min_share, compare_images=not args.no_images)
    unchecked = getattr(overlaps, "unchecked", [])
    kinds = {k: sum(o["kind"] == k for o in overlaps) for k in ("image", "caption")}
    if args.out:
        write_json(args.out, {"overlaps": list(overlaps), "unchecked": unchecked,
                              "counts": {"train": len(train), "eval": len(evals), **kinds, "unchecked": len(unchecked)}},
                   indent=1)
    if overlaps:
        print(listing(overlaps, args.list))
    if unchecked:
        print(unchecked_listing(unchecked, args.list))
    print(f"{len(train)} training items vs {len(evals)} evaluation items: "
          f"{kinds['image']} image and {kinds['caption']} caption overlaps"
          + (f"; {len(unchecked)} image(s) could not be checked" if unchecked else ""))
    if args.fail and unchecked and not overlaps:
        raise ScituneError(f"--fail: {unchecked_summary(unchecked)}; the guard cannot say there is no overlap")
    return 1 if (overlaps or unchecked) and args.fail else 0
