"""Shared-prefix option scoring (prompt once, options from its KV cache, questions batched)
equals scoring each "prompt + option" in full, whatever the batch."""

import pytest
import torch

from scitune.inference import EvalItem, choose_option


@pytest.fixture(scope="module")
def items(sqa_records):
    # different numbers of options, of different token lengths (so rows are padded two ways)
    option_sets = [("A", "B"), ("A", "B", "C"), ("yes", "no", "the answer is not given here", "B")]
    return [EvalItem.from_sample(r, option_sets[i % 3]) for i, r in enumerate(sqa_records)]


def full_scores(engine, item):
    """Each option alone, unpadded: the prompt + the option's supervised tokens in one forward."""
    pixels = engine.images(list(item.images)) if item.images else None
    scores = []
    for option in item.options:
        sample = {**item.sample(), "conversations": item.sample()["conversations"] + [{"from": "gpt", "value": option}]}
        train = engine.renderer.train(sample)
        with torch.inference_mode():
            logits = engine.model(input_ids=torch.tensor([train["input_ids"]]), pixel_values=pixels).logits[0]
        logp = torch.log_softmax(logits.float(), -1)
        scores.append(sum(float(logp[j - 1, t]) for j, t in enumerate(train["labels"]) if t != -100))
    return scores


def test_shared_prefix_scores_equal_full_scoring_at_any_batch_size(engine, items):
    expected = [full_scores(engine, item) for item in items]
    assert any(item.images for item in items) and any(not item.images for item in items)
    for batch_size in (1, 5, 12):
        chosen = engine.choose(items, batch_size=batch_size)
        assert len(chosen) == len(items)
        for (pick, scores), want, item in zip(chosen, expected, items):
            assert len(scores) == len(item.options)
            assert scores == pytest.approx(want, abs=1e-4)
            assert pick == choose_option(scores)
    # the scores are not all alike (the check can fail)
    assert len({round(s, 3) for scores in expected for s in scores}) > 10


def test_score_options_is_one_question_of_the_batched_path(engine, items):
    item = items[2]
    assert engine.score_options(item) == pytest.approx(full_scores(engine, item), abs=1e-4)
    with pytest.raises(Exception, match="no options"):
        engine.score_options(EvalItem("q", "What?"))
