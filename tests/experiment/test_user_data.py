"""The ablation on the user's own stage-1 and stage-2 data (`--stage1`, `--stage2`): a dataset the
test writes itself, run through the command; bad input as one line before any folder is made;
every model preset accepted."""

import json

import pytest
import yaml

from scitune.cli import main
from scitune.errors import ScituneError
from scitune.experiment.grid import Plan
from scitune.experiment.sources import UserData, read_user_data
from scitune.model.presets import PRESETS
from tests.experiment.test_grid import SIZE
from tests.experiment.userdata import write_user_data


def _args(files, *extra):
    return ["--stage1", str(files["stage1"]), "--stage2", str(files["stage2"]), "--stage2-test", str(files["test"]), *extra]


@pytest.mark.slow
def test_own_data_grid_through_the_command(tmp_path, monkeypatch, capsys):
    """Stage 1 on the user's conversations, stage 2 on a subset of theirs, scored on their answer
    key, for the tiny preset and a model family; a rerun runs nothing."""
    from scitune.experiment import grid

    files = write_user_data(tmp_path / "mine", train=24, test=12)
    monkeypatch.setitem(grid.MODES, "quick", {"size": SIZE, "seeds": (0,), "fractions": (0.5,)})
    root = tmp_path / "ablation"
    command = ["--quiet", "experiment", "ablation", "--quick", "--out", str(root), "--resamples", "50",
               "--presets", "tiny,tiny-qwen2.5-vl", *_args(files)]
    assert main(command) == 0
    printed = capsys.readouterr().out

    test_ids = {s["id"] for s in json.loads(files["test"].read_text())}
    stage1_ids = {s["id"] for s in json.loads(files["stage1"].read_text())}
    stage2_ids = {s["id"] for s in json.loads(files["stage2"].read_text())}
    subset_ids = {s["id"] for s in json.loads((root / "data" / "instruct-0.5.json").read_text())}
    assert subset_ids < stage2_ids and len(subset_ids) == len(stage2_ids) // 2
    plan = Plan(presets=("tiny", "tiny-qwen2.5-vl"), seeds=(0,), fractions=(0.5,), size=SIZE)
    for cell in plan.cells():
        folder = cell.folder(root)
        result = json.loads((folder / "result.json").read_text())
        assert set(result["outcomes"]["scienceqa"]) == test_ids  # scored on the user's answer key
        assert result["outcomes"]["figure_type"] == {}
        run = yaml.safe_load((folder / "run" / "config.yaml").read_text())
        stages = {s["stage"]["name"]: s for s in run["stages"]}
        assert set(stages) == ({"align", "instruct"} if cell.with_align else {"instruct"})
        assert stages["instruct"]["data"]["images"] == str(tmp_path / "mine")
        assert stages["instruct"]["data"]["train"] == str(root / "data" / "instruct-0.5.json")
        if cell.with_align:
            assert {s["id"] for s in json.loads((root / "data" / "align.json").read_text())} == stage1_ids
            assert (folder / "run" / "align" / "done.json").is_file()
    summary = json.loads((root / "summary.json").read_text())
    assert {r["metric"] for r in summary["rows"]} == {"scienceqa", "scienceqa_img"}
    assert {r["preset"] for r in summary["rows"]} == {"tiny", "tiny-qwen2.5-vl"}
    assert all(r["items"] == len(test_ids) for r in summary["rows"] if r["metric"] == "scienceqa")
    assert summary["verdicts"] and all(v in printed for v in summary["verdicts"])

    assert main(command) == 0
    assert "4 cells: 4 done, 0 to run" in capsys.readouterr().out
    assert main([*command, "--report-only"]) == 0
    assert json.loads((root / "summary.json").read_text())["rows"] == summary["rows"]
    other = write_user_data(tmp_path / "theirs", train=24, test=12, seed=1)
    assert main([*command[:-6], *_args(other), "--report-only"]) != 0
    assert "was run with other settings" in capsys.readouterr().err


def _bad_record(files):
    samples = json.loads(files["stage1"].read_text())
    samples[3]["image"] = "images/gone.png"
    files["stage1"].write_text(json.dumps(samples))
    return _args(files), f"{files['stage1']}: 1 bad record(s) of 24", "d3: image_missing"


def _no_options(files):
    samples = json.loads(files["test"].read_text())
    samples[0]["conversations"][0]["value"] = "<image>\nWhat colour is the shape?"
    files["test"].write_text(json.dumps(samples))
    return _args(files), str(files["test"]), "lists no options"


def _text_only_stage1(files):
    samples = [{k: v for k, v in s.items() if k != "image"} for s in json.loads(files["stage1"].read_text())]
    for s in samples:
        s["conversations"][0]["value"] = "Describe a figure."
    files["stage1"].write_text(json.dumps(samples))
    return _args(files), str(files["stage1"]), "no sample has an image"


def _no_test(files):
    return ["--stage1", str(files["stage1"]), "--stage2", str(files["stage2"])], f"--stage2 {files['stage2']}", "needs --stage2-test"


def _missing(files):
    return _args(files)[:1] + [str(files["stage1"]) + ".bak"] + _args(files)[2:], f"{files['stage1']}.bak", "no such file"


def _not_scicap(files):
    return ["--stage1", str(files["stage1"].parent)] + _args(files)[2:], str(files["stage1"].parent), "not a SciCap folder"


def _one_side(files):
    return _args(files)[:2], "--stage1 and --stage2", "give both"


def _output_inside(files):
    return _args(files), str(files["stage1"].parent), "inside"


@pytest.mark.parametrize("case", [_bad_record, _no_options, _text_only_stage1, _no_test, _missing, _not_scicap, _one_side, _output_inside])
def test_bad_own_data_is_one_line_before_any_folder(tmp_path, capsys, case):
    files = write_user_data(tmp_path / "mine", train=24, test=6)
    args, names, reason = case(files)
    out = tmp_path / "mine" / "out" if case is _output_inside else tmp_path / "ablation"
    assert main(["experiment", "ablation", "--quick", "--out", str(out), *args]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("scitune: error: "), err
    assert names in err and reason in err, err
    assert not out.exists()


def test_test_images_in_a_folder_of_their_own(tmp_path):
    """As `scitune data scienceqa` writes them, training and test images lie under different
    folders (images/train, images/test): --stage2-test-images names the test's."""
    files = write_user_data(tmp_path / "mine", train=6, test=4)
    elsewhere = tmp_path / "test-images"
    for sample in json.loads(files["test"].read_text()):
        (elsewhere / sample["image"]).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "mine" / sample["image"]).rename(elsewhere / sample["image"])
    data = UserData(str(files["stage1"]), str(files["stage2"]), str(files["test"]))
    with pytest.raises(ScituneError, match=f"^{files['test']}: 4 bad record"):
        read_user_data(data, seed=0, choice_orders=1)
    moved = UserData(str(files["stage1"]), str(files["stage2"]), str(files["test"]), stage2_test_images=str(elsewhere))
    moved.check()
    assert len(read_user_data(moved, seed=0, choice_orders=1)["test_scienceqa"]) == 4
    assert moved.image_roots()["test"] == elsewhere and str(elsewhere) in moved.inputs()


def test_folders_in_scicap_and_scienceqa_layouts(tmp_path):
    """A SciCap folder gives "describe" instructions on its figures, a ScienceQA folder its train
    split to train on and its test split to score, each image path under its own image folder."""
    from scitune.data.corpus import build_corpus

    corpus = tmp_path / "corpus"
    build_corpus(corpus, figures=20, seed=0, image_size=64)
    data = UserData(str(corpus / "scicap"), str(corpus / "scienceqa"))
    data.check()
    samples = read_user_data(data, seed=0, choice_orders=2)
    roots = data.image_roots()
    problems = json.loads((corpus / "scienceqa" / "problems.json").read_text())
    splits = json.loads((corpus / "scienceqa" / "pid_splits.json").read_text())
    assert {s["id"] for s in samples["test_scienceqa"]} == set(splits["test"])
    trained = {s["id"].split("-order")[0] for s in samples["instruct"]}
    assert trained == set(splits["train"]) and len(samples["instruct"]) == 2 * len(splits["train"])
    assert len(samples["align"]) == len(json.loads((corpus / "scicap" / "train.json").read_text())["images"])
    for name, root in (("align", "align"), ("instruct", "instruct"), ("test_scienceqa", "test")):
        images = [s["image"] for s in samples[name] if s.get("image")]
        assert images and all((roots[root] / image).is_file() for image in images)
    assert any(problems[pid].get("image") for pid in splits["test"])
    with pytest.raises(ScituneError, match="--stage2-test/--stage2-images/--stage2-test-images: only with a conversation file"):
        UserData(str(corpus / "scicap"), str(corpus / "scienceqa"), stage2_test=str(corpus / "manifest.json")).check()


def test_every_model_preset_is_accepted_and_another_refused_with_the_list(tmp_path, capsys):
    assert Plan(presets=PRESETS, seeds=(0,), fractions=(1.0,), size=SIZE).presets == PRESETS
    assert main(["experiment", "ablation", "--out", str(tmp_path / "x"), "--presets", "tiny,tiny-llava"]) != 0
    err = capsys.readouterr().err.strip()
    assert err == f"scitune: error: --presets: 'tiny-llava' is not a model preset; expected some of {', '.join(PRESETS)}"
    assert not (tmp_path / "x").exists()


def _recipe(path, data, preset="tiny", init_from="projector", stage2=None):
    instruct = stage2 or data["stage2"]
    path.write_text(yaml.safe_dump({
        "model": {"preset": preset, "vocab_size": 512},
        "stages": {
            "align": {"data": {"train": str(data["stage1"]), "images": str(data["stage1"].parent), "max_length": 128},
                      "epochs": 1, "batch_size": 8, "lr": 1.0e-3},
            "instruct": {"init_from": init_from, "data": {"train": str(instruct), "images": str(data["stage1"].parent),
                                                          "max_length": 128}, "epochs": 1, "batch_size": 6, "lr": 3.0e-4},
        },
        "run": {"out": "runs/unused"},
    }))
    return path


@pytest.mark.slow
def test_a_recipe_runs_as_written_with_and_without_its_stage1(tmp_path, capsys):
    files = write_user_data(tmp_path / "mine", train=24, test=8)
    recipe = _recipe(tmp_path / "small.yaml", files)
    root = tmp_path / "ablation"
    assert main(["--quiet", "experiment", "ablation", "--out", str(root), "--recipes", str(recipe), "--stage2-test",
                 str(files["test"]), "--seeds", "3", "--fractions", "0.5", "--resamples", "50"]) == 0
    test_ids = {s["id"] for s in json.loads(files["test"].read_text())}
    for arm in ("with-stage1", "without-stage1"):
        folder = root / "cells" / "small" / "seed3" / "frac0.5" / arm
        run = yaml.safe_load((folder / "run" / "config.yaml").read_text())
        stages = {s["stage"]["name"]: s for s in run["stages"]}
        assert run["model"]["preset"] == "tiny" and run["model"]["seed"] == 3 and run["run"]["seed"] == 3
        assert stages["instruct"]["lr"] == 3.0e-4 and stages["instruct"]["batch_size"] == 6  # the recipe's own settings
        assert stages["instruct"]["data"]["train"] == str(root / "data" / "instruct-0.5.json")
        if arm == "with-stage1":
            assert stages["align"]["data"]["train"] == str(files["stage1"]) and stages["instruct"]["init_from"] == "projector"
        else:
            assert set(stages) == {"instruct"} and stages["instruct"]["init_from"] is None
        assert set(json.loads((folder / "result.json").read_text())["outcomes"]["scienceqa"]) == test_ids
    assert "small | 0.5 | ScienceQA accuracy" in capsys.readouterr().out


def test_bad_recipes_are_one_line(tmp_path, capsys):
    files = write_user_data(tmp_path / "mine", train=6, test=3)
    other = tmp_path / "mine" / "other.json"
    other.write_text(files["stage2"].read_text())
    good = _recipe(tmp_path / "a.yaml", files)
    cases = [
        (["--recipes", str(_recipe(tmp_path / "b.yaml", files, init_from=None)), "--stage2-test", str(files["test"])],
         f"recipe {tmp_path / 'b.yaml'}: its instruct stage does not start from stage 1"),
        (["--recipes", f"{good},{_recipe(tmp_path / 'c.yaml', files, stage2=other)}", "--stage2-test", str(files["test"])],
         f"--recipes: {tmp_path / 'c.yaml'} trains on other data than {good}"),
        (["--recipes", str(good)], "--recipes: give --stage2-test"),
        (["--recipes", str(good), "--presets", "tiny", "--stage2-test", str(files["test"])], "--recipes: the recipes give the model"),
        (["--recipes", str(tmp_path / "none.yaml"), "--stage2-test", str(files["test"])], "none.yaml'"),
    ]
    for args, message in cases:
        assert main(["experiment", "ablation", "--out", str(tmp_path / "x"), *args]) != 0
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "x").exists()
