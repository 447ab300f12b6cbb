"""Request images -> pixel values, within the server's limits.

An image arrives as an `image_url` whose url is a `data:` URL (base64 PNG, JPEG, WebP or GIF)
or, only when the server was started with `--image-root`, a path under that root (relative, or
absolute / `file://` inside it; links that lead out of it are refused). Remote http(s) URLs are
never fetched. Before any pixel is decoded: the base64 length and the byte count are bounded, the
decoder is limited to the allowed formats, and the size is checked from the header alone by
`scitune.io.images.open_image`, the one opener training, `predict`, `eval` and `data validate`
use (decoded pixels within `max_image_pixels`, so a decompression bomb is refused without being
expanded; aspect ratio and the padded square within the shared limits; transparency on white),
with the server's own byte and pixel bounds; truncated or corrupt files are refused when decoded.

A request image reaches the model thread through `RequestImages`, an `ImageLoader` that looks it
up by key. For the LLaVA composition it holds the image's pixel values, computed in the worker
thread by the checkpoint's own image processor (what `scitune.prompting.ImageLoader` computes for
a list, as a Llava processor treats each image alone). For another model family (Qwen-VL,
Idefics3/SmolVLM, LLaVA-OneVision, Gemma 3) it holds the decoded image: the family's renderer
opens each image to expand its marker (in the worker thread, which sees its own request's images
through `RequestImages.visible`), and the model thread runs the image processor on the batch's
images together, as training's `ImageLoader.inputs` does (`pixel_values` with `image_grid_thw`,
`pixel_attention_mask` or `image_sizes`; tiles padded across the batch as the processor pads them).
Either way the image processor has run once on each image in the worker thread, so an image it
refuses is the request's 400, never a failure of the model thread.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import threading
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlsplit

import torch

from scitune.errors import ScituneError
from scitune.io import read
from scitune.prompting import ImageLoader
from scitune.serve.errors import ApiError
from scitune.serve.limits import ServeLimits

FORMATS = ("PNG", "JPEG", "WEBP", "GIF")
MIME_TYPES = {"image/png", "image/jpeg", "image/jpg", "image/webp", "image/gif"}


def data_url_bytes(url: str, limits: ServeLimits, where: str) -> bytes:
    """The bytes of a base64 `data:` URL, refused before decoding when they would be too many."""
    header, comma, payload = url.partition(",")
    params = [p.strip().lower() for p in header[len("data:") :].split(";")]
    if not comma or "base64" not in params[1:]:
        raise ApiError(400, f"{where}: a data: URL must be base64 (data:image/png;base64,...)", "invalid_image_url", where)
    if params[0] and params[0] not in MIME_TYPES:
        raise ApiError(400, f"{where}: media type {params[0]!r} is not an image type we read (PNG, JPEG, WebP, GIF)",
                       "invalid_image", where)
    # at most 4 characters per 3 bytes (plus padding and line breaks some encoders add)
    if len(payload) > (limits.max_image_bytes + 2) // 3 * 4 * 1.05 + 64:
        raise ApiError(413, f"{where}: image is over the limit of {limits.max_image_bytes} bytes", "image_too_large", where)
    compact = "".join(unquote(payload).split()) if ("%" in payload or any(c.isspace() for c in payload)) else payload
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, f"{where}: the data: URL is not valid base64", "invalid_base64", where) from None


def root_path(url: str, image_root: Path | None, where: str) -> Path:
    """The file a path (or file:// URL) names, which must lie inside `image_root`."""
    if image_root is None:
        raise ApiError(400, f"{where}: send the image as a data: URL (file paths need a server started with --image-root)",
                       "invalid_image_url", where)
    text = unquote(urlsplit(url).path) if url.startswith("file:") else url
    if not text or "\x00" in text:
        raise ApiError(400, f"{where}: empty or invalid image path", "invalid_image_url", where)
    root = image_root.resolve()
    candidate = Path(text) if Path(text).is_absolute() else root / text
    try:
        resolved = candidate.resolve()
        resolved.relative_to(root)
    except (ValueError, OSError, RuntimeError):
        raise ApiError(400, f"{where}: image path {text!r} is outside the server's image root", "image_outside_root", where) from None
    if not resolved.is_file():
        raise ApiError(400, f"{where}: image {text!r} not found under the image root", "image_not_found", where)
    return resolved


def image_bytes(url: str, limits: ServeLimits, image_root: Path | None, where: str) -> bytes:
    """The bytes of the image an `image_url` names."""
    scheme = url.split(":", 1)[0].lower() if ":" in url[:12] else ""
    if scheme == "data":
        return data_url_bytes(url, limits, where)
    if scheme in ("http", "https", "ftp"):
        raise ApiError(400, f"{where}: remote image URLs are not fetched; send the image as a data: URL",
                       "invalid_image_url", where)
    if scheme not in ("", "file") and not Path(url).is_absolute():
        raise ApiError(400, f"{where}: unsupported image URL scheme {scheme!r}; send a data: URL", "invalid_image_url", where)
    path = root_path(url, image_root, where)
    size = path.stat().st_size
    if size > limits.max_image_bytes:
        raise ApiError(413, f"{where}: image is {size} bytes, over the limit of {limits.max_image_bytes}", "image_too_large", where)
    try:
        return read.read_bytes(path, max_bytes=limits.max_image_bytes, what="image")
    except ScituneError as err:
        raise ApiError(400, f"{where}: {err}", "image_unreadable", where) from None


def decode_image(data: bytes, limits: ServeLimits, where: str):
    """An RGB PIL image from bytes, through the one checked opener with the server's bounds."""
    from scitune.io.images import ImageProblem, default_limits, open_image

    if not data:
        raise ApiError(400, f"{where}: the image is empty", "invalid_image", where)
    bounds = dataclasses.replace(default_limits(), max_bytes=limits.max_image_bytes,
                                 max_pixels=limits.max_image_pixels, formats=FORMATS)
    try:
        return open_image(data, where, bounds)
    except ImageProblem as problem:
        if problem.reason in ("image_too_large", "image_aspect_ratio"):
            raise ApiError(413, str(problem), "image_too_large", where) from None
        if problem.reason == "image_unreadable" and problem.detail == "not an image PIL can read":
            raise ApiError(400, f"{where}: not an image we read (PNG, JPEG, WebP, GIF)", "invalid_image", where) from None
        if problem.reason == "image_truncated":
            raise ApiError(400, f"{where}: unreadable image ({problem.detail})", "invalid_image", where) from None
        raise ApiError(400, str(problem), "invalid_image", where) from None


def pixel_values(image, image_processor) -> torch.Tensor:
    """The processor's pixel values for one image (shape 1 x C x H x W for a Llava processor)."""
    return image_processor(images=[image], return_tensors="pt")["pixel_values"]


class RequestImages(ImageLoader):
    """An `ImageLoader` over the images the requests brought, looked up by key. Only the model
    thread holds and reads held images (`hold` before a batch, `release` after it); a worker
    thread rendering a request's prompt sees that request's images alone (`visible`).

    `decoded` (a model family's checkpoint): what is held of an image is the decoded image, and
    the batch's pixel values and per-image inputs come from `ImageLoader.inputs` over them;
    otherwise (LLaVA) its pixel values, concatenated in batch order."""

    def __init__(self, image_processor, decoded: bool = False):
        super().__init__(image_processor, None)
        self.decoded = decoded
        self._held: dict[str, object] = {}
        self._rendering = threading.local()

    def prepare(self, image):
        """What is held of one decoded request image (worker thread): its pixel values, or for a
        model family the image itself, after its image processor has taken it once (a ValueError,
        OSError or RuntimeError from the processor is the caller's to report)."""
        pixels = pixel_values(image, self.image_processor)
        return image if self.decoded else pixels

    @contextmanager
    def visible(self, images: dict):
        """While rendering a request's prompt in this thread, its images open by key."""
        self._rendering.images = images
        try:
            yield
        finally:
            self._rendering.images = {}

    def hold(self, images: dict) -> None:
        self._held.update(images)

    def release(self, keys) -> None:
        for key in keys:
            self._held.pop(key, None)

    def __len__(self) -> int:
        return len(self._held)

    def _get(self, key: str):
        value = getattr(self._rendering, "images", {}).get(key)
        if value is None:
            value = self._held.get(key)
        if value is None:
            raise ScituneError(f"request image {key!r} is not held")
        return value

    def open(self, key: str):
        """The decoded image held under `key` (a model family's renderer and `inputs` read it)."""
        if not self.decoded:
            raise ScituneError(f"request image {key!r}: only its pixel values are held")
        return self._get(key)

    def __call__(self, keys: list[str]) -> torch.Tensor:
        if self.decoded:
            return super().__call__(keys)
        return torch.cat([self._get(key) for key in keys])
