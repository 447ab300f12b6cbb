"""Figure files -> PNG bytes: raster files read with limits, EPS through Ghostscript when it is
installed (`gs` on the PATH), several panels (subfigures) placed side by side on one white canvas."""

from __future__ import annotations

import io
import math
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from scitune.data.ingest.limits import DEFAULT_LIMITS, Limits
from scitune.errors import ScituneError
from scitune.io.images import ImageLimits, open_image

RASTER_SUFFIXES = (".png", ".jpg", ".jpeg")
PANEL_GAP = 8  # white pixels between subfigure panels
PANELS_PER_ROW = 3


_BOUNDING_BOX = re.compile(rb"%%(?:HiRes)?BoundingBox:\s*(-?[\d.]+)\s+(-?[\d.]+)\s+(-?[\d.]+)\s+(-?[\d.]+)")


def ghostscript() -> str | None:
    return next((found for name in ("gs", "gswin64c", "gswin32c") if (found := shutil.which(name))), None)


def ghostscript_available() -> bool:
    return ghostscript() is not None


def render_eps(path: Path, dpi: int, limits: Limits = DEFAULT_LIMITS):
    """An EPS figure file as an RGB PIL image, cropped to its bounding box, through Ghostscript.

    Our own call rather than Pillow's EPS plugin: PostScript is a programming language, and
    Pillow runs Ghostscript with no time limit; here it runs with -dSAFER (no file access), a
    timeout, and a pixel count checked from the %%BoundingBox before anything is drawn."""
    gs = ghostscript()
    if gs is None:
        raise ScituneError(f"{path}: EPS and Ghostscript (gs) is not installed")
    size = path.stat().st_size
    if size > limits.image_bytes:
        raise ScituneError(f"{path}: {size} bytes, more than the limit of {limits.image_bytes}")
    with path.open("rb") as handle:
        head = handle.read(65536)
    box = _BOUNDING_BOX.search(head)
    if box is None:
        raise ScituneError(f"{path}: EPS without a %%BoundingBox; refused")
    x0, y0, x1, y1 = (float(v) for v in box.groups())
    width, height = (x1 - x0) * dpi / 72, (y1 - y0) * dpi / 72
    if width <= 0 or height <= 0 or width * height > limits.render_pixels:
        raise ScituneError(f"{path}: EPS bounding box of {width:.0f}x{height:.0f} pixels at {dpi} dpi "
                           f"(limit {limits.render_pixels} pixels); refused")
    with tempfile.TemporaryDirectory(prefix="scitune-eps-") as tmp:
        out = Path(tmp) / "figure.png"
        command = [gs, "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-dEPSCrop", "-sDEVICE=png16m", f"-r{dpi}",
                   "-dTextAlphaBits=4", "-dGraphicsAlphaBits=4", "-dLastPage=1", f"-sOutputFile={out}",
                   "-f", str(path.resolve())]
        try:
            done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=limits.ghostscript_seconds, check=False)
        except subprocess.TimeoutExpired:
            raise ScituneError(f"{path}: Ghostscript ran more than {limits.ghostscript_seconds} s; refused") from None
        if done.returncode != 0 or not out.is_file():
            lines = (done.stderr or done.stdout).decode("utf-8", "replace").strip().splitlines()
            raise ScituneError(f"{path}: Ghostscript could not draw it ({lines[-1] if lines else f'exit {done.returncode}'})")
        return load_raster(out, limits)


def png_bytes(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def load_raster(path: Path, limits: Limits = DEFAULT_LIMITS):
    """An RGB PIL image (transparent areas white) of a PNG/JPEG figure file, through the one checked
    opener (scitune.io.images) under ingest's own bounds: bytes and pixels from `limits`, and no
    aspect-ratio or padded-square bound here, since the figure is only re-encoded as PNG (training
    and `data validate` apply those to the files ingest writes)."""
    bounds = ImageLimits(max_bytes=limits.image_bytes, max_pixels=limits.image_pixels,
                         max_aspect_ratio=math.inf, max_padded_pixels=sys.maxsize)
    return open_image(path, str(path), bounds)


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
