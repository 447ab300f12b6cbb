"""The checkpoints a server holds, each as one `Engine` under a name.

`--model DIR` or `--model NAME=DIR`; without a name, the model's name is the folder as given
(as vLLM names a model by its path). A folder is either a checkpoint of a model family scitune trains (what
`scitune train` writes to `<stage>/final`, `scitune model build`, `scitune model merge`) or a
LoRA adapter folder (`<stage>/adapter`: adapter_config.json + adapter_model.safetensors + the
processor). An adapter is applied to the base its adapter_config.json names
(`base_model_name_or_path`, which `scitune train` records as the base folder's absolute path)
and merged on load, so serving it costs what serving the merged model costs; its processor is
the adapter folder's own (the one training saved), else the base's.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from scitune.errors import ScituneError
from scitune.io import read

log = logging.getLogger(__name__)

NAME = re.compile(r"^[A-Za-z0-9._:/@+-]{1,128}$")


@dataclass
class ModelSlot:
    """One served model: its engine, the request images its thread holds, and the lock that
    every use of its tokenizer takes (requests are rendered in worker threads while the model
    thread decodes tokens)."""

    name: str
    path: Path
    engine: object  # scitune.inference.Engine
    images: object  # scitune.serve.images.RequestImages
    kind: str = "checkpoint"  # or "lora adapter (merged)"
    created: int = field(default_factory=lambda: int(time.time()))
    tokenizer_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def positions(self) -> int | None:
        return self.engine.renderer.max_length

    def describe(self) -> dict:
        return {"id": self.name, "object": "model", "created": self.created, "owned_by": "scitune",
                "path": str(self.path), "kind": self.kind, "max_positions": self.positions}


def parse_model_specs(specs: list[str]) -> list[tuple[str, Path]]:
    """`DIR` or `NAME=DIR` -> (name, folder); names must be distinct."""
    out: list[tuple[str, Path]] = []
    for spec in specs:
        name, sep, folder = spec.partition("=")
        if not sep:
            name, folder = spec.rstrip("/") or spec, spec
        if not folder:
            raise ScituneError(f"--model {spec!r}: expected DIR or NAME=DIR")
        if not NAME.match(name):
            raise ScituneError(
                f"--model {spec!r}: model name {name!r} must be 1-128 characters of letters, digits and ._:/@+- "
                "(give one with NAME=DIR)"
            )
        if any(name == other for other, _ in out):
            raise ScituneError(f"--model {spec!r}: the name {name!r} is given twice (name them with NAME=DIR)")
        out.append((name, Path(folder)))
    if not out:
        raise ScituneError("give at least one --model DIR")
    return out


def _adapter_base(folder: Path) -> Path:
    config = read.read_json(folder / "adapter_config.json", max_bytes=read.MAX_CONFIG_BYTES, what="adapter config")
    base = config.get("base_model_name_or_path") if isinstance(config, dict) else None
    if not isinstance(base, str) or not base:
        raise ScituneError(f"LoRA adapter {str(folder)!r}: adapter_config.json names no base model folder")
    base_path = Path(base) if Path(base).is_absolute() else (folder / base)
    if not (base_path / "config.json").is_file():
        raise ScituneError(
            f"LoRA adapter {str(folder)!r}: its base {base!r} is not a model folder here "
            "(merge it with `scitune model merge --base DIR --adapter DIR --out DIR` and serve the result)"
        )
    return base_path


def load_weights(folder: Path, dtype: str = "float32", device: str = "cpu"):
    """(model, processor, kind) for a checkpoint folder or a LoRA adapter folder (merged)."""
    from scitune.model import load_model
    from scitune.model.checkpoint import check_adapter, load_lora, merge_lora

    if (folder / "adapter_config.json").is_file() and not (folder / "config.json").is_file():
        check_adapter(folder)
        model, processor = load_model(_adapter_base(folder), dtype=dtype, device=device)
        model = merge_lora(load_lora(model, folder))
        if (folder / "tokenizer_config.json").is_file() and any(
            (folder / name).is_file() for name in ("processor_config.json", "preprocessor_config.json")
        ):
            from scitune.model.processors import load_processor

            processor = load_processor(folder, "LoRA adapter")
        return model, processor, "lora adapter (merged)"
    model, processor = load_model(folder, dtype=dtype, device=device)
    return model, processor, "checkpoint"


def load_slot(name: str, folder: Path, dtype: str = "float32", device: str = "cpu", image_placement: str = "front") -> ModelSlot:
    from scitune.inference import Engine
    from scitune.serve.images import RequestImages

    model, processor, kind = load_weights(folder, dtype, device)
    model.eval()
    images = RequestImages(processor.image_processor)
    engine = Engine(model, processor, image_placement=image_placement, image_loader=images)
    # a model family's renderer opens each image to expand its marker, and its image processor
    # takes a batch's images together: the slot holds decoded images (scitune.serve.images)
    images.decoded = engine.renderer.family is not None
    return ModelSlot(name=name, path=folder, engine=engine, images=images, kind=kind)


def load_slots(specs: list[str], dtype: str = "float32", device: str = "cpu", image_placement: str = "front"
               ) -> dict[str, ModelSlot]:
    slots = {}
    for name, folder in parse_model_specs(specs):
        slot = load_slot(name, folder, dtype, device, image_placement)
        log.info("loaded %r from %s (%s, %d positions)", name, folder, slot.kind, slot.positions)
        slots[name] = slot
    return slots
