"""How fast the built-in corpus renders, and how visually distinct its figure types are.

Builds corpora at 64 and 128 px with 1 and 2 render workers and prints figures per second (the
whole build: sampling, captions, questions, rendering, writing both layouts) and the CPU time
per figure (this process plus its render processes), which other load on the machine disturbs
less than the wall clock. Then, on the
128-px corpus, fits a linear classifier (ridge regression on 32x32 grey pixels, numpy only) on
the train split's figure types and scores it on val+test: a floor for what a vision tower can
learn. Results go to benchmarks/results/corpus_speed.json.

    python benchmarks/corpus_speed.py [--figures 400] [--seed 0] [--clip-figures 1500]

With --clip-figures N it also trains a random-init tiny CLIP vision tower (the kind the demo
uses) on the figure types of an N-figure 64-px corpus and reports held-out accuracy.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def _cpu_seconds() -> float:
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def build(figures: int, seed: int, size: int, workers: int, out: Path) -> tuple[float, float]:
    """Wall-clock and CPU seconds (this process and its render processes) of one build."""
    from scitune.data.corpus import build_corpus

    start, cpu = time.perf_counter(), _cpu_seconds()
    build_corpus(out, figures=figures, seed=seed, image_size=size, workers=workers)
    return time.perf_counter() - start, _cpu_seconds() - cpu


def linear_probe(corpus: Path) -> dict:
    import numpy as np
    from PIL import Image

    from scitune.data.corpus import FIGURE_TYPES

    data = json.loads((corpus / "figure_data.json").read_text())
    xs, ys, splits = [], [], []
    for figure in data["figures"]:
        with Image.open(corpus / "scicap" / "images" / figure["file_name"]) as im:
            pixels = np.asarray(im.convert("L").resize((32, 32), Image.BILINEAR), dtype=np.float64) / 255
        xs.append(np.append(pixels.ravel(), 1.0))
        ys.append(FIGURE_TYPES.index(figure["spec"]["figure_type"]))
        splits.append(figure["split"])
    x, y = np.stack(xs), np.array(ys)
    train = np.array([s == "train" for s in splits])
    targets = np.eye(len(FIGURE_TYPES))[y[train]]
    gram = x[train].T @ x[train] + 1.0 * np.eye(x.shape[1])
    weights = np.linalg.solve(gram, x[train].T @ targets)
    predicted = (x[~train] @ weights).argmax(axis=1)
    return {"train": int(train.sum()), "held_out": int((~train).sum()),
            "accuracy": float((predicted == y[~train]).mean())}


def clip_probe(figures: int, seed: int, size: int, epochs: int, out: Path) -> dict:
    """Trains a random-init tiny CLIP vision tower (3 layers, width 96, 8x8 patches) plus a linear
    head on the train split's figure types; returns held-out (val+test) accuracy per epoch."""
    import numpy as np
    import torch
    from PIL import Image
    from transformers import CLIPVisionConfig, CLIPVisionModel

    from scitune.data.corpus import FIGURE_TYPES, build_corpus

    build_corpus(out, figures=figures, seed=seed, image_size=size)
    data = json.loads((out / "figure_data.json").read_text())
    images, labels, train = [], [], []
    for figure in data["figures"]:
        with Image.open(out / "scicap" / "images" / figure["file_name"]) as im:
            images.append((np.asarray(im.convert("RGB"), dtype=np.float32) / 255 - 0.5) / 0.5)
        labels.append(FIGURE_TYPES.index(figure["spec"]["figure_type"]))
        train.append(figure["split"] == "train")
    x = torch.tensor(np.stack(images)).permute(0, 3, 1, 2)
    y, train = torch.tensor(labels), torch.tensor(train)
    torch.manual_seed(seed)
    config = CLIPVisionConfig(hidden_size=96, intermediate_size=192, num_hidden_layers=3, num_attention_heads=4,
                              image_size=size, patch_size=size // 8)
    tower, head = CLIPVisionModel(config), torch.nn.Linear(96, len(FIGURE_TYPES))
    features = lambda batch: tower(pixel_values=batch).last_hidden_state[:, 1:].mean(1)  # CLS dropped
    optimizer = torch.optim.AdamW([*tower.parameters(), *head.parameters()], lr=1e-3)
    batch_size, x_train, y_train = 32, x[train], y[train]
    steps = epochs * ((len(x_train) + batch_size - 1) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-3, total_steps=steps)
    accuracy = []
    for _ in range(epochs):
        tower.train()
        order = torch.randperm(len(x_train))
        for start in range(0, len(x_train), batch_size):
            batch = order[start:start + batch_size]
            loss = torch.nn.functional.cross_entropy(head(features(x_train[batch])), y_train[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        tower.eval()
        with torch.no_grad():
            predicted = head(features(x[~train])).argmax(-1)
        accuracy.append(round(float((predicted == y[~train]).float().mean()), 3))
    return {"figures": figures, "image_size": size, "epochs": epochs, "train": int(train.sum()),
            "held_out": int((~train).sum()), "accuracy_per_epoch": accuracy, "final_accuracy": accuracy[-1]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--figures", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--clip-figures", type=int, default=0, metavar="N",
                        help="also train a random-init tiny CLIP tower on figure type with N figures "
                             "(64 px; a few minutes on 2 CPUs; default: skip)")
    parser.add_argument("--clip-epochs", type=int, default=20)
    args = parser.parse_args()

    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in (64, 128):
            for workers in (1, 2):
                out = Path(tmp) / f"c{size}_{workers}"
                seconds, cpu = build(args.figures, args.seed, size, workers, out)
                rows.append({"image_size": size, "workers": workers, "figures": args.figures,
                             "seconds": round(seconds, 2), "figures_per_second": round(args.figures / seconds, 1),
                             "cpu_ms_per_figure": round(1000 * cpu / args.figures, 1)})
        probe = linear_probe(Path(tmp) / "c128_2")
        clip = clip_probe(args.clip_figures, args.seed, 64, args.clip_epochs, Path(tmp) / "clip") if args.clip_figures else None

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{os.cpu_count()} CPUs; load average before/after: {load_before:.2f} / {load:.2f} "
          "(other processes on the machine slow the numbers down)")
    print(f"{'px':>4} {'workers':>7} {'figures':>7} {'seconds':>8} {'fig/s':>7} {'cpu ms/fig':>10}")
    for r in rows:
        print(f"{r['image_size']:>4} {r['workers']:>7} {r['figures']:>7} {r['seconds']:>8.2f} "
              f"{r['figures_per_second']:>7.1f} {r['cpu_ms_per_figure']:>10.1f}")
    print(f"figure-type linear probe (32x32 grey, ridge) at 128 px: {probe['accuracy']:.3f} "
          f"on {probe['held_out']} held-out figures ({probe['train']} train); chance 0.200")
    if clip:
        print(f"figure-type tiny CLIP (random init, 64 px, {clip['epochs']} epochs): {clip['final_accuracy']:.3f} "
              f"on {clip['held_out']} held-out figures ({clip['train']} train); per epoch {clip['accuracy_per_epoch']}")

    import matplotlib

    result = {"benchmark": "corpus_speed", "seed": args.seed, "cpus": os.cpu_count(),
              "python": platform.python_version(), "matplotlib": matplotlib.__version__,
              "machine": platform.machine(), "load_average": [load_before, load], "rows": rows, "figure_type_linear_probe": probe,
              "figure_type_tiny_clip": clip}
    out_dir = ROOT / "benchmarks" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "corpus_speed.json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out_dir / 'corpus_speed.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
