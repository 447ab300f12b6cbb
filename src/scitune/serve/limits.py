"""What a request may carry, and how requests are batched. Every size that comes from outside
the server is bounded here; each default can be changed on the `scitune serve` command line."""

from __future__ import annotations

from dataclasses import dataclass

from scitune.errors import ScituneError


@dataclass(frozen=True)
class ServeLimits:
    max_body_bytes: int = 16 * 1024**2  # a whole request body (base64 images included)
    max_image_bytes: int = 8 * 1024**2  # one image, decoded from base64 or read from disk
    max_image_pixels: int = 16_000_000  # one image's width x height (decompression bombs)
    max_images: int = 4  # images in one request
    max_messages: int = 64  # messages in one chat request
    max_text_chars: int = 32_000  # all text of one request, before tokenizing
    max_tokens: int = 512  # the cap on a request's max_tokens (and its default when it gives none)
    default_max_tokens: int = 256
    max_stop: int = 4  # stop strings, as OpenAI allows
    max_stop_chars: int = 64
    max_labels: int = 32  # figure-type labels in one classify request
    max_label_chars: int = 100
    max_batch: int = 8  # requests in one batched generation
    window_ms: float = 10.0  # how long the first request of a batch waits for others
    max_queue: int = 64  # requests waiting; one more is answered 429
    # what the waiting requests' images hold in memory (decoded images for a model family, pixel
    # values for LLaVA); a request that would go over it is answered 429 (one request alone always fits)
    max_queued_image_bytes: int = 1024**3
    timeout_s: float = 120.0  # a request's whole time (waiting + running) before it is answered 504
    header_timeout_s: float = 10.0  # from a connection's opening (or the start of its next request) to that request's whole headers; then 408
    body_timeout_s: float = 30.0  # from a request's headers to the last byte of its body; then 408
    max_header_bytes: int = 64 * 1024  # a request line and its headers; more is answered 431

    def __post_init__(self):
        for name in ("max_body_bytes", "max_image_bytes", "max_image_pixels", "max_images", "max_messages",
                     "max_text_chars", "max_tokens", "default_max_tokens", "max_stop_chars", "max_labels",
                     "max_label_chars", "max_batch", "max_queue", "max_queued_image_bytes", "max_header_bytes"):
            if getattr(self, name) < 1:
                raise ScituneError(f"serve limits: {name} must be at least 1, got {getattr(self, name)}")
        if self.max_stop < 0 or self.window_ms < 0 or self.timeout_s <= 0:
            raise ScituneError("serve limits: max_stop and window_ms must be >= 0 and timeout_s > 0")
        if not (self.header_timeout_s > 0 and self.body_timeout_s > 0):
            raise ScituneError("serve limits: header_timeout_s and body_timeout_s must be > 0")
        if self.default_max_tokens > self.max_tokens:
            raise ScituneError(
                f"serve limits: default_max_tokens {self.default_max_tokens} is over the cap max_tokens {self.max_tokens}"
            )
