"""A model folder loaded for inference (`scitune predict`, `eval`, `serve`): a checkpoint of a
supported family, or a LoRA adapter folder (`<stage>/adapter`: adapter_config.json +
adapter_model.safetensors + the processor) applied to the base its adapter_config.json names
(`base_model_name_or_path`, which `scitune train` records as the base folder's absolute path) and
merged, so it runs at the merged model's cost; its processor is the adapter folder's own (the one
training saved), else the base's."""

from __future__ import annotations

from pathlib import Path

from scitune.errors import ScituneError
from scitune.io import read
from scitune.model.checkpoint import check_adapter, load_lora, load_model, merge_lora
from scitune.model.processors import load_processor


def _adapter_base(folder: Path) -> Path:
    config = read.read_json(folder / "adapter_config.json", max_bytes=read.MAX_CONFIG_BYTES, what="adapter config")
    base = config.get("base_model_name_or_path") if isinstance(config, dict) else None
    if not isinstance(base, str) or not base:
        raise ScituneError(f"LoRA adapter {str(folder)!r}: adapter_config.json names no base model folder")
    base_path = Path(base) if Path(base).is_absolute() else (folder / base)
    if not (base_path / "config.json").is_file():
        raise ScituneError(
            f"LoRA adapter {str(folder)!r}: its base {base!r} is not a model folder here "
            "(merge it with `scitune model merge --base DIR --adapter DIR --out DIR` and use the result)"
        )
    return base_path


def load_for_inference(folder: str | Path, dtype: str = "float32", device: str = "cpu"):
    """(model, processor, kind) for a checkpoint folder or a LoRA adapter folder (merged)."""
    folder = Path(folder)
    if (folder / "adapter_config.json").is_file() and not (folder / "config.json").is_file():
        check_adapter(folder)
        model, processor = load_model(_adapter_base(folder), dtype=dtype, device=device)
        model = merge_lora(load_lora(model, folder))
        if (folder / "tokenizer_config.json").is_file() and any(
            (folder / name).is_file() for name in ("processor_config.json", "preprocessor_config.json")
        ):
            processor = load_processor(folder, "LoRA adapter")
        return model, processor, "lora adapter (merged)"
    model, processor = load_model(folder, dtype=dtype, device=device)
    return model, processor, "checkpoint"
