"""Both SciTune stages on every tiny model family (scitune.model.family_presets): align trains the
connector only, instruct starts from align's connector on a fresh base and trains the connector
and the language model (the tower stays as built); both export folders that plain transformers
loads. LoRA instruct saves an adapter and a merged model that computes what base + adapter compute.
A run killed by SIGKILL resumes to the same weights and losses (a few families). Packing per
family is tested with scitune.prompting.packing.

Each family's full run and LoRA run are made once per module (fixtures) and shared by the tests."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import torch
import yaml

from scitune.config import ModelConfig, load_recipe
from scitune.model import build_model
from scitune.model.families import supported_model_types
from scitune.model.family_presets import FAMILY_PRESETS
from scitune.train.run import run_recipe
from tests.model.helpers import figure
from tests.model.test_families import CONNECTOR, VISION
from tests.train.data import write_dataset, write_recipe

PRESETS = [p for p, t in FAMILY_PRESETS.items() if t in supported_model_types()]
PROCESSOR = {
    "llava_onevision": "LlavaOnevisionProcessor", "idefics3": "Idefics3Processor", "smolvlm": "SmolVLMProcessor",
    "qwen2_vl": "Qwen2VLProcessor", "qwen2_5_vl": "Qwen2_5_VLProcessor", "qwen3_vl": "Qwen3VLProcessor",
    "gemma3": "Gemma3Processor", "llava_next": "LlavaNextProcessor", "internvl": "InternVLProcessor",
}
# resume is family-independent code, run once per kind of model code (about 5 s each): SmolVLM
# (Idefics3's model code with its tiles), Qwen2.5-VL (M-RoPE's per-token inputs and variable image
# grids), LLaVA-OneVision and LLaVA-NeXT (anyres grids, image_newline), InternVL, Gemma 3
RESUMED = [p for p in ("tiny-smolvlm", "tiny-qwen2.5-vl", "tiny-llava-onevision", "tiny-llava-next", "tiny-internvl", "tiny-gemma3") if p in PRESETS]


def _recipe(root: Path, preset: str, instruct: dict | None = None) -> Path:
    """4 figures (32 px: one tile for the tiling families, whose tiling the render tests cover) and
    2 text-only samples in batches of 4; align runs 2 epochs (4 steps, a checkpoint at step 2)
    where a resume test continues it, else 1."""
    from PIL import Image

    train, images = write_dataset(root / "data", n=4, text_only=2)
    for figure_file in sorted(images.glob("*.png")):
        Image.open(figure_file).resize((32, 32)).save(figure_file)
    epochs = 2 if preset in RESUMED else 1
    path = write_recipe(
        root / "r.yaml", train, images, root / "run", model={"preset": preset, "vocab_size": 300},
        align={"epochs": epochs}, instruct=instruct,
    )
    recipe = yaml.safe_load(path.read_text())
    for stage in recipe["stages"]:
        # room for a figure's image tokens (LLaVA-NeXT's base image and tile with row newlines)
        stage["data"]["max_length"] = 192
    path.write_text(yaml.safe_dump(recipe))
    return path


def _model_type(preset: str) -> str:
    return FAMILY_PRESETS[preset]


def _is(name: str, prefixes) -> bool:
    return any(name.startswith(p) for p in prefixes)


def _load(folder: Path):
    """A folder loaded the way a user without scitune would (the processor in its images-only
    form where torchvision is missing: scitune.model.processors)."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from scitune.model.processors import has_torchvision, load_processor

    model = AutoModelForImageTextToText.from_pretrained(folder)
    processor = AutoProcessor.from_pretrained(folder) if has_torchvision() else load_processor(folder)
    return model.eval(), processor


@pytest.fixture(scope="module")
def full_runs(tmp_path_factory):
    """preset -> run folder of align then full instruct, made once per module."""
    runs: dict[str, Path] = {}

    def get(preset: str) -> Path:
        if preset not in runs:
            root = tmp_path_factory.mktemp(preset)
            results = run_recipe(load_recipe(str(_recipe(root, preset))))
            assert [r.name for r in results] == ["align", "instruct"]
            runs[preset] = root / "run"
        return runs[preset]

    return get


@pytest.fixture(scope="module", params=PRESETS)
def full_run(request, full_runs) -> tuple[str, Path]:
    """(preset, run folder) of align then full instruct."""
    return request.param, full_runs(request.param)


@pytest.fixture(scope="module")
def fresh(full_run) -> dict[str, torch.Tensor]:
    """The preset's weights as built (the recipe's seed), before any stage."""
    preset, _ = full_run
    return build_model(ModelConfig(preset=preset, vocab_size=300, seed=0))[0].state_dict()


def test_align_trains_exactly_the_connector(full_run, fresh):
    preset, run = full_run
    align, _ = _load(run / "align" / "final")
    state = align.state_dict()
    assert state.keys() == fresh.keys()
    changed = {k for k in state if not torch.equal(state[k], fresh[k])}
    assert changed and all(_is(k, CONNECTOR[_model_type(preset)]) for k in changed), sorted(changed)[:5]


def test_instruct_trains_the_connector_and_the_language_model_on_a_fresh_base(full_run, fresh):
    preset, run = full_run
    model_type = _model_type(preset)
    state = _load(run / "instruct" / "final")[0].state_dict()
    changed = {k for k in state if not torch.equal(state[k], fresh[k])}
    tower = {k for k in state if k.startswith(VISION[model_type]) and not _is(k, CONNECTOR[model_type])}
    assert tower and not changed & tower  # the tower as built
    assert any(_is(k, CONNECTOR[model_type]) for k in changed)
    lm_layers = {k for k in changed if ".layers.0." in k and not k.startswith(VISION[model_type])}
    assert any(".mlp." in k for k in lm_layers) and any("_proj" in k and ".self_attn." in k for k in lm_layers)


def test_exported_folders_load_with_plain_transformers(full_run):
    preset, run = full_run
    for stage in ("align", "instruct"):
        model, processor = _load(run / stage / "final")
        assert model.config.model_type == _model_type(preset)
        assert type(processor).__name__ == PROCESSOR[_model_type(preset)]
        assert "ASSISTANT:" in processor.tokenizer.chat_template


@pytest.fixture(scope="module")
def lora_run(full_run, tmp_path_factory) -> tuple[str, Path]:
    """(preset, run folder) of a LoRA instruct stage from the full run's align projector: a copy
    of the full run without its instruct stage, then `--stage instruct --overwrite` with LoRA."""
    preset, full = full_run
    root = tmp_path_factory.mktemp(f"{preset}-lora")
    recipe = _recipe(root, preset, instruct={"stage": {"name": "instruct", "lora": True}, "lr": 1e-2})
    shutil.copytree(full, root / "run", ignore=lambda folder, names: ["instruct"] if Path(folder) == full else [])
    results = run_recipe(load_recipe(str(recipe)), stages=["instruct"], overwrite=True)
    assert [r.name for r in results] == ["instruct"]
    return preset, root / "run"


def _prompt(processor) -> dict:
    msgs = [{"role": "user", "content": "<image>\nWhat type of figure is this?"}]
    text = processor.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    return dict(processor(text=[text], images=[figure(2, (60, 40))], return_tensors="pt"))


def test_lora_instruct_saves_an_adapter_and_a_merged_model_equal_to_base_plus_adapter(lora_run, fresh):
    from scitune.model.checkpoint import load_lora

    preset, run = lora_run
    stage = run / "instruct"
    assert (stage / "adapter" / "adapter_model.safetensors").is_file()
    merged, processor = _load(stage / "final")
    assert merged.config.model_type == _model_type(preset)
    assert not any("lora_" in n for n, _ in merged.named_parameters())
    base = _load(stage / "base")[0]
    # the adapter's base (the stage's starting model): a fresh base with align's connector
    base_state, align_state = base.state_dict(), _load(run / "align" / "final")[0].state_dict()
    connector = {k for k in base_state if _is(k, CONNECTOR[_model_type(preset)])}
    assert connector and all(torch.equal(base_state[k], align_state[k]) for k in connector)
    assert not all(torch.equal(base_state[k], fresh[k]) for k in connector)
    assert all(torch.equal(base_state[k], fresh[k]) for k in base_state.keys() - connector)
    adapted = load_lora(_load(stage / "base")[0], stage / "adapter").eval()  # unmerged: x W + x A B apart
    inputs = _prompt(processor)
    with torch.no_grad():
        base_logits, adapted_logits, merged_logits = (m(**inputs).logits for m in (base, adapted, merged))
    assert not torch.allclose(base_logits, merged_logits, atol=1e-4)  # the adapter changed something
    torch.testing.assert_close(merged_logits, adapted_logits, atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        tokens = [m.generate(**inputs, max_new_tokens=6, do_sample=False) for m in (merged, adapted)]
    assert torch.equal(tokens[0], tokens[1])


@pytest.mark.parametrize("preset", RESUMED)
def test_resume_after_sigkill_is_exact_for_a_family(tmp_path, preset, full_runs):
    """The same recipe as the module's full run, killed at align's step 3 (its checkpoint is
    step 2's), resumed: align ends with the uninterrupted run's weights and losses."""
    import signal

    from safetensors.torch import load_file

    from scitune.cli import main
    from scitune.train.log import read_metrics
    from tests.train.paused_train import PausedRun

    reference = full_runs(preset)
    killed = _recipe(tmp_path, preset)
    run = PausedRun([sys.executable, "-m", "tests.train.paused_train", "3", str(killed)])
    run.wait_paused()
    assert (tmp_path / "run" / "align" / "checkpoints" / "step-0000002").is_dir()
    run.proc.send_signal(signal.SIGKILL)
    run.finish()
    assert not (tmp_path / "run" / "align" / "final").exists()
    assert main(["train", str(killed), "--resume", "--stage", "align"]) == 0
    ref = load_file(str(reference / "align" / "final" / "model.safetensors"))
    kill = load_file(str(tmp_path / "run" / "align" / "final" / "model.safetensors"))
    assert ref.keys() == kill.keys() and all(torch.equal(ref[k], kill[k]) for k in ref)
    losses = [[r["loss"] for r in read_metrics(d / "align" / "metrics.jsonl")] for d in (reference, tmp_path / "run")]
    assert losses[0] == losses[1] and len(losses[0]) == 2 * 2  # 6 samples in 2 batches x 2 epochs
