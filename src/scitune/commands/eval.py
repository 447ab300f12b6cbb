"""`scitune eval scienceqa|figure-type|captions`: score a model or a predictions file."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from scitune.cli import add_command

MODES = ("generate", "likelihood")


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
    cap.set_defaults(func=run_captions)

    mv = add_command(
        sub,
        "mathvista",
        "MathVista accuracy by the authors' rules, overall and by question type, answer type, source, skill, ...",
        "scitune eval mathvista --problems testmini.json --predictions output.json --out runs/eval-mathvista",
    )
    mv.add_argument("--problems", required=True, help="MathVista problems, e.g. testmini.json (pid -> record)")
    mv.add_argument(
        "--predictions", required=True, help="the authors' output .json (with `extraction`) or our predictions .jsonl"
    )
    mv.add_argument(
        "--extraction",
        default="auto",
        choices=("auto", "rules"),
        help="auto: a record's stored `extraction` where it has one, rules otherwise; rules: always from the text",
    )
    mv.add_argument("--out", help="folder for metrics.json (the authors' scores layout) and scored.jsonl")
    mv.set_defaults(func=run_mathvista)


def _model_options(parser: argparse.ArgumentParser, modes: bool) -> None:
    group = parser.add_argument_group("with --model")
    group.add_argument("--images", help="folder the samples' image paths are relative to")
    if modes:
        group.add_argument(
            "--mode", default="generate", help="generate, likelihood, or both as generate,likelihood (default generate)"
        )
    group.add_argument("--batch-size", type=int, default=8, help="prompts per generation batch (default 8)")
    group.add_argument("--max-new-tokens", type=int, default=64, help="generation length limit (default 64)")
    group.add_argument("--limit", type=int, help="only the first N items (a quick look)")
    group.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default cpu)")
    group.add_argument("--dtype", default="float32", help="float32 (default), bfloat16, float16, auto")


# ----------------------------------------------------------------------------- shared helpers


def _parse_modes(value: str) -> list[str]:
    from scitune.errors import ScituneError

    modes = [m.strip() for m in value.split(",") if m.strip()]
    bad = [m for m in modes if m not in MODES]
    if not modes or bad:
        raise ScituneError(f"--mode: expected generate, likelihood or generate,likelihood, got {value!r}")
    return list(dict.fromkeys(modes))


def _require(args, *names: str, because: str) -> None:
    from scitune.errors import ScituneError

    for name in names:
        if getattr(args, name.replace("-", "_")) is None:
            raise ScituneError(f"--{name} is required {because}")


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _write_failures(path: Path, failures: list[dict]) -> None:
    from scitune.eval.predictions import write_predictions

    write_predictions(path, failures)


def _print_failures(failures: list[dict], label: str = "") -> None:
    if failures:
        ids = ", ".join(str(f["question_id"]) for f in failures[:10])
        more = f" (+{len(failures) - 10} more)" if len(failures) > 10 else ""
        print(f"{label}parse failures: {len(failures)}, scored wrong: {ids}{more}")


def _load(args):
    from scitune.model import load_model

    return load_model(args.model, dtype=args.dtype, device=args.device)


def _limit(items: list, args) -> list:
    return items[: args.limit] if args.limit else items


def _items_from_samples(samples: list[dict], image_root, options=None) -> list:
    """EvalItems from LLaVA conversation samples (the human turn is the prompt)."""
    from scitune.errors import ScituneError
    from scitune.eval.generate import EvalItem, resolve_images

    items = []
    for sample in samples:
        try:
            human = next(t["value"] for t in sample["conversations"] if t["from"] == "human")
        except (KeyError, StopIteration, TypeError):
            raise ScituneError(f"sample {sample.get('id')!r}: needs a human turn") from None
        qid = str(sample.get("id"))
        opts = tuple(options(qid)) if options else ()
        items.append(EvalItem(qid, human, resolve_images(sample, image_root), opts))
    return items


def _run_model(model, processor, items: list, mode: str, args) -> list[dict]:
    """Prediction rows for `items` in `mode`. A likelihood row's `text` is the chosen option
    (as the format writes the answer) and it carries every option's score."""
    from scitune.eval.generate import choose_option, generate, score_options

    progress = sys.stderr.isatty()
    rows = []
    if mode == "generate":
        texts = generate(
            model, processor, items, batch_size=args.batch_size, max_new_tokens=args.max_new_tokens, progress=progress
        )
        for item, text in zip(items, texts):
            rows.append({"question_id": item.question_id, "prompt": item.prompt, "text": text, "mode": mode})
        return rows
    if progress:
        from tqdm import tqdm

        items = tqdm(items, desc="likelihood", unit="item")
    for item in items:
        scores = score_options(model, processor, item)
        choice = choose_option(scores)
        rows.append(
            {
                "question_id": item.question_id,
                "prompt": item.prompt,
                "text": item.options[choice],
                "mode": mode,
                "choice": choice,
                "option_scores": scores,
            }
        )
    return rows


# ----------------------------------------------------------------------------- scienceqa


def run_scienceqa(args: argparse.Namespace) -> int:
    from scitune.errors import ScituneError
    from scitune.eval import scienceqa as sqa
    from scitune.eval.predictions import write_predictions
    from scitune.eval.tables import format_table

    problems = None
    if args.problems:
        from scitune.data.scienceqa import read_problems

        problems = read_problems(args.problems, split=args.split)
        key = sqa.keyed_from_problems(problems)
    else:
        key = sqa.read_answer_key(args.answer_key)
    out = Path(args.out) if args.out else None

    if args.predictions:
        predictions = sqa.read_scienceqa_predictions(args.predictions, args.source)
        runs = {"": sqa.score(key, predictions, source=args.predictions)}
    else:
        if out is None:
            raise ScituneError("--out is required with --model (predictions and metrics are written there)")
        samples = _scienceqa_samples(args, problems, key)
        # every mode's items first: a bad option (format, targets) fails before any model time
        items_by_mode = {m: _scienceqa_items(args, samples, key, problems, m) for m in _parse_modes(args.mode)}
        model, processor = _load(args)
        runs = {}
        for mode, items in items_by_mode.items():
            rows = _run_model(model, processor, items, mode, args)
            write_predictions(out / mode / "predictions.jsonl", rows)
            scored_key = {item.question_id: key[item.question_id] for item in items}
            runs[mode] = sqa.score(scored_key, {r["question_id"]: r["text"] for r in rows}, source=mode)

    table_rows = []
    for mode, result in runs.items():
        prefix = f"{mode} " if mode else ""
        table_rows += [(f"{prefix}official", result.official), (f"{prefix}scitune", result.scitune)]
        if out is not None:
            folder = out / mode if mode else out
            _write_json(folder / "metrics.json", result.metrics())
            _write_failures(folder / "parse_failures.jsonl", result.failures)
    print(format_table(table_rows, sqa.COLUMNS))
    for mode, result in runs.items():
        label = f"{mode}: " if mode else ""
        print(f"{label}{result.correct}/{result.count} correct")
        _print_failures(result.failures, label)
    if out is not None:
        print(f"wrote {out}")
    return 0


def _scienceqa_samples(args, problems, key) -> list[dict]:
    if problems is not None:
        from scitune.data.scienceqa import build_scienceqa_samples

        return build_scienceqa_samples(problems, format=args.format)
    from scitune.data.sample import read_samples

    return read_samples(args.answer_key)


def _scienceqa_items(args, samples, key, problems, mode) -> list:
    from scitune.errors import ScituneError
    from scitune.eval.answers import letter

    items = _limit(_items_from_samples(samples, args.images), args)
    if mode == "generate":
        return items
    # Likelihood: each option's continuation is the format's own answer-only target.
    if problems is not None:
        from scitune.data.scienceqa import build_prompt

        if not args.format.endswith("-A"):
            raise ScituneError(
                f"--mode likelihood needs an answer-only format (CQM-A, QCM-A, ...), not {args.format}: "
                "longer targets would put the reference explanation into the scored text"
            )
        by_id = {p["id"]: p for p in problems}

        def options(qid: str) -> list[str]:
            problem = by_id[qid]
            return [build_prompt({**problem, "answer": i}, args.format)[1] for i in range(len(problem["choices"]))]

    else:
        templates = {}
        for sample in samples:
            qid = str(sample.get("id"))
            target = next(t["value"] for t in sample["conversations"] if t["from"] == "gpt").strip()
            answer = letter(key[qid].answer)
            pattern = re.compile(rf"(?<![A-Za-z]){answer}(?![A-Za-z])")
            if len(target) > 40 or len(pattern.findall(target)) != 1:
                raise ScituneError(
                    f"{args.answer_key}: --mode likelihood needs answer-only targets (\"B\", \"The answer is B.\"); "
                    f"sample {qid} answers {target[:40]!r}"
                )
            templates[qid] = pattern.sub("{}", target.replace("{", "{{").replace("}", "}}"))

        def options(qid: str) -> list[str]:
            return [templates[qid].format(letter(i)) for i in range(key[qid].num_options)]

    from dataclasses import replace

    return [replace(item, options=tuple(options(item.question_id))) for item in items]


# ----------------------------------------------------------------------------- figure type


def _answer_of(sample: dict) -> str:
    from scitune.errors import ScituneError

    answers = [t["value"] for t in sample.get("conversations", []) if t.get("from") == "gpt"]
    if not answers:
        raise ScituneError(f"sample {sample.get('id')!r}: no gpt turn")
    return answers[-1]


def run_figure_type(args: argparse.Namespace) -> int:
    from scitune.errors import ScituneError
    from scitune.eval.captions import read_references
    from scitune.eval.figure_type import find_label, score_figure_types, write_confusion
    from scitune.eval.predictions import read_predictions, write_predictions
    from scitune.eval.tables import format_pairs, format_table

    labels = [label.strip() for label in args.labels.split(",") if label.strip()] if args.labels else None
    out = Path(args.out) if args.out else None

    def to_label(text: str, where: str) -> str:
        if labels is None:
            return text.strip()
        found = find_label(text, labels)
        if found is None:
            raise ScituneError(f"{where}: reference {text[:60]!r} names no label of --labels")
        return found

    runs = {}
    if args.predictions:
        _require(args, "references", because="with --predictions")
        references = {k: to_label(v[0], f"{args.references}: {k}") for k, v in read_references(args.references).items()}
        predictions = {str(r["question_id"]): r["text"] for r in read_predictions(args.predictions)}
        runs[""] = score_figure_types(references, predictions, labels)
    else:
        _require(args, "data", because="with --model")
        if out is None:
            raise ScituneError("--out is required with --model (predictions and metrics are written there)")
        from scitune.data.sample import read_samples

        samples = _limit(read_samples(args.data), args)
        references = {str(s.get("id")): to_label(_answer_of(s), f"{args.data}: {s.get('id')}") for s in samples}
        label_set = labels or sorted(set(references.values()))
        model, processor = _load(args)
        for mode in _parse_modes(args.mode):
            items = _items_from_samples(samples, args.images, options=(lambda qid: label_set) if mode == "likelihood" else None)
            rows = _run_model(model, processor, items, mode, args)
            write_predictions(out / mode / "predictions.jsonl", rows)
            runs[mode] = score_figure_types(
                references, {r["question_id"]: r["text"] for r in rows}, label_set, parse=(mode == "generate")
            )

    for mode, result in runs.items():
        head = f"[{mode}] " if mode else ""
        summary = {"accuracy": result.accuracy, "macro-F1": result.macro_f1, "count": result.count}
        print(head + format_pairs(summary, digits=2).replace("\n", "\n" + " " * len(head)))
        print(format_table([(label, v) for label, v in result.per_type.items()], ("precision", "recall", "f1", "support")))
        _print_failures(result.failures, head)
        if out is not None:
            folder = out / mode if mode else out
            _write_json(folder / "metrics.json", result.to_json())
            _write_failures(folder / "parse_failures.jsonl", result.failures)
            write_confusion(result, folder)
    if out is not None:
        print(f"wrote {out}")
    return 0


# ----------------------------------------------------------------------------- captions


def run_captions(args: argparse.Namespace) -> int:
    from scitune.errors import ScituneError
    from scitune.eval.captions import CaptionPairs, pair_predictions, read_pairs, score_captions
    from scitune.eval.predictions import write_predictions
    from scitune.eval.tables import format_pairs

    out = Path(args.out) if args.out else None
    tokenizer = args.tokenize if args.tokenize != "auto" else ("whitespace" if args.pairs else "simple")
    if args.pairs:
        pairs = read_pairs(args.pairs)
    elif args.predictions:
        _require(args, "references", because="with --predictions")
        pairs = pair_predictions(args.predictions, args.references)
    else:
        _require(args, "data", because="with --model")
        if out is None:
            raise ScituneError("--out is required with --model (predictions and metrics are written there)")
        from scitune.data.sample import read_samples

        samples = _limit(read_samples(args.data), args)
        model, processor = _load(args)
        rows = _run_model(model, processor, _items_from_samples(samples, args.images), "generate", args)
        write_predictions(out / "predictions.jsonl", rows)
        pairs = CaptionPairs([r["question_id"] for r in rows], [r["text"] for r in rows], [[_answer_of(s)] for s in samples])
    metrics = ("BLEU", "ROUGE-L", "CIDEr") + (() if args.no_meteor else ("METEOR",))
    result = score_captions(pairs, tokenizer=tokenizer, bleu_convention=args.bleu, metrics=metrics)
    print(format_pairs(result.metrics, digits=4))
    for name, reason in result.skipped.items():
        print(f"{name}: skipped: {reason}")
    print(f"{result.count} captions; tokeniser {tokenizer}; BLEU convention {args.bleu}")
    if out is not None:
        _write_json(out / "metrics.json", result.to_json())
        print(f"wrote {out / 'metrics.json'}")
    return 0


# ----------------------------------------------------------------------------- mathvista


def run_mathvista(args: argparse.Namespace) -> int:
    from scitune.eval import mathvista
    from scitune.eval.tables import format_table

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
