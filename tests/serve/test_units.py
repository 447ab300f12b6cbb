"""The serve pieces without a server: image decoding within limits, request parsing, per-row
decoding (stop strings, streamed pieces), model specs, limits."""

from __future__ import annotations

import base64
import struct
import threading
import zlib
from pathlib import Path

import pytest

from scitune.errors import ScituneError
from scitune.serve.decoding import RowDecoder
from scitune.serve.errors import ApiError
from scitune.serve.images import data_url_bytes, decode_image, image_bytes
from scitune.serve.limits import ServeLimits
from scitune.serve.models import parse_model_specs
from scitune.serve.schemas import ChatRequest, parse_body

from tests.serve.conftest import data_url, png_bytes

LIMITS = ServeLimits(max_image_bytes=64 * 1024, max_image_pixels=250_000)


def bomb_png(width: int, height: int) -> bytes:
    """A small PNG header claiming width x height pixels (the data stream is a few bytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def status_of(func, *args) -> tuple[int, str]:
    with pytest.raises(ApiError) as info:
        func(*args)
    return info.value.status, info.value.message


def test_a_png_and_a_jpeg_decode_to_rgb():
    for kind, mime in (("PNG", "image/png"), ("JPEG", "image/jpeg")):
        raw = data_url_bytes(data_url(png_bytes(kind=kind), mime), LIMITS, "x")
        image = decode_image(raw, LIMITS, "x")
        assert image.mode == "RGB" and image.size == (96, 72)


@pytest.mark.parametrize(
    "url, status, words",
    [
        ("data:image/png;base64,@@@@", 400, "not valid base64"),
        ("data:image/png,plain", 400, "must be base64"),
        ("data:text/plain;base64," + base64.b64encode(b"hello").decode(), 400, "not an image type"),
        ("data:image/png;base64," + base64.b64encode(b"not an image at all").decode(), 400, "not an image we read"),
        ("data:image/png;base64," + base64.b64encode(b"\x00" * 70_000).decode(), 413, "over the limit"),
        ("https://example.org/figure.png", 400, "not fetched"),
        ("figs/bars.png", 400, "--image-root"),
        ("gopher://host/x", 400, "unsupported"),
    ],
)
def test_bad_image_urls_are_refused_with_a_reason(url, status, words):
    code, message = status_of(image_bytes_then_decode, url)
    assert code == status and words in message


def image_bytes_then_decode(url):
    return decode_image(image_bytes(url, LIMITS, None, "image"), LIMITS, "image")


def test_a_decompression_bomb_is_refused_from_its_header():
    code, message = status_of(decode_image, bomb_png(20_000, 20_000), LIMITS, "image")
    assert code == 413 and "decompression bomb" in message


def test_a_truncated_png_is_refused():
    data = png_bytes(300, 300)
    code, message = status_of(decode_image, data[: len(data) // 2], LIMITS, "image")
    assert code == 400 and "unreadable" in message


def test_paths_stay_inside_the_image_root(image_root):
    assert image_bytes("figs/bars.png", LIMITS, image_root, "i") == (image_root / "figs" / "bars.png").read_bytes()
    absolute = f"file://{image_root / 'figs' / 'bars.png'}"
    assert image_bytes(absolute, LIMITS, image_root, "i")
    for outside in ("../x.png", "/etc/passwd", "figs/link.png", "figs/missing.png"):
        code, _ = status_of(image_bytes, outside, LIMITS, image_root, "i")
        assert code == 400


def test_chat_bodies_are_parsed_strictly():
    ok = parse_body(ChatRequest, b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "temperature": 1}')
    assert ok.temperature == 1.0 and ok.max_tokens is None
    cases = {
        b"{": 400,
        b"\xff\xfe": 400,
        b"[1, 2]": 422,
        b'{"model": "m"}': 422,
        b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": "5"}': 422,
        b'{"model": "m", "messages": [{"role": "robot", "content": "hi"}]}': 422,
        b'{"model": "m", "messages": [{"role": "user", "content": [{"type": "audio"}]}]}': 422,
        b'{"model": 7, "messages": [{"role": "user", "content": "hi"}]}': 422,
        b'{"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": "yes"}': 422,
        b"[" * 40 + b"]" * 40: 400,
    }
    for body, status in cases.items():
        code, message = status_of(parse_body, ChatRequest, body)
        assert code == status, (body, message)
    _, message = status_of(parse_body, ChatRequest, b'{"model": "m", "messages": [], "max_tokens": 0}')
    assert "messages" in message and "max_tokens" in message


@pytest.fixture(scope="module")
def tokenizer(checkpoints):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(checkpoints["tiny"])


def run_row(tokenizer, text: str, stop=(), max_tokens=100, end_ids=(), extra_ids=()):
    ids = tokenizer.encode(text, add_special_tokens=False) + list(extra_ids)
    pieces: list[str] = []
    row = RowDecoder(tokenizer, threading.Lock(), end_ids, max_tokens, stop, emit=pieces.append)
    for token in ids:
        if row.step(token):
            break
    return row, row.finish(), pieces


def test_streamed_pieces_add_up_to_the_answer(tokenizer):
    row, text, pieces = run_row(tokenizer, "  The bars rise: 3.5 percent per year, then fall. ")
    assert text == "The bars rise: 3.5 percent per year, then fall."
    assert "".join(pieces) == text and len(pieces) > 3
    assert row.finish_reason == "length" and row.count == len(tokenizer.encode("  The bars rise: 3.5 percent per year, then fall. ", add_special_tokens=False))


def test_a_stop_string_ends_the_row_and_is_never_sent(tokenizer):
    row, text, pieces = run_row(tokenizer, "alpha beta END gamma delta", stop=("END",))
    assert text == "alpha beta" and "".join(pieces) == text
    assert row.finish_reason == "stop" and all("E" not in p for p in pieces)


def test_end_tokens_and_max_tokens_end_a_row(tokenizer):
    eos = tokenizer.eos_token_id
    row, text, _ = run_row(tokenizer, "one two", end_ids=(eos,), extra_ids=(eos,) + tuple(tokenizer.encode(" three")))
    assert text == "one two" and row.finish_reason == "stop"
    row, text, _ = run_row(tokenizer, "one two three four five six", max_tokens=2)
    assert row.finish_reason == "length" and row.count == 2 and text == tokenizer.decode(tokenizer.encode("one two three four five six")[:2]).strip()


def test_model_specs():
    assert parse_model_specs(["a=x/y", "x/z"]) == [("a", Path("x/y")), ("x/z", Path("x/z"))]
    for bad in (["a=x", "a=y"], ["=x"], ["bad name=x"], []):
        with pytest.raises(ScituneError):
            parse_model_specs(bad)


def test_limits_are_checked():
    with pytest.raises(ScituneError):
        ServeLimits(max_batch=0)
    with pytest.raises(ScituneError):
        ServeLimits(max_tokens=8, default_max_tokens=16)
