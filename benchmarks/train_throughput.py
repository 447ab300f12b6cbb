"""Training throughput: tokens/s, samples/s, peak memory and estimated MFU of the align and
instruct stages, for the `tiny` and `smollm2-135m` presets, with and without the vision feature
cache (both stages keep the vision tower frozen in the shipped CPU recipes, so both can use it).

    python benchmarks/train_throughput.py [--presets tiny,smollm2-135m] [--steps N]
                                          [--peak-flops F] [--threads N] [--repeats R] [--keep DIR]
                                          [--json benchmarks/results/train_throughput.json]

It measures what users run: each configuration is a one-stage recipe taken from the preset's
shipped recipe (recipes/tiny-cpu.yaml, recipes/smollm2-cpu.yaml; smollm2 with a smaller batch so
the benchmark stays short on a CPU), trained by `scitune.train.run.run_recipe` on instruction
files built from the built-in figure corpus (`scitune.data.corpus.build_corpus`, then the SciCap
CTOM builder for align and the ScienceQA QCM-LEPA builder for instruct, image questions). Rates
come from the run's own metrics.jsonl (per optimizer step: wall seconds including collation and
image loading, tokens without padding); the first epoch is warm-up and is not counted: in the
cached run it is the epoch that fills the cache, so the measured steps are the ones that reuse it,
as every later epoch of a real run does. Rates are totals over the measured steps (sum of tokens / sum of seconds).
On a machine shared with other work, use --threads 1: two torch threads on two busy cores wait on
each other at every operation and small models run many times slower.

Each configuration runs in its own process, so its peak memory is its own: on CPU the process's
maximum resident set size (`resource.getrusage(RUSAGE_SELF).ru_maxrss`; it includes Python, torch
and the model itself, and model building and saving), on CUDA `torch.cuda.max_memory_allocated`.
MFU is the training loop's estimate (scitune.train.flops: FLOPs per token from the model's sizes)
over `run.peak_flops` (default: the RunConfig default, measured by benchmarks/peak_flops.py).

smollm2-135m loads SmolLM2 from a GGUF file, which takes ~40 s on a small CPU (transformers parses
the file three times); the benchmark builds it once, saves the language model and the tiny vision
tower as plain HF folders, and its runs load those (same architecture, sizes and dtype, so the
same training steps). Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from scitune.io.atomic import write_json
from worker import run_worker  # benchmarks/worker.py (the script's folder is on sys.path)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RECIPES = {"tiny": ROOT / "recipes" / "tiny-cpu.yaml", "smollm2-135m": ROOT / "recipes" / "smollm2-cpu.yaml"}
# Per preset: the batch (samples per optimizer step), optimizer steps per epoch (the first epoch
# is warm-up) and default measured steps. tiny keeps its recipe's batch of 16; smollm2 uses 4
# (its recipe's 8 x 2 accumulation takes ~20 s a step on 2 cores).
SETTINGS = {
    "tiny": {"batch_size": 16, "grad_accum": 1, "steps_per_epoch": 2, "steps": 20},
    "smollm2-135m": {"batch_size": 4, "grad_accum": 1, "steps_per_epoch": 1, "steps": 3},
}
DEFAULT_STEPS = {preset: s["steps"] for preset, s in SETTINGS.items()}
CONFIGS = (("align", True), ("align", False), ("instruct", True), ("instruct", False))
INSTRUCT_FORMAT = "QCM-LEPA"  # LLaVA-1's ScienceQA training format: lecture, explanation, answer


# ------------------------------------------------------------------------------- data


def build_data(workdir: Path, samples: int, log) -> dict[str, str]:
    """The built-in corpus and the two stages' instruction files, `samples` records each."""
    from scitune.data.corpus import build_corpus
    from scitune.data.sample import write_samples
    from scitune.data.scicap import build_instructions, read_scicap
    from scitune.data.scienceqa import build_scienceqa_samples, read_problems

    corpus = workdir / "corpus"
    # 80 % of the figures are in the train split; ScienceQA adds figures // 2 text-only problems.
    figures = max(16, -(-samples * 5 // 4) + 4)
    start = time.perf_counter()
    build_corpus(corpus, figures=figures, seed=0)
    log(f"built the corpus ({figures} figures) in {time.perf_counter() - start:.1f}s")
    records = [r for split in ("train", "val", "test") for r in read_scicap(corpus / "scicap" / f"{split}.json")]
    align = build_instructions(records, task="describe")[:samples]
    problems = [p for split in ("train", "val", "test") for p in read_problems(corpus / "scienceqa", split=split)]
    # ScienceQA image paths are relative to images/<split>: make them relative to images/
    instruct = build_scienceqa_samples(problems, format=INSTRUCT_FORMAT)
    for sample, problem in zip(instruct, problems):
        if "image" in sample:
            sample["image"] = f"{problem['split']}/{sample['image']}"
    # images first, so a short list still has the image questions
    instruct = sorted(instruct, key=lambda s: "image" not in s)[:samples]
    if len(align) < samples or len(instruct) < samples:
        raise SystemExit(f"corpus too small: {len(align)} align / {len(instruct)} instruct samples, need {samples}")
    data = workdir / "data"
    write_samples(align, data / "align.json")
    write_samples(instruct, data / "instruct.json")
    return {
        "align_train": str(data / "align.json"), "align_images": str(corpus / "scicap" / "images"),
        "instruct_train": str(data / "instruct.json"), "instruct_images": str(corpus / "scienceqa" / "images"),
        "instruct_with_image": sum("image" in s for s in instruct),
    }


def prepare_smollm2(workdir: Path, log) -> dict[str, str]:
    """SmolLM2 (from the preset's GGUF) and the tiny vision tower saved as HF folders."""
    from transformers import CLIPVisionModel

    from scitune.model import presets
    from scitune.model.build import load_causal_lm

    start = time.perf_counter()
    gguf = presets.smollm2_gguf_path()
    lm, tokenizer = load_causal_lm(str(gguf.parent), gguf.name)
    # the weights are already dequantised to float32; drop the GGUF marker that blocks saving
    lm.hf_quantizer = None
    if hasattr(lm.config, "quantization_config"):
        del lm.config.quantization_config
    lm.save_pretrained(workdir / "smollm2-lm", safe_serialization=True)
    tokenizer.save_pretrained(workdir / "smollm2-lm")
    CLIPVisionModel(presets.tiny_vision_config()).save_pretrained(workdir / "tiny-vision", safe_serialization=True)
    log(f"built smollm2-135m from {gguf.name} and saved it as HF folders in {time.perf_counter() - start:.1f}s")
    return {"language_model": str(workdir / "smollm2-lm"), "vision_tower": str(workdir / "tiny-vision")}


# ------------------------------------------------------------------------------- one configuration


def recipe_for(spec: dict):
    """A one-stage recipe from the preset's shipped recipe, pointed at the benchmark's data."""
    import dataclasses

    from scitune.config import Recipe, load_recipe

    stage, settings = spec["stage"], spec["settings"]
    warmup = settings["steps_per_epoch"]
    overrides = [
        f"{stage}.data.train={spec['data'][stage + '_train']}",
        f"{stage}.data.images={spec['data'][stage + '_images']}",
        f"{stage}.batch_size={settings['batch_size']}",
        f"{stage}.grad_accum={settings['grad_accum']}",
        f"{stage}.max_steps={warmup + spec['steps']}",
        f"{stage}.epochs=1000",
        f"run.out={spec['out']}",
        "run.save_every=0",
        "run.log_every=1",
        "run.tensorboard=false",
    ]
    if spec["cache"] is not None:
        overrides.append(f"{stage}.feature_cache={'true' if spec['cache'] else 'false'}")
    if spec["peak_flops"] is not None:
        overrides.append(f"run.peak_flops={spec['peak_flops']}")
    if spec.get("model"):
        overrides += ["model.preset=null", f"model.vision_tower={spec['model']['vision_tower']}",
                      f"model.language_model={spec['model']['language_model']}"]
    recipe = load_recipe(str(RECIPES[spec["preset"]]), overrides)
    run = next(s for s in recipe.stages if s.stage.name == stage)
    return Recipe(model=recipe.model, stages=[dataclasses.replace(run, init_from=None)], run=recipe.run)


def current_rss_bytes() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def worker(spec_path: str) -> int:
    """Runs one configuration (in its own process) and writes its measurements as JSON."""
    import resource

    import torch

    spec = json.loads(Path(spec_path).read_text())
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    from scitune.train.log import read_metrics
    from scitune.train.run import run_recipe

    recipe = recipe_for(spec)
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    rss_before = current_rss_bytes()
    start = time.perf_counter()
    [result] = run_recipe(recipe)
    wall = time.perf_counter() - start
    if cuda:
        peak, method = torch.cuda.max_memory_allocated(), "torch.cuda.max_memory_allocated"
    else:
        # ru_maxrss is in KiB on Linux, bytes on macOS
        scale = 1 if sys.platform == "darwin" else 1024
        peak, method = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale, "ru_maxrss (process max RSS)"
    steps = read_metrics(Path(recipe.run.out) / spec["stage"] / "metrics.jsonl")
    out = {
        "steps": steps,
        "warmup_steps": spec["settings"]["steps_per_epoch"],
        "peak_memory_bytes": peak,
        "memory_method": method,
        "rss_after_imports_bytes": rss_before,
        "stage_wall_seconds": wall,
        "samples_in_dataset": result.samples,
        "dropped": result.dropped,
        "feature_cache": result.extra.get("feature_cache"),
        "peak_flops": recipe.run.peak_flops,
        "threads": torch.get_num_threads(),
        "device": "cuda" if cuda else "cpu",
    }
    Path(spec["result"]).write_text(json.dumps(out))
    return 0


def summarize(measured: dict) -> dict:
    steps = [s for s in measured["steps"] if s["step"] > measured["warmup_steps"]]
    warm = [s for s in measured["steps"] if s["step"] <= measured["warmup_steps"]]
    seconds = sum(s["seconds"] for s in steps)
    tokens = sum(s["tokens"] for s in steps)
    samples = sum(s["samples"] for s in steps)
    flops_rate = sum(s["mfu"] * s["seconds"] for s in steps) / seconds if seconds else float("nan")
    step_seconds = sorted(s["seconds"] for s in steps)
    return {
        "measured_steps": len(steps),
        "measured_seconds": seconds,
        "tokens_per_s": tokens / seconds if seconds else float("nan"),
        "samples_per_s": samples / seconds if seconds else float("nan"),
        "mfu": flops_rate,
        "median_step_seconds": step_seconds[len(step_seconds) // 2] if step_seconds else None,
        "tokens_per_step": tokens / len(steps) if steps else None,
        "warmup_steps": len(warm),
        "warmup_seconds": sum(s["seconds"] for s in warm),
        "warmup_tokens_per_s": sum(s["tokens"] for s in warm) / max(sum(s["seconds"] for s in warm), 1e-9),
    }


def run_config(preset, stage, cache, settings, steps, data, model, peak_flops, threads, workdir: Path, attempt: int, log) -> dict:
    """Trains one configuration in a child process; returns its table row."""
    name = f"{preset}-{stage}" + ("" if cache is None else ("-cache" if cache else "-nocache")) + (f"-{attempt + 1}" if attempt else "")
    spec = {
        "preset": preset, "stage": stage, "cache": cache, "settings": settings, "steps": steps,
        "data": data, "out": str(workdir / "runs" / name), "model": model,
        "peak_flops": peak_flops, "threads": threads,
    }
    tick = time.perf_counter()
    measured = run_worker(__file__, spec, workdir, name)
    row = {
        "preset": preset, "stage": stage,
        "feature_cache": "n/a" if cache is None else cache,
        "batch_size": settings["batch_size"] * settings["grad_accum"],
        **summarize(measured),
        "peak_memory_mib": measured["peak_memory_bytes"] / 2**20,
        "rss_after_imports_mib": (measured["rss_after_imports_bytes"] or 0) / 2**20,
        "memory_method": measured["memory_method"],
        "stage_wall_seconds": measured["stage_wall_seconds"],
        "process_seconds": time.perf_counter() - tick,
        "cache_stats": measured["feature_cache"],
        "dropped": measured["dropped"],
        "threads": measured["threads"],
        "device": measured["device"],
        "per_step": [{k: s[k] for k in ("step", "tokens", "samples", "seconds", "mfu")} for s in measured["steps"]],
    }
    log(f"{name}: {row['tokens_per_s']:.0f} tokens/s over {row['measured_steps']} steps ({row['process_seconds']:.0f}s in all)")
    return row


# ------------------------------------------------------------------------------- driver


def fmt(value, spec: str, missing: str = "n/a") -> str:
    return missing if value is None else format(value, spec)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", default="tiny,smollm2-135m", help="comma-separated: tiny, smollm2-135m")
    parser.add_argument("--steps", type=int, help="measured optimizer steps per configuration, after the warm-up "
                        f"epoch (default: {', '.join(f'{k} {v}' for k, v in DEFAULT_STEPS.items())})")
    parser.add_argument("--peak-flops", type=float, help="peak FLOP/s for MFU (default: RunConfig.peak_flops)")
    parser.add_argument("--threads", type=int, help="torch CPU threads per run (default: torch's choice)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per configuration, taking turns; the fastest "
                        "is kept (on a busy machine, 2 or 3)")
    parser.add_argument("--keep", help="work in this folder and keep it (corpus, data, run directories, logs)")
    parser.add_argument("--json", default=str(HERE / "results" / "train_throughput.json"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.worker)

    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    unknown = [p for p in presets if p not in SETTINGS]
    if unknown:
        parser.error(f"--presets: unknown {', '.join(unknown)}; expected some of {', '.join(SETTINGS)}")
    if args.steps is not None and args.steps < 1:
        parser.error("--steps must be >= 1")
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")

    import torch

    from scitune.config import RunConfig

    all_threads = torch.get_num_threads()
    peak_flops = args.peak_flops or RunConfig().peak_flops
    peak_note = "--peak-flops" if args.peak_flops else "RunConfig.peak_flops"
    if args.threads and not args.peak_flops and args.threads != all_threads:
        # the default peak is for all of torch's threads; a matmul peak scales about linearly
        peak_flops = peak_flops * args.threads / all_threads
        peak_note += f" x {args.threads}/{all_threads} threads"
    started = time.perf_counter()
    log = lambda message: print(message, flush=True)  # noqa: E731
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if load > 0.5 * (os.cpu_count() or 1):
        log(f"note: load average {load:.1f} on {os.cpu_count()} cores: the machine is busy, so rates are low "
            f"and noisy{'' if args.threads == 1 else ' (--threads 1 suffers least)'}")
    with tempfile.TemporaryDirectory(prefix="scitune-bench-") as tmp:
        workdir = Path(args.keep) if args.keep else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        need = max(SETTINGS[p]["batch_size"] * SETTINGS[p]["grad_accum"] * SETTINGS[p]["steps_per_epoch"] for p in presets)
        data = build_data(workdir, need, log)
        rows = []
        for preset in presets:
            settings = dict(SETTINGS[preset])
            n_samples = settings["batch_size"] * settings["grad_accum"] * settings["steps_per_epoch"]
            preset_data = dict(data)
            if n_samples < need:  # a shorter file, so that one epoch is steps_per_epoch steps
                from scitune.data.sample import read_samples, write_samples

                for stage in ("align", "instruct"):
                    short = workdir / "data" / f"{stage}-{preset}.json"
                    write_samples(read_samples(data[f"{stage}_train"])[:n_samples], short)
                    preset_data[f"{stage}_train"] = str(short)
            model = prepare_smollm2(workdir, log) if preset == "smollm2-135m" else None
            steps = args.steps or settings["steps"]
            runs: dict[tuple, list[dict]] = {config: [] for config in CONFIGS}
            # with --repeats, the configurations take turns, so a busy spell hits them alike
            for attempt in range(args.repeats):
                for stage, cache in CONFIGS:
                    runs[(stage, cache)].append(run_config(preset, stage, cache, settings, steps, preset_data, model,
                                                           peak_flops, args.threads, workdir, attempt, log))
            for config in CONFIGS:
                fastest = max(runs[config], key=lambda r: r["tokens_per_s"])
                rows.append({**fastest, "runs_tokens_per_s": [r["tokens_per_s"] for r in runs[config]]})
        # the cache's speed-up: cached over uncached rate, same preset and stage
        for row in rows:
            row["cache_speedup"] = None
            if row["feature_cache"] is True:
                base = next(r for r in rows if r["preset"] == row["preset"] and r["stage"] == row["stage"] and r["feature_cache"] is False)
                row["cache_speedup"] = row["tokens_per_s"] / base["tokens_per_s"]

    device = rows[0]["device"] if rows else "cpu"
    memory_method = rows[0]["memory_method"] if rows else ""
    header = ("preset", "stage", "cache", "batch", "steps", "tokens/s", "samples/s", "MFU", "peak mem MiB", "cache speed-up")
    table = []
    for r in rows:
        cache = "n/a" if r["feature_cache"] == "n/a" else ("on" if r["feature_cache"] else "off")
        speedup = f"{r['cache_speedup']:.2f}x" if r["cache_speedup"] else "-"
        table.append((r["preset"], r["stage"], cache, str(r["batch_size"]), str(r["measured_steps"]),
                      f"{r['tokens_per_s']:.0f}", f"{r['samples_per_s']:.2f}", f"{100 * r['mfu']:.1f}%",
                      f"{r['peak_memory_mib']:.0f}", speedup))
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(header)]
    total = time.perf_counter() - started
    print()
    print(f"training throughput on {device} ({platform.processor() or platform.machine()}, "
          f"{rows[0]['threads'] if rows else '?'} torch threads); MFU over a peak of {peak_flops:.3g} FLOP/s "
          f"({peak_note}); "
          f"memory: {memory_method}")
    print("  ".join(h.rjust(w) if i > 2 else h.ljust(w) for i, (h, w) in enumerate(zip(header, widths))))
    for t in table:
        print("  ".join(c.rjust(w) if i > 2 else c.ljust(w) for i, (c, w) in enumerate(zip(t, widths))))
    print("rates over the steps after the first epoch (warm-up; it fills the cache); tokens without padding; "
          + (f"fastest of {args.repeats} runs; " if args.repeats > 1 else "")
          + f"cache speed-up = tokens/s with the cache / without, same stage; {total:.0f}s in all")

    result = {
        "device": device,
        "machine": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": load,
        "load_average_at_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "torch": torch.__version__,
        "peak_flops": peak_flops,
        "peak_flops_source": peak_note,
        "threads": rows[0]["threads"] if rows else None,
        "memory_method": memory_method,
        "instruct_format": INSTRUCT_FORMAT,
        "settings": {p: SETTINGS[p] for p in presets},
        "steps_override": args.steps,
        "repeats": args.repeats,
        "seconds": total,
        "rows": rows,
    }
    write_json(args.json, result)  # atomic; makes the folder
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
