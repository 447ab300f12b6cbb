"""`scitune demo --quick` end to end (about 2 minutes on 2 cores): the report and metrics exist
and the trained model beats chance on held-out data."""

import json

import pytest

from scitune.cli import main


@pytest.mark.slow
def test_quick_demo(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "stage 1 + stage 2 (SciTune)" in printed and "stage 2 only (ablation)" in printed
    report = (out / "report.html").read_text()
    assert "confusion" in report and report.count("data:image/png;base64") >= 4
    metrics = json.loads((out / "metrics.json").read_text())
    for run in ("with_align", "without_align"):
        m = metrics[run]
        assert set(m["scienceqa"]["official"]) == {"NAT", "SOC", "LAN", "TXT", "IMG", "NO", "G1-6", "G7-12", "Avg"}
        assert m["captions"]["metrics"]["BLEU-4"] >= 0 and 0 <= m["captions"]["metrics"]["ROUGE-L"] <= 1
    best = metrics["with_align"]
    # figure type is learned from held-out figures: well above the 20% chance of five types
    assert best["figure_type"]["accuracy"] >= 35.0
    # ScienceQA-style accuracy is reported beside its chance level per question kind. The tiny
    # model does not beat chance on it reliably yet, so this checks the numbers are there and
    # consistent, not that they beat chance.
    kinds = best["scienceqa_by_question_kind"]
    assert sum(k["count"] for k in kinds.values()) == best["scienceqa"]["count"]
    assert all(0 < k["chance"] < 100 for k in kinds.values())
    assert metrics["timings_s"]["total"] > 0
