"""`scitune eval scienceqa|figure-type|captions|mathvista`: score a model or a predictions file.

Parses arguments, builds the task (`scitune.eval.tasks`), runs it (`scitune.eval.runner`), prints."""

from __future__ import annotations

import argparse
from pathlib import Path

from scitune.cli import add_command, positive_int
from scitune.errors import ScituneError


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "eval",
        "Score a model or a predictions file: ScienceQA, figure type, captions.",
        "scitune eval scienceqa --answer-key llava_test_CQM-A.json --predictions preds.jsonl --out runs/eval",
    )
    sub = parser.add_subparsers(dest="eval_command", metavar="TASK", required=True)

    sqa = add_command(
        sub,
        "scienceqa",
        "ScienceQA accuracy by category, ScienceQA's official columns and the SciTune paper's.",
        "scitune eval scienceqa --problems data/scienceqa --split test --model runs/instruct/final "
        "--images data/scienceqa/images/test --mode generate,likelihood --out runs/eval-sqa",
    )
    key = sqa.add_mutually_exclusive_group(required=True)
    key.add_argument("--problems", help="ScienceQA problems.json (or its release folder); subject and grade columns")
    key.add_argument("--answer-key", help="LLaVA conversation file, e.g. llava_test_CQM-A.json (no subject/grade)")
    sqa.add_argument("--split", default="test", help="split of --problems (default test)")
    sqa.add_argument("--format", default="CQM-A", help="prompt format with --problems and --model (default CQM-A)")
    source = sqa.add_mutually_exclusive_group(required=True)
    source.add_argument("--predictions", help="predictions JSONL (ours, LLaVA's) or ScienceQA results JSON")
    source.add_argument("--model", help="checkpoint directory (standard HF Llava) to run")
    sqa.add_argument(
        "--source",
        default="auto",
        choices=("auto", "results", "outputs"),
        help="ScienceQA results JSON: score stored `results` indices or parse raw `outputs` (auto: results)",
    )
    _model_options(sqa, modes=True)
    sqa.add_argument("--out", help="folder for metrics.json, parse_failures.jsonl (and predictions with --model)")
    _overwrite(sqa)
    sqa.set_defaults(func=run_scienceqa)

    fig = add_command(
        sub,
        "figure-type",
        "Figure-type accuracy, macro-F1, per-type precision/recall, confusion matrix (JSON + PNG).",
        "scitune eval figure-type --predictions preds.jsonl --references scicap_types.json --out runs/eval-types",
    )
    fsource = fig.add_mutually_exclusive_group(required=True)
    fsource.add_argument("--predictions", help="predictions JSONL (`question_id`, `text`)")
    fsource.add_argument("--model", help="checkpoint directory to run on --data")
    fig.add_argument("--references", help="with --predictions: id -> label (JSON object, JSONL or LLaVA records)")
    fig.add_argument("--data", help="with --model: LLaVA conversation file whose answers are the figure types")
    fig.add_argument("--labels", help="comma-separated label set (default: the labels of the references)")
    _model_options(fig, modes=True)
    fig.add_argument("--out", help="folder for metrics.json, confusion_matrix.json/.png (and predictions)")
    _overwrite(fig)
    fig.set_defaults(func=run_figure_type)

    cap = add_command(
        sub,
        "captions",
        "Caption metrics: corpus BLEU-1..4, ROUGE-L, CIDEr, and METEOR when Java is present.",
        "scitune eval captions --pairs rule_based_captions_with_bleu.json --bleu scicap",
    )
    csource = cap.add_mutually_exclusive_group(required=True)
    csource.add_argument("--pairs", help='the SciCap authors\' layout: {"hypo": [...], "gold": [...]}')
    csource.add_argument("--predictions", help="predictions JSONL (`question_id`, `text`), with --references")
    csource.add_argument("--model", help="checkpoint directory to run on --data")
    cap.add_argument("--references", help="with --predictions: LLaVA records, id -> caption(s) JSON, or JSONL")
    cap.add_argument("--data", help="with --model: LLaVA conversation file whose answers are the captions")
    cap.add_argument(
        "--tokenize",
        default="auto",
        choices=("auto", "whitespace", "simple"),
        help="auto: whitespace for --pairs (pre-tokenised), simple (lower-case, split punctuation) otherwise",
    )
    cap.add_argument(
        "--bleu",
        default="coco",
        choices=("coco", "scicap"),
        help="BLEU convention: coco (pycocoevalcap) or scicap (NLTK corpus_bleu, as the SciCap authors ran it)",
    )
    cap.add_argument("--no-meteor", action="store_true", help="skip METEOR (it starts a Java process)")
    _model_options(cap, modes=False)
    cap.add_argument("--out", help="folder for metrics.json (and predictions with --model)")
    _overwrite(cap)
    cap.set_defaults(func=run_captions)

    mv = add_command(
        sub,
        "mathvista",
        "MathVista accuracy by the authors' rules, overall and by question type, answer type, source, skill, ...",
        "scitune eval mathvista --problems testmini.json --predictions output.json --out runs/eval-mathvista",
    )
    mv.add_argument("--problems", required=True, help="MathVista problems, e.g. testmini.json (pid -> record)")
    msource = mv.add_mutually_exclusive_group(required=True)
    msource.add_argument(
        "--predictions", help="the authors' output .json (with `extraction`) or our predictions .jsonl"
    )
    msource.add_argument("--model", help="checkpoint directory to run on the problems (--images: their image folder)")
    mv.add_argument(
        "--extraction",
        default="auto",
        choices=("auto", "rules"),
        help="auto: a record's stored `extraction` where it has one, rules otherwise; rules: always from the text",
    )
    _model_options(mv, modes=False)
    mv.add_argument("--out", help="folder for metrics.json (the authors' scores layout) and scored.jsonl")
    _overwrite(mv)
    mv.set_defaults(func=run_mathvista)


def _overwrite(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty --out folder (an earlier eval's included)")


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


# ----------------------------------------------------------------------------- shared helpers

_INPUTS = ("problems", "answer_key", "predictions", "references", "data", "pairs", "model", "images")


def _claim_out(args) -> None:
    """Before any reading or scoring: --out (a folder; nothing is written without it) may not be
    on, over or inside any input (with --problems FILE, also the pid_splits.json and captions.json
    read beside it), and a non-empty folder needs --overwrite (`scitune.io.outputs`)."""
    from scitune.io.outputs import claim_output

    if args.out is None:
        if getattr(args, "model", None):
            raise ScituneError("--out is required with --model (predictions and metrics are written there)")
        return
    inputs = [getattr(args, name, None) for name in _INPUTS]
    problems = getattr(args, "problems", None)
    if problems and Path(problems).is_file():
        inputs += [Path(problems).parent / "pid_splits.json", Path(problems).parent / "captions.json"]
    claim_output(args.out, inputs=inputs, overwrite=args.overwrite, kind="dir")


def _require(args, *names: str, because: str) -> None:
    for name in names:
        if getattr(args, name.replace("-", "_")) is None:
            raise ScituneError(f"--{name} is required {because}")


def _print_failures(failures: list[dict], label: str = "") -> None:
    if failures:
        ids = ", ".join(str(f["question_id"]) for f in failures[:10])
        more = f" (+{len(failures) - 10} more)" if len(failures) > 10 else ""
        print(f"{label}parse failures: {len(failures)}, scored wrong: {ids}{more}")


def _run(task, args, modes: list[str]) -> None:
    """Loads --model, runs `task` in `modes` into --out, prints each mode's summary."""
    from scitune.inference import Engine
    from scitune.eval.runner import run_task
    from scitune.model import load_model

    model, processor = load_model(args.model, dtype=args.dtype, device=args.device)
    engine = Engine(model, processor, image_root=args.images, image_placement=args.image_placement)
    for run in run_task(task, engine, modes, args.out, args.batch_size, args.max_new_tokens, progress=True):
        print(task.summary(run.result, run.mode))
        _print_failures(task.failures(run.result) or [], f"{run.mode}: ")
    print(f"wrote {args.out}")


def _write_scored(task, result, out: str | None) -> None:
    from scitune.eval.runner import write_outputs

    print(task.summary(result))
    _print_failures(task.failures(result) or [])
    if out is not None:
        write_outputs(task, result, Path(out))
        print(f"wrote {out}")


# ----------------------------------------------------------------------------- scienceqa


def run_scienceqa(args: argparse.Namespace) -> int:
    from scitune.eval import scienceqa as sqa
    from scitune.eval.runner import parse_modes
    from scitune.eval.tasks import ScienceQATask

    _claim_out(args)
    if args.problems:
        from scitune.data.scienceqa import read_problems

        task = ScienceQATask.from_problems(read_problems(args.problems, split=args.split), args.format, args.limit)
    else:
        task = ScienceQATask.from_answer_key(args.answer_key, args.limit)
    if args.model:
        _run(task, args, parse_modes(args.mode))
        return 0
    predictions = sqa.read_scienceqa_predictions(args.predictions, args.source)
    _write_scored(task, sqa.score(task.key, predictions, source=args.predictions), args.out)
    return 0


# ----------------------------------------------------------------------------- figure type


def run_figure_type(args: argparse.Namespace) -> int:
    from scitune.data.sample import read_samples
    from scitune.eval.captions import read_references
    from scitune.eval.predictions import read_predictions
    from scitune.eval.runner import parse_modes
    from scitune.eval.tasks import FigureTypeTask

    _claim_out(args)
    labels = [label.strip() for label in args.labels.split(",") if label.strip()] if args.labels else None
    if args.model:
        _require(args, "data", because="with --model")
        samples = read_samples(args.data)
        task = FigureTypeTask(samples[: args.limit] if args.limit else samples, labels, source=args.data)
        _run(task, args, parse_modes(args.mode))
        return 0
    _require(args, "references", because="with --predictions")
    references = [
        {"id": k, "conversations": [{"from": "gpt", "value": v[0]}]} for k, v in read_references(args.references).items()
    ]
    task = FigureTypeTask(references, labels, source=args.references)
    rows = [{"question_id": str(r["question_id"]), "text": r["text"]} for r in read_predictions(args.predictions)]
    _write_scored(task, task.score(rows, "generate"), args.out)
    return 0


# ----------------------------------------------------------------------------- captions


def run_captions(args: argparse.Namespace) -> int:
    from scitune.data.sample import read_samples
    from scitune.eval.captions import pair_predictions, read_pairs
    from scitune.eval.tasks import CaptionTask

    _claim_out(args)
    tokenizer = args.tokenize if args.tokenize != "auto" else ("whitespace" if args.pairs else "simple")
    metrics = ("BLEU", "ROUGE-L", "CIDEr") + (() if args.no_meteor else ("METEOR",))
    if args.model:
        _require(args, "data", because="with --model")
        samples = read_samples(args.data)
        task = CaptionTask(samples[: args.limit] if args.limit else samples, tokenizer, args.bleu, metrics)
        _run(task, args, ["generate"])
        return 0
    task = CaptionTask([], tokenizer, args.bleu, metrics)
    if args.pairs:
        pairs = read_pairs(args.pairs)
    else:
        _require(args, "references", because="with --predictions")
        pairs = pair_predictions(args.predictions, args.references)
    _write_scored(task, task.score_pairs(pairs), args.out)
    return 0


# ----------------------------------------------------------------------------- mathvista


def run_mathvista(args: argparse.Namespace) -> int:
    from scitune.eval import mathvista
    from scitune.eval.tables import format_table
    from scitune.eval.tasks import MathVistaTask

    _claim_out(args)
    if args.model:
        _run(MathVistaTask.from_file(args.problems, args.limit), args, ["generate"])
        return 0
    result = mathvista.score_files(args.problems, args.predictions, extraction=args.extraction)
    scores = result.metrics()
    rows = [("overall", scores["average"])]
    for name in ("question_type", "answer_type"):
        rows += [(f"{name} {value}", entry) for value, entry in scores[name].items()]
    table = [(label, {**entry, "accuracy": float(entry["accuracy"])}) for label, entry in rows]
    print(format_table(table, ("accuracy", "correct", "total")))
    by_rules = sum(item.extracted_by == "rules" for item in result.items)
    print(f"answers extracted by rules: {by_rules}, stored extractions used: {result.count - by_rules}")
    _print_failures([{"question_id": item.pid} for item in result.failures])
    if result.regrouped:
        print(f"{len(result.regrouped)} problems grouped by the predictions file's own metadata (differs from --problems)")
    if args.out:
        print(f"wrote {mathvista.write_results(result, args.out)}")
    return 0
