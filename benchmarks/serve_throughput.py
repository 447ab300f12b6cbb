"""Serving throughput: 64 concurrent chat requests against `scitune serve`'s app with batching
(up to --max-batch requests per generation) and with a batch size of 1, on the same model, in
one run: requests per second, p50 and p95 latency, and the ratio.

    python benchmarks/serve_throughput.py [--model CKPT] [--requests 64] [--max-batch 8]
                                          [--max-tokens 16] [--window-ms 10] [--threads 1]
                                          [--rounds 2] [--out FILE.json]

Without --model it builds the tiny preset (random weights). The app runs on uvicorn in a thread
of this process on 127.0.0.1 (a free port); the requests are sent at once by an asyncio httpx
client (one connection each), a third of them with a figure (a PNG as a data: URL), with
max_tokens cycling through --max-tokens/2..--max-tokens. Each configuration is measured --rounds
times after a warm-up, alternating, and the best round is kept (the machine may be busy). It also
checks that both configurations give identical answers (greedy). Prints a table and writes JSON
(default benchmarks/results/serve_throughput.json).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from scitune.io.atomic import write_json

PROMPTS = ["What type of figure is this?", "Describe the figure in detail.", "Which axis shows time?",
           "Is the trend rising or falling?", "Name the largest bar.", "Write a caption for this figure.",
           "Explain the equation.", "What does the legend say?"]


def figure_url(seed: int) -> str:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (160, 120), "white")
    draw = ImageDraw.Draw(image)
    for i in range(4):
        height = 20 + (seed * 37 + i * 23) % 90
        draw.rectangle([15 + 35 * i, 115 - height, 40 + 35 * i, 115], fill=(40 + 50 * i, 90, 200 - 40 * i))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def bodies(count: int, max_tokens: int) -> list[dict]:
    out = []
    for i in range(count):
        text = PROMPTS[i % len(PROMPTS)]
        content = [{"type": "image_url", "image_url": {"url": figure_url(i)}}, {"type": "text", "text": text}] if i % 3 == 0 else text
        out.append({"model": "bench", "messages": [{"role": "user", "content": content}],
                    "max_tokens": max(1, max_tokens // 2 + i % (max_tokens // 2 + 1)), "temperature": 0})
    return out


async def fire(url: str, requests: list[dict]) -> tuple[float, list[float], list[str]]:
    import httpx

    limits = httpx.Limits(max_connections=len(requests), max_keepalive_connections=len(requests))
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as client:
        async def one(body):
            began = time.perf_counter()
            response = await client.post("/v1/chat/completions", json=body)
            response.raise_for_status()
            return time.perf_counter() - began, response.json()["choices"][0]["message"]["content"]

        began = time.perf_counter()
        results = await asyncio.gather(*(one(body) for body in requests))
        wall = time.perf_counter() - began
    return wall, [r[0] for r in results], [r[1] for r in results]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def measure(slot, limits, requests: list[dict]) -> dict:
    from scitune.serve.app import create_app
    from scitune.serve.server import ServerThread

    with ServerThread(create_app({"bench": slot}, limits), max_queue=limits.max_queue) as server:
        asyncio.run(fire(server.url, requests[: min(4, len(requests))]))  # warm-up
        wall, latencies, texts = asyncio.run(fire(server.url, requests))
        import httpx

        stats = httpx.get(server.url + "/health").json()["queue"]
    return {"seconds": wall, "requests_per_s": len(requests) / wall, "p50_s": statistics.median(latencies),
            "p95_s": percentile(latencies, 95), "batches": stats["batch_sizes"], "texts": texts}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="checkpoint folder (default: build the tiny preset)")
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--window-ms", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "serve_throughput.json"))
    args = parser.parse_args(argv)

    import torch

    from scitune.serve.limits import ServeLimits
    from scitune.serve.models import load_slot

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="scitune-serve-bench-") as tmp:
        model_dir = args.model
        if model_dir is None:
            from scitune.config import ModelConfig
            from scitune.model import build_model, save_model

            torch.manual_seed(0)
            model, processor = build_model(ModelConfig(preset="tiny"))
            model_dir = str(save_model(model, processor, Path(tmp) / "tiny"))
        slot = load_slot("bench", Path(model_dir))
        requests = bodies(args.requests, args.max_tokens)
        configs = {
            f"batched (max {args.max_batch})": ServeLimits(max_batch=args.max_batch, window_ms=args.window_ms,
                                                          max_queue=args.requests + 8, timeout_s=600),
            "batch size 1": ServeLimits(max_batch=1, window_ms=0, max_queue=args.requests + 8, timeout_s=600),
        }
        best: dict[str, dict] = {}
        for _ in range(args.rounds):
            for name, limits in configs.items():
                result = measure(slot, limits, requests)
                if name not in best or result["requests_per_s"] > best[name]["requests_per_s"]:
                    best[name] = result
    batched, single = best.values()
    identical = batched["texts"] == single["texts"]
    ratio = batched["requests_per_s"] / single["requests_per_s"]
    print(f"{args.requests} concurrent requests, max_tokens {args.max_tokens // 2}..{args.max_tokens}, "
          f"a third with a figure; model {args.model or 'tiny (random weights)'}; torch threads {args.threads}")
    print(f"{'configuration':<22} {'requests/s':>10} {'p50 s':>8} {'p95 s':>8} {'wall s':>8}  batches (size: count)")
    for name, r in best.items():
        print(f"{name:<22} {r['requests_per_s']:>10.2f} {r['p50_s']:>8.2f} {r['p95_s']:>8.2f} {r['seconds']:>8.2f}  {r['batches']}")
    print(f"throughput ratio (batched / batch size 1): {ratio:.2f}x; identical answers: {'yes' if identical else 'NO'}")
    result = {
        "requests": args.requests, "max_batch": args.max_batch, "max_tokens": args.max_tokens, "window_ms": args.window_ms,
        "threads": args.threads, "model": args.model or "tiny (random weights)", "python": sys.version.split()[0],
        "machine": platform.machine(), "ratio": ratio, "identical_answers": identical,
        "configurations": {name: {k: v for k, v in r.items() if k != "texts"} for name, r in best.items()},
    }
    write_json(args.out, result)  # atomic; makes the folder
    return 0 if identical else 1


if __name__ == "__main__":
    raise SystemExit(main())
