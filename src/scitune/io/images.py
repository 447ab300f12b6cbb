"""Images that come from outside: decoded within limits, written only inside their folder.

- `MAX_IMAGE_BYTES`, `MAX_IMAGE_PIXELS` bound what is decoded (a decompression bomb is refused
  before its pixels are, as PIL's own limit only warns below twice its value);
- `contained_path(root, relative)` refuses absolute paths, `..`, and symlinks that lead out of
  `root` (a write through them would land outside it);
- `write_image(data, root, relative)` checks the bytes decode as an image and writes them
  atomically, re-encoded as PNG.
"""

from __future__ import annotations

import io
from pathlib import Path, PurePosixPath

from scitune.errors import ScituneError

MAX_IMAGE_BYTES = 64 * 1024**2
MAX_IMAGE_PIXELS = 89_478_485  # PIL's default limit


def contained_path(root: str | Path, relative: str, where: str) -> Path:
    """`root / relative`, refused when it would lie outside `root` (also through symlinks)."""
    root = Path(root)
    rel = PurePosixPath(relative)
    if not relative or rel.is_absolute() or Path(relative).is_absolute() or ".." in rel.parts:
        raise ScituneError(f"{where}: image path {relative!r} escapes the image folder")
    target = root / rel
    try:
        target.resolve(strict=False).relative_to(root.resolve(strict=False))
    except ValueError:
        raise ScituneError(f"{where}: image path {relative!r} leads out of {root} through a link") from None
    if target.is_symlink():
        raise ScituneError(f"{where}: {target} is a link; refusing to write through it")
    return target


def decode_image(data: bytes, where: str):
    """A loaded PIL image from bytes within the limits; one-line errors name `where`."""
    from PIL import Image, UnidentifiedImageError

    if len(data) > MAX_IMAGE_BYTES:
        raise ScituneError(f"{where}: image is {len(data)} bytes, over the limit of {MAX_IMAGE_BYTES}")
    try:
        im = Image.open(io.BytesIO(data))
        width, height = im.size
        if width * height > MAX_IMAGE_PIXELS:
            raise ScituneError(f"{where}: image is {width}x{height}, over {MAX_IMAGE_PIXELS} pixels (decompression bomb)")
        if width == 0 or height == 0:
            raise ScituneError(f"{where}: image is {width}x{height}")
        im.load()
    except Image.DecompressionBombError:
        raise ScituneError(f"{where}: image is over {MAX_IMAGE_PIXELS} pixels (decompression bomb)") from None
    except UnidentifiedImageError:
        raise ScituneError(f"{where}: not an image PIL can read") from None
    except (OSError, ValueError, SyntaxError) as err:
        raise ScituneError(f"{where}: unreadable image ({' '.join(str(err).split())})") from None
    return im


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
