import json

import pytest

from scitune.errors import ScituneError
from scitune.eval.tasks.figure_type.scoring import NONE_LABEL, find_label, score_figure_types, write_confusion

LABELS = ["Graph Plot", "Bar Chart", "Table", "Equation"]


def test_find_label_takes_the_first_named():
    assert find_label("It is a table, not a bar chart.", LABELS) == "Table"
    assert find_label("BAR CHART", LABELS) == "Bar Chart"
    assert find_label("tableau", LABELS) is None  # whole words only
    assert find_label("Chart", ["Chart", "Bar Chart"]) == "Chart"
    assert find_label("Bar Chart", ["Chart", "Bar Chart"]) == "Bar Chart"


def test_metrics_and_confusion(tmp_path):
    references = {"1": "Graph Plot", "2": "Graph Plot", "3": "Table", "4": "Bar Chart", "5": "Table"}
    predictions = {"1": "graph plot", "2": "a table", "3": "Table.", "4": "no idea", "5": "It is a table"}
    scores = score_figure_types(references, predictions, LABELS)
    assert (scores.count, scores.correct, scores.accuracy) == (5, 3, 60.0)
    assert [f["question_id"] for f in scores.failures] == ["4"]
    plot, table, bar = scores.per_type["Graph Plot"], scores.per_type["Table"], scores.per_type["Bar Chart"]
    assert (plot["precision"], plot["recall"]) == (100.0, 50.0)
    assert table["precision"] == pytest.approx(200 / 3) and table["recall"] == 100.0
    assert bar["precision"] is None and bar["recall"] == 0.0 and bar["f1"] == 0.0
    assert scores.per_type["Equation"]["f1"] is None  # neither referenced nor predicted: not averaged
    f1s = [2 / 3 * 100, 0.0, 80.0]
    assert scores.macro_f1 == pytest.approx(sum(f1s) / 3)
    confusion = scores.confusion_json()
    assert confusion["predictions"][-1] == NONE_LABEL
    assert confusion["matrix"][1] == [0, 0, 0, 0, 1]  # Bar Chart -> (none)
    assert sum(map(sum, confusion["matrix"])) == 5
    json_path, png_path = write_confusion(scores, tmp_path)
    assert json.loads(json_path.read_text()) == confusion
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_likelihood_predictions_are_labels():
    scores = score_figure_types({"1": "Table"}, {"1": "Table"}, LABELS, parse=False)
    assert scores.accuracy == 100.0


def test_label_set_and_coverage_errors():
    with pytest.raises(ScituneError, match="outside the label set"):
        score_figure_types({"1": "Photo"}, {"1": "photo"}, LABELS)
    with pytest.raises(ScituneError, match="no prediction"):
        score_figure_types({"1": "Table", "2": "Table"}, {"1": "table"}, LABELS)
