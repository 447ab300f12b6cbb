"""Start-up time and peak memory of the training data path at LLaVA's scale.

A synthetic LLaVA JSONL of N records (single-turn figure questions and some text-only ones; the
images are 16 PNGs shared by path, as LLaVA's 665k records share COCO images) is indexed with
`scitune.train.dataset.build_index` (validation + one rendering per record, in 2 worker
processes; cold: nothing cached) and then started again as a training process does once the
index is cached (warm): read the index, build the dataset and pull 20 micro-batches of 8 through
a DataLoader with 2 workers that render and decode images. Each measurement runs in a fresh
process; peak RSS is that process's (`ru_maxrss`), and its workers' largest.

    python benchmarks/data_scale.py            # N = 20,000 and 200,000
    python benchmarks/data_scale.py --sizes 2000 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def write_file(path: Path, images: Path, n: int) -> None:
    from PIL import Image, ImageDraw

    images.mkdir(parents=True, exist_ok=True)
    for k in range(16):
        img = Image.new("RGB", (64, 64), "white")
        ImageDraw.Draw(img).rectangle([4 * k % 40, 10, 4 * k % 40 + 20, 60], fill=(40, 90, 200))
        img.save(images / f"fig{k}.png")
    with open(path, "w") as out:
        for i in range(n):
            if i % 10 == 9:
                record = {"id": f"t{i}", "conversations": [
                    {"from": "human", "value": f"Which number is larger, {i} or {i + 3}?"},
                    {"from": "gpt", "value": f"The answer is {i + 3}."}]}
            else:
                record = {"id": f"f{i}", "image": f"fig{i % 16}.png", "conversations": [
                    {"from": "human", "value": "<image>\nWhat type of figure is this?" + " Describe it." * (i % 5)},
                    {"from": "gpt", "value": ("Bar Chart" if i % 2 else "Graph Plot") + " with bars" * (i % 3)}]}
            out.write(json.dumps(record) + "\n")


def _processor():
    from scitune.config import ModelConfig
    from scitune.model import build_model

    _, processor = build_model(ModelConfig(preset="tiny", vocab_size=400), texts=["What type of figure is this? Bar Chart Graph Plot"])
    return processor


def measure(path: str, images: str, mode: str) -> dict:
    """In a fresh process: `cold` builds the index, `warm` reads it and runs the DataLoader."""
    import torch

    from scitune.prompting import ImageLoader, PaddingCollator, Renderer
    from scitune.train.dataset import BatchCollate, IndexedSamples, build_index
    from scitune.train.loop import file_digest

    torch.set_num_threads(1)
    processor = _processor()
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tick = time.perf_counter()
    renderer = Renderer(processor, max_length=256)
    digest = file_digest(path)
    index, cached = build_index(path, digest, images, renderer, workers=2)
    seconds = time.perf_counter() - tick
    out = {"mode": mode, "cached": cached, "records": index.records, "kept": len(index.offsets), "index_seconds": round(seconds, 2)}
    if mode == "warm":
        dataset = IndexedSamples(path, index, renderer)
        collate = BatchCollate(PaddingCollator(processor.tokenizer.pad_token_id, ImageLoader(processor.image_processor, images)))
        order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))[:160].view(20, 8).tolist()
        loader = torch.utils.data.DataLoader(dataset, batch_sampler=order, collate_fn=collate, num_workers=2)
        first = None
        for k, batch in enumerate(loader):
            if k == 0:
                first = time.perf_counter() - tick
            assert batch["input_ids"].shape[0] == 8
        out["first_batch_seconds"] = round(first, 2)
        out["20_batches_seconds"] = round(time.perf_counter() - tick, 2)
    out["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    out["model_and_tokenizer_rss_mib"] = round(base / 1024, 1)
    out["workers_peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 200_000])
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--measure", nargs=3, metavar=("PATH", "IMAGES", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure)))
        return 0
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "SCITUNE_CACHE": str(Path(tmp) / "cache"), "TOKENIZERS_PARALLELISM": "false"}
        for n in args.sizes:
            path, images = Path(tmp) / f"llava-{n}.jsonl", Path(tmp) / "images"
            write_file(path, images, n)
            for mode in ("cold", "warm"):
                done = subprocess.run([sys.executable, __file__, "--measure", str(path), str(images), mode],
                                      capture_output=True, text=True, env=env, check=True)
                row = {"records_in_file": n, "file_mib": round(path.stat().st_size / 2**20, 1), **json.loads(done.stdout.splitlines()[-1])}
                rows.append(row)
                print(json.dumps(row), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
