"""The waiting requests' images are bounded by what they hold in memory, not only by their count:
a request whose images would take the queue over `max_queued_image_bytes` is answered 429."""

from __future__ import annotations

import asyncio

import pytest
import torch
from PIL import Image

from scitune.errors import ScituneError
from scitune.serve.batcher import Batcher, Job, QueueFull, held_bytes
from scitune.serve.limits import ServeLimits
from scitune.serve.prompts import Prepared


def _job(loop, images: dict) -> Job:
    return Job(prepared=Prepared(slot=None, item=None, images=images), kind="generate", loop=loop)


def test_held_bytes_counts_decoded_images_and_pixel_tensors():
    image = Image.new("RGB", (100, 50))
    assert held_bytes(Prepared(slot=None, item=None, images={"a": image, "b": torch.zeros(1, 3, 8, 8)})) == 100 * 50 * 3 + 3 * 64 * 4


def test_a_request_whose_images_would_overfill_the_queue_is_refused():
    loop = asyncio.new_event_loop()
    # the first job waits out the gathering window, so the queue keeps it while the others arrive
    batcher = Batcher(ServeLimits(max_queued_image_bytes=100 * 100 * 3 * 2, window_ms=60_000, max_batch=8))
    batcher.start()
    try:
        big = Image.new("RGB", (100, 100))
        batcher.submit(_job(loop, {"a": big}))
        batcher.submit(_job(loop, {"b": big}))  # exactly the budget
        with pytest.raises(QueueFull, match="images hold 60000 bytes"):
            batcher.submit(_job(loop, {"c": Image.new("RGB", (1, 1))}))
        batcher.submit(_job(loop, {}))  # a text-only request still fits
    finally:
        batcher.close(timeout=5)
        loop.close()


def test_a_request_alone_always_fits_and_the_limit_is_checked():
    loop = asyncio.new_event_loop()
    batcher = Batcher(ServeLimits(max_queued_image_bytes=10, window_ms=60_000))
    batcher.start()
    try:
        batcher.submit(_job(loop, {"a": Image.new("RGB", (100, 100))}))
    finally:
        batcher.close(timeout=5)
        loop.close()
    with pytest.raises(ScituneError, match="max_queued_image_bytes must be at least 1"):
        ServeLimits(max_queued_image_bytes=0)
