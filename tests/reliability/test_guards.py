"""Guards fail closed, and images are bounded by what they become.

- The leakage guard (`scitune data overlap`, training's `data.fail_on_overlap_with`) counts and
  lists every image it could not check (a wrong image folder, a corrupt image, a path escaping
  its folder); `--fail` and the training guard fail on them.
- A 144-byte 20000x1 PNG would become a 20000x20000 square once padded: it is refused from its
  header by `data validate`, training, `predict` and the one opener everything uses, and costs
  no more memory than an ordinary figure.
- A truncated model.safetensors is our one line, exit 2, not the library's error text."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.reliability.conftest import ONE_STAGE
from tests.reliability.harness import check_failure, run_case, run_cli

from ..train.data import write_dataset, write_recipe


def _sets(root: Path) -> tuple[Path, Path, Path]:
    """A training set and an evaluation set that share no figure and no text."""
    train, images = write_dataset(root / "train", n=4)
    evals, _ = write_dataset(root / "eval", n=2)
    records = json.loads(evals.read_text())
    for i, record in enumerate(records):
        record["conversations"][1]["value"] = f"Something unrelated number {i} about rocks and minerals in the field."
    evals.write_text(json.dumps(records))
    for i in range(2):  # noise, unlike any training figure
        Image.effect_noise((64, 64), 60 + 30 * i).convert("RGB").save(root / "eval" / "images" / f"fig{i}.png")
    return train, images, evals


def _overlap(root: Path, images: Path | None = None) -> list:
    images = images or root / "train" / "images"
    return ["data", "overlap", root / "train" / "train.json", "--images", images,
            "--against", f"{root / 'eval' / 'train.json'}={root / 'eval' / 'images'}"]


def test_a_clean_check_passes(tmp_path):
    _sets(tmp_path)
    code, out, err = run_cli([*_overlap(tmp_path), "--fail"])
    assert code == 0, err + out
    assert "0 image and 0 caption overlaps" in out and "could not be checked" not in out


GUARD_CASES = [
    ("wrong-images-folder", lambda r: _overlap(r, r / "nowhere"),
     r"4 image\(s\) could not be checked \(4 image_missing; first: train fig0: .*nowhere/fig0\.png: image file not found"),
    ("corrupt-image", lambda r: ((r / "train" / "images" / "fig1.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage"), _overlap(r))[-1],
     r"1 image\(s\) could not be checked \(1 image_(unreadable|truncated); first: train fig1"),
    ("strip-image", lambda r: (Image.new("L", (20000, 1)).save(r / "train" / "images" / "fig3.png"), _overlap(r))[-1],
     r"1 image\(s\) could not be checked \(1 image_aspect_ratio; first: train fig3"),
    ("path-escapes-root", lambda r: (_escape(r), _overlap(r))[-1], r"1 image\(s\) could not be checked \(1 image_path_escapes_root"),
    ("eval-image-missing", lambda r: ((r / "eval" / "images" / "fig0.png").unlink(), _overlap(r))[-1],
     r"1 image\(s\) could not be checked \(1 image_missing; first: eval fig0"),
]


def _escape(root: Path) -> None:
    samples = json.loads((root / "train" / "train.json").read_text())
    samples[2]["image"] = "../../eval/images/fig0.png"
    (root / "train" / "train.json").write_text(json.dumps(samples))


@pytest.mark.parametrize("name, argv, pattern", GUARD_CASES, ids=[c[0] for c in GUARD_CASES])
def test_the_leakage_guard_fails_closed(tmp_path, name, argv, pattern):
    _sets(tmp_path)
    args = argv(tmp_path)
    outcome = run_case(tmp_path, [*args, "--fail"])
    check_failure(outcome, 2, r"--fail: " + pattern)
    # without --fail the report still says so (never "0 image overlaps" alone), and --out keeps the list
    code, out, err = run_cli([*args, "--out", tmp_path / "report.json"])
    assert code == 0 and "image(s) could not be checked" in out, err
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["counts"]["unchecked"] == len(report["unchecked"]) >= 1


def test_training_guard_fails_on_what_it_could_not_check(tmp_path):
    train, images, evals = _sets(tmp_path)
    recipe = write_recipe(tmp_path / "recipe.yaml", train, images, tmp_path / "run", **ONE_STAGE)
    outcome = run_case(tmp_path, ["train", recipe, f"align.data.fail_on_overlap_with=[{evals}={tmp_path / 'nowhere'}]"])
    check_failure(outcome, 2, r"align\.data\.fail_on_overlap_with: 2 image\(s\) could not be checked \(2 image_missing")
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------- images


def _wide(path: Path, size=(20000, 1)) -> Path:
    Image.new("L", size, 255).save(path)
    return path


def test_validate_refuses_a_strip_from_its_header(ws):
    _wide(ws / "images" / "strip.png")
    (ws / "s.json").write_text(json.dumps([{"id": "w", "image": "strip.png", "conversations": [
        {"from": "human", "value": "<image>\nWhat is it?"}, {"from": "gpt", "value": "A strip."}]}]))
    assert (ws / "images" / "strip.png").stat().st_size < 200
    code, out, err = run_cli(["data", "validate", ws / "s.json", "--images", ws / "images"])
    assert code == 1 and "w: image_aspect_ratio" in out and "20000x1, more than 20:1" in out, out + err


def test_training_refuses_a_strip_before_any_step(ws):
    _wide(ws / "images" / "strip.png")
    samples = json.loads((ws / "samples.json").read_text())
    samples[0]["image"] = "strip.png"
    samples[0]["conversations"][0]["value"] = "<image>\n" + samples[0]["conversations"][0]["value"]
    (ws / "samples.json").write_text(json.dumps(samples))
    outcome = run_case(ws, ["train", ws / "recipe.yaml"])
    check_failure(outcome, 2, r"bad record.*0: image_aspect_ratio")


def test_predict_refuses_a_strip_in_one_line(tmp_path, tiny_model):
    outcome = run_case(tmp_path, ["predict", "--model", tiny_model, "--image", _wide(tmp_path / "strip.png"), "What is it?"])
    check_failure(outcome, 2, r"strip\.png: image is 20000x1, more than 20:1")


def test_padded_square_over_the_limit_is_refused(tmp_path, monkeypatch):
    from scitune.io import images

    _wide(tmp_path / "wide.png", (2000, 200))
    monkeypatch.setattr(images, "MAX_PADDED_PIXELS", 1000 * 1000)
    with pytest.raises(images.ImageProblem, match=r"padded to a square it would be 2000x2000, over 1000000 pixels"):
        images.open_image(tmp_path / "wide.png")


def test_serve_refuses_a_strip_as_too_large():
    import io

    from scitune.serve.errors import ApiError
    from scitune.serve.images import decode_image
    from scitune.serve.limits import ServeLimits

    buffer = io.BytesIO()
    Image.new("L", (20000, 1)).save(buffer, format="PNG")
    with pytest.raises(ApiError) as refused:
        decode_image(buffer.getvalue(), ServeLimits(), "messages[0].content[1]")
    assert refused.value.status == 413 and "more than 20:1" in str(refused.value)


PEAK = """
import resource, sys
from transformers import LlavaImageProcessorPil
from scitune.errors import ScituneError
from scitune.prompting import ImageLoader
loader = ImageLoader(LlavaImageProcessorPil(do_pad=True), sys.argv[1])
try:
    loader([sys.argv[2]])
    outcome = "ok"
except ScituneError:
    outcome = "refused"
print(outcome, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _peak(root: Path, name: str) -> tuple[str, int]:
    result = subprocess.run([sys.executable, "-c", PEAK, str(root), name], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    outcome, kib = result.stdout.split()
    return outcome, int(kib)


def test_a_strip_costs_no_more_memory_than_an_ordinary_figure(tmp_path):
    """Peak RSS of the image path (open + the processor, padding to a square) in a child process."""
    Image.effect_noise((336, 336), 50).convert("RGB").save(tmp_path / "ordinary.png")
    _wide(tmp_path / "strip.png")
    ordinary, ordinary_kib = _peak(tmp_path, "ordinary.png")
    strip, strip_kib = _peak(tmp_path, "strip.png")
    assert ordinary == "ok" and strip == "refused"
    assert strip_kib <= ordinary_kib + 20 * 1024, (strip_kib, ordinary_kib)


# ----------------------------------------------------------------------------- model files


def test_a_truncated_safetensors_file_is_one_line(tmp_path, tiny_model):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    outcome = run_case(tmp_path, ["predict", "--model", model, "What is it?"])
    check_failure(outcome, 2, r"model\.safetensors: truncated or damaged safetensors file \(")
