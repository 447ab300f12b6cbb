"""Trackers through accelerate: TensorBoard events carry the same numbers as metrics.jsonl, a
resumed stage's events drop the steps after its checkpoint, and a tracker that is not installed
is refused by name before anything is written."""

import importlib.util
from types import SimpleNamespace

import pytest

from scitune.cli import main
from scitune.errors import ScituneError
from scitune.train.log import read_metrics
from scitune.train.trackers import tracker_names

from .data import write_dataset, write_recipe


def _scalars(folder, tag: str) -> dict[int, float]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return {event.step: event.value for event in events.Scalars(tag)}


def test_tensorboard_events_match_the_metrics_log_across_a_resume(tmp_path):
    dataset = write_dataset(tmp_path / "data", n=8, text_only=0)  # 2 steps an epoch: 8 steps
    recipe = write_recipe(tmp_path / "r.yaml", *dataset, tmp_path / "run", align={"epochs": 4}, with_instruct=False)

    class Stop(Exception):
        pass

    def stop_at_5(runner, step):  # a crash after step 5 (the checkpoint is at step 4)
        if step == 5:
            raise Stop

    from scitune.cli import build_parser
    from scitune.commands import train

    args = build_parser().parse_args(["train", str(recipe), "run.tensorboard=true"])
    with pytest.raises(Stop):
        train.run(args, hooks=[stop_at_5])
    stage = tmp_path / "run" / "align"
    assert max(_scalars(stage, "loss")) == 5

    assert main(["train", str(recipe), "run.tensorboard=true", "--resume"]) == 0
    logged = {record["step"]: record for record in read_metrics(stage / "metrics.jsonl")}
    assert sorted(logged) == list(range(1, 9))
    for tag in ("loss", "lr", "grad_norm"):
        scalars = _scalars(stage, tag)
        # steps 1-4 from the first run, 5-8 redone by the resumed one; none twice
        assert sorted(scalars) == sorted(logged)
        assert all(scalars[step] == pytest.approx(logged[step][tag], rel=1e-6) for step in logged)


def test_a_tracker_that_is_not_installed_is_refused_by_name(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(ScituneError, match=r"^run.trackers: wandb needs W&B: pip install wandb$"):
        tracker_names(SimpleNamespace(tensorboard=False, trackers=["tensorboard", "wandb"]))
    assert tracker_names(SimpleNamespace(tensorboard=True, trackers=[])) == ["tensorboard"]
    assert tracker_names(SimpleNamespace(tensorboard=True, trackers=["tensorboard"])) == ["tensorboard"]
