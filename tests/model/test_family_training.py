"""Both SciTune stages on tiny model families (the families whose processors build without
torchvision here): align trains the connector only and exports a folder plain transformers loads;
instruct starts from align's connector on a fresh base and trains the LM; LoRA merges; packing,
not exact for these families, is refused in one line naming the family."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from scitune.config import ModelConfig, load_recipe
from scitune.errors import ScituneError
from scitune.model import build_model
from scitune.train.run import run_recipe
from tests.train.data import write_dataset, write_recipe

PRESETS = {"tiny-gemma3": ("model.multi_modal_projector.",), "tiny-idefics3": ("model.connector.",)}


def _recipe(tmp_path: Path, preset: str, instruct: dict | None = None, align: dict | None = None) -> Path:
    train, images = write_dataset(tmp_path / "data", n=8, text_only=2)
    path = write_recipe(
        tmp_path / "r.yaml", train, images, tmp_path / "run", model={"preset": preset, "vocab_size": 300},
        align={"epochs": 1, "feature_cache": True, **(align or {})}, instruct=instruct,
    )
    import yaml

    recipe = yaml.safe_load(path.read_text())
    for stage in recipe["stages"]:
        stage["data"]["max_length"] = 160  # Idefics3 tiles a 64 px figure into 5 x 4 image tokens + markers
    path.write_text(yaml.safe_dump(recipe))
    return path


@pytest.mark.parametrize("preset", PRESETS)
def test_align_then_instruct_train_the_right_parts_and_export_plain_folders(tmp_path, preset):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    results = run_recipe(load_recipe(str(_recipe(tmp_path, preset))))
    assert [r.name for r in results] == ["align", "instruct"]
    run = tmp_path / "run"
    fresh = {k: v for k, v in build_model(ModelConfig(preset=preset, vocab_size=300, seed=0))[0].state_dict().items()}
    # loaded by plain transformers (the files hold its saved layout, which renames some keys)
    align = AutoModelForImageTextToText.from_pretrained(run / "align" / "final").state_dict()
    instruct = AutoModelForImageTextToText.from_pretrained(run / "instruct" / "final").state_dict()
    connector = PRESETS[preset]
    changed = {k for k in align if not torch.equal(align[k], fresh[k])}
    assert changed and all(k.startswith(connector) for k in changed)
    # instruct: a fresh base with align's connector, then connector + LM trained
    layer = next(k for k in instruct if ".layers.0." in k and "mlp" in k and k.endswith("weight") and "vision" not in k)
    assert not torch.equal(instruct[layer], align[layer])
    for folder in (run / "align" / "final", run / "instruct" / "final"):
        model = AutoModelForImageTextToText.from_pretrained(folder)
        processor = AutoProcessor.from_pretrained(folder)
        assert model.config.model_type == fresh_type(preset) and processor.tokenizer.chat_template


def fresh_type(preset: str) -> str:
    from scitune.model.family_presets import FAMILY_PRESETS

    return FAMILY_PRESETS[preset]


@pytest.mark.parametrize("preset", PRESETS)
def test_lora_instruct_saves_an_adapter_and_a_merged_model(tmp_path, preset):
    from transformers import AutoModelForImageTextToText

    recipe = _recipe(tmp_path, preset, instruct={"stage": {"name": "instruct", "lora": True}})
    run_recipe(load_recipe(str(recipe)))
    stage = tmp_path / "run" / "instruct"
    assert (stage / "adapter" / "adapter_model.safetensors").is_file()
    merged = AutoModelForImageTextToText.from_pretrained(stage / "final")
    assert not any("lora_" in n for n, _ in merged.named_parameters())


@pytest.mark.parametrize("preset", PRESETS)
def test_packing_is_refused_for_a_family_in_one_line(tmp_path, preset):
    import yaml

    path = _recipe(tmp_path, preset)
    recipe = yaml.safe_load(path.read_text())
    recipe["stages"] = recipe["stages"][:1]
    recipe["stages"][0]["data"]["packing"] = True
    path.write_text(yaml.safe_dump(recipe))
    with pytest.raises(ScituneError, match=rf"^\[align\] data.packing: not exact for the {fresh_type(preset)} family"):
        run_recipe(load_recipe(str(path)))


def test_resume_after_sigkill_is_exact_for_a_family(tmp_path):
    import signal

    import yaml
    from safetensors.torch import load_file

    from scitune.cli import main
    from scitune.train.log import read_metrics
    from tests.train.paused_train import PausedRun

    def recipe(out: str) -> Path:
        path = _recipe(tmp_path / out, "tiny-idefics3", align={"epochs": 3, "feature_cache": False})
        data = yaml.safe_load(path.read_text())
        data["stages"] = data["stages"][:1]
        data["run"]["out"] = str(tmp_path / out / "run")
        data["run"]["save_every"] = 2
        path.write_text(yaml.safe_dump(data))
        return path

    (tmp_path / "ref").mkdir()
    (tmp_path / "kill").mkdir()
    reference, killed = recipe("ref"), recipe("kill")
    assert main(["train", str(reference)]) == 0
    run = PausedRun([sys.executable, "-m", "tests.train.paused_train", "3", str(killed)])
    run.wait_paused()
    assert (tmp_path / "kill" / "run" / "align" / "checkpoints" / "step-0000002").is_dir()
    run.proc.send_signal(signal.SIGKILL)
    run.finish()
    assert not (tmp_path / "kill" / "run" / "align" / "final").exists()
    assert main(["train", str(killed), "--resume"]) == 0
    ref = load_file(str(tmp_path / "ref" / "run" / "align" / "final" / "model.safetensors"))
    kill = load_file(str(tmp_path / "kill" / "run" / "align" / "final" / "model.safetensors"))
    assert ref.keys() == kill.keys() and all(torch.equal(ref[k], kill[k]) for k in ref)
    losses = [[r["loss"] for r in read_metrics(tmp_path / d / "run" / "align" / "metrics.jsonl")] for d in ("ref", "kill")]
    assert losses[0] == losses[1] and len(losses[0]) == 3 * 3  # 10 samples / 4 per batch x 3 epochs
