"""Figure files -> PNG bytes: raster files read with limits, EPS through Ghostscript when it is
installed, several panels (subfigures) placed side by side on one white canvas."""

from __future__ import annotations

import io
import shutil
import warnings
from pathlib import Path

from scitune.data.ingest.limits import DEFAULT_LIMITS, Limits
from scitune.errors import ScituneError

RASTER_SUFFIXES = (".png", ".jpg", ".jpeg")
PANEL_GAP = 8  # white pixels between subfigure panels
PANELS_PER_ROW = 3


def ghostscript_available() -> bool:
    return any(shutil.which(name) for name in ("gs", "gswin64c", "gswin32c"))


def png_bytes(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def load_raster(path: Path, limits: Limits = DEFAULT_LIMITS):
    """An RGB PIL image of a PNG/JPEG/EPS file; the pixel count is checked before decoding."""
    from PIL import Image

    size = path.stat().st_size
    if size > limits.image_bytes:
        raise ScituneError(f"{path}: {size} bytes, more than the limit of {limits.image_bytes}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                width, height = image.size
                if width * height > limits.image_pixels:
                    raise ScituneError(f"{path}: {width}x{height} pixels, more than the limit of {limits.image_pixels}")
                if path.suffix.lower() == ".eps":
                    image.load(scale=2)
                return _flatten(image)
    except ScituneError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ScituneError(f"{path}: cannot read the image ({err})") from None


def _flatten(image):
    """RGB on white (transparent areas of a figure are paper-white, not black)."""
    from PIL import Image

    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, "white")
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return image.convert("RGB")


def compose_panels(images: list, limits: Limits = DEFAULT_LIMITS):
    """One image of several panels in rows of up to three, each row scaled to a common height."""
    from PIL import Image

    if len(images) == 1:
        return images[0]
    height = min(max(im.height for im in images), 1024)
    rows = [images[i : i + PANELS_PER_ROW] for i in range(0, len(images), PANELS_PER_ROW)]
    scaled_rows = []
    for row in rows:
        scaled = [im.resize((max(1, round(im.width * height / im.height)), height)) for im in row]
        scaled_rows.append(scaled)
    width = max(sum(im.width for im in row) + PANEL_GAP * (len(row) - 1) for row in scaled_rows)
    total = height * len(scaled_rows) + PANEL_GAP * (len(scaled_rows) - 1)
    if width * total > limits.render_pixels:
        raise ScituneError(f"subfigure panels would make a {width}x{total} image, more than {limits.render_pixels} pixels")
    canvas = Image.new("RGB", (width, total), "white")
    y = 0
    for row in scaled_rows:
        x = 0
        for im in row:
            canvas.paste(im, (x, y))
            x += im.width + PANEL_GAP
        y += height + PANEL_GAP
    return canvas
