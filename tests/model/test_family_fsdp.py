"""FSDP2 on a non-LLaVA family: two gloo processes shard tiny-gemma3's language-model decoder
layers (located through the families table) and train its instruct stage; the exported weights
equal the one-process run's at the same global batch, and the folder loads with plain
transformers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

from scitune.cli import main
from tests.train.data import write_dataset
from tests.train.test_distributed import free_port, sharded_recipe

ROOT = Path(__file__).resolve().parents[2]


def _recipe(path: Path, train: Path, images: Path, out: Path, batch: int, **run) -> Path:
    return sharded_recipe(path, train, images, out, batch, preset="tiny-gemma3", vocab_size=300, max_length=96,
                          epochs=1, save_every=100, keep_last=1, **run)


def _weights(run: Path) -> dict[str, torch.Tensor]:
    from transformers import AutoModelForImageTextToText

    return AutoModelForImageTextToText.from_pretrained(run / "instruct" / "final").state_dict()


def test_fsdp2_on_two_processes_matches_one_process_for_gemma3(tmp_path):
    train, images = write_dataset(tmp_path / "data", n=8, text_only=0)
    assert main(["train", str(_recipe(tmp_path / "one.yaml", train, images, tmp_path / "one", batch=4))]) == 0
    two = _recipe(tmp_path / "two.yaml", train, images, tmp_path / "two", batch=2, sharding="fsdp2")
    command = [
        str(Path(sys.executable).with_name("accelerate")), "launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--main_process_port", str(free_port()), "--mixed_precision", "no",
        "--dynamo_backend", "no", "-m", "scitune", "train", str(two),
    ]
    proc = subprocess.run(command, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    one, sharded = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    assert one.keys() == sharded.keys()
    from scitune.config import ModelConfig
    from scitune.model import build_model

    fresh = build_model(ModelConfig(preset="tiny-gemma3", vocab_size=300))[0].state_dict()
    layers = [k for k in one if "language_model.layers." in k]
    assert layers and any(not torch.equal(one[k], fresh[k]) for k in layers)  # the sharded layers trained
    assert max((one[k] - sharded[k]).abs().max().item() for k in one) <= 1e-5
