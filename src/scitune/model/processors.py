"""Loading a family's processor: plain `AutoProcessor`, or its images-only form without torchvision.

In transformers 5 the processors of Qwen2/2.5/3-VL, SmolVLM, LLaVA-OneVision and InternVL hold a video
processor, and every video processor needs torchvision. scitune reads images only, so where
torchvision is not installed (a CPU machine with the CPU torch wheel: PyPI's torchvision is built
against CUDA torch and does not import there) it builds the family's own processor class without
its video processor (`images_only`). That class keeps the family's name, image processor,
tokenizer, image-token expansion and chat template, so the ids and pixels are the ones plain
`AutoProcessor` gives; it is only unable to process videos, which scitune never asks of it. A
source checkpoint's video-processor settings are carried through `save_pretrained`, so a folder
saved here loads with plain `AutoProcessor` on a machine that has torchvision.

Where torchvision is installed, `load_processor` is plain `AutoProcessor.from_pretrained`. Either
way its image processor is then given the image settings its processor class fixes on every call
(`align_image_processor`), so that the image processor alone sees an image as the processor does.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

from scitune.errors import ScituneError
from scitune.io import read

VIDEO = "video_processor"
# the family processor classes that hold a video processor (scitune.model.families names them)
_CLASSES_WITH_VIDEO = (
    "LlavaOnevisionProcessor",
    "SmolVLMProcessor",
    "Qwen2VLProcessor",
    "Qwen2_5_VLProcessor",
    "Qwen3VLProcessor",
    "InternVLProcessor",
)


def has_torchvision() -> bool:
    return importlib.util.find_spec("torchvision") is not None


@functools.cache
def images_only(cls: type) -> type:
    """`cls` (a family processor class) without its video processor: same name and behaviour for
    images; `video_config`, when set on an instance, is written back as its video processor's
    settings by `save_pretrained`."""
    attributes = [a for a in cls.get_attributes() if a != VIDEO]

    def get_attributes(_cls):
        return list(attributes)

    def to_dict(self):
        out = cls.to_dict(self)
        out.pop("video_config", None)
        if getattr(self, "video_config", None):
            out[VIDEO] = dict(self.video_config)
        return out

    # same __name__ and module: processor_config.json names the family's class, so plain
    # transformers loads what this one saves
    namespace = {"get_attributes": classmethod(get_attributes), "to_dict": to_dict, "__module__": cls.__module__}
    return type(cls.__name__, (cls,), namespace)


def build_processor(cls: type, **parts):
    """`cls(**parts)`; a family class that holds a video processor is built without it where
    torchvision is missing (its `video_processor` part, if given, is dropped)."""
    if cls.__name__ in _CLASSES_WITH_VIDEO and not has_torchvision():
        parts[VIDEO] = None  # SmolVLM's __init__ takes it without a default
        return images_only(cls)(**parts)
    return cls(**parts)


def fixed_image_settings(processor) -> dict:
    """The image settings a processor class passes its image processor on every call, whatever
    that image processor's own settings say (the class's `images_kwargs`: InternVL's and Aya
    Vision's `crop_to_patches: True`, LLaVA-NeXT's `do_pad: True`, Gemma 3's pan-and-scan off),
    limited to the settings the image processor holds (not `return_*` switches)."""
    images = getattr(processor, "image_processor", None)
    fixed = getattr(type(processor), "images_kwargs", None)
    if images is None or not isinstance(fixed, dict):
        return {}
    return {k: v for k, v in fixed.items() if not k.startswith("return_") and hasattr(images, k)}


def align_image_processor(processor) -> dict:
    """Sets the processor's fixed image settings (`fixed_image_settings`) on its image processor,
    where they differ, and returns {setting: (old, new)}. scitune's `ImageLoader` calls the image
    processor alone (the collator's pixels), so it must see an image as the processor does: an
    InternVL checkpoint whose image processor says `crop_to_patches: false` is still tiled by its
    processor, and the token count would no longer match the pixels. The processor's output is
    unchanged (it passed these settings anyway), and a saved folder says what is done."""
    changed = {}
    images = getattr(processor, "image_processor", None)
    for key, value in fixed_image_settings(processor).items():
        if getattr(images, key) != value:
            changed[key] = (getattr(images, key), value)
            setattr(images, key, value)
    return changed


def _json(file: Path) -> dict:
    """A folder's JSON settings file as a dict ({} when it is absent or not a mapping)."""
    if not file.is_file():
        return {}
    data = read.read_json(file, max_bytes=read.MAX_CONFIG_BYTES, what=file.name)
    return data if isinstance(data, dict) else {}


def _video_config(path: Path, processor_config: dict) -> dict | None:
    """The video processor settings a folder holds (nested in processor_config.json, or the
    older video_preprocessor_config.json), to carry through a save."""
    if isinstance(processor_config.get(VIDEO), dict):
        return processor_config[VIDEO]
    return _json(path / "video_preprocessor_config.json") or None


def _processor_class_name(path: Path, processor_config: dict) -> str | None:
    """The processor class a folder names: processor_config.json (transformers 5), else the older
    preprocessor_config.json or tokenizer_config.json, else the model type's processor class."""
    for config in (processor_config, _json(path / "preprocessor_config.json"), _json(path / "tokenizer_config.json")):
        if isinstance(config.get("processor_class"), str):
            return config["processor_class"]
    from transformers.models.auto.processing_auto import PROCESSOR_MAPPING_NAMES

    return PROCESSOR_MAPPING_NAMES.get(_json(path / "config.json").get("model_type"))


def load_processor(path: str | Path, where: str = "checkpoint"):
    """The processor of a model folder: `AutoProcessor.from_pretrained`, or, without torchvision,
    the family's images-only processor (see the module's docstring)."""
    from transformers import AutoProcessor

    path = Path(path)
    processor_config = _json(path / "processor_config.json")
    name = _processor_class_name(path, processor_config)
    try:
        if has_torchvision() or name not in _CLASSES_WITH_VIDEO:
            processor = AutoProcessor.from_pretrained(path)
            align_image_processor(processor)
            return processor
        import transformers

        processor = images_only(getattr(transformers, name)).from_pretrained(path, video_processor=None)
    except (OSError, ValueError, TypeError, ImportError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ScituneError(f"{where} {str(path)!r}: cannot load its processor ({first})") from None
    processor.video_config = _video_config(path, processor_config)
    align_image_processor(processor)
    return processor
