"""The grid: nested stage-2 subsets, resuming a stopped grid, refusing a folder it does not own,
and (slow) one real cell pair of the tiny pipeline end to end."""

import json

import pytest

from scitune.demo import DemoSize
from scitune.errors import ScituneError
from scitune.experiment.grid import Plan, claim_experiment, run_grid, subset

SIZE = DemoSize(figures=40, image_size=128, lm_steps=2, vision_steps=2, align_epochs=1, instruct_epochs=1,
                choice_orders=1, caption_tokens=8)


def test_subsets_are_nested_and_keep_groups_whole():
    samples = [{"id": f"p{i}", "image": None} for i in range(20)]
    samples += [{"id": f"p{i}-order1", "image": None} for i in range(20)]
    samples += [{"id": f"f{i}-{task}", "image": f"fig{i}.png"} for i in range(30) for task in ("type", "caption")]
    small, large = subset(samples, 0.1, seed=3), subset(samples, 0.5, seed=3)
    assert len(small) < len(large) < len(samples)
    assert {s["id"] for s in small} <= {s["id"] for s in large}
    ids = {s["id"] for s in large}
    assert all((f"p{i}" in ids) == (f"p{i}-order1" in ids) for i in range(20))
    images = [s["image"] for s in large if s["image"]]
    assert all(images.count(image) == 2 for image in images)
    assert subset(samples, 1.0, seed=3) == samples


def test_a_stopped_grid_resumes_where_it_stopped(tmp_path):
    plan = Plan(presets=("tiny",), seeds=(0, 1), fractions=(0.3, 1.0), size=SIZE)
    root = claim_experiment(tmp_path / "ablation", plan)
    ran = []

    def runner(cell):
        if len(ran) == 3:
            raise KeyboardInterrupt  # the user stops the grid during the 4th cell
        ran.append(cell)
        return {"cell": cell.label(), "seconds": 1}

    with pytest.raises(KeyboardInterrupt):
        run_grid(root, plan, runner=runner)
    assert ran == plan.cells()[:3]
    first = (ran[0].folder(root) / "result.json").read_text()
    assert not (plan.cells()[3].folder(root) / "result.json").exists()

    ran.clear()
    again = claim_experiment(tmp_path / "ablation", plan)
    results = run_grid(again, plan, runner=lambda cell: ran.append(cell) or {"cell": cell.label(), "seconds": 1})
    assert ran == plan.cells()[3:]  # only the cells not done
    assert set(results) == set(plan.cells())
    assert (plan.cells()[0].folder(root) / "result.json").read_text() == first  # done cells untouched

    grown = Plan(presets=("tiny",), seeds=(0, 1, 2), fractions=(0.3, 1.0), size=SIZE)
    ran.clear()
    run_grid(claim_experiment(root, grown), grown, runner=lambda cell: ran.append(cell) or {"seconds": 1})
    assert ran == [c for c in grown.cells() if c.seed == 2]


def test_a_folder_of_another_kind_or_plan_is_refused(tmp_path):
    plan = Plan(presets=("tiny",), seeds=(0,), fractions=(1.0,), size=SIZE)
    claim_experiment(tmp_path / "a", plan)
    other = Plan(presets=("tiny",), seeds=(0,), fractions=(1.0,), size=SIZE, data_seed=1)
    with pytest.raises(ScituneError, match="another data_seed"):
        claim_experiment(tmp_path / "a", other)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "notes.txt").write_text("mine")
    with pytest.raises(ScituneError, match="not empty"):
        claim_experiment(tmp_path / "b", plan)
    assert (tmp_path / "b" / "notes.txt").read_text() == "mine"
    with pytest.raises(ScituneError, match="fractions"):
        Plan(presets=("tiny",), seeds=(0,), fractions=(1.5,), size=SIZE)


def test_bad_lists_are_one_line_errors(tmp_path, capsys):
    from scitune.cli import main

    assert main(["experiment", "ablation", "--out", str(tmp_path / "x"), "--seeds", "0,a"]) != 0
    err = capsys.readouterr().err
    assert err.strip() == "scitune: error: --seeds: expected a comma-separated list, got '0,a'"
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_smoke_grid_through_the_command(tmp_path, monkeypatch, capsys):
    """One seed, one fraction, both arms, at the smallest sizes: real runs, real evaluation, the
    command's outputs; a rerun runs nothing; --report-only reads the same cells."""
    from scitune.cli import main
    from scitune.experiment import grid

    monkeypatch.setitem(grid.MODES, "quick", {"size": SIZE, "seeds": (0,), "fractions": (0.5,)})
    root = tmp_path / "smoke"
    assert main(["--quiet", "experiment", "ablation", "--quick", "--out", str(root), "--resamples", "100"]) == 0
    printed = capsys.readouterr().out
    plan = Plan(presets=("tiny",), seeds=(0,), fractions=(0.5,), size=SIZE)
    for cell in plan.cells():
        assert (cell.folder(root) / "run" / "instruct" / "done.json").is_file()
        assert cell.with_align == (cell.folder(root) / "run" / "align" / "done.json").is_file()
        result = json.loads((cell.folder(root) / "result.json").read_text())
        assert len(result["outcomes"]["scienceqa"]) == result["metrics"]["scienceqa"]["count"] > 0
    summary = json.loads((root / "summary.json").read_text())
    assert {r["metric"] for r in summary["rows"]} >= {"scienceqa", "scienceqa_img", "figure_type", "bleu4"}
    assert summary["verdicts"] and all(v in printed for v in summary["verdicts"])
    assert (root / "ablation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "data:image/png;base64," in (root / "report.html").read_text()

    assert main(["--quiet", "experiment", "ablation", "--quick", "--out", str(root), "--resamples", "100"]) == 0
    assert "2 cells: 2 done, 0 to run" in capsys.readouterr().out
    assert main(["experiment", "ablation", "--quick", "--out", str(root), "--report-only", "--resamples", "100"]) == 0
    assert json.loads((root / "summary.json").read_text())["rows"] == summary["rows"]
