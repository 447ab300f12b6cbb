"""Two gloo processes on the CPU: FSDP2 (torch's fully_shard, applied by scitune) and DDP.

Each trains the instruct stage (projector + the whole LLM), is killed with SIGKILL after a
checkpoint and resumed; the resumed run's exported weights equal the uninterrupted run's
(FSDP2) and the single-process run's at the same global batch, and the exported folder loads
with plain transformers.
"""

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from scitune.train.state import checkpoint_problem, list_checkpoints

from .data import write_dataset
from .paused_train import PausedRun

ROOT = Path(__file__).resolve().parents[2]


def sharded_recipe(path: Path, train: Path, images: Path, out: Path, batch: int, *, preset: str = "tiny",
                   vocab_size: int = 400, max_length: int = 64, epochs: int = 2, save_every: int = 2,
                   keep_last: int = 2, **run) -> Path:
    """A one-stage instruct recipe for the sharded tests (tests/model's family test uses it too)."""
    # lr 1e-4: Adam turns the summation-order rounding of the gradient reduction into updates
    # of up to about lr x 1e-2 on near-zero gradients (see test_train's DDP test)
    stage = {"stage": {"name": "instruct"}, "data": {"train": str(train), "images": str(images), "max_length": max_length},
             "epochs": epochs, "batch_size": batch, "lr": 1e-4, "warmup_ratio": 0.1}
    recipe = {"model": {"preset": preset, "vocab_size": vocab_size}, "stages": [stage],
              "run": {"out": str(out), "seed": 0, "save_every": save_every, "keep_last": keep_last, "tensorboard": False,
                      **run}}
    path.write_text(yaml.safe_dump(recipe))
    return path



def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _command(recipe: Path, *extra: str, pause_at: int | None = None) -> list[str]:
    """Two processes through `accelerate launch --multi_gpu` (gloo on a machine without CUDA);
    with `pause_at`, paused at that step (tests.train.paused_train)."""
    target = ["-m", "tests.train.paused_train", str(pause_at)] if pause_at else ["-m", "scitune", "train"]
    command = [
        str(Path(sys.executable).with_name("accelerate")), "launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--main_process_port", str(free_port()), "--mixed_precision", "no",
        "--dynamo_backend", "no", *target, str(recipe), *extra,
    ]
    return command


_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _launch(recipe: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(_command(recipe, *extra), cwd=ROOT, env=_ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(proc: subprocess.Popen) -> None:
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-3000:]


def _kill_after_checkpoint(recipe: Path, checkpoints: Path) -> None:
    # paused at step 5 on both processes: the checkpoint of step 4 is complete, the run is not
    run = PausedRun(_command(recipe, pause_at=5), env=_ENV)
    run.wait_paused()
    # the launcher's workers run in sessions of their own: kill each of them, by id
    import psutil

    for child in psutil.Process(run.proc.pid).children(recursive=True):
        child.send_signal(signal.SIGKILL)
    run.proc.send_signal(signal.SIGKILL)
    run.finish(timeout=60)
    assert list_checkpoints(checkpoints), "killed before any checkpoint"
    assert not (checkpoints.parent / "final").exists(), "the run finished before the kill"


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "instruct" / "final" / "model.safetensors"))


def _worst(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    """The single-process run at global batch 4."""
    from scitune.cli import main

    root = tmp_path_factory.mktemp("single")
    train, images = write_dataset(root / "data", n=16, text_only=4)
    assert main(["train", str(sharded_recipe(root / "one.yaml", train, images, root / "one", batch=4))]) == 0
    return root, train, images


@pytest.mark.parametrize("sharding", ["fsdp2", "auto"])  # auto under a --multi_gpu launch: DDP
def test_two_processes_killed_and_resumed(single, tmp_path, sharding):
    root, train, images = single
    killed = sharded_recipe(tmp_path / "kill.yaml", train, images, tmp_path / "kill", batch=2, sharding=sharding)
    checkpoints = tmp_path / "kill" / "instruct" / "checkpoints"
    _kill_after_checkpoint(killed, checkpoints)
    latest = list_checkpoints(checkpoints)[-1]
    assert checkpoint_problem(latest) is None
    state = json.loads((latest / "state.json").read_text())
    assert state["world_size"] == 2 and state["layout"] == "sharded"
    shards = sorted(p.name for p in (latest / "optimizer").glob("*.safetensors"))
    if sharding == "fsdp2":
        # each process wrote its own shard of the optimizer state; neither holds it whole
        assert len(shards) == 2
        sizes = [len(load_file(str(latest / "optimizer" / s))) for s in shards]
        first = load_file(str(latest / "optimizer" / shards[0]))
        key = next(k for k in first if k.endswith("embed_tokens.weight.exp_avg"))
        assert first[key].shape[0] < 400 and all(sizes)  # vocab 400 rows split across 2 processes
    _finish(_launch(killed, "--resume"))

    resumed = _weights(tmp_path / "kill")
    assert _worst(resumed, _weights(root / "one")) <= 1e-5
    if sharding == "fsdp2":
        whole = sharded_recipe(tmp_path / "whole.yaml", train, images, tmp_path / "whole", batch=2, sharding=sharding)
        _finish(_launch(whole))
        assert _worst(resumed, _weights(tmp_path / "whole")) <= 1e-6

    # the exported folder is a plain transformers model
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    final = tmp_path / "kill" / "instruct" / "final"
    model = LlavaForConditionalGeneration.from_pretrained(final)
    AutoProcessor.from_pretrained(final)
    loaded = {k: v for k, v in model.state_dict().items()}
    key = "model.language_model.layers.0.mlp.up_proj.weight"
    saved_key = next(k for k in resumed if k.endswith("layers.0.mlp.up_proj.weight"))
    assert torch.equal(loaded[key], resumed[saved_key])


def test_a_sharded_checkpoint_resumes_in_one_process(single, tmp_path):
    """The two-process FSDP2 checkpoint is read into one process's whole tensors (DCP reshards)."""
    from scitune.cli import main

    root, train, images = single
    two = sharded_recipe(tmp_path / "two.yaml", train, images, tmp_path / "run", batch=2, sharding="fsdp2")
    _kill_after_checkpoint(two, tmp_path / "run" / "instruct" / "checkpoints")
    one = sharded_recipe(tmp_path / "one.yaml", train, images, tmp_path / "run", batch=4)
    assert main(["train", str(one), "--resume"]) == 0
    assert _worst(_weights(tmp_path / "run"), _weights(root / "one")) <= 1e-5
