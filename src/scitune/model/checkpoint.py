"""Checkpoints: standard Hugging Face model folders of the model families (LLaVA, LLaVA-OneVision,
LLaVA-NeXT, Idefics3/SmolVLM, Qwen2/2.5/3-VL, Gemma 3, InternVL), projector-only files, LoRA adapters.

- `save_model` writes config.json, model.safetensors, tokenizer and processor files: plain
  `transformers` (`AutoModelForImageTextToText` and `AutoProcessor`; without torchvision, a
  family whose processor holds a video processor loads through scitune.model.processors) loads
  it without scitune. A peft model is saved as its adapter (adapter_config.json +
  adapter_model.safetensors, the projector included) plus the processor.
- `save_projector` / `load_projector`: the projector (another family's connector) alone, with
  metadata that `load_projector` checks against the model it initialises (a later stage on the
  same base).
- `merge_lora`: folds the adapters into a plain model.
Directories are written under a temporary name and renamed into place, so a crash never leaves a
half-written checkpoint where a good one was (`scitune.io.atomic`). Only safetensors are read:
a folder holding pickled weights is refused, nothing is unpickled (`scitune.model.files`).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from scitune.errors import ScituneError
from scitune.io.atomic import write_dir_atomically
from scitune.io import read
from scitune.model.files import read_config, require_safetensors, resolve_device, resolve_dtype

__all__ = ["load_lora", "load_model", "load_projector", "merge_lora", "save_model", "save_projector", "write_dir_atomically"]

PROJECTOR_FILE = "projector.safetensors"
PROJECTOR_PREFIX = "model.multi_modal_projector."


def save_model(model, processor, out_dir: str | Path) -> Path:
    """Saves a model (or its LoRA adapter) and processor as a standard HF directory, replacing an
    older one only once the new one is complete (commands call `claim_output` first)."""

    def write(tmp: Path) -> None:
        model.save_pretrained(tmp, safe_serialization=True)
        processor.save_pretrained(tmp)

    return write_dir_atomically(out_dir, write)


def load_model(path: str | Path, dtype: str = "auto", device: str = "cpu"):
    """Loads `(model, processor)` from a standard HF folder of a supported family
    (scitune.model.families: LLaVA, LLaVA-OneVision, LLaVA-NeXT, Idefics3/SmolVLM, Qwen2/2.5/3-VL, Gemma 3,
    InternVL)."""
    from transformers import AutoModelForImageTextToText

    from scitune.model.families import check_family
    from scitune.model.processors import load_processor

    path = Path(path)
    device = resolve_device(device)
    if path.is_file():
        raise ScituneError(f"checkpoint {str(path)!r}: is a file; expected a model folder (config.json, model.safetensors)")
    if not (path / "config.json").is_file():
        hint = " (it holds a LoRA adapter: load its base, then scitune.model.checkpoint.load_lora)" if (
            path / "adapter_config.json"
        ).is_file() else ""
        raise ScituneError(f"checkpoint {str(path)!r}: no config.json, not a model directory{hint}")
    config = read_config(path, "checkpoint")
    check_family(config.get("model_type"), f"checkpoint {str(path)!r}: config.json")
    require_safetensors(path, "checkpoint")
    from safetensors import SafetensorError

    try:
        model = AutoModelForImageTextToText.from_pretrained(path, dtype=resolve_dtype(dtype, device), use_safetensors=True)
        processor = load_processor(path)
    except SafetensorError as err:  # the library's own error for a cut or garbled weights file
        weights = path / "model.safetensors" if (path / "model.safetensors").is_file() else path
        raise ScituneError(f"{weights}: truncated or damaged safetensors file ({_first_line(err)})") from None
    except (OSError, ValueError) as err:
        raise ScituneError(f"checkpoint {str(path)!r}: cannot load ({str(err).splitlines()[0]})") from None
    return model.to(device), processor


def check_adapter(adapter_dir: str | Path) -> Path:
    """A LoRA adapter folder: adapter_config.json and safetensors weights (a pickle is refused)."""
    adapter_dir = Path(adapter_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise ScituneError(f"LoRA adapter {str(adapter_dir)!r}: no adapter_config.json")
    require_safetensors(adapter_dir, "LoRA adapter", names=("adapter_model.safetensors",))
    if not (adapter_dir / "adapter_model.safetensors").is_file():
        raise ScituneError(f"LoRA adapter {str(adapter_dir)!r}: no adapter_model.safetensors")
    read.read_json(adapter_dir / "adapter_config.json", max_bytes=read.MAX_CONFIG_BYTES, what="adapter config")
    return adapter_dir


def load_lora(model, adapter_dir: str | Path, trainable: bool = False):
    """Attaches a saved LoRA adapter (and its projector) to `model`."""
    from peft import PeftModel

    adapter_dir = check_adapter(adapter_dir)
    try:
        return PeftModel.from_pretrained(model, adapter_dir, is_trainable=trainable)
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        text = " ".join(str(err).split())[:300]
        raise ScituneError(f"LoRA adapter {str(adapter_dir)!r}: does not fit this base model ({text})") from None


def merge_lora(model):
    """Folds LoRA adapters (and the saved connector copy) into a plain model of the family."""
    return model.merge_and_unload()


def _is_llava(config) -> bool:
    return getattr(config, "model_type", None) == "llava"


def _connector_params(base) -> dict[str, torch.nn.Parameter]:
    """A non-LLaVA family's connector parameters by their plain model names (for a peft model,
    the trained `modules_to_save` copy, named as in the plain model)."""
    from scitune.model.parts import part_of

    out = {}
    for name, param in base.named_parameters():
        if part_of(name) != "projector" or ".original_module." in name:
            continue
        out[name.replace(".modules_to_save.default.", ".")] = param
    return out


def projector_state(model) -> dict[str, torch.Tensor]:
    """The projector's weights of a plain or peft model, keyed as in `LlavaMultiModalProjector`
    (another family's connector: keyed by its parameters' names in the plain model)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if not _is_llava(base.config):
        return {k: v.detach().contiguous() for k, v in _connector_params(base).items()}
    projector = base.model.multi_modal_projector
    if hasattr(projector, "modules_to_save"):  # peft wrapper: the trained copy
        projector = projector.modules_to_save["default"]
    return {k: v.detach().contiguous() for k, v in projector.state_dict().items()}


def _projector_metadata(config) -> dict[str, str]:
    if not _is_llava(config):
        text = config.get_text_config()
        return {"format": "scitune-projector-v1", "model_type": str(config.model_type), "text_hidden_size": str(text.hidden_size)}
    return {
        "format": "scitune-projector-v1",
        "projector_hidden_act": str(config.projector_hidden_act),
        "vision_hidden_size": str(config.vision_config.hidden_size),
        "text_hidden_size": str(config.text_config.hidden_size),
        "vision_feature_layer": json.dumps(config.vision_feature_layer),
        "vision_feature_select_strategy": str(config.vision_feature_select_strategy),
    }


def save_projector(model, path: str | Path) -> Path:
    """Writes the projector alone (safetensors with metadata describing the base it fits)."""
    from safetensors.torch import save

    from scitune.io.atomic import write_bytes

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    data = save({k: v.cpu() for k, v in projector_state(model).items()}, metadata=_projector_metadata(base.config))
    return write_bytes(path, data)


def load_projector(model, path: str | Path) -> None:
    """Initialises `model`'s projector from a projector file made on the same kind of base."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise ScituneError(f"projector file {str(path)!r} not found")
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as err:  # safetensors raises its own error type for a damaged file
        raise ScituneError(f"projector file {str(path)!r}: not a readable safetensors file ({_first_line(err)})") from None
    expected = _projector_metadata(base.config)
    if meta.get("format") != expected["format"]:
        raise ScituneError(f"projector file {str(path)!r}: not a scitune projector file")
    if not _is_llava(base.config):
        _load_connector(base, path, meta, expected, tensors)
        return
    for key in ("projector_hidden_act", "vision_hidden_size", "text_hidden_size", "vision_feature_layer"):
        if meta.get(key) != expected[key]:
            raise ScituneError(
                f"projector file {str(path)!r}: {key} is {meta.get(key)} but the model expects {expected[key]}"
            )
    projector = base.model.multi_modal_projector
    target = projector.modules_to_save["default"] if hasattr(projector, "modules_to_save") else projector
    try:
        target.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        raise ScituneError(f"projector file {str(path)!r}: does not fit the model ({_first_line(err)})") from None


def _load_connector(base, path: Path, meta: dict, expected: dict, tensors: dict[str, torch.Tensor]) -> None:
    """Another family's connector from a projector file: the same model type, names and shapes."""
    for key in ("model_type", "text_hidden_size"):
        if meta.get(key) != expected[key]:
            raise ScituneError(f"projector file {str(path)!r}: {key} is {meta.get(key)} but the model expects {expected[key]}")
    params = _connector_params(base)
    if set(tensors) != set(params):
        raise ScituneError(
            f"projector file {str(path)!r}: does not fit the model (its tensors {sorted(set(tensors) ^ set(params))[:3]} differ)"
        )
    for name, value in tensors.items():
        if value.shape != params[name].shape:
            raise ScituneError(
                f"projector file {str(path)!r}: {name} has shape {list(value.shape)} but the model's is {list(params[name].shape)}"
            )
    with torch.no_grad():
        for name, value in tensors.items():
            params[name].copy_(value)


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
