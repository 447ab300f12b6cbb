"""Images that come from outside: one checked opener, used by every path that reads an image
(`data validate`, training, `predict`, `eval`, `serve`, the leakage guard), and writes that stay
inside their folder.

An image is bounded by what it becomes, not only by its file. LLaVA pads a figure to a square and
resizes it, so a 20000x1 PNG of 144 bytes becomes a 20000x20000 square (1.2 GB of 8-bit RGB,
more as floats) before it is shrunk. From the header alone, before any pixel is decoded
(`PIL.Image.open` reads only the header; `.size` is checked before `.load()`), `check_size`
refuses:
- a file over `MAX_IMAGE_BYTES`, and a zero width or height;
- more than `MAX_IMAGE_PIXELS` decoded pixels (PIL's own default limit, which only warns below
  twice its value): a decompression bomb;
- an aspect ratio (long side / short side) over `MAX_ASPECT_RATIO` (20:1). Padded to a square
  and resized to the vision tower's 336 pixels, a 20:1 figure keeps 17 rows of content: nothing
  a model can read is lost, and without padding (resize the short side, crop) a 20:1 image still
  becomes at most 20 x 336 x 336 pixels before the crop;
- a padded square over `MAX_PADDED_PIXELS` (8192 x 8192 = 64 Mi pixels, 192 MiB as 8-bit RGB):
  what padding makes of an image is never larger than the largest image decoded as it is.
Transparent images (RGBA, LA, PA, P with a transparent colour) are laid on white, as a figure is
seen on a page, wherever they are read.

- `open_image(source, where, limits)`: a path or bytes -> the loaded image (RGB on white, or in
  its own mode with `rgb=False`); any problem is an `ImageProblem` (a ScituneError with a
  `reason` from `REASONS`) naming `where`;
- `image_path(root, relative, where)`: `root / relative` for reading, refused when it is absolute,
  uses `..`, or leads out of `root` through a link;
- `contained_path(root, relative)` refuses the same for writing (and a link at the target);
- `write_image(data, root, relative)` checks the bytes decode as an image and writes them
  atomically, re-encoded as PNG.
The limits are module constants (a test can lower them) gathered in `ImageLimits`, which a
caller such as the server narrows with its own bounds.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from scitune.errors import ScituneError

MAX_IMAGE_BYTES = 64 * 1024**2
MAX_IMAGE_PIXELS = 89_478_485  # PIL's default limit
MAX_ASPECT_RATIO = 20
MAX_PADDED_PIXELS = 8192 * 8192

# reason -> what it means (`scitune data validate` reports these names)
REASONS = {
    "image_path_escapes_root": "image path is absolute or leads out of the image root",
    "image_missing": "image file not found",
    "image_zero_size": "image file is empty or has zero width/height",
    "image_unreadable": "image file is not a readable image",
    "image_truncated": "image file is truncated",
    "image_too_large": f"image over the byte or pixel limits (decoded, or padded to a square: {MAX_PADDED_PIXELS} pixels)",
    "image_aspect_ratio": f"image is longer than {MAX_ASPECT_RATIO}:1 on one side",
}


class ImageProblem(ScituneError):
    """A bad image: `reason` (a key of REASONS), and a one-line message naming the image."""

    def __init__(self, reason: str, where: str, detail: str):
        super().__init__(f"{where}: {detail}")
        self.reason = reason
        self.where = where
        self.detail = detail


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int = MAX_IMAGE_BYTES
    max_pixels: int = MAX_IMAGE_PIXELS
    max_aspect_ratio: float = MAX_ASPECT_RATIO
    max_padded_pixels: int = MAX_PADDED_PIXELS
    formats: tuple[str, ...] | None = None  # PIL format names allowed; None: any PIL reads


def default_limits() -> ImageLimits:
    """The module's limits as they are now (a test may have lowered one)."""
    return ImageLimits(MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS, MAX_ASPECT_RATIO, MAX_PADDED_PIXELS)


def check_size(width: int, height: int, where: str, limits: ImageLimits | None = None) -> None:
    """Raises an ImageProblem when an image of this size (from its header) may not be decoded."""
    limits = limits or default_limits()
    if width <= 0 or height <= 0:
        raise ImageProblem("image_zero_size", where, f"image is {width}x{height}")
    if width * height > limits.max_pixels:
        raise ImageProblem("image_too_large", where, f"image is {width}x{height}, over {limits.max_pixels} pixels "
                                                     "(decompression bomb guard)")
    long, short = max(width, height), min(width, height)
    if long > limits.max_aspect_ratio * short:
        raise ImageProblem("image_aspect_ratio", where, f"image is {width}x{height}, more than "
                                                        f"{limits.max_aspect_ratio:g}:1 (padded to a square it "
                                                        f"would be {long}x{long}); crop or split it")
    if long * long > limits.max_padded_pixels:
        raise ImageProblem("image_too_large", where, f"image is {width}x{height}; padded to a square it would be "
                                                     f"{long}x{long}, over {limits.max_padded_pixels} pixels")


def on_white(image):
    """RGB, transparent areas white (a figure's background is the page)."""
    from PIL import Image

    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, "white")
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return image.convert("RGB")


def open_image(source: str | Path | bytes, where: str | None = None, limits: ImageLimits | None = None,
               rgb: bool = True):
    """The loaded image of a file or of bytes, after the checks (sizes from the header first);
    RGB on white, or in its own mode with `rgb=False`. Raises an ImageProblem naming `where`
    (default: the path)."""
    from PIL import Image, UnidentifiedImageError

    limits = limits or default_limits()
    where = where or str(source if not isinstance(source, bytes) else "image")
    if isinstance(source, bytes):
        size, handle = len(source), io.BytesIO(source)
    else:
        path = Path(source)
        try:
            if not path.is_file():
                raise ImageProblem("image_missing", where, "image file not found")
            size = path.stat().st_size
        except OSError as err:
            raise ImageProblem("image_unreadable", where, f"cannot read ({err.strerror or err})") from None
        handle = path
    if size == 0:
        raise ImageProblem("image_zero_size", where, "image file is empty")
    if size > limits.max_bytes:
        raise ImageProblem("image_too_large", where, f"image is {size} bytes, over the limit of {limits.max_bytes}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(handle, formats=limits.formats)
            try:
                check_size(*image.size, where, limits)
                image.load()
                if not rgb:
                    return image
                converted = on_white(image)
                image.close()
                return converted
            except BaseException:
                image.close()
                raise
    except ImageProblem:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageProblem("image_too_large", where, f"image is over {limits.max_pixels} pixels "
                                                     "(decompression bomb guard)") from None
    except UnidentifiedImageError:
        raise ImageProblem("image_unreadable", where, "not an image PIL can read") from None
    except (OSError, ValueError, SyntaxError, EOFError, struct.error) as err:
        text = " ".join(str(err).split())[:200]
        if "truncated" in text.lower():
            detail = text if text.lower().startswith("image file is truncated") else f"image file is truncated ({text})"
            raise ImageProblem("image_truncated", where, detail) from None
        raise ImageProblem("image_unreadable", where, f"unreadable image ({text})") from None


def image_path(root: str | Path, relative: str, where: str | None = None) -> Path:
    """`root / relative` for reading; an ImageProblem when it is absolute, uses `..`, or leads
    out of `root` through a link."""
    root = Path(root)
    where = where or relative
    rel = PurePosixPath(relative)
    if not relative or rel.is_absolute() or Path(relative).is_absolute() or ".." in rel.parts:
        raise ImageProblem("image_path_escapes_root", where, f"image path {relative!r} escapes the image folder {root}")
    path = root / rel
    try:
        path.resolve().relative_to(root.resolve())
    except (ValueError, OSError, RuntimeError):
        raise ImageProblem("image_path_escapes_root", where, f"image path {relative!r} leads out of {root} through a link") from None
    return path


def open_under(root: str | Path, relative: str, limits: ImageLimits | None = None, rgb: bool = True):
    """`open_image` of `root / relative` after `image_path`'s checks; errors name the path."""
    path = image_path(root, relative, str(Path(root) / relative))
    return open_image(path, str(path), limits, rgb)


def contained_path(root: str | Path, relative: str, where: str) -> Path:
    """`root / relative` for writing: `image_path`'s checks, and no link at the target."""
    target = image_path(root, relative, where)
    if target.is_symlink():
        raise ScituneError(f"{where}: {target} is a link; refusing to write through it")
    return target


def decode_image(data: bytes, where: str):
    """A loaded PIL image (in its own mode) from bytes within the limits; errors name `where`."""
    return open_image(data, where, rgb=False)


def write_image(data: bytes, root: str | Path, relative: str, where: str, format: str | None = None) -> Path:
    """Writes an image given as bytes to `root/relative` (inside `root` only), atomically.
    `format`: re-encode in this PIL format (e.g. "PNG"); None: as the path's suffix says."""
    from scitune.io.atomic import write_bytes

    target = contained_path(root, relative, where)
    im = decode_image(data, where)
    buffer = io.BytesIO()
    try:
        im.save(buffer, format=format or _format_of(target))
    except (OSError, ValueError, KeyError) as err:
        raise ScituneError(f"{where}: cannot write the image as {target.suffix or format} ({err})") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    contained_path(root, relative, where)  # the folders just made must not have changed that
    return write_bytes(target, buffer.getvalue())


def _format_of(path: Path) -> str:
    from PIL import Image

    Image.init()
    try:
        return Image.EXTENSION[path.suffix.lower()]
    except KeyError:
        raise ScituneError(f"{path}: unknown image file type {path.suffix!r}") from None
