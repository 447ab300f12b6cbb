"""Images -> pixel values, through the processor's own image processor.

Preprocessing lives in the saved processor, so every path (training, `scitune eval`,
`scitune predict`, serving, plain `transformers`) sees what training saw. Padding a figure to a
square with the processor's mean colour (LLaVA-1.5's `image_aspect_ratio: pad`) is the
processor's `do_pad` (transformers' `LlavaImageProcessor`), stored in its
`preprocessor_config.json`; `set_pad_to_square` turns it on or off for a training run.

Every image is opened through `scitune.io.images`, the one checked opener `scitune data validate`,
`serve` and the leakage guard use too (path inside the image root, readable, not truncated, not
a decompression bomb, not longer than 20:1 nor too large once padded to a square, transparency
on white), and the error names the file.
"""

from __future__ import annotations

from pathlib import Path

from scitune.errors import ScituneError
from scitune.io.images import open_under

# What a Llava image processor keeps of another image processor's settings.
_CARRIED = (
    "size", "crop_size", "do_resize", "do_center_crop", "do_rescale", "rescale_factor", "do_normalize",
    "image_mean", "image_std", "resample", "do_convert_rgb",
)


def set_pad_to_square(processor, pad: bool) -> None:
    """Makes `processor.image_processor` pad to a square (or not), as a Llava image processor
    whose settings are otherwise the current one's (so nothing else about the pixels changes)."""
    from transformers import LlavaImageProcessorPil

    from scitune.model.families import family_of_processor

    family = family_of_processor(processor)
    if family is not None and family.model_types != ("llava",):
        if pad:  # Qwen's dynamic resolution, Idefics3's tiles, OneVision's grid: the family sizes images itself
            raise ScituneError(
                f"data.pad_to_square: for LLaVA models only; the {type(processor).__name__} sizes and tiles images "
                "itself (set data.pad_to_square: false, or its own settings in model.image_processor)"
            )
        return
    current = processor.image_processor
    if isinstance(current, LlavaImageProcessorPil):
        current.do_pad = bool(pad)
        return
    if not pad:
        return
    settings = {key: getattr(current, key) for key in _CARRIED if getattr(current, key, None) is not None}
    processor.image_processor = LlavaImageProcessorPil(**settings, do_pad=True)


def open_image(path: str | Path, root: str | Path | None = None):
    """The image as RGB (transparency on white), after the checks of `scitune.io.images` (inside
    `root` when given), decoded once; an ImageProblem (a ScituneError) names the file."""
    path = Path(path)
    if root is not None:
        return open_under(root, str(path))
    return open_under(path.parent, path.name)


class ImageLoader:
    """Opens images (paths relative to `image_root`, or as given when it is None) and runs the
    processor's image processor on them."""

    def __init__(self, image_processor, image_root: str | Path | None = None):
        self.image_processor = image_processor
        self.image_root = Path(image_root) if image_root is not None else None

    def open(self, path: str):
        """One image, opened and checked (see `open_image`)."""
        return open_image(path, self.image_root)

    def __call__(self, paths: list[str]):
        return self.inputs(paths)["pixel_values"]

    def inputs(self, paths: list[str], keys: tuple[str, ...] = ()) -> dict:
        """`pixel_values` and the image processor's other outputs named in `keys` (a model
        family's per-image inputs: `image_grid_thw`, `pixel_attention_mask`, `image_sizes`)."""
        images = [self.open(p) for p in paths]
        out = self.image_processor(images=images, return_tensors="pt")
        return {k: out[k] for k in ("pixel_values", *keys)}
