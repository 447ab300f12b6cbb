"""Caption metrics: the SciCap authors' stored BLEU, our BLEU against pycocoevalcap, METEOR's Java check."""

import json
import math

import pytest

from scitune.errors import ScituneError
from scitune.eval.tasks.captions import scoring as captions
from scitune.eval.tasks.captions.bleu import corpus_bleu
from scitune.eval.tasks.captions.scoring import CaptionPairs, pair_predictions, read_pairs, score_captions, tokenize


@pytest.fixture(scope="module")
def scicap_pairs(shared_data):
    return read_pairs(shared_data / "scicap" / "rule_based_captions_with_bleu.json")


def test_scicap_convention_reproduces_the_stored_bleu(scicap_pairs, shared_data):
    stored = json.loads((shared_data / "scicap" / "rule_based_captions_with_bleu.json").read_text())
    assert len(scicap_pairs.hypotheses) == 21934
    result = score_captions(scicap_pairs, tokenizer="whitespace", bleu_convention="scicap", metrics=("BLEU",))
    got = [round(result.metrics[f"BLEU-{n}"], 4) for n in range(1, 5)]
    assert got == [0.2210, 0.0949, 0.0458, 0.0228]
    for n in range(1, 5):  # not just to four places: the same computation
        assert result.metrics[f"BLEU-{n}"] == pytest.approx(stored[f"BLEU-{n}"], rel=1e-12)


def test_coco_convention_differs_at_bleu3(scicap_pairs):
    result = score_captions(scicap_pairs, tokenizer="whitespace", bleu_convention="coco", metrics=("BLEU",))
    assert round(result.metrics["BLEU-1"], 4) == 0.2210
    assert round(result.metrics["BLEU-3"], 4) == 0.0444  # uniform 1/3 weights, not 0.33


def test_coco_convention_equals_pycocoevalcap(scicap_pairs):
    from pycocoevalcap.bleu.bleu import Bleu

    hyps = scicap_pairs.hypotheses[:3000]
    refs = scicap_pairs.references[:3000]
    theirs, _ = Bleu(4).compute_score(
        {i: r for i, r in enumerate(refs)}, {i: [h] for i, h in enumerate(hyps)}, verbose=0
    )
    ours = corpus_bleu([h.split() for h in hyps], [[r.split() for r in rs] for rs in refs], "coco")
    assert [ours[f"BLEU-{n}"] for n in range(1, 5)] == pytest.approx(theirs, rel=1e-9)


def test_multiple_references_and_brevity():
    hyp = [["the", "cat", "sat", "on", "the", "mat"]]
    refs = [[["a", "cat", "sat", "on", "a", "mat"], ["the", "cat", "sat", "on", "the", "mat"]]]
    assert corpus_bleu(hyp, refs)["BLEU-4"] == pytest.approx(1.0)
    short = corpus_bleu([["the", "cat", "sat", "on"]], [[["the", "cat", "sat", "on", "the", "mat"]]])
    assert short["BLEU-1"] == pytest.approx(math.exp(1 - 6 / 4))
    assert corpus_bleu([["x"]], [[["y"]]])["BLEU-4"] == 0.0


def test_simple_tokenizer():
    assert tokenize("Accuracy vs. <unk> epochs, (a) top-1.", "simple") == [
        "accuracy", "vs", ".", "<unk>", "epochs", ",", "(", "a", ")", "top-1", ".",
    ]
    assert tokenize("Pre tokenised .", "whitespace") == ["Pre", "tokenised", "."]


@pytest.mark.slow
def test_all_metrics_and_meteor_with_java(scicap_pairs):
    small = CaptionPairs(scicap_pairs.ids[:40], scicap_pairs.hypotheses[:40], scicap_pairs.references[:40])
    if not captions.java_available():
        pytest.skip("java is not on PATH")
    result = score_captions(small, tokenizer="whitespace")
    assert set(result.metrics) == {"BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-L", "CIDEr", "METEOR"}
    assert 0 < result.metrics["METEOR"] < 1 and 0 < result.metrics["ROUGE-L"] < 1
    assert result.skipped == {}


def test_meteor_skipped_without_java(monkeypatch):
    monkeypatch.setattr(captions.shutil, "which", lambda name: None)
    pairs = CaptionPairs(["0", "1"], ["a line plot of loss", "a bar chart"], [["line plot of loss"], ["bar chart"]])
    result = score_captions(pairs)
    assert "METEOR" not in result.metrics
    assert "java" in result.skipped["METEOR"] and "skipped" in result.skipped["METEOR"]
    assert result.metrics["BLEU-1"] > 0


def test_predictions_joined_to_references(tmp_path):
    preds = tmp_path / "p.jsonl"
    preds.write_text('{"question_id": "b", "text": "Bar chart."}\n{"question_id": "a", "text": "A plot"}\n')
    refs = tmp_path / "r.json"
    refs.write_text(json.dumps([
        {"id": "a", "conversations": [{"from": "human", "value": "?"}, {"from": "gpt", "value": "A plot"}]},
        {"id": "b", "conversations": [{"from": "human", "value": "?"}, {"from": "gpt", "value": "Bar chart"}]},
    ]))
    pairs = pair_predictions(preds, refs)
    assert pairs.ids == ["b", "a"] and pairs.references == [["Bar chart"], ["A plot"]]
    missing = tmp_path / "m.json"
    missing.write_text(json.dumps({"a": "A plot"}))
    with pytest.raises(ScituneError, match="no reference for 1"):
        pair_predictions(preds, missing)


def test_missing_predictions_and_empty_references_are_errors(tmp_path):
    predictions = tmp_path / "p.jsonl"
    predictions.write_text('{"question_id": "a", "text": "a plot"}\n')
    references = tmp_path / "r.json"
    references.write_text('{"a": "a bar chart", "b": "a line plot"}')
    with pytest.raises(ScituneError, match="no prediction for 1 of 2 references"):
        pair_predictions(predictions, references)
    references.write_text('{"a": "  "}')
    with pytest.raises(ScituneError, match="only empty references"):
        pair_predictions(predictions, references)
