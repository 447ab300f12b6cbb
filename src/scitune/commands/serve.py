"""`scitune serve`: checkpoints behind an OpenAI-compatible API and a web page, in one process."""

from __future__ import annotations

import argparse
import sys

from scitune import console
from scitune.cli import add_command, bounded_int, positive_int
from scitune.errors import ScituneError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _nonnegative_float(text: str) -> float:
    if text.strip() in ("0", "0.0"):
        return 0.0
    return _positive_float(text)


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "serve",
        "Serve checkpoints: an OpenAI-compatible API (/v1/chat/completions), figure endpoints and a web page at /.",
        "scitune serve --model runs/demo/scitune/instruct/final\n"
        "  scitune serve --model scitune=runs/demo/scitune/instruct/final --model no-align=runs/demo/no-align/instruct/final",
    )
    parser.add_argument("--model", action="append", required=True, metavar="[NAME=]DIR",
                        help="a checkpoint folder (any supported model family) or LoRA adapter folder, optionally named; repeat for more models")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=bounded_int(0, 65535), default=8000, help="port (default 8000)")
    parser.add_argument("--image-root", help="also accept image paths under this folder (and no other); default: data: URLs only")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, ... (default cpu)")
    parser.add_argument("--dtype", default="float32", help="float32 (default), bfloat16, float16, auto")
    parser.add_argument("--image-placement", default="front", choices=("front", "keep"),
                        help="front (as LLaVA trains: <image> at the start of its turn; default) or keep")
    limits = parser.add_argument_group("batching and limits")
    limits.add_argument("--max-batch", type=positive_int, default=8, help="requests in one batched generation (default 8)")
    limits.add_argument("--window-ms", type=_nonnegative_float, default=10.0,
                        help="how long a request waits for others to share its batch (default 10 ms)")
    limits.add_argument("--max-queue", type=positive_int, default=64, help="waiting requests; one more gets 429 (default 64)")
    limits.add_argument("--max-queued-image-mb", type=_positive_float, default=1024.0,
                        help="memory the waiting requests' images may hold; a request that would go over it gets 429 (default 1024 MiB)")
    limits.add_argument("--timeout", type=_positive_float, default=120.0, help="seconds a request may take; then 504 (default 120)")
    limits.add_argument("--header-timeout", type=_positive_float, default=10.0,
                        help="seconds a connection has to send a request's headers; then 408 (default 10)")
    limits.add_argument("--body-timeout", type=_positive_float, default=30.0,
                        help="seconds a request has to send its body after its headers; then 408 (default 30)")
    limits.add_argument("--max-tokens", type=positive_int, default=512, help="cap on a request's max_tokens (default 512)")
    limits.add_argument("--max-body-mb", type=_positive_float, default=16.0, help="request body size limit (default 16 MiB)")
    limits.add_argument("--max-image-mb", type=_positive_float, default=8.0, help="one image's size limit (default 8 MiB)")
    limits.add_argument("--max-image-pixels", type=positive_int, default=16_000_000,
                        help="one image's width x height limit (default 16 million)")
    limits.add_argument("--max-images", type=positive_int, default=4, help="images in one request (default 4)")
    parser.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from scitune.serve.app import create_app
    from scitune.serve.limits import ServeLimits
    from scitune.serve.models import load_slots
    from scitune.serve.server import serve

    if args.image_root is not None and not Path(args.image_root).is_dir():
        raise ScituneError(f"--image-root {args.image_root}: not a folder")
    limits = ServeLimits(
        max_body_bytes=int(args.max_body_mb * 1024**2),
        max_image_bytes=int(args.max_image_mb * 1024**2),
        max_image_pixels=args.max_image_pixels,
        max_images=args.max_images,
        max_tokens=args.max_tokens,
        default_max_tokens=min(256, args.max_tokens),
        max_batch=args.max_batch,
        window_ms=args.window_ms,
        max_queue=args.max_queue,
        max_queued_image_bytes=int(args.max_queued_image_mb * 1024**2),
        timeout_s=args.timeout,
        header_timeout_s=args.header_timeout,
        body_timeout_s=args.body_timeout,
    )
    console.configure(stream="stderr", prefix="scitune serve: ")  # stdout is the server's
    slots = load_slots(args.model, dtype=args.dtype, device=args.device, image_placement=args.image_placement)
    app = create_app(slots, limits, image_root=args.image_root)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"scitune serve: {len(slots)} model(s) at http://{shown}:{args.port}/ (API: http://{shown}:{args.port}/v1)",
          file=sys.stderr, flush=True)
    if args.host not in LOOPBACK:
        print("scitune serve: warning: listening beyond this machine with no authentication; anyone who can reach "
              "this port can use the models", file=sys.stderr)
    serve(app, args.host, args.port, limits.max_queue, args.log_level)
    return 0
