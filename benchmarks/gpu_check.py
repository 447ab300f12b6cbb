"""GPU proof of the training path: random-init models of real shapes, both stages, sharded.

For each size a model of real shapes is built with random weights (nothing downloaded) and saved
as a model folder:
- `llama-1b`, `llama-7b`: a LLaVA of a CLIP ViT-L/14 (224 px) tower and a Llama of ~1B or 7B
  shapes;
- `qwen2.5-vl-7b`: a model family other than LLaVA, Qwen2.5-VL-7B's shapes (its ViT with window
  attention, the patch merger, the 28-layer Qwen2.5 LM with M-RoPE, a 152064-token vocabulary)
  from transformers' own `Qwen2_5_VLConfig`, with the family's processor class (448 px figures:
  256 image tokens each).
Synthetic figure samples (every one with an image) are written; then `scitune train` runs both
stages under `accelerate launch` with recipes/accelerate/fsdp.yaml on all visible GPUs (bf16
autocast, gradient checkpointing, SDPA attention; the family's decoder layer is the wrapped
class), is stopped by SIGTERM after a checkpoint in the instruct stage (as a scheduler would),
resumed with --resume, and the exported `final/` is loaded with plain transformers
(`AutoModelForImageTextToText`), run once on a training sample, and generates 64 tokens through
scitune's inference engine. The 7B instruct stages train LoRA adapters (a full 7B Adam state does
not fit one 141 GB GPU beside its activations); the 1B one trains the whole LLM.
Written: tokens/s and MFU (against the GPU's dense bf16 peak) per stage, peak GPU memory, the
stop/resume/export/reload outcome, generation tokens/s, to benchmarks/results/gpu_check.json,
and a table on stdout.

    bash benchmarks/gpu_check.sh                                # on a GPU machine
    bash benchmarks/gpu_check.sh --sizes qwen2.5-vl-7b          # the non-LLaVA family only
    bash benchmarks/gpu_check.sh --smoke                        # tiny LLaVA shapes on the CPU, one process (CI)
    bash benchmarks/gpu_check.sh --smoke --sizes smoke-qwen2.5-vl   # the family's path at tiny shapes on the CPU
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
    # Qwen2.5-VL-7B-Instruct's shapes (its config.json); vocab_size None: the tokenizer's own size
    "qwen2.5-vl-7b": dict(family="qwen2_5_vl", layer="Qwen2_5_VLDecoderLayer", image_side=448,
                          vision=dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=3584,
                                      patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=112,
                                      fullatt_block_indexes=[7, 15, 23, 31], tokens_per_second=2, hidden_act="silu"),
                          text=dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                                    num_key_value_heads=4, vocab_size=152064, rms_norm_eps=1e-6, max_position_embeddings=128000,
                                    rope_theta=1e6, rope_scaling={"type": "mrope", "mrope_section": [16, 24, 24]}),
                          lora=True),
    "smoke-qwen2.5-vl": dict(family="qwen2_5_vl", layer="Qwen2_5_VLDecoderLayer", image_side=112,
                             vision=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64,
                                         patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=56,
                                         fullatt_block_indexes=[1]),
                             text=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                                       num_key_value_heads=2, vocab_size=None, max_position_embeddings=4096,
                                       rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]}),
                             lora=False),
}
GENERATE_TOKENS = 64


def is_smoke(size: str) -> bool:
    return size.startswith("smoke")


def image_side(size: str) -> int:
    shape = SHAPES[size]
    return shape.get("image_side") or shape["vision"]["image_size"]


def build_family_folder(size: str, out: Path, device: str) -> None:
    """A random-init model of a family (`size`'s shapes, the family's real config and processor
    classes) with the family's tiny tokenizer (its special tokens; the ids fit the real
    vocabulary), saved to `out`."""
    import torch
    import transformers as tf

    from scitune.model import save_model
    from scitune.model.family_presets import tiny_family_tokenizer
    from scitune.model.processors import build_processor, has_torchvision

    shape = SHAPES[size]
    if shape["family"] != "qwen2_5_vl":
        raise SystemExit(f"gpu_check: no builder for the {shape['family']} family")
    tokenizer = tiny_family_tokenizer(shape["family"], vocab_size=1024)
    ids = tokenizer.convert_tokens_to_ids
    vision, patch = shape["vision"], shape["vision"]["patch_size"]
    side = image_side(size)
    images = tf.Qwen2VLImageProcessorPil(patch_size=patch, merge_size=vision["spatial_merge_size"],
                                         temporal_patch_size=vision["temporal_patch_size"],
                                         min_pixels=(patch * vision["spatial_merge_size"]) ** 2, max_pixels=side * side)
    video = tf.Qwen2VLVideoProcessor(patch_size=patch, merge_size=vision["spatial_merge_size"],
                                     temporal_patch_size=vision["temporal_patch_size"]) if has_torchvision() else None
    processor = build_processor(tf.Qwen2_5_VLProcessor, image_processor=images, tokenizer=tokenizer, video_processor=video,
                                chat_template=tokenizer.chat_template)
    text = dict(shape["text"], vocab_size=shape["text"]["vocab_size"] or len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    config = tf.Qwen2_5_VLConfig(text_config=text, vision_config=vision, image_token_id=ids("<|image_pad|>"),
                                 video_token_id=ids("<|video_pad|>"), vision_start_token_id=ids("<|vision_start|>"),
                                 tie_word_embeddings=False)
    torch.manual_seed(0)
    with torch.device(device):
        model = tf.AutoModelForImageTextToText.from_config(config).to(torch.bfloat16 if device != "cpu" else torch.float32)
    generation = model.generation_config
    generation.pad_token_id, generation.bos_token_id, generation.eos_token_id = (
        tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id)
    generation.do_sample = False
    save_model(model.cpu(), processor, out)


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


def launch(smoke: bool, gpus: int, stop: int, recipe_path: Path, size: str, *extra: str) -> subprocess.CompletedProcess:
    target = [str(Path(__file__)), "--train", str(stop), str(recipe_path), *extra]
    if smoke:
        command = [sys.executable, *target]
    else:
        # fsdp.yaml wraps LlamaDecoderLayer; another family names its own decoder layer
        layer = SHAPES[size].get("layer", "LlamaDecoderLayer")
        command = [str(Path(sys.executable).with_name("accelerate")), "launch", "--config_file",
                   str(ROOT / "recipes" / "accelerate" / "fsdp.yaml"), "--num_processes", str(gpus),
                   "--fsdp_transformer_layer_cls_to_wrap", layer, *target]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1800)


def reload_check(final: Path, train: Path) -> dict:
    """The exported folder loaded with plain transformers: the loss of one training sample, then
    GENERATE_TOKENS new tokens for one prompt through scitune's inference engine (the path
    `scitune predict` takes), timed."""
    import torch
    from transformers import AutoModelForImageTextToText

    from scitune.inference.engine import Engine
    from scitune.model.families import family_of
    from scitune.model.processors import load_processor
    from scitune.prompting import ImageLoader, PaddingCollator, Renderer
    from scitune.prompting.collate import model_inputs

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForImageTextToText.from_pretrained(final, dtype=torch.bfloat16 if device == "cuda" else torch.float32).to(device)
    processor = load_processor(final)  # plain AutoProcessor where torchvision is installed
    images = train.parent / "images"
    loader = ImageLoader(processor.image_processor, images)
    sample = json.loads(train.read_text())[0]
    item = Renderer(processor, max_length=1024, images=loader).train(sample)
    collate = PaddingCollator(processor.tokenizer.pad_token_id, loader, image_inputs=family_of(model).image_inputs)
    batch = model_inputs(collate([item]))
    with torch.no_grad():
        loss = model(**{k: v.to(device) for k, v in batch.items()}).loss
    engine = Engine(model, processor, image_root=images)
    prompt = engine.renderer.prompt(sample, reserve=GENERATE_TOKENS)
    engine.generate_batch([prompt], max_new_tokens=GENERATE_TOKENS, min_new_tokens=GENERATE_TOKENS)  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    tick = time.perf_counter()
    tokens = engine.generate_batch([prompt], max_new_tokens=GENERATE_TOKENS, min_new_tokens=GENERATE_TOKENS)
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - tick
    return {"reloaded": True, "model_type": model.config.model_type, "loss": float(loss), "finite": bool(torch.isfinite(loss)),
            "generated_tokens": int(tokens.shape[1]), "generate_tokens_per_s": round(tokens.shape[1] / seconds, 1)}


def check(size: str, smoke: bool, work: Path) -> dict:
    import torch

    gpus = torch.cuda.device_count()
    name = torch.cuda.get_device_name(0) if gpus else "cpu"
    peak = next((v for k, v in PEAKS.items() if k in name), 3.3e11 if not gpus else 1e15)
    folder = work / size
    tick = time.time()
    build = build_family_folder if "family" in SHAPES[size] else build_folder
    build(size, folder / "model", "cuda" if gpus else "cpu")
    train = write_data(folder / "data", 32 if smoke else 256, image_side(size))
    path = recipe(folder, folder / "model", train, size, smoke, peak)
    result: dict = {"size": size, "device": name, "gpus": gpus, "build_seconds": round(time.time() - tick, 1)}
    first = launch(smoke, gpus, 2, path, size)
    result["stopped_rc"] = first.returncode  # 130: SIGTERM after the step-2 checkpoint
    second = launch(smoke, gpus, 0, path, size, "--resume")
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
    parser.add_argument("--smoke", action="store_true", help="one CPU process (tiny LLaVA shapes unless --sizes names others)")
    parser.add_argument("--sizes", nargs="+", default=None, choices=sorted(SHAPES))
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "gpu_check.json")
    args = parser.parse_args()
    sizes = args.sizes or (["smoke"] if args.smoke else ["llama-1b", "llama-7b", "qwen2.5-vl-7b"])
    if not args.smoke and any(is_smoke(size) for size in sizes):
        parser.error("the smoke sizes run on the CPU: add --smoke")
    import tempfile

    results = []
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        for size in sizes:
            results.append(check(size, args.smoke, Path(tmp)))
            print(json.dumps(results[-1]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(table(results))
    return 0 if all(r.get("ok") for r in results) else 1


def table(results: list[dict]) -> str:
    """One row per size and stage: training tokens/s, MFU, peak memory; generation tokens/s."""
    head = f"{'size':<18}{'device':<24}{'stage':<10}{'train tok/s':>13}{'MFU':>8}{'peak GiB':>10}{'gen tok/s':>11}  ok"
    rows = [head, "-" * len(head)]
    for r in results:
        gen = r.get("reload", {}).get("generate_tokens_per_s")
        for stage in ("align", "instruct"):
            s = r.get(stage)
            if s is None:
                rows.append(f"{r['size']:<18}{r['device'][:23]:<24}{stage:<10}{'(failed: see the JSON)':>42}  {r.get('ok', False)}")
                continue
            memory = s.get("peak_memory_gib")
            rows.append(
                f"{r['size']:<18}{r['device'][:23]:<24}{stage:<10}{s['tokens_per_s']:>13,.1f}{s['mfu']:>8.3f}"
                f"{(f'{memory:.1f}' if memory is not None else '-'):>10}"
                f"{(f'{gen:,.1f}' if gen is not None and stage == 'instruct' else '-'):>11}  {r.get('ok', False)}"
            )
    return "\n".join(rows)


if __name__ == "__main__":
    raise SystemExit(main())
