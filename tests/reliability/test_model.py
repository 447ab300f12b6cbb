"""Model folders from outside: nothing is unpickled, other model types and oversized configs are
refused before anything is built, and `model build|merge --out` never wipes a folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from scitune.errors import ScituneError
from tests.reliability.harness import check_failure, run_case

LLAVA_CONFIG = {"model_type": "llava", "architectures": ["LlavaForConditionalGeneration"], "text_config": {"model_type": "llama"}}


def _folder(root: Path, files: dict[str, bytes | str | dict]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        if isinstance(data, dict):
            data = json.dumps(data)
        (root / name).write_bytes(data if isinstance(data, bytes) else data.encode())
    return root


# A pickle that would run code if it were ever loaded: the tests must fail before this matters.
PICKLE = b"\x80\x04\x95\x1f\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94\x8c\x06getcwd\x94\x93\x94)R\x94."

BAD_MODEL_FOLDERS = [
    ("pytorch-model-bin", {"config.json": LLAVA_CONFIG, "pytorch_model.bin": PICKLE}, r"holds only pickled weights \(pytorch_model\.bin\)"),
    ("model-pt", {"config.json": LLAVA_CONFIG, "model.pt": PICKLE}, r"holds only pickled weights \(model\.pt\)"),
    ("model-pth", {"config.json": LLAVA_CONFIG, "weights.pth": PICKLE}, r"pickled weights"),
    ("model-ckpt", {"config.json": LLAVA_CONFIG, "last.ckpt": PICKLE}, r"pickled weights"),
    ("no-weights", {"config.json": LLAVA_CONFIG}, r"no weights \(expected model\.safetensors"),
    ("bert-config", {"config.json": {"model_type": "bert"}, "model.safetensors": b""}, r"model_type 'bert'; expected 'llava'"),
    ("no-model-type", {"config.json": {}, "model.safetensors": b""}, r"model_type None; expected 'llava'"),
    ("huge-layers", {"config.json": {**LLAVA_CONFIG, "text_config": {"num_hidden_layers": 10**9}}}, r"text_config\.num_hidden_layers is 1000000000; expected 1 to 512"),
    ("huge-hidden", {"config.json": {**LLAVA_CONFIG, "vision_config": {"hidden_size": 10**7}}}, r"vision_config\.hidden_size is 10000000"),
    ("zero-vocab", {"config.json": {**LLAVA_CONFIG, "text_config": {"vocab_size": 0}}}, r"vocab_size is 0"),
    ("layers-text", {"config.json": {**LLAVA_CONFIG, "text_config": {"num_hidden_layers": "many"}}}, r"num_hidden_layers must be an integer"),
    ("config-latin1", {"config.json": b'{"model_type": "caf\xe9"}'}, r"config\.json: not UTF-8 text"),
    ("config-list", {"config.json": "[1]"}, r"config\.json: expected a JSON object"),
    ("config-deep", {"config.json": "[" * 10000 + "]" * 10000}, r"nested more than 64"),
    ("no-config", {"model.safetensors": b""}, r"no config\.json, not a model directory"),
    ("adapter-only", {"adapter_config.json": {}, "adapter_model.safetensors": b""}, r"it holds a LoRA adapter"),
]


@pytest.mark.parametrize("name, files, pattern", BAD_MODEL_FOLDERS, ids=[b[0] for b in BAD_MODEL_FOLDERS])
def test_merge_refuses_a_bad_base_folder(tmp_path, name, files, pattern):
    base = _folder(tmp_path / "base", files)
    _folder(tmp_path / "adapter", {"adapter_config.json": {}, "adapter_model.safetensors": b""})
    outcome = run_case(tmp_path, ["model", "merge", "--base", base, "--adapter", tmp_path / "adapter", "--out", tmp_path / "merged"])
    check_failure(outcome, 2, pattern)
    assert not (tmp_path / "merged").exists()


def test_config_over_the_size_limit(tmp_path, monkeypatch):
    import scitune.io.read as read

    monkeypatch.setattr(read, "MAX_CONFIG_BYTES", 64)
    base = _folder(tmp_path / "base", {"config.json": {**LLAVA_CONFIG, "pad": "x" * 100}})
    adapter = _folder(tmp_path / "adapter", {"adapter_config.json": {}, "adapter_model.safetensors": b""})
    outcome = run_case(tmp_path, ["model", "merge", "--base", base, "--adapter", adapter, "--out", tmp_path / "m"])
    check_failure(outcome, 2, r"model config is \d+ bytes, over the limit of 64 bytes")


def test_pickled_adapter_is_refused(tmp_path, tiny_model):
    adapter = _folder(tmp_path / "adapter", {"adapter_config.json": {"peft_type": "LORA"}, "adapter_model.bin": PICKLE})
    outcome = run_case(tmp_path, ["model", "merge", "--base", tiny_model, "--adapter", adapter, "--out", tmp_path / "m"])
    check_failure(outcome, 2, r"LoRA adapter .*holds only pickled weights \(adapter_model\.bin\)")


def test_model_checkpoint_pointing_at_a_pickle_is_refused(tmp_path):
    from scitune.config import ModelConfig
    from scitune.model import build_model

    folder = _folder(tmp_path / "ckpt", {"config.json": LLAVA_CONFIG, "pytorch_model.bin": PICKLE})
    with pytest.raises(ScituneError, match="pickled weights"):
        build_model(ModelConfig(checkpoint=str(folder)))
    with pytest.raises(ScituneError, match="is a file; expected a model folder"):
        build_model(ModelConfig(checkpoint=str(folder / "pytorch_model.bin")))


@pytest.mark.parametrize("part", ["vision", "language"])
def test_pickle_only_parts_are_refused(tmp_path, part):
    from scitune.model.build import load_causal_lm, load_vision_tower

    folder = _folder(tmp_path / part, {"config.json": {"model_type": "clip_vision_model" if part == "vision" else "llama"},
                                       "pytorch_model.bin": PICKLE})
    load = load_vision_tower if part == "vision" else load_causal_lm
    with pytest.raises(ScituneError, match="holds only pickled weights"):
        load(str(folder))


OUT_CASES = [
    ("build-into-users-folder", lambda r, m: ["model", "build", "--preset", "tiny", "--out", r / "notes"], r"--out .*notes: folder is not empty"),
    ("build-out-is-a-file", lambda r, m: ["model", "build", "--preset", "tiny", "--out", r / "notes" / "mine.txt"], r"exists and is a file"),
    ("build-out-is-texts", lambda r, m: ["model", "build", "--preset", "tiny", "--texts", r / "notes" / "mine.txt", "--out", r / "notes" / "mine.txt"], r"is the input"),
    ("build-texts-latin1", lambda r, m: (_folder(r / "t", {"t.txt": b"caf\xe9\n"}), ["model", "build", "--texts", r / "t" / "t.txt", "--out", r / "new"])[1], r"t\.txt: not UTF-8 text"),
    ("build-texts-empty", lambda r, m: (_folder(r / "t", {"t.txt": b"\n \n"}), ["model", "build", "--texts", r / "t" / "t.txt", "--out", r / "new"])[1], r"no text to train the tokenizer on"),
    ("build-projector-unknown", lambda r, m: ["model", "build", "--projector", "conv", "--out", r / "new"], r"--projector: invalid choice"),
    ("merge-out-is-base", lambda r, m: ["model", "merge", "--base", m, "--adapter", r / "notes", "--out", m], r"is the input"),
    ("merge-out-inside-base", lambda r, m: ["model", "merge", "--base", m, "--adapter", r / "notes", "--out", m / "merged"], r"lies inside the input"),
    ("merge-out-contains-adapter", lambda r, m: ["model", "merge", "--base", m, "--adapter", r / "notes", "--out", r], r"contains the input"),
    ("merge-into-users-folder", lambda r, m: ["model", "merge", "--base", m, "--adapter", r / "a", "--out", r / "notes"], r"folder is not empty"),
    ("merge-no-adapter-config", lambda r, m: ["model", "merge", "--base", m, "--adapter", r / "notes", "--out", r / "new"], r"no adapter_config\.json"),
]


@pytest.mark.parametrize("name, argv, pattern", OUT_CASES, ids=[o[0] for o in OUT_CASES])
def test_model_outputs_are_never_wiped(ws, tiny_model, name, argv, pattern):
    model = ws / "model"
    shutil.copytree(tiny_model, model)
    check_failure(run_case(ws, argv(ws, model)), 2, pattern)


def test_build_overwrite_replaces_only_when_asked(tmp_path):
    out = tmp_path / "base"
    out.mkdir()
    (out / "old.txt").write_text("old")
    outcome = run_case(tmp_path, ["model", "build", "--preset", "tiny", "--out", out, "--overwrite"])
    assert outcome.code == 0, outcome.err
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["base"]  # no temporary folder left


def test_device_checks():
    import torch

    from scitune.model.files import resolve_device

    if not torch.cuda.is_available():
        with pytest.raises(ScituneError, match=r"--device cuda: no CUDA GPU is available here"):
            resolve_device("cuda")
    with pytest.raises(ScituneError, match=r"--device 'gpu9': not a device name"):
        resolve_device("gpu9")
    assert resolve_device("cpu").type == "cpu"
