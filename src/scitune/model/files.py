"""What scitune accepts from a model folder before anything is built from it.

- Weights are safetensors only: a folder whose weights are pickles (`pytorch_model.bin`, `.pt`,
  `.pth`, `.ckpt`, `adapter_model.bin`) is refused, never unpickled.
- A config's sizes are bounded (layers, widths, vocabulary, positions, image size), so a hostile
  `config.json` cannot make scitune allocate or loop without end.
- Devices: `--device cuda` without a GPU, or a device name torch does not know, is one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scitune.errors import ScituneError

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
SAFE_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")

# The largest sizes a model config may ask for (well above any released model).
CONFIG_LIMITS = {
    "num_hidden_layers": 512,
    "hidden_size": 65_536,
    "intermediate_size": 1_048_576,
    "num_attention_heads": 1_024,
    "num_key_value_heads": 1_024,
    "vocab_size": 2_097_152,
    "max_position_embeddings": 16_777_216,
    "image_size": 8_192,
    "patch_size": 8_192,
    "projection_dim": 65_536,
    "image_seq_length": 1_048_576,
}


def pickled_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in PICKLE_SUFFIXES)


def require_safetensors(folder: str | Path, what: str, names: tuple[str, ...] = SAFE_WEIGHTS) -> None:
    """Refuses a local folder whose weights are not safetensors (one of `names`)."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    if any((folder / name).is_file() for name in names) or any(folder.glob("*.safetensors")):
        return
    pickles = pickled_files(folder)
    if pickles:
        raise ScituneError(
            f"{what} {str(folder)!r}: holds only pickled weights ({', '.join(pickles[:3])}); scitune reads "
            "safetensors only and never unpickles: convert them to model.safetensors first"
        )
    raise ScituneError(f"{what} {str(folder)!r}: no weights (expected {' or '.join(names)})")


def check_config_sizes(config: Any, where: str) -> None:
    """Refuses sizes beyond CONFIG_LIMITS anywhere in a (nested) model config, or non-positive ones."""
    values = config.to_dict() if hasattr(config, "to_dict") else config
    stack = [("", values)]
    while stack:
        prefix, node = stack.pop()
        if not isinstance(node, dict):
            continue
        for key, value in node.items():
            path = f"{prefix}{key}"
            if isinstance(value, dict):
                stack.append((f"{path}.", value))
            elif key in CONFIG_LIMITS and value is not None:
                # a size given per axis (InternVL's image_size [448, 448]) is checked axis by axis
                axes = value if isinstance(value, (list, tuple)) and value else [value]
                for axis in axes:
                    if isinstance(axis, bool) or not isinstance(axis, int):
                        raise ScituneError(f"{where}: {path} must be an integer (or a list of them), got {value!r}")
                    if not 0 < axis <= CONFIG_LIMITS[key]:
                        raise ScituneError(f"{where}: {path} is {value}; expected 1 to {CONFIG_LIMITS[key]:,}")


def read_config(folder: str | Path, what: str) -> dict[str, Any]:
    """A local folder's config.json (bounded read), its sizes checked."""
    from scitune.io.read import MAX_CONFIG_BYTES, read_json

    path = Path(folder) / "config.json"
    config = read_json(path, max_bytes=MAX_CONFIG_BYTES, what="model config")
    if not isinstance(config, dict):
        raise ScituneError(f"{path}: expected a JSON object")
    check_config_sizes(config, f"{what} {str(folder)!r}")
    return config


def resolve_device(name: str | None):
    """A torch device that exists here; `cuda` without a GPU is refused."""
    import torch

    try:
        device = torch.device(name or "cpu")
    except (RuntimeError, TypeError):
        raise ScituneError(f"--device {name!r}: not a device name (expected cpu, cuda, cuda:N or mps)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ScituneError(f"--device {name}: no CUDA GPU is available here (use --device cpu)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ScituneError(f"--device {name}: there are only {torch.cuda.device_count()} CUDA device(s)")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ScituneError(f"--device {name}: MPS is not available here (use --device cpu)")
    return device


def resolve_dtype(name: str, device="cpu"):
    """`auto` is float32 on CPU (bf16 matmuls are ~20x slower there) and bfloat16 on GPU."""
    import torch

    if name == "auto":
        return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32
    try:
        return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]
    except KeyError:
        raise ScituneError(f"dtype {name!r}: expected auto, float32, bfloat16 or float16") from None
