"""`RequestImages` for a model family's checkpoint: the images a worker thread renders with are its
own request's only, the model thread reads what it holds, and an image the checkpoint's image
processor refuses is the request's 400 (the whole served path per family is
tests/test_family_matrix.py)."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest
import torch

from scitune.errors import ScituneError
from scitune.prompting import ImageLoader
from scitune.serve.errors import ApiError
from scitune.serve.images import RequestImages
from scitune.serve.limits import ServeLimits
from tests.model.helpers import figure
from tests.serve.conftest import data_url, png_bytes


@pytest.fixture(scope="module")
def processor():
    from scitune.config import ModelConfig
    from scitune.model import build_model

    return build_model(ModelConfig(preset="tiny-idefics3", vocab_size=300))[1]


def test_a_worker_thread_opens_its_own_requests_images_only(processor):
    images = RequestImages(processor.image_processor, decoded=True)
    mine, theirs = figure(1, (40, 30)), figure(2, (30, 40))
    seen = {}

    def other_worker():
        with images.visible({"theirs": theirs}):
            seen["theirs"] = images.open("theirs")
            try:
                images.open("mine")
            except ScituneError as err:
                seen["error"] = str(err)

    with images.visible({"mine": mine}):
        worker = threading.Thread(target=other_worker)
        worker.start()
        worker.join(30)
        assert images.open("mine") is mine
    assert seen == {"theirs": theirs, "error": "request image 'mine' is not held"}
    with pytest.raises(ScituneError, match="not held"):
        images.open("mine")  # visible only while its prompt was rendered


def test_held_images_give_the_inputs_training_gives_for_the_files(processor, tmp_path):
    """Idefics3 lays a batch's tiles out together (5 and 3 tiles here: one sample of 8): the held
    images go through the image processor as one list, as training's ImageLoader does; one image
    at a time, concatenated, would not give these tensors."""
    wide, tall = figure(3, (60, 40)), figure(4, (30, 90))
    wide.save(tmp_path / "wide.png")
    tall.save(tmp_path / "tall.png")
    images = RequestImages(processor.image_processor, decoded=True)
    images.hold({"a": images.prepare(wide), "b": images.prepare(tall)})
    keys = ("pixel_attention_mask",)
    held = images.inputs(["a", "b"], keys)
    files = ImageLoader(processor.image_processor, tmp_path).inputs(["wide.png", "tall.png"], keys)
    for key in ("pixel_values", *keys):
        assert torch.equal(held[key], files[key]), key
    assert torch.equal(images(["a", "b"]), files["pixel_values"])
    images.release(["a", "b"])
    assert len(images) == 0


def test_an_image_the_processor_refuses_is_a_400(processor):
    from scitune.serve.prompts import load_image

    def refuse(images, return_tensors):
        raise ValueError("height:1 must be larger than factor:28")

    slot = SimpleNamespace(images=RequestImages(refuse, decoded=True))
    with pytest.raises(ApiError) as caught:
        load_image(data_url(png_bytes()), slot, ServeLimits(), None, "image")
    assert caught.value.status == 400 and "image processor refused the image" in str(caught.value)
    assert "factor:28" in str(caught.value)
