"""Peak matmul rate of this machine, for the MFU estimate (`run.peak_flops` in recipes).

    python benchmarks/peak_flops.py [--sizes 512,1024,2048,3072] [--repeats 7] [--dtype float32]
                                    [--device cpu] [--threads N] [--json FILE]

Times square matmuls C = A @ B (2 n^3 FLOPs each) of a few sizes with torch, after a warm-up, on
all of torch's threads (default: as many as torch uses, normally one per core), and keeps the
best of several repeats per size: the best is the rate the hardware reaches when nothing else
gets in the way, which is what MFU divides by. On a CPU it also times one thread alone: the peak
is the larger of the all-threads rate and one thread's rate times the threads (on a machine
shared with other work, threads that wait on each other measure far less than the cores can do;
one thread on one core does not). The peak is the best over all sizes. Prints a table and writes
JSON (default benchmarks/results/peak_flops.json). Run it when the machine is quiet.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

from scitune.io.atomic import write_json


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def time_matmul(n: int, dtype, device: str, repeats: int, min_seconds: float) -> dict:
    """Best-of-`repeats` rate for n x n @ n x n; each repeat runs enough matmuls to last `min_seconds`."""
    import torch

    generator = torch.Generator().manual_seed(n)
    a = torch.randn(n, n, generator=generator).to(device=device, dtype=dtype)
    b = torch.randn(n, n, generator=generator).to(device=device, dtype=dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def run(count: int) -> float:
        sync()
        start = time.perf_counter()
        for _ in range(count):
            torch.matmul(a, b, out=out)
        sync()
        return time.perf_counter() - start

    run(2)  # warm-up: thread pool start, page faults, kernel selection
    once = max(run(1), 1e-6)
    count = max(1, int(min_seconds / once))
    times = [run(count) / count for _ in range(repeats)]
    flops = 2.0 * n**3
    best = min(times)
    return {
        "n": n,
        "matmuls_per_repeat": count,
        "repeats": repeats,
        "best_seconds": best,
        "median_seconds": sorted(times)[len(times) // 2],
        "best_flops_per_s": flops / best,
        "median_flops_per_s": flops / sorted(times)[len(times) // 2],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="512,1024,2048,3072", help="square matrix sizes, comma-separated")
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats per size (the best is kept)")
    parser.add_argument("--min-seconds", type=float, default=0.3, help="length of one repeat (several matmuls)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice, all cores)")
    parser.add_argument("--json", default=str(Path(__file__).parent / "results" / "peak_flops.json"))
    args = parser.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if load > 0.5 * (os.cpu_count() or 1):
        print(f"note: load average {load:.1f} on {os.cpu_count()} cores: the machine is busy, so the peak "
              "measured is a lower bound")
    threads = torch.get_num_threads()
    device_name = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else cpu_name()
    print(f"{args.dtype} matmul on {args.device} ({device_name}), best of {args.repeats} repeats")
    print(f"{'threads':>7}  {'n':>6}  {'best GFLOP/s':>12}  {'median GFLOP/s':>14}  {'matmuls/repeat':>14}")
    runs = {}
    # All threads together; then (CPU, threads not fixed by --threads) one thread alone, times the
    # threads: on a machine shared with other work the threads wait on each other and the first
    # number falls far below what the cores can do, while one thread on one core still gets its full rate.
    counts = [threads] + ([1] if threads > 1 and not args.threads and args.device == "cpu" else [])
    for count in counts:
        torch.set_num_threads(count)
        rows = [time_matmul(n, dtype, args.device, args.repeats, args.min_seconds) for n in sizes]
        for r in rows:
            print(f"{count:>7}  {r['n']:>6}  {r['best_flops_per_s'] / 1e9:12.1f}  {r['median_flops_per_s'] / 1e9:14.1f}  "
                  f"{r['matmuls_per_repeat']:>14}")
        runs[count] = rows
    torch.set_num_threads(threads)
    peak_all = max(r["best_flops_per_s"] for r in runs[threads])
    peak_one = max(r["best_flops_per_s"] for r in runs[1]) if 1 in runs else None
    if peak_one is not None and peak_one * threads > peak_all:
        peak, method = peak_one * threads, f"one thread's peak x {threads} threads (above the {threads}-thread measurement)"
    else:
        peak, method = peak_all, f"{threads} threads together"
    result = {
        "peak_flops": peak,
        "method": method,
        "peak_flops_all_threads": peak_all,
        "peak_flops_one_thread": peak_one,
        "dtype": args.dtype,
        "device": args.device,
        "device_name": device_name,
        "threads": threads,
        "cpu_count": os.cpu_count(),
        "load_average_before": load,
        "torch": torch.__version__,
        "sizes": {str(count): rows for count, rows in runs.items()},
    }
    print(f"{threads} threads together: {peak_all:.3g} FLOP/s" + (
        f"; one thread: {peak_one:.3g} FLOP/s (x {threads} = {peak_one * threads:.3g})" if peak_one is not None else ""))
    print(f"peak: {peak:.3g} FLOP/s ({method}); use it as run.peak_flops")
    write_json(args.json, result)  # atomic; makes the folder
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
