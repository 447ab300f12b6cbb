"""CPU contention: how much slower a short tiny training run and a short batched evaluation get
when other programs keep the CPU busy, with scitune's thread defaults and with torch's.

    python benchmarks/contention.py [--busy 0,1,2,0] [--steps 12] [--items 24] [--repeats 1]
                                    [--timeout 300] [--keep DIR] [--json benchmarks/results/contention.json]
    python benchmarks/contention.py --demo     (`scitune demo --quick` alone, then beside 1 busy process)

Each measurement is one `python -m scitune ...` command in a fresh process (so each gets its
own environment, read when torch loads): "ours" with scitune's defaults (scitune.threads:
passive OpenMP waits, one thread per usable core), "torch" with `SCITUNE_THREADS=off` (torch's
defaults: one thread per core, idle threads spin). The thread variables of the calling shell
(OMP_NUM_THREADS, OMP_WAIT_POLICY, ...) are removed for both. The workloads, built once from the
built-in corpus (40 figures) and a random-init tiny base:

- train: `scitune train recipes/tiny-cpu.yaml`, stage instruct only (full LM + projector), on
  the corpus's ScienceQA training problems, --steps optimizer steps of batch 8;
- eval: `scitune eval scienceqa --model` on --items training problems, greedy generation in
  batches of 8, 16 new tokens.

The load: 0, 1 and 2 busy-loop Python processes (`while True: pass`) that this script starts
before a case and kills after it (always, in a `finally`; each also stops by itself after 20
minutes). The configurations take turns within a case; the case with none runs first and again
last (the faster run is the reference), so background load at one moment weighs less. A slowdown is a run's wall time over the
same configuration's time with no busy process; the wall time is the whole command, start-up
included, which is what a user waits for (train also shows the training loop's own seconds).
A run that passes --timeout is stopped and shown as ">T": its ratio is a lower bound.

On a machine that other work already keeps busy, "alone" is not quiet: the load average is
printed before and after each case.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scitune.io.atomic import write_json

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RECIPE = ROOT / "recipes" / "tiny-cpu.yaml"
CONFIGS = ("ours", "torch")
BUSY_LOOP_LIMIT_S = 1200  # a busy process ends itself after this, even if this script is killed
# removed from both configurations' environments, so the shell's settings do not leak in
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_WAIT_POLICY",
               "SCITUNE_THREADS", "GOMP_SPINCOUNT", "KMP_BLOCKTIME", "LOCAL_WORLD_SIZE")
TRAIN_SECONDS = re.compile(r"^\[instruct\] .*, ([0-9.]+)s -> ", re.MULTILINE)


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"


def env_for(config: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    if config == "torch":
        env["SCITUNE_THREADS"] = "off"
    return env


def scitune(args: list[str], env: dict[str, str], timeout: float | None = None) -> tuple[float | None, str]:
    """Runs `python -m scitune ARGS`; returns (wall seconds or None after a timeout, output)."""
    start = time.perf_counter()
    try:
        done = subprocess.run([sys.executable, "-m", "scitune", *args], env=env, cwd=str(ROOT),
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as stop:
        out = stop.stdout.decode(errors="replace") if isinstance(stop.stdout, bytes) else (stop.stdout or "")
        return None, out
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"scitune {' '.join(args[:3])} ... failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return wall, done.stdout + done.stderr


def prepare(workdir: Path, log) -> dict[str, Path]:
    """The corpus, the instruction file and the tiny base, built once (our defaults)."""
    env = env_for("ours")
    corpus, instruct, base = workdir / "corpus", workdir / "instruct.json", workdir / "base"
    start = time.perf_counter()
    scitune(["corpus", "build", "--figures", "40", "--out", str(corpus)], env)
    scitune(["data", "scienceqa", "--root", str(corpus / "scienceqa"), "--split", "train",
             "--format", "QCM-LEPA", "--out", str(instruct)], env)
    scitune(["model", "build", "--preset", "tiny", "--out", str(base)], env)
    log(f"built the corpus (40 figures), the training file and the tiny base in {time.perf_counter() - start:.0f}s")
    return {"corpus": corpus, "instruct": instruct, "base": base}


def workload_args(name: str, paths: dict[str, Path], out: Path, steps: int, items: int) -> list[str]:
    images = str(paths["corpus"] / "scienceqa" / "images" / "train")
    if name == "train":
        return ["train", str(RECIPE), f"model.checkpoint={paths['base']}", "instruct.init_from=null",
                f"instruct.data.train={paths['instruct']}", f"instruct.data.images={images}",
                "instruct.batch_size=8", f"instruct.max_steps={steps}", "instruct.epochs=1000",
                "run.save_every=0", "run.log_every=1000", "--out", str(out), "--stage", "instruct"]
    return ["eval", "scienceqa", "--problems", str(paths["corpus"] / "scienceqa"), "--split", "train",
            "--model", str(paths["base"]), "--images", images, "--batch-size", "8",
            "--max-new-tokens", "16", "--limit", str(items), "--out", str(out)]


def start_busy(count: int) -> list[subprocess.Popen]:
    code = f"import time\nend = time.monotonic() + {BUSY_LOOP_LIMIT_S}\nwhile time.monotonic() < end:\n    pass\n"
    return [subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(count)]


def stop_busy(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def fmt_seconds(value: float | None, timeout: float) -> str:
    return f">{timeout:.0f}" if value is None else f"{value:.1f}"


def fmt_ratio(value: float | None, base: float | None, timeout: float) -> str:
    if base is None:
        return "n/a"
    if value is None:
        return f">{timeout / base:.1f}x"
    return f"{value / base:.1f}x"


def demo(args) -> int:
    """`scitune demo --quick` with our defaults, alone and then beside one busy process."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{cpus} usable CPUs; load average at start: {load_average()}", flush=True)
    walls = {}
    with tempfile.TemporaryDirectory(prefix="scitune-contention-demo-") as tmp:
        workdir = Path(args.keep) if args.keep else Path(tmp)
        for busy in (0, 1):
            before = load_average()
            processes = start_busy(busy)
            try:
                wall, _ = scitune(["demo", "--quick", "--out", str(workdir / f"demo-{busy}")], env_for("ours"),
                                  timeout=max(args.timeout, 1800))
            finally:
                stop_busy(processes)
            walls[busy] = wall
            print(f"demo --quick beside {busy} busy: {fmt_seconds(wall, max(args.timeout, 1800))}s "
                  f"(load average before / after: {before} / {load_average()})", flush=True)
    ratio = walls[1] / walls[0] if walls[0] and walls[1] else None
    verdict = "n/a" if ratio is None else f"{ratio:.2f}x: {'met' if ratio <= 2 else 'NOT met'}"
    print(f"goal (demo --quick beside 1 busy process within 2x its time alone): {verdict}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"benchmark": "contention-demo", "cpus": cpus,
                                           "wall_seconds": {str(k): v for k, v in walls.items()}}, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--busy", default="0,1,2,0", help="busy processes per case, comma-separated, 0 first; "
                        "a count given twice keeps the faster run")
    parser.add_argument("--workloads", default="train,eval", help="train, eval or both")
    parser.add_argument("--steps", type=int, default=12, help="training steps (batch 8)")
    parser.add_argument("--items", type=int, default=24, help="evaluation questions (batches of 8)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per configuration and case; the fastest is kept")
    parser.add_argument("--timeout", type=float, default=300, help="seconds before a run is stopped")
    parser.add_argument("--keep", help="work in this folder and keep it")
    parser.add_argument("--json", default=str(HERE / "results" / "contention.json"))
    parser.add_argument("--demo", action="store_true", help="instead: `scitune demo --quick` (our defaults) alone "
                        "and beside one busy process; goal: at most 2x")
    args = parser.parse_args(argv)
    if args.demo:
        return demo(args)
    try:
        cases = [int(b) for b in args.busy.split(",") if b.strip()]
    except ValueError:
        parser.error(f"--busy: expected counts such as 0,1,2, got {args.busy!r}")
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    if not cases or cases[0] != 0 or any(not 0 <= b <= 16 for b in cases):
        parser.error("--busy: counts 0..16, starting with 0 (the reference)")
    if not workloads or any(w not in ("train", "eval") for w in workloads):
        parser.error("--workloads: train, eval or both")
    if not 1 <= args.steps <= 1000 or not 1 <= args.items <= 1000 or not 1 <= args.repeats <= 10:
        parser.error("--steps and --items: 1..1000; --repeats: 1..10")

    log = lambda message: print(message, flush=True)  # noqa: E731
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    log(f"{cpus} usable CPUs; load average at start: {load_average()}")
    started = time.perf_counter()
    results: dict[tuple, dict] = {}
    every_run: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="scitune-contention-") as tmp:
        workdir = Path(args.keep) if args.keep else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        paths = prepare(workdir, log)
        # one short run first, discarded: the first process after the build reads cold files
        scitune(workload_args("train", paths, workdir / "runs" / "warm-up", 1, 8), env_for("ours"))
        for case, busy in enumerate(cases):
            before = load_average()
            processes = start_busy(busy)
            try:
                time.sleep(1.0 if busy else 0.0)  # let the busy processes start
                for workload in workloads:
                    for attempt in range(args.repeats):
                        for config in CONFIGS:  # taking turns, so a busy spell hits both alike
                            out = workdir / "runs" / f"{workload}-{case}-{busy}-{config}-{attempt}"
                            wall, output = scitune(workload_args(workload, paths, out, args.steps, args.items),
                                                   env_for(config), timeout=args.timeout)
                            match = TRAIN_SECONDS.search(output) if wall is not None else None
                            loop = float(match.group(1)) if match else None
                            key = (workload, busy, config)
                            every_run.append({"workload": workload, "case": case, "busy": busy, "config": config,
                                              "wall_seconds": wall, "loop_seconds": loop, "load_average": load_average()})
                            kept = results.get(key)
                            if kept is None or (wall is not None and (kept["wall"] is None or wall < kept["wall"])):
                                results[key] = {"wall": wall, "loop": loop}
                            log(f"{workload:5s} beside {busy} busy, {config:5s}: {fmt_seconds(wall, args.timeout)}s"
                                + (f" (training loop {loop:.1f}s)" if loop is not None else ""))
            finally:
                stop_busy(processes)
            log(f"  load average before / after the {busy}-busy case: {before} / {load_average()}")

    cases = list(dict.fromkeys(cases))  # a count run twice is one row (its faster run)
    print()
    print(f"slowdown beside busy-loop processes on {cpus} CPUs (wall seconds of the whole command; "
          f"x = over the same configuration alone)")
    header = ("workload", "busy", "ours s", "ours x", "torch s", "torch x", "torch / ours")
    rows = []
    for workload in workloads:
        for busy in cases:
            ours, torch_ = results[(workload, busy, "ours")], results[(workload, busy, "torch")]
            ours0, torch0 = results[(workload, 0, "ours")], results[(workload, 0, "torch")]
            versus = (f"{torch_['wall'] / ours['wall']:.1f}x" if ours["wall"] and torch_["wall"]
                      else (f">{args.timeout / ours['wall']:.1f}x" if ours["wall"] else "n/a"))
            rows.append((workload, str(busy), fmt_seconds(ours["wall"], args.timeout),
                         fmt_ratio(ours["wall"], ours0["wall"], args.timeout),
                         fmt_seconds(torch_["wall"], args.timeout),
                         fmt_ratio(torch_["wall"], torch0["wall"], args.timeout), versus))
        if workload == "train":
            for busy in cases:
                ours, torch_ = results[("train", busy, "ours")], results[("train", busy, "torch")]
                ours0, torch0 = results[("train", 0, "ours")], results[("train", 0, "torch")]
                rows.append(("  loop", str(busy), fmt_seconds(ours["loop"], args.timeout),
                             fmt_ratio(ours["loop"], ours0["loop"], args.timeout),
                             fmt_seconds(torch_["loop"], args.timeout),
                             fmt_ratio(torch_["loop"], torch0["loop"], args.timeout),
                             f"{torch_['loop'] / ours['loop']:.1f}x" if ours["loop"] and torch_["loop"] else "n/a"))
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print("  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(header, widths))))
    for row in rows:
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))))
    if "train" in workloads:
        print("loop: train's own training-loop seconds (without start-up and model loading)")
    top = max(cases)
    if top >= 2:
        for workload in workloads:
            ours = results[(workload, top, "ours")]["wall"]
            ours0 = results[(workload, 0, "ours")]["wall"]
            torch_, torch0 = results[(workload, top, "torch")]["wall"], results[(workload, 0, "torch")]["wall"]
            ours_x = ours / ours0 if ours and ours0 else None
            torch_x = (torch_ if torch_ else args.timeout) / torch0 if torch0 else None
            verdict = "met" if ours_x is not None and ours_x <= 3 else "NOT met"
            print(f"goal ({workload}, {top} busy): ours at most 3x -> "
                  f"{'n/a' if ours_x is None else f'{ours_x:.1f}x'}: {verdict}; torch's defaults "
                  f"{'n/a' if torch_x is None else ('>' if torch_ is None else '') + f'{torch_x:.1f}x'}")
    total = time.perf_counter() - started
    print(f"{total:.0f}s in all; load average at the end: {load_average()}")

    result = {
        "benchmark": "contention", "cpus": cpus, "steps": args.steps, "items": args.items,
        "repeats": args.repeats, "timeout": args.timeout, "seconds": total,
        "runs": [{"workload": w, "busy": b, "config": c, "wall_seconds": r["wall"], "loop_seconds": r["loop"]}
                 for (w, b, c), r in results.items()],
        "every_run": every_run,
    }
    write_json(args.json, result)  # atomic; makes the folder
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
