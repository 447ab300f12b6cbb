"""Ingest reads figure files through the one checked opener (scitune.io.images): one
transparency rule, and ingest's own byte and pixel bounds."""

from __future__ import annotations

import dataclasses

import pytest
from PIL import Image

from scitune.data.ingest.images import load_raster
from scitune.data.ingest.limits import DEFAULT_LIMITS
from scitune.io.images import ImageProblem, on_white


def _transparent_png(path, size=(40, 10)):
    image = Image.new("RGBA", size, (0, 0, 0, 0))
    image.paste((200, 0, 0, 255), (0, 0, 10, 10))
    image.save(path)
    return image


def test_a_transparent_figure_is_laid_on_white_as_everywhere_else(tmp_path):
    source = _transparent_png(tmp_path / "fig.png")
    loaded = load_raster(tmp_path / "fig.png")
    assert loaded.mode == "RGB" and loaded.getpixel((30, 5)) == (255, 255, 255) and loaded.getpixel((5, 5)) == (200, 0, 0)
    assert loaded.tobytes() == on_white(source).tobytes()


def test_ingest_bounds_are_its_own(tmp_path):
    _transparent_png(tmp_path / "wide.png", size=(2100, 100))  # 21:1: past the training bound, kept by ingest
    assert load_raster(tmp_path / "wide.png").size == (2100, 100)
    with pytest.raises(ImageProblem, match="wide.png: image is 2100x100, over 1000 pixels") as refused:
        load_raster(tmp_path / "wide.png", dataclasses.replace(DEFAULT_LIMITS, image_pixels=1000))
    assert refused.value.reason == "image_too_large"
    size = (tmp_path / "wide.png").stat().st_size
    with pytest.raises(ImageProblem, match=f"over the limit of {size - 1}"):
        load_raster(tmp_path / "wide.png", dataclasses.replace(DEFAULT_LIMITS, image_bytes=size - 1))
