"""Training settings are checked against the model and against what a finished stage was trained
with: a `max_length` over the model's positions is refused before any step, and `--resume` on a
finished stage with changed settings is refused by name (as for an unfinished one)."""

from __future__ import annotations

import json

import pytest

from ..train.data import write_dataset, write_recipe
from .harness import check_failure, run_case, run_cli


def test_max_length_over_the_model_positions_is_refused(ws):
    # the tiny preset's language model has 1024 positions
    outcome = run_case(ws, ["train", ws / "recipe.yaml", "align.data.max_length=2048"])
    check_failure(outcome, 2, r"align\.data\.max_length: 2048 is over the model's 1024 positions "
                              r"\(text_config\.max_position_embeddings\)")
    assert not (ws / "run" / "align" / "done.json").exists()


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    root = tmp_path_factory.mktemp("finished")
    train, images = write_dataset(root / "data", n=4, text_only=0)
    recipe = write_recipe(root / "r.yaml", train, images, root / "run", with_instruct=False,
                          align={"epochs": 1, "batch_size": 4})
    code, out, err = run_cli(["train", recipe])
    assert code == 0, err
    assert "settings" in json.loads((root / "run" / "align" / "done.json").read_text())
    return root, recipe


@pytest.mark.parametrize(
    "overrides, named",
    [(["align.max_steps=7", "align.lr=0.5"], r"lr \(0\.01 -> 0\.5\), max_steps \(None -> 7\)"),
     (["align.data.max_length=80"], r"data\.max_length \(64 -> 80\)")],
    ids=["max_steps-and-lr", "max_length"],
)
def test_resume_of_a_finished_stage_with_changed_settings_is_refused_by_name(finished, overrides, named):
    root, recipe = finished
    outcome = run_case(root, ["train", recipe, *overrides, "--resume"])
    check_failure(outcome, 2, r"\[align\] cannot resume: the stage finished .*done\.json\) with other settings: " + named)


def test_resume_of_a_finished_stage_with_changed_data_is_refused(finished, tmp_path):
    root, recipe = finished
    samples = json.loads((root / "data" / "train.json").read_text())
    changed = tmp_path / "train.json"
    samples[0]["conversations"][1]["value"] = "Something else."
    changed.write_text(json.dumps(samples))
    outcome = run_case(root, ["train", recipe, f"align.data.train={changed}", "--resume"])
    check_failure(outcome, 2, r"with other settings: data\.train .*data_sha256 \(")


def test_resume_of_a_finished_stage_unchanged_skips_it(finished):
    root, recipe = finished
    code, out, err = run_cli(["train", recipe, "--resume"])
    assert code == 0 and "already finished" in out, err
