"""scitune's instruct stage against TRL's `SFTTrainer`, side by side: the same checkpoint, the same
ScienceQA data (the built-in corpus' training problems), the same batch, steps, optimizer and
learning-rate schedule, fp32, on whatever device torch finds.

    pip install -e .[bench]      # TRL (see pyproject.toml: it must not change torch or transformers)
    python benchmarks/vs_trl.py [--presets tiny,smollm2-135m,tiny-qwen2.5-vl] [--formats CQM-A,QCM-LEPA]
                                [--steps 30] [--batch 16] [--pairs 3] [--threads N]
                                [--json benchmarks/results/vs_trl.json]

Presets: `tiny` and `smollm2-135m` are LLaVA compositions; `tiny-qwen2.5-vl` is the tiny
Qwen2.5-VL (scitune.model.family_presets: the family's real model and processor classes, random
weights), whose packed batches carry each sample's own 3-D M-RoPE positions.

What each side runs:
- scitune: `scitune.train.run.run_recipe` on a one-stage instruct recipe (`model.checkpoint`:
  the shared checkpoint; connector + LLM trained, vision tower frozen), feature cache off, once
  with `data.packing: false` and once with `true`.
- TRL: `SFTTrainer` with its vision-language data format (`messages` + `images`, the images as
  PIL images), `assistant_only_loss=True` (our chat templates carry `{% generation %}` marks),
  `packing=False` (TRL refuses packing with images), the vision tower frozen by hand (the
  parameters scitune's parts table puts in it: Qwen's merger, inside `visual`, trains), the same
  AdamW, rate, warmup and cosine decay, no checkpoints until the end.
Both save the final model, train exactly one epoch over the same `batch x steps` samples, and
count tokens the same way (non-padding tokens of the model's input, image tokens included).

Before timing anything, the script checks that both sides train on the same tokens: for every
sample, TRL's collator (as `SFTTrainer` builds it) and scitune's `Renderer.train` must give the
same number of input tokens and of supervised tokens. A mismatch stops the script.

Timing: each run is a fresh process. "steps" is the time of the optimizer steps after the
first `--warmup` (per step: from the end of the previous step, so batch loading and collation
count on both sides); "end to end" is the whole worker process from its first line (importing
the libraries, loading the model, reading and rendering data, training, saving). Runs alternate (the order flips every pair), since this
machine is shared and noisy; the ratio is taken per pair and its median reported. Peak RSS is the
process's maximum resident set size (or, on CUDA, `torch.cuda.max_memory_allocated`), for the
whole run and as it stood after the last step (before the final saves: scitune also writes a
resumable training-state checkpoint at the end, TRL here saves only the model).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from worker import run_worker  # benchmarks/worker.py (the script's folder is on sys.path)

STARTED = time.perf_counter()  # a worker's end-to-end time counts from here: its imports are part of it
HERE = Path(__file__).resolve().parent
PRESETS = ("tiny", "smollm2-135m", "tiny-qwen2.5-vl")
FORMATS = ("CQM-A", "QCM-LEPA")
LR = 2e-5
WARMUP_RATIO = 0.03
MAX_LENGTH = 1024  # every preset's context; longer samples are left out of the data (never truncated)


def log(message: str) -> None:
    print(message, flush=True)


# ------------------------------------------------------------------------------- setup


def build_corpus_data(workdir: Path, figures: int) -> tuple[list[dict], Path]:
    """The built-in corpus' ScienceQA problems (train split first) and their image root."""
    from scitune.data.corpus import build_corpus
    from scitune.data.scienceqa import read_problems

    corpus = workdir / "corpus"
    if not (corpus / "scienceqa").is_dir():
        start = time.perf_counter()
        build_corpus(corpus, figures=figures, seed=0)
        log(f"built the corpus ({figures} figures) in {time.perf_counter() - start:.1f}s")
    problems = [p for split in ("train", "val", "test") for p in read_problems(corpus / "scienceqa", split=split)]
    return problems, corpus / "scienceqa" / "images"


def samples_for(problems: list[dict], fmt: str) -> list[dict]:
    from scitune.data.scienceqa import build_scienceqa_samples

    samples = build_scienceqa_samples(problems, format=fmt)
    for sample, problem in zip(samples, problems):
        if "image" in sample:
            sample["image"] = f"{problem['split']}/{sample['image']}"
    return samples


def build_checkpoint(preset: str, workdir: Path, texts: list[str]) -> Path:
    """The shared starting checkpoint (a standard HF Llava folder)."""
    from scitune.config import ModelConfig
    from scitune.model import build_model, save_model

    path = workdir / f"{preset}-base"
    if not (path / "config.json").is_file():
        start = time.perf_counter()
        model, processor = build_model(ModelConfig(preset=preset), texts=texts)
        save_model(model, processor, path)
        log(f"built the {preset} checkpoint in {time.perf_counter() - start:.1f}s")
    return path


def trl_example(sample: dict, images: Path) -> dict:
    """A LLaVA record in TRL's vision-language format: string messages (the image is placed
    before the first user text, as scitune's `front` placement does) and the PIL images."""
    from scitune.data.sample import IMAGE_TOKEN, ROLES, image_paths
    from scitune.prompting import open_image

    messages = [{"role": ROLES[t["from"]], "content": t["value"].replace(IMAGE_TOKEN, "").strip()} for t in sample["conversations"]]
    return {"messages": messages, "images": [open_image(p, images) for p in image_paths(sample)]}


def check_same_tokens(checkpoint: Path, samples: list[dict], images: Path) -> dict:
    """Per sample, TRL's collator and scitune's renderer: equal input and supervised token counts."""
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    from scitune.model.processors import load_processor
    from scitune.prompting import ImageLoader, Renderer

    processor = load_processor(checkpoint)
    # a family's renderer opens the images (their token count depends on their size)
    renderer = Renderer(processor, max_length=MAX_LENGTH, images=ImageLoader(processor.image_processor, images))
    collator = DataCollatorForVisionLanguageModeling(processor=processor, max_length=MAX_LENGTH, assistant_only_loss=True)
    mismatched = []
    supervised = tokens = 0
    for sample in samples:
        ours = renderer.train(sample)
        theirs = collator([trl_example(sample, images)])
        ours_n = (len(ours["input_ids"]), sum(label != -100 for label in ours["labels"]))
        theirs_n = (int(theirs["attention_mask"].sum()), int((theirs["labels"] != -100).sum()))
        if ours_n != theirs_n or theirs["input_ids"][0].tolist() != ours["input_ids"]:
            mismatched.append((sample["id"], ours_n, theirs_n))
        supervised += ours_n[1]
        tokens += ours_n[0]
    if mismatched:
        raise SystemExit(f"scitune and TRL do not train on the same tokens: {len(mismatched)} samples differ, e.g. {mismatched[:3]}")
    return {"samples": len(samples), "tokens": tokens, "supervised_tokens": supervised, "identical_input_ids": True}


# ------------------------------------------------------------------------------- workers


def peak_memory() -> tuple[int, str]:
    import resource

    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated(), "torch.cuda.max_memory_allocated"
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale, "ru_maxrss"


def run_scitune(spec: dict) -> dict:
    from scitune.config import DataConfig, ModelConfig, Recipe, RunConfig, StageConfig, StageRun
    from scitune.train.log import read_metrics
    from scitune.train.run import run_recipe

    start = STARTED
    stage = StageRun(
        stage=StageConfig(name="instruct"),
        data=DataConfig(
            train=spec["train"], images=spec["images"], max_length=MAX_LENGTH, packing=spec["packing"],
            num_workers=spec["num_workers"],
        ),
        epochs=1, max_steps=spec["steps"], batch_size=spec["batch"], lr=LR, warmup_ratio=WARMUP_RATIO,
        scheduler="cosine", max_grad_norm=1.0,
    )
    recipe = Recipe(
        model=ModelConfig(preset=None, checkpoint=spec["checkpoint"], dtype="float32"),
        stages=[stage],
        run=RunConfig(out=spec["out"], seed=0, save_every=0, log_every=1, tensorboard=False),
    )
    at_steps: list[int] = []
    run_recipe(recipe, hooks=[lambda runner, step: at_steps.append(peak_memory()[0])])
    wall = time.perf_counter() - start
    steps = read_metrics(Path(spec["out"]) / "instruct" / "metrics.jsonl")
    return {"wall": wall, "steps": [{"tokens": s["tokens"], "samples": s["samples"], "seconds": s["seconds"]} for s in steps],
            "peak_steps_bytes": max(at_steps)}


def run_trl(spec: dict) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForImageTextToText, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from scitune.data.sample import read_samples
    from scitune.model.parts import part_of
    from scitune.model.processors import load_processor

    start = STARTED
    model = AutoModelForImageTextToText.from_pretrained(spec["checkpoint"], dtype=torch.float32)
    # AutoProcessor, or without torchvision the family's images-only processor (same ids, pixels)
    processor = load_processor(spec["checkpoint"])
    for name, param in model.named_parameters():
        if part_of(name) == "vision_tower":
            param.requires_grad_(False)
    images = Path(spec["images"])
    records = [trl_example(s, images) for s in read_samples(spec["train"])]
    dataset = Dataset.from_list(records)
    tokens: list[int] = []
    ends: list[float] = []
    at_steps: list[int] = []

    class Timing(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            ends.append(time.perf_counter())

        def on_step_end(self, args, state, control, **kwargs):
            ends.append(time.perf_counter())
            at_steps.append(peak_memory()[0])

    class CountingTrainer(SFTTrainer):
        def training_step(self, model, inputs, num_items_in_batch=None):
            tokens.append(int(inputs["attention_mask"].sum()))
            return super().training_step(model, inputs, num_items_in_batch)

    config = SFTConfig(
        output_dir=spec["out"], per_device_train_batch_size=spec["batch"], max_steps=spec["steps"],
        num_train_epochs=1, learning_rate=LR, lr_scheduler_type="cosine", warmup_steps=WARMUP_RATIO,
        weight_decay=0.0, max_grad_norm=1.0, optim="adamw_torch", logging_steps=1, save_strategy="no",
        report_to=[], seed=0, bf16=False, fp16=False, max_length=MAX_LENGTH, packing=False,
        assistant_only_loss=True, dataloader_num_workers=spec["num_workers"], disable_tqdm=True,
        use_cpu=not torch.cuda.is_available(),
    )
    trainer = CountingTrainer(model=model, args=config, train_dataset=dataset, processing_class=processor, callbacks=[Timing()])
    trainer.train()
    trainer.save_model(str(Path(spec["out"]) / "final"))
    wall = time.perf_counter() - start
    seconds = [b - a for a, b in zip(ends, ends[1:])]
    samples = [spec["batch"]] * len(tokens)
    return {"wall": wall, "steps": [{"tokens": t, "samples": n, "seconds": s} for t, n, s in zip(tokens, samples, seconds)],
            "peak_steps_bytes": max(at_steps)}


def worker(spec_path: str) -> int:
    import torch

    spec = json.loads(Path(spec_path).read_text())
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    result = run_trl(spec) if spec["system"] == "trl" else run_scitune(spec)
    result["peak_memory_bytes"], result["memory_method"] = peak_memory()
    result["threads"] = torch.get_num_threads()
    Path(spec["result"]).write_text(json.dumps(result))
    return 0


def launch(spec: dict, workdir: Path) -> dict:
    name = Path(spec["out"]).name
    shutil.rmtree(spec["out"], ignore_errors=True)  # a kept work folder's earlier run of this name
    return run_worker(__file__, spec, workdir, name)


def rates(result: dict, warmup: int) -> dict:
    steps = result["steps"][warmup:]
    seconds = sum(s["seconds"] for s in steps)
    all_tokens = sum(s["tokens"] for s in result["steps"])
    all_samples = sum(s["samples"] for s in result["steps"])
    return {
        "steps": len(result["steps"]),
        "tokens_per_s": sum(s["tokens"] for s in steps) / seconds,
        "samples_per_s": sum(s["samples"] for s in steps) / seconds,
        "e2e_tokens_per_s": all_tokens / result["wall"],
        "e2e_samples_per_s": all_samples / result["wall"],
        "wall_s": result["wall"],
        "tokens": all_tokens,
        "peak_mib": result["peak_memory_bytes"] / 2**20,
        "peak_steps_mib": result["peak_steps_bytes"] / 2**20,
    }


# ------------------------------------------------------------------------------- driver


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", default="tiny,smollm2-135m,tiny-qwen2.5-vl")
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--steps", type=int, default=30, help="optimizer steps per run (one epoch of batch x steps samples)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=2, help="first steps left out of the steps-only rates")
    parser.add_argument("--pairs", type=int, default=3, help="alternating rounds (each: TRL, scitune, scitune packed)")
    parser.add_argument("--threads", type=int, help="torch CPU threads in every run (default: torch's choice)")
    parser.add_argument("--num-workers", type=int, default=0,
                        help="DataLoader worker processes on both sides (scitune's data.num_workers, TRL's dataloader_num_workers)")
    parser.add_argument("--keep", help="work in this folder and keep it")
    parser.add_argument("--json", default=str(HERE / "results" / "vs_trl.json"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.worker)
    presets = [p for p in args.presets.split(",") if p]
    formats = [f for f in args.formats.split(",") if f]
    if any(p not in PRESETS for p in presets) or any(f not in FORMATS for f in formats):
        parser.error(f"--presets from {PRESETS}, --formats from {FORMATS}")
    if min(args.steps, args.batch, args.pairs) < 1 or not 0 <= args.warmup < args.steps or args.num_workers < 0:
        parser.error("--steps, --batch, --pairs must be >= 1, 0 <= --warmup < --steps, --num-workers >= 0")
    try:
        import trl  # noqa: F401
    except ImportError:
        raise SystemExit("TRL is not installed: pip install -e .[bench]") from None

    from scitune.data.sample import write_samples
    from scitune.prompting import ImageLoader, Renderer

    need = args.steps * args.batch
    rows = []
    with tempfile.TemporaryDirectory(prefix="scitune-vs-trl-") as tmp:
        workdir = Path(args.keep) if args.keep else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        problems, images = build_corpus_data(workdir, figures=max(200, need))
        for preset in presets:
            texts = [t["value"] for fmt in formats for s in samples_for(problems, fmt) for t in s["conversations"]]
            checkpoint = build_checkpoint(preset, workdir, texts)
            from scitune.model.processors import load_processor

            processor = load_processor(checkpoint)
            renderer = Renderer(processor, max_length=None, images=ImageLoader(processor.image_processor, images))
            for fmt in formats:
                fitting = [s for s in samples_for(problems, fmt) if len(renderer.train(s)["input_ids"]) <= MAX_LENGTH]
                if len(fitting) < need:
                    raise SystemExit(f"{preset} {fmt}: {len(fitting)} samples fit {MAX_LENGTH} tokens, need {need}")
                train = workdir / f"{preset}-{fmt}.json"
                write_samples(fitting[:need], train)
                check = check_same_tokens(checkpoint, fitting[:need], images)
                log(f"{preset} {fmt}: same tokens on both sides for {check['samples']} samples "
                    f"({check['tokens']} tokens, {check['supervised_tokens']} supervised)")
                runs: dict[str, list[dict]] = {"trl": [], "scitune": [], "scitune-packed": []}
                for pair in range(args.pairs):
                    order = ["trl", "scitune", "scitune-packed"]
                    order = order if pair % 2 == 0 else order[::-1]
                    for system in order:
                        spec = {
                            "system": "trl" if system == "trl" else "scitune", "packing": system == "scitune-packed",
                            "checkpoint": str(checkpoint), "train": str(train), "images": str(images),
                            "steps": args.steps, "batch": args.batch, "threads": args.threads, "num_workers": args.num_workers,
                            "out": str(workdir / "runs" / f"{preset}-{fmt}-{system}-{pair}"),
                        }
                        measured = rates(launch(spec, workdir), args.warmup)
                        runs[system].append(measured)
                        log(f"  pair {pair + 1} {system:15s} {measured['tokens_per_s']:8.0f} tokens/s steps, "
                            f"{measured['e2e_tokens_per_s']:8.0f} end to end, peak {measured['peak_steps_mib']:.0f} MiB in the steps, "
                            f"{measured['peak_mib']:.0f} MiB in all")
                for system in ("scitune", "scitune-packed"):
                    for key in ("tokens_per_s", "e2e_tokens_per_s"):
                        ratios = [a[key] / b[key] for a, b in zip(runs[system], runs["trl"])]
                        runs[f"{system}/trl {key}"] = {"per_pair": ratios, "median": statistics.median(ratios)}
                rows.append({"preset": preset, "format": fmt, "check": check, "runs": runs})

    print()
    print(f"{'preset':13s} {'format':9s} {'system':15s} {'tok/s':>8s} {'smp/s':>7s} {'e2e tok/s':>9s} {'peak MiB':>8s} {'(steps)':>7s}"
          f" {'ratio steps (median; pairs)':>30s} {'ratio e2e':>10s}")
    for row in rows:
        runs = row["runs"]
        for system in ("trl", "scitune", "scitune-packed"):
            med = {k: statistics.median(r[k] for r in runs[system]) for k in ("tokens_per_s", "samples_per_s", "e2e_tokens_per_s", "peak_mib", "peak_steps_mib")}
            ratio = ratio_e2e = ""
            if system != "trl":
                steps_ratio = runs[f"{system}/trl tokens_per_s"]
                ratio = f"{steps_ratio['median']:.2f}x ({', '.join(f'{r:.2f}' for r in steps_ratio['per_pair'])})"
                ratio_e2e = f"{runs[f'{system}/trl e2e_tokens_per_s']['median']:.2f}x"
            print(f"{row['preset']:13s} {row['format']:9s} {system:15s} {med['tokens_per_s']:8.0f} {med['samples_per_s']:7.1f}"
                  f" {med['e2e_tokens_per_s']:9.0f} {med['peak_mib']:8.0f} {med['peak_steps_mib']:7.0f} {ratio:>30s} {ratio_e2e:>10s}")
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    import torch

    meta = {"argv": sys.argv[1:], "threads": args.threads or torch.get_num_threads(), "cpu_count": os.cpu_count(),
            "cuda": torch.cuda.is_available()}
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
