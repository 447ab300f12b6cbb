"""Training can be told to refuse data that overlaps evaluation sets (`data.fail_on_overlap_with`)."""

import json
import shutil

from scitune.config import load_recipe
from scitune.train.rundir import check_inputs

from ..reliability.harness import check_failure, run_case
from .data import draw, write_dataset, write_recipe


def test_training_refuses_overlap_with_an_eval_set(tmp_path):
    train, images = write_dataset(tmp_path / "data", n=6)
    evals = tmp_path / "eval"
    (evals / "images").mkdir(parents=True)
    shutil.copy(images / "fig3.png", evals / "images" / "leaked.png")  # a training figure in the test set
    record = {"id": "t1", "image": "leaked.png", "conversations": [
        {"from": "human", "value": "<image>\nWhat is shown?"}, {"from": "gpt", "value": "A chart."}]}
    (evals / "test.json").write_text(json.dumps([record]))
    spec = f"{evals / 'test.json'}={evals / 'images'}"
    recipe = write_recipe(tmp_path / "r.yaml", train, images, tmp_path / "run", with_instruct=False)
    outcome = run_case(tmp_path, ["train", str(recipe), f"align.data.fail_on_overlap_with=[{spec}]"])
    check_failure(outcome, 2, r"align\.data\.train .*train\.json: 1 overlap\(s\) with the evaluation sets .*fig3")
    assert not (tmp_path / "run").exists()


def test_clean_eval_set_passes(tmp_path):
    train, images = write_dataset(tmp_path / "data", n=6)
    evals = tmp_path / "eval"
    (evals / "images").mkdir(parents=True)
    draw(1, 97).rotate(90).save(evals / "images" / "other.png")
    record = {"id": "t1", "image": "other.png", "conversations": [
        {"from": "human", "value": "<image>\nWhat is shown?"}, {"from": "gpt", "value": "Something unrelated."}]}
    (evals / "test.json").write_text(json.dumps([record]))
    recipe = write_recipe(tmp_path / "r.yaml", train, images, tmp_path / "run", with_instruct=False)
    loaded = load_recipe(str(recipe), [f"align.data.fail_on_overlap_with=[{evals / 'test.json'}={evals / 'images'}]"])
    check_inputs(loaded, ["align"])  # no overlap: nothing raised
