"""The task registry: a task is one folder under scitune/eval/tasks/. A toy task written as one
folder (outside the source tree, its folder added to the tasks package's search path) appears as
`scitune eval toy` and runs end to end, through the model (`run_task`) and on a predictions file."""

import json
import sys
import textwrap

import pytest

import scitune.eval.tasks
from scitune.cli import main
from scitune.errors import ScituneError
from scitune.eval.registry import task_clis

TOY_INIT = '''
"""A toy task: does the answer contain the expected word?"""
from scitune.eval.tasks.toy.cli import CLI
'''

TOY_TASK = '''
from dataclasses import dataclass
from pathlib import Path

from scitune.inference.items import EvalItem


@dataclass
class ToyTask:
    records: list
    name: str = "toy"
    modes: tuple = ("generate",)

    def items(self, mode):
        return [EvalItem(r["id"], r["question"]) for r in self.records]

    def score(self, rows, mode="generate"):
        expected = {r["id"]: r["word"] for r in self.records}
        hits = [row["question_id"] for row in rows if expected[row["question_id"]] in row["text"]]
        return {"count": len(rows), "hits": len(hits), "missed": [r["question_id"] for r in rows if r["question_id"] not in hits]}

    def metrics(self, result):
        return {"count": result["count"], "hits": result["hits"]}

    def failures(self, result):
        return [{"question_id": qid, "text": ""} for qid in result["missed"]]

    def write_extra(self, result, folder: Path):
        (folder / "toy.txt").write_text(f"{result['hits']}/{result['count']}")

    def summary(self, result, label=""):
        return f"{label + ': ' if label else ''}toy hits {result['hits']}/{result['count']}"
'''

TOY_CLI = '''
import json

from scitune.eval.registry import TaskCLI, report_scored


def add_arguments(parser):
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--predictions")
    source.add_argument("--model")
    parser.add_argument("--questions", required=True)


def _task(args):
    from scitune.eval.tasks.toy.task import ToyTask

    return ToyTask(json.loads(open(args.questions).read()))


def score(args):
    from scitune.eval.predictions import read_predictions

    task = _task(args)
    rows = [{"question_id": str(r["question_id"]), "text": r["text"]} for r in read_predictions(args.predictions)]
    report_scored(task, task.score(rows), args.out)
    return 0


CLI = TaskCLI(
    name="toy", help="A toy task.", example="scitune eval toy --questions q.json --predictions p.jsonl",
    add_arguments=add_arguments, build=_task, score=score, inputs=("questions",),
)
'''

QUESTIONS = [{"id": "q1", "question": "Say cat.", "word": "cat"}, {"id": "q2", "question": "Say dog.", "word": "dog"}]


@pytest.fixture
def toy_task(tmp_path, monkeypatch):
    """The toy task's one folder, found through the tasks package's path."""
    root = tmp_path / "extra_tasks"
    folder = root / "toy"
    folder.mkdir(parents=True)
    for name, text in (("__init__.py", TOY_INIT), ("task.py", TOY_TASK), ("cli.py", TOY_CLI)):
        (folder / name).write_text(textwrap.dedent(text))
    monkeypatch.setattr(scitune.eval.tasks, "__path__", [*scitune.eval.tasks.__path__, str(root)])
    yield folder
    for name in [m for m in sys.modules if m.startswith("scitune.eval.tasks.toy")]:
        del sys.modules[name]  # the next test's folder is a fresh one


def test_the_built_in_tasks_are_registered_in_order():
    assert [cli.name for cli in task_clis()] == ["scienceqa", "figure-type", "captions", "mathvista"]


def test_a_toy_task_folder_becomes_a_subcommand(toy_task, capsys):
    assert "toy" in [cli.name for cli in task_clis()]
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    assert "toy" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["eval", "toy", "--help"])
    help_text = capsys.readouterr().out
    for option in ("--questions", "--model", "--predictions", "--batch-size", "--out", "--overwrite"):
        assert option in help_text
    assert "--mode MODE" not in help_text  # one mode: no --mode option


def test_the_toy_task_scores_a_predictions_file(toy_task, tmp_path, capsys):
    questions = tmp_path / "q.json"
    questions.write_text(json.dumps(QUESTIONS))
    predictions = tmp_path / "p.jsonl"
    predictions.write_text('{"question_id": "q1", "text": "a cat"}\n{"question_id": "q2", "text": "a cow"}\n')
    out = tmp_path / "out"
    assert main(["eval", "toy", "--questions", str(questions), "--predictions", str(predictions), "--out", str(out)]) == 0
    assert "toy hits 1/2" in capsys.readouterr().out
    assert json.loads((out / "metrics.json").read_text()) == {"count": 2, "hits": 1}
    assert [json.loads(line)["question_id"] for line in (out / "parse_failures.jsonl").read_text().splitlines()] == ["q2"]
    assert (out / "toy.txt").read_text() == "1/2"


def test_the_toy_task_runs_a_model_through_run_task(toy_task, tiny, tmp_path, capsys):
    questions = tmp_path / "q.json"
    questions.write_text(json.dumps(QUESTIONS))
    out = tmp_path / "out"
    code = main([
        "eval", "toy", "--questions", str(questions), "--model", str(tiny[2]), "--max-new-tokens", "3", "--out", str(out),
    ])
    assert code == 0
    printed = capsys.readouterr().out
    assert "generate: toy hits" in printed
    rows = [json.loads(line) for line in (out / "generate" / "predictions.jsonl").read_text().splitlines()]
    assert [(r["question_id"], r["prompt"], r["mode"]) for r in rows] == [("q1", "Say cat.", "generate"), ("q2", "Say dog.", "generate")]
    metrics = json.loads((out / "generate" / "metrics.json").read_text())
    assert metrics["count"] == 2 and (out / "generate" / "toy.txt").read_text() == f"{metrics['hits']}/2"


def test_out_may_not_be_a_task_declared_input(toy_task, tmp_path, capsys):
    questions = tmp_path / "q.json"
    questions.write_text(json.dumps(QUESTIONS))
    predictions = tmp_path / "p.jsonl"
    predictions.write_text('{"question_id": "q1", "text": "cat"}\n{"question_id": "q2", "text": "dog"}\n')
    assert main(["eval", "toy", "--questions", str(questions), "--predictions", str(predictions), "--out", str(questions)]) == 2
    assert "scitune: error:" in capsys.readouterr().err
    assert json.loads(questions.read_text()) == QUESTIONS


def test_two_tasks_with_one_name_are_an_error(toy_task, tmp_path, monkeypatch):
    twin = tmp_path / "twin_tasks" / "toy_again"
    twin.mkdir(parents=True)
    (twin / "__init__.py").write_text("from scitune.eval.tasks.toy.cli import CLI\n")
    monkeypatch.setattr(scitune.eval.tasks, "__path__", [*scitune.eval.tasks.__path__, str(twin.parent)])
    with pytest.raises(ScituneError, match="two evaluation tasks are named 'toy'"):
        task_clis()
