"""The one checked image opener (`scitune.io.images`): limits from the header, one reason per
problem, transparency on white, the same answer for a path and for bytes."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from scitune.io import images


def _png(size, mode="RGB", color=None) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def _noise_png(size) -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise(size, 80).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "size, reason",
    [((20000, 1), "image_aspect_ratio"), ((1, 2001), "image_aspect_ratio"), ((2001, 100), "image_aspect_ratio")],
)
def test_aspect_ratio_over_20_to_1_is_refused_from_the_header(size, reason):
    with pytest.raises(images.ImageProblem) as refused:
        images.open_image(_png(size, "L"), "x")
    assert refused.value.reason == reason and f"{size[0]}x{size[1]}" in str(refused.value)


def test_exactly_20_to_1_is_accepted():
    assert images.open_image(_png((2000, 100), "L"), "x").size == (2000, 100)


def test_limits_are_checked_before_decoding(monkeypatch):
    strip = _png((20000, 1), "L")
    loaded = []
    monkeypatch.setattr(Image.Image, "load", lambda self: loaded.append(self.size))
    with pytest.raises(images.ImageProblem):
        images.open_image(strip, "x")
    assert loaded == []  # refused from the header: no pixel decoded


def test_padded_square_limit(monkeypatch):
    monkeypatch.setattr(images, "MAX_PADDED_PIXELS", 100 * 100)
    with pytest.raises(images.ImageProblem, match="padded to a square it would be 101x101") as refused:
        images.open_image(_png((101, 60)), "x")
    assert refused.value.reason == "image_too_large"
    assert images.open_image(_png((100, 60)), "x").size == (100, 60)


@pytest.mark.parametrize(
    "data, reason",
    [(b"", "image_zero_size"), (b"not an image", "image_unreadable"), (_noise_png((64, 64))[:2000], "image_truncated")],
    ids=["empty", "garbage", "truncated"],
)
def test_each_problem_has_its_reason(data, reason):
    with pytest.raises(images.ImageProblem) as refused:
        images.open_image(data, "x")
    assert refused.value.reason == reason and str(refused.value).startswith("x: ")


def test_bytes_limit(monkeypatch):
    monkeypatch.setattr(images, "MAX_IMAGE_BYTES", 10)
    with pytest.raises(images.ImageProblem, match="over the limit of 10") as refused:
        images.open_image(_png((4, 4)), "x")
    assert refused.value.reason == "image_too_large"


def test_transparency_is_white_for_every_transparent_mode(tmp_path):
    clear = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    palette = Image.new("P", (4, 4), 0)
    palette.putpalette([10, 20, 30] * 256)
    palette.info["transparency"] = 0
    for name, image in (("rgba.png", clear), ("la.png", clear.convert("LA")), ("p.png", palette)):
        image.save(tmp_path / name)
        assert images.open_image(tmp_path / name).getpixel((0, 0)) == (255, 255, 255), name
    assert images.open_image(tmp_path / "p.png", rgb=False).mode == "P"  # unconverted on request


def test_paths_stay_inside_their_root(tmp_path):
    (tmp_path / "root").mkdir()
    (tmp_path / "outside.png").write_bytes(_png((4, 4)))
    (tmp_path / "root" / "link.png").symlink_to(tmp_path / "outside.png")
    for relative in ("../outside.png", "/etc/passwd", "link.png"):
        with pytest.raises(images.ImageProblem) as refused:
            images.open_under(tmp_path / "root", relative)
        assert refused.value.reason == "image_path_escapes_root", relative
    with pytest.raises(images.ImageProblem) as refused:
        images.open_under(tmp_path / "root", "none.png")
    assert refused.value.reason == "image_missing"


def test_the_same_answer_for_a_path_and_for_bytes(tmp_path):
    data = _png((30, 20), "RGBA", (0, 0, 255, 128))
    (tmp_path / "a.png").write_bytes(data)
    assert images.open_image(tmp_path / "a.png").tobytes() == images.open_image(data, "a").tobytes()
