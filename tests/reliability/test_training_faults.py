"""Training faults at chosen moments (a step hook sends the signal): the checkpoint written on
SIGINT or SIGTERM holds one consistent step, resuming from it ends exactly where an
uninterrupted run ends; a corrupt, incomplete or edited latest checkpoint is skipped for the
previous good one; a resume after the recipe or data changed is refused by name."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from scitune.commands import train
from scitune.cli import build_parser

from ..train.data import write_dataset, write_recipe
from .harness import check_failure, run_case

STEPS = 10  # 20 samples / batch 4 x 2 epochs


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("faults") / "data", n=16, text_only=4)


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data):
    """The uninterrupted run's final weights and losses."""
    root = tmp_path_factory.mktemp("reference")
    recipe = write_recipe(root / "r.yaml", *data, root / "run", with_instruct=False)
    assert _train(recipe) == 0
    return _final(root / "run"), _losses(root / "run")


def _train(recipe: Path, *extra: str, hooks=()) -> int:
    args = build_parser().parse_args(["train", str(recipe), *extra])
    return train.run(args, hooks=hooks)


def _final(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "align" / "final" / "model.safetensors"))


def _losses(run: Path) -> list[float]:
    lines = (run / "align" / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["loss"] for line in lines]


def _signal_at(step_wanted: int, signum: int):
    def hook(runner, step):
        if step == step_wanted:
            os.kill(os.getpid(), signum)

    return hook


def _checkpoints(run: Path) -> list[str]:
    return sorted(p.name for p in (run / "align" / "checkpoints").iterdir())


def _assert_same(run: Path, reference) -> None:
    weights, losses = reference
    final = _final(run)
    assert final.keys() == weights.keys()
    assert all(torch.equal(final[k], weights[k]) for k in weights)
    assert _losses(run) == losses


@pytest.mark.parametrize("signum, at", [(signal.SIGINT, 1), (signal.SIGTERM, 3), (signal.SIGINT, 9)],
                         ids=["SIGINT-after-step-1", "SIGTERM-after-step-3", "SIGINT-after-step-9"])
def test_signal_checkpoints_one_consistent_step_and_resume_is_exact(tmp_path, data, reference, signum, at, capsys):
    recipe = write_recipe(tmp_path / "r.yaml", *data, tmp_path / "run", with_instruct=False)
    assert _train(recipe, "run.save_every=4", hooks=[_signal_at(at, signum)]) == 130
    assert f"interrupted; checkpoint {tmp_path / 'run' / 'align' / 'checkpoints' / f'step-{at:07d}'}" in capsys.readouterr().out
    state = json.loads((tmp_path / "run" / "align" / "checkpoints" / f"step-{at:07d}" / "state.json").read_text())
    assert state["step"] == at
    assert not (tmp_path / "run" / "align" / "final").exists()
    assert _train(recipe, "run.save_every=4", "--resume") == 0
    _assert_same(tmp_path / "run", reference)


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory, data):
    """A run stopped by SIGINT after step 5, with checkpoints at 2, 4 and 5 (made once, copied per test)."""
    root = tmp_path_factory.mktemp("interrupted")
    recipe = write_recipe(root / "r.yaml", *data, root / "run", with_instruct=False)
    assert _train(recipe, "run.keep_last=5", hooks=[_signal_at(5, signal.SIGINT)]) == 130
    assert _checkpoints(root / "run")[-1] == "step-0000005"
    return root


def _interrupted_run(tmp_path, interrupted) -> Path:
    """A copy of the interrupted run in `tmp_path` (the recipe rewritten to point there)."""
    shutil.copytree(interrupted / "run", tmp_path / "run")
    text = (interrupted / "r.yaml").read_text().replace(str(interrupted / "run"), str(tmp_path / "run"))
    (tmp_path / "r.yaml").write_text(text)
    return tmp_path / "r.yaml"


def _damage_truncate(checkpoint: Path) -> None:
    (path,) = (checkpoint / "model").glob("*.safetensors")
    path.write_bytes(path.read_bytes()[:40])


def _damage_header(checkpoint: Path) -> None:  # same size, unreadable header
    (path,) = (checkpoint / "optimizer").glob("*.safetensors")
    data = bytearray(path.read_bytes())
    data[8:24] = b"#" * 16
    path.write_bytes(bytes(data))


def _damage_missing(checkpoint: Path) -> None:
    (checkpoint / "optimizer.json").unlink()


def _damage_step(checkpoint: Path) -> None:
    state = json.loads((checkpoint / "state.json").read_text())
    (checkpoint / "state.json").write_text(json.dumps({**state, "step": state["step"] + 3}))


def _damage_json(checkpoint: Path) -> None:
    (checkpoint / "state.json").write_bytes(b"\xff\xfe not json")


@pytest.mark.parametrize("damage", [_damage_truncate, _damage_header, _damage_missing, _damage_step, _damage_json],
                         ids=["truncated-weights", "damaged-header", "missing-optimizer", "edited-step", "garbage-state"])
def test_bad_latest_checkpoint_falls_back_to_the_previous_good_one(tmp_path, interrupted, reference, damage, caplog):
    recipe = _interrupted_run(tmp_path, interrupted)
    damage(tmp_path / "run" / "align" / "checkpoints" / "step-0000005")
    caplog.set_level(logging.INFO, "scitune")
    assert _train(recipe, "run.keep_last=5", "--resume") == 0
    out = caplog.text
    assert "skipping checkpoint" in out and "step-0000005" in out
    assert "resumed from" in out and "step-0000004" in out
    _assert_same(tmp_path / "run", reference)


@pytest.mark.parametrize(
    "override, named",
    [("align.lr=0.02", "lr"), ("align.batch_size=2", "global_batch"), ("align.warmup_ratio=0.3", "warmup_ratio"),
     ("align.scheduler=linear", "scheduler"), ("align.epochs=3", "total_steps")],
)
def test_resume_refuses_a_changed_recipe_by_name(tmp_path, interrupted, override, named):
    recipe = _interrupted_run(tmp_path, interrupted)
    outcome = run_case(tmp_path, ["train", str(recipe), "run.keep_last=5", override, "--resume"])
    check_failure(outcome, 2, rf"cannot resume from .*step-0000005: changed since the checkpoint: {named} ")


def test_resume_refuses_changed_data(tmp_path, data):
    train_file, images = data
    copy = tmp_path / "train.json"
    copy.write_text(train_file.read_text())
    recipe = write_recipe(tmp_path / "r.yaml", copy, images, tmp_path / "run", with_instruct=False)
    assert _train(recipe, hooks=[_signal_at(3, signal.SIGINT)]) == 130
    samples = json.loads(copy.read_text())
    samples[0]["conversations"][1]["value"] = "Something else entirely."
    copy.write_text(json.dumps(samples))
    outcome = run_case(tmp_path, ["train", str(recipe), "--resume"])
    check_failure(outcome, 2, r"changed since the checkpoint: data_sha256 ")
