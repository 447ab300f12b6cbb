"""The checkpoints a server holds, each as one `Engine` under a name.

`--model DIR` or `--model NAME=DIR`; without a name, the model's name is the folder as given
(as vLLM names a model by its path). A folder is either a checkpoint of a model family scitune trains (what
`scitune train` writes to `<stage>/final`, `scitune model build`, `scitune model merge`) or a
LoRA adapter folder (`<stage>/adapter`), merged onto its base on load
(`scitune.model.folders.load_for_inference`, as `predict` and `eval` load it).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from scitune.errors import ScituneError

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


def load_weights(folder: Path, dtype: str = "float32", device: str = "cpu"):
    """(model, processor, kind) for a checkpoint folder or a LoRA adapter folder (merged)."""
    from scitune.model.folders import load_for_inference

    return load_for_inference(folder, dtype=dtype, device=device)


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
