"""Per-item outcomes -> metrics, paired comparisons and verdicts on made-up grids."""

import pytest

from scitune.eval.tasks.captions.bleu import bleu_counts, corpus_bleu
from scitune.experiment.analysis import METRICS, analyse, verdict
from scitune.experiment.grid import Cell
from scitune.experiment.outcomes import bleu4


def outcomes(sqa_right, ft_right, captions):
    refs = ["a line plot of loss against step", "a bar chart of counts"]
    rows = {}
    for i, (hyp, ref) in enumerate(zip(captions, refs)):
        c = bleu_counts([hyp.split()], [[ref.split()]])
        rows[str(i)] = {"bleu": [*c.matches, *c.totals, c.hypothesis_length, c.reference_length], "rouge_l": 0.5}
    return {
        "scienceqa": {str(i): {"correct": r, "image": i % 2 == 0, "chance": 0.25} for i, r in enumerate(sqa_right)},
        "figure_type": {str(i): r for i, r in enumerate(ft_right)}, "figure_type_chance": 0.2,
        "captions": rows, "bleu_convention": "coco",
    }


def test_bleu4_from_item_counts_is_the_corpus_bleu():
    hyps = ["a line plot of loss against step", "a chart of counts by year"]
    refs = ["a line plot of the loss against the step", "a bar chart of counts"]
    rows = []
    for h, r in zip(hyps, refs):
        c = bleu_counts([h.split()], [[r.split()]])
        rows.append([*c.matches, *c.totals, c.hypothesis_length, c.reference_length])
    expected = corpus_bleu([h.split() for h in hyps], [[r.split()] for r in refs])["BLEU-4"]
    assert expected > 0 and bleu4(rows) == pytest.approx(expected)


def test_a_clear_gain_is_reported_and_a_tie_is_not():
    n = 60
    good = outcomes([True] * n, [True] * 10, ["a line plot of loss against step", "a bar chart of counts"])
    bad = outcomes([i % 4 == 0 for i in range(n)], [True] * 10, ["a line plot of loss against step", "a bar chart of counts"])
    results = {}
    for seed in (0, 1):
        results[Cell("tiny", seed, 1.0, True)] = {"outcomes": good}
        results[Cell("tiny", seed, 1.0, False)] = {"outcomes": bad}
    rows = {r["metric"]: r for r in analyse(results, resamples=300)}
    assert set(rows) == {m.key for m in METRICS}
    sqa = rows["scienceqa"]
    assert sqa["with"]["mean"] == 100.0 and sqa["without"]["mean"] == 25.0 and sqa["chance"] == 25.0
    assert sqa["difference"]["difference"] == pytest.approx(75.0)
    assert sqa["mcnemar"]["only_with"] == 2 * 45 and sqa["mcnemar"]["p_value"] < 1e-6
    assert "stage 1 helps" in verdict(sqa)
    assert rows["scienceqa_img"]["items"] == n // 2
    ft = rows["figure_type"]
    assert ft["difference"]["difference"] == 0.0 and "no difference the data support" in verdict(ft)
    assert rows["bleu4"]["with"]["low"] == rows["bleu4"]["with"]["high"]  # two identical seeds: a zero-width interval


def test_a_seed_missing_one_arm_is_left_out():
    one = outcomes([True, False], [True], ["a", "b"])
    results = {Cell("tiny", 0, 0.3, True): {"outcomes": one}, Cell("tiny", 0, 0.3, False): {"outcomes": one},
               Cell("tiny", 1, 0.3, True): {"outcomes": one}}
    rows = analyse(results, resamples=50)
    assert rows and all(r["seed_list"] == [0] and r["with"]["low"] is None for r in rows)
