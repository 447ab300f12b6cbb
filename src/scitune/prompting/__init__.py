"""THE one place a sample becomes ids, labels, attention and pixels: for training, evaluation and
serving alike (`Renderer`, `ImageLoader`, `PaddingCollator`)."""

from scitune.prompting.collate import PaddingCollator, model_inputs
from scitune.prompting.images import ImageLoader, open_image, set_pad_to_square
from scitune.prompting.render import (
    IGNORE_INDEX,
    IMAGE_PLACEMENTS,
    DroppedSample,
    LabelMaskError,
    Renderer,
    SampleTokenizer,
    image_tokens_of,
)

__all__ = [
    "IGNORE_INDEX",
    "IMAGE_PLACEMENTS",
    "DroppedSample",
    "ImageLoader",
    "LabelMaskError",
    "PaddingCollator",
    "Renderer",
    "SampleTokenizer",
    "image_tokens_of",
    "model_inputs",
    "open_image",
    "set_pad_to_square",
]
