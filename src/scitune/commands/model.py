"""`scitune model build|merge`: compose a model and save it as a standard HF Llava directory."""

from __future__ import annotations

import argparse
from pathlib import Path

from scitune.cli import add_command


def register(subparsers) -> None:
    parser = add_command(
        subparsers,
        "model",
        "Build models from presets or any HF vision tower + causal LM; merge LoRA adapters.",
        "scitune model build --preset tiny --out runs/tiny-base",
    )
    sub = parser.add_subparsers(dest="model_command", metavar="ACTION", required=True)

    build = add_command(
        sub,
        "build",
        "Build a base model (a preset, a tiny model family, or a LLaVA composition of a vision tower and an LM) and save it (config.json, model.safetensors, tokenizer, processor).",
        "scitune model build --vision-tower openai/clip-vit-large-patch14 "
        "--language-model meta-llama/Llama-2-13b-hf --projector linear --out runs/base",
    )
    build.add_argument("--preset", help="tiny, smollm2-135m, or a tiny family (tiny-qwen2.5-vl, tiny-smolvlm, tiny-gemma3, ...; default tiny unless both parts are given)")
    build.add_argument("--vision-tower", help="CLIP or SigLIP: local folder or hub id")
    build.add_argument("--language-model", help="causal LM (Llama, Mistral, Qwen2, ...): local folder or hub id")
    build.add_argument("--gguf-file", help="GGUF file name inside the --language-model folder")
    build.add_argument("--projector", default="linear", choices=("linear", "mlp2x_gelu"))
    build.add_argument("--vision-feature-layer", type=int, default=-2)
    build.add_argument("--chat-template", help="plain, vicuna_v1, llama2, chatml, gemma or idefics (default: by model family)")
    build.add_argument("--texts", help="tiny preset: a text file (one document per line) to train the BPE tokenizer on")
    build.add_argument("--dtype", default="auto", help="auto (fp32 on CPU), float32, bfloat16, float16")
    build.add_argument("--out", required=True, help="output directory (new or empty)")
    build.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder")
    build.set_defaults(func=run_build)

    merge = add_command(
        sub,
        "merge",
        "Fold a LoRA adapter into its base model and save a plain checkpoint.",
        "scitune model merge --base runs/base --adapter runs/instruct/final-adapter --out runs/merged",
    )
    merge.add_argument("--base", required=True, help="the base model directory the adapter was trained on")
    merge.add_argument("--adapter", required=True, help="adapter directory (adapter_config.json)")
    merge.add_argument("--out", required=True, help="output directory (new or empty)")
    merge.add_argument("--overwrite", action="store_true", help="replace a non-empty --out folder")
    merge.set_defaults(func=run_merge)


def run_build(args: argparse.Namespace) -> int:

    from scitune.config import ModelConfig
    from scitune.errors import ScituneError
    from scitune.io.outputs import claim_output
    from scitune.io.read import read_text
    from scitune.model import build_model, save_model
    from scitune.model.stages import format_parameter_table, parameter_table

    inputs = [p for p in (args.vision_tower, args.language_model, args.texts) if p and Path(p).expanduser().exists()]
    claim_output(args.out, inputs=inputs, overwrite=args.overwrite, kind="dir")
    preset = args.preset
    if preset is None and not (args.vision_tower and args.language_model):
        preset = "tiny"
    texts = None
    if args.texts:
        path = Path(args.texts)
        if not path.is_file():
            raise ScituneError(f"--texts {args.texts!r}: file not found")
        texts = [line for line in read_text(path).splitlines() if line.strip()]
        if not texts:
            raise ScituneError(f"--texts {args.texts!r}: no text to train the tokenizer on")
    cfg = ModelConfig(
        preset=preset,
        vision_tower=args.vision_tower,
        language_model=args.language_model,
        gguf_file=args.gguf_file,
        projector=args.projector,
        vision_feature_layer=args.vision_feature_layer,
        chat_template=args.chat_template,
        dtype=args.dtype,
    )
    model, processor = build_model(cfg, texts=texts)
    print(format_parameter_table(parameter_table(model)))
    out = save_model(model, processor, args.out)
    print(f"saved {out}")
    return 0


def run_merge(args: argparse.Namespace) -> int:
    from scitune.io.outputs import claim_output
    from scitune.model import load_model, save_model
    from scitune.model.checkpoint import check_adapter, load_lora, merge_lora

    claim_output(args.out, inputs=[args.base, args.adapter], overwrite=args.overwrite, kind="dir")
    check_adapter(args.adapter)
    model, processor = load_model(args.base)
    merged = merge_lora(load_lora(model, args.adapter))
    out = save_model(merged, processor, args.out)
    print(f"saved {out}")
    return 0
