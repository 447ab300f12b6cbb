"""GPU proof of the training path: random-init models of the paper's shapes, both stages, sharded.

For each size: a LLaVA of a CLIP ViT-L/14 (224 px) tower and a Llama of ~1B or 7B shapes is
built with random weights (nothing downloaded) and saved as a model folder; synthetic figure
samples (every one with an image) are written; then `scitune train` runs both stages under
`accelerate launch` with recipes/accelerate/fsdp.yaml on all visible GPUs (bf16 autocast,
gradient checkpointing, SDPA attention), is stopped by SIGTERM after a checkpoint in the
instruct stage (as a scheduler would), resumed with --resume, and the exported `final/` is loaded
with plain transformers and run once. The 7B instruct stage trains LoRA adapters (a full 7B Adam
state does not fit one 141 GB GPU beside its activations); the 1B one trains the whole LLM.
Written: tokens/s and MFU (against the GPU's dense bf16 peak) per stage, peak GPU memory, the
stop/resume/export/reload outcome, to benchmarks/results/gpu_check.json.

    bash benchmarks/gpu_check.sh            # on a GPU machine
    bash benchmarks/gpu_check.sh --smoke    # tiny shapes on the CPU, one process (CI)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# dense bf16 peak FLOP/s by GPU name (vendor data sheets)
PEAKS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12, "L4": 121e12}

SHAPES = {
    "smoke": dict(vision=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                              image_size=32, patch_size=8),
                  text=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                            num_key_value_heads=4, vocab_size=1024), lora=False),
    "llama-1b": dict(vision=dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                                 image_size=224, patch_size=14),
                     text=dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
                               num_key_value_heads=8, vocab_size=32000), lora=False),
    "llama-7b": dict(vision=dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                                 image_size=224, patch_size=14),
                     text=dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                               num_key_value_heads=32, vocab_size=32000), lora=True),
}


def build_folder(size: str, out: Path, device: str) -> None:
    """A random-init Llava of `size`'s shapes with the tiny preset's tokenizer, saved to `out`."""
    import torch
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    from scitune.config import ModelConfig
    from scitune.model import build_model, save_model
    from scitune.prompting.images import set_pad_to_square

    shape = SHAPES[size]
    _, processor = build_model(ModelConfig(preset="tiny", vocab_size=1024))
    tokenizer = processor.tokenizer
    side = shape["vision"]["image_size"]
    processor.image_processor.size = {"shortest_edge": side}
    processor.image_processor.crop_size = {"height": side, "width": side}
    processor.patch_size = shape["vision"]["patch_size"]
    set_pad_to_square(processor, False)
    text = LlamaConfig(**shape["text"], max_position_embeddings=4096, pad_token_id=tokenizer.pad_token_id)
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(**shape["vision"]), text_config=text,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"), projector_hidden_act="gelu",
        vision_feature_layer=-2, vision_feature_select_strategy="default",
    )
    torch.manual_seed(0)
    with torch.device(device):
        model = LlavaForConditionalGeneration(config).to(torch.bfloat16 if device != "cpu" else torch.float32)
    save_model(model.cpu(), processor, out)


def write_data(folder: Path, n: int, side: int) -> Path:
    from PIL import Image, ImageDraw

    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        img = Image.new("RGB", (side, side), "white")
        ImageDraw.Draw(img).rectangle([i % (side // 2), side // 4, side // 2 + i % (side // 2), side - 2], fill=(40, 90, 200))
        img.save(folder / "images" / f"f{i}.png")
        answer = ("The figure is a bar chart of measured values across conditions. " * (1 + i % 6)).strip()
        rows.append({"id": f"f{i}", "image": f"f{i}.png", "conversations": [
            {"from": "human", "value": "<image>\nDescribe the figure and what it shows."},
            {"from": "gpt", "value": answer}]})
    path = folder / "train.json"
    path.write_text(json.dumps(rows))
    return path


def recipe(folder: Path, model: Path, train: Path, size: str, smoke: bool, peak: float) -> Path:
    import yaml

    data = {"train": str(train), "images": str(train.parent / "images"), "max_length": 1024, "num_workers": 2}
    common = {"batch_size": 2 if smoke else 4, "grad_accum": 1, "warmup_ratio": 0.0, "max_steps": 4,
              "gradient_checkpointing": not smoke, "epochs": 100}
    stages = [
        {"stage": {"name": "align"}, "data": data, "lr": 1e-3, **common},
        {"stage": {"name": "instruct", "lora": SHAPES[size]["lora"]}, "data": data, "init_from": "projector",
         "lr": 2e-5, "projector_lr": 2e-5, **common},
    ]
    body = {"model": {"checkpoint": str(model)}, "stages": stages,
            "run": {"out": str(folder / "run"), "seed": 0, "save_every": 2, "keep_last": 2, "tensorboard": False,
                    "peak_flops": peak}}
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def train_entry(argv: list[str]) -> int:
    """`gpu_check.py --train STOP_STEP RECIPE [args]`: scitune train, SIGTERM to itself after
    step STOP_STEP of the instruct stage (0: never); records peak GPU memory per process."""
    import torch

    from scitune import console
    from scitune.cli import build_parser
    from scitune.commands import train

    console.configure()  # the run's messages ("resumed from ...") on stdout, as `scitune train` shows them
    stop, rest = int(argv[0]), argv[1:]
    rank = int(os.environ.get("RANK", "0"))

    def hook(runner, step):
        if torch.cuda.is_available():
            memory = {"peak_allocated_gib": torch.cuda.max_memory_allocated() / 2**30,
                      "peak_reserved_gib": torch.cuda.max_memory_reserved() / 2**30}
            (runner.stage_dir / f"memory-rank{rank}.json").write_text(json.dumps(memory))
        if stop and runner.name == "instruct" and step == stop:
            os.kill(os.getpid(), signal.SIGTERM)

    return train.run(build_parser().parse_args(["train", *rest]), hooks=[hook])


def launch(smoke: bool, gpus: int, stop: int, recipe_path: Path, *extra: str) -> subprocess.CompletedProcess:
    target = [str(Path(__file__)), "--train", str(stop), str(recipe_path), *extra]
    if smoke:
        command = [sys.executable, *target]
    else:
        command = [str(Path(sys.executable).with_name("accelerate")), "launch", "--config_file",
                   str(ROOT / "recipes" / "accelerate" / "fsdp.yaml"), "--num_processes", str(gpus), *target]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1800)


def reload_check(final: Path, train: Path) -> dict:
    import torch
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    from scitune.prompting import ImageLoader, PaddingCollator, Renderer
    from scitune.prompting.collate import model_inputs

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = LlavaForConditionalGeneration.from_pretrained(final, dtype=torch.bfloat16 if device == "cuda" else torch.float32).to(device)
    processor = AutoProcessor.from_pretrained(final)
    sample = json.loads(train.read_text())[0]
    item = Renderer(processor, max_length=1024).train(sample)
    batch = model_inputs(PaddingCollator(processor.tokenizer.pad_token_id, ImageLoader(processor.image_processor, train.parent / "images"))([item]))
    with torch.no_grad():
        loss = model(**{k: v.to(device) for k, v in batch.items()}).loss
    return {"reloaded": True, "loss": float(loss), "finite": bool(torch.isfinite(loss))}


def check(size: str, smoke: bool, work: Path) -> dict:
    import torch

    gpus = torch.cuda.device_count()
    name = torch.cuda.get_device_name(0) if gpus else "cpu"
    peak = next((v for k, v in PEAKS.items() if k in name), 3.3e11 if not gpus else 1e15)
    folder = work / size
    tick = time.time()
    build_folder(size, folder / "model", "cuda" if gpus else "cpu")
    train = write_data(folder / "data", 32 if smoke else 256, SHAPES[size]["vision"]["image_size"])
    path = recipe(folder, folder / "model", train, size, smoke, peak)
    result: dict = {"size": size, "device": name, "gpus": gpus, "build_seconds": round(time.time() - tick, 1)}
    first = launch(smoke, gpus, 2, path)
    result["stopped_rc"] = first.returncode  # 130: SIGTERM after the step-2 checkpoint
    second = launch(smoke, gpus, 0, path, "--resume")
    result["resumed_rc"] = second.returncode
    if second.returncode != 0 or first.returncode != 130:
        result["error"] = (first.stdout + first.stderr)[-2000:] + "\n---\n" + (second.stdout + second.stderr)[-2000:]
        return result
    result["resumed_message"] = "resumed from" in second.stdout
    for stage in ("align", "instruct"):
        rows = [json.loads(line) for line in (folder / "run" / stage / "metrics.jsonl").read_text().splitlines()]
        timed = rows[1:] or rows  # the first step includes warm-up
        result[stage] = {
            "steps": [r["step"] for r in rows], "loss": [round(r["loss"], 4) for r in rows],
            "tokens_per_s": round(sum(r["tokens_per_s"] for r in timed) / len(timed), 1),
            "mfu": round(sum(r["mfu"] for r in timed) / len(timed), 4),
        }
        memory = sorted((folder / "run" / stage).glob("memory-rank*.json"))
        if memory:
            result[stage]["peak_memory_gib"] = max(json.loads(m.read_text())["peak_allocated_gib"] for m in memory)
    result["reload"] = reload_check(folder / "run" / "instruct" / "final", train)
    result["ok"] = result["resumed_message"] and result["reload"]["finite"] and result["instruct"]["steps"][-1] == 4
    result["seconds"] = round(time.time() - tick, 1)
    return result


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--train":
        return train_entry(sys.argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny shapes, one CPU process")
    parser.add_argument("--sizes", nargs="+", default=None, choices=sorted(SHAPES))
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "gpu_check.json")
    args = parser.parse_args()
    sizes = args.sizes or (["smoke"] if args.smoke else ["llama-1b", "llama-7b"])
    import tempfile

    results = []
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        for size in sizes:
            results.append(check(size, args.smoke, Path(tmp)))
            print(json.dumps(results[-1]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    return 0 if all(r.get("ok") for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
