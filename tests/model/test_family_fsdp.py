"""FSDP2 on the model families.

- The wrapping policy (scitune.train.distributed.language_model_layers): for every family, the
  units are exactly its language model's decoder layers (found where the families table says the
  language model lives), never a vision block: the tower, connector and embeddings stay in the
  root unit, which every process gathers on every forward, so a process whose micro-batch has no
  image still joins the same collectives.
- Two gloo processes shard tiny-gemma3's decoder layers and train its instruct stage, are killed
  with SIGKILL after a checkpoint and resumed; the exported weights equal the one-process run's
  at the same global batch, and the folder loads with plain transformers.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import pytest
import torch

from scitune.cli import main
from scitune.model.families import supported_model_types
from scitune.model.family_presets import FAMILY_PRESETS
from scitune.train.state import list_checkpoints
from tests.train.data import write_dataset
from tests.train.paused_train import PausedRun
from tests.train.test_distributed import free_port, sharded_recipe

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}

# Written out here: each family's decoder layer class and where its language model's layers are.
DECODER_LAYERS = {
    "tiny": ("LlamaDecoderLayer", "model.language_model.layers."),
    "tiny-llava-onevision": ("Qwen2DecoderLayer", "model.language_model.layers."),
    "tiny-idefics3": ("LlamaDecoderLayer", "model.text_model.layers."),
    "tiny-smolvlm": ("LlamaDecoderLayer", "model.text_model.layers."),
    "tiny-qwen2-vl": ("Qwen2VLDecoderLayer", "model.language_model.layers."),
    "tiny-qwen2.5-vl": ("Qwen2_5_VLDecoderLayer", "model.language_model.layers."),
    "tiny-qwen3-vl": ("Qwen3VLTextDecoderLayer", "model.language_model.layers."),
    "tiny-gemma3": ("Gemma3DecoderLayer", "model.language_model.layers."),
    "tiny-llava-next": ("LlamaDecoderLayer", "model.language_model.layers."),
    "tiny-internvl": ("Qwen2DecoderLayer", "model.language_model.layers."),
}
PRESETS = ["tiny", *(p for p, t in FAMILY_PRESETS.items() if t in supported_model_types())]


@pytest.mark.parametrize("preset", PRESETS)
def test_the_fsdp2_units_are_exactly_the_language_models_decoder_layers(preset):
    from scitune.config import LoraConfig, ModelConfig, StageConfig
    from scitune.model import apply_stage, build_model
    from scitune.train.distributed import language_model_layers
    from scitune.train.features import TrainingModule

    model = build_model(ModelConfig(preset=preset, vocab_size=300))[0]
    layer_class, prefix = DECODER_LAYERS[preset]
    units = language_model_layers(model)
    names = {id(m): n for n, m in model.named_modules()}
    unit_names = [names[id(u)] for u in units]
    expected = [n for n, m in model.named_modules() if type(m).__name__ == layer_class]
    assert unit_names == expected and len(units) == model.config.get_text_config().num_hidden_layers
    assert all(n.startswith(prefix) for n in unit_names)
    # as the training loop applies it: to the training wrapper of the stage's (LoRA) model
    peft_model = apply_stage(model, StageConfig(name="instruct", lora=True, lora_config=LoraConfig(r=4, alpha=8)))
    assert [id(u) for u in language_model_layers(TrainingModule(peft_model))] == [id(u) for u in units]


def _recipe(path: Path, train: Path, images: Path, out: Path, batch: int, **run) -> Path:
    # 8 samples, global batch 4, 2 epochs: 4 steps, a checkpoint at step 2
    return sharded_recipe(path, train, images, out, batch, preset="tiny-gemma3", vocab_size=300, max_length=96,
                          epochs=2, save_every=2, keep_last=1, **run)


def _launch_command(recipe: Path, *extra: str, pause_at: int | None = None) -> list[str]:
    target = ["-m", "tests.train.paused_train", str(pause_at)] if pause_at else ["-m", "scitune", "train"]
    return [
        str(Path(sys.executable).with_name("accelerate")), "launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--main_process_port", str(free_port()), "--mixed_precision", "no",
        "--dynamo_backend", "no", *target, str(recipe), *extra,
    ]


def _weights(run: Path) -> dict[str, torch.Tensor]:
    from transformers import AutoModelForImageTextToText

    return AutoModelForImageTextToText.from_pretrained(run / "instruct" / "final").state_dict()


def test_fsdp2_on_two_processes_killed_and_resumed_matches_one_process_for_gemma3(tmp_path):
    import subprocess

    import psutil
    from safetensors.torch import load_file

    train, images = write_dataset(tmp_path / "data", n=8, text_only=0)
    assert main(["train", str(_recipe(tmp_path / "one.yaml", train, images, tmp_path / "one", batch=4))]) == 0
    two = _recipe(tmp_path / "two.yaml", train, images, tmp_path / "two", batch=2, sharding="fsdp2")
    # paused at step 3 on both processes: step 2's checkpoint is complete, the run is not
    paused = PausedRun(_launch_command(two, pause_at=3), env=ENV)
    paused.wait_paused()
    for child in psutil.Process(paused.proc.pid).children(recursive=True):  # the workers, by id
        child.send_signal(signal.SIGKILL)
    paused.proc.send_signal(signal.SIGKILL)
    paused.finish(timeout=60)
    checkpoints = tmp_path / "two" / "instruct" / "checkpoints"
    assert [c.name for c in list_checkpoints(checkpoints)] == ["step-0000002"]
    assert not (tmp_path / "two" / "instruct" / "final").exists()
    latest = list_checkpoints(checkpoints)[-1]
    state = json.loads((latest / "state.json").read_text())
    assert state["world_size"] == 2 and state["layout"] == "sharded"
    # each process wrote its own shard of a decoder layer's optimizer state
    shards = [load_file(str(f)) for f in sorted((latest / "optimizer").glob("*.safetensors"))]
    key = next(k for k in shards[0] if "language_model.layers.0.mlp.up_proj.weight" in k and k.endswith("exp_avg"))
    assert len(shards) == 2 and shards[0][key].shape[0] < 128  # intermediate_size 128 rows split in 2

    proc = subprocess.run(_launch_command(two, "--resume"), cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "resumed from" in proc.stdout + proc.stderr
    one, sharded = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    assert one.keys() == sharded.keys()
    from scitune.config import ModelConfig
    from scitune.model import build_model

    fresh = build_model(ModelConfig(preset="tiny-gemma3", vocab_size=300))[0].state_dict()
    layers = [k for k in one if "language_model.layers." in k]
    assert layers and any(not torch.equal(one[k], fresh[k]) for k in layers)  # the sharded layers trained
    assert max((one[k] - sharded[k]).abs().max().item() for k in one) <= 1e-5
