"""Batched generation and likelihood scoring on the tiny model: batch size never changes a result."""

import pytest
import torch

from scitune.inference import EvalItem, choose_option


@pytest.fixture(scope="module")
def items(sqa_records):
    return [EvalItem.from_sample(r, ("A", "B")) for r in sqa_records]


def test_batch_size_does_not_change_predictions(engine, items):
    one = engine.generate(items, batch_size=1, max_new_tokens=8)
    eight = engine.generate(items, batch_size=8, max_new_tokens=8)
    five = engine.generate(items, batch_size=5, max_new_tokens=8)
    assert len(one) == len(items)
    assert one == eight == five
    assert len(set(one)) > 1  # the outputs are not all the same string


def test_left_padded_rows_see_what_they_see_alone(engine, items):
    prompts = [engine.renderer.prompt(it.sample()) for it in items if not it.images][:3]
    rows = [p["input_ids"] for p in prompts]
    assert len({len(r) for r in rows}) == 3  # different lengths, so two rows are padded
    batch = engine.collate(prompts)
    with torch.inference_mode():
        batched = engine.model(**engine._inputs(batch)).logits[:, -1]
        for i, row in enumerate(rows):
            alone = engine.model(input_ids=torch.tensor([row])).logits[0, -1]
            torch.testing.assert_close(batched[i], alone, atol=1e-4, rtol=1e-4)


def test_prompt_ids_are_what_the_processor_makes(engine, items):
    """The engine's prompt equals plain transformers' processor on the template text."""
    item = next(it for it in items if it.images)
    ours = engine.renderer.prompt(item.sample())["input_ids"]
    text = engine.renderer.text(item.sample(), prompt_only=True)
    from PIL import Image

    image = Image.open(engine.images.image_root / item.images[0]).convert("RGB")
    theirs = engine.processor(text=[text], images=[image], return_tensors="pt", add_special_tokens=False)["input_ids"][0].tolist()
    assert ours == theirs


def test_option_scores_equal_one_sequence_at_a_time(engine, items):
    model = engine.model
    item = next(it for it in items if it.images)
    scores = engine.score_options(item)
    assert len(scores) == 2 and scores[0] != scores[1]
    # recompute each option alone, unpadded, from the training rendering of that answer
    pixels = engine.images(list(item.images))
    for option, score in zip(item.options, scores):
        sample = {**item.sample(), "conversations": item.sample()["conversations"] + [{"from": "gpt", "value": option}]}
        train = engine.renderer.train(sample)
        ids = torch.tensor([train["input_ids"]])
        with torch.inference_mode():
            logp = torch.log_softmax(model(input_ids=ids, pixel_values=pixels).logits[0].float(), -1)
        expected = sum(float(logp[j - 1, t]) for j, t in enumerate(train["labels"]) if t != -100)
        assert score == pytest.approx(expected, abs=1e-4)


def test_choose_option_is_first_on_ties():
    assert choose_option([-1.0, -0.5, -0.5]) == 1
    assert choose_option([-2.0]) == 0


def test_stop_tokens_include_the_template_end_of_turn(engine):
    tokenizer = engine.tokenizer
    assert tokenizer.eos_token_id in engine.stop_ids
    assert tokenizer.pad_token_id not in engine.stop_ids


def test_generation_budget_is_checked_against_the_positions(engine, items):
    from scitune.errors import ScituneError

    limit = engine.renderer.max_length
    with pytest.raises(ScituneError, match="exceeds the model's"):
        engine.generate(items[:1], max_new_tokens=limit)
    with pytest.raises(ScituneError, match="max new tokens"):
        engine.generate(items[:1], max_new_tokens=0)


def test_min_new_tokens_holds_back_the_stop_tokens(engine, items):
    """Benchmarks time answers of a given length: with `min_new_tokens` a row that would stop at
    once runs on to that length."""
    prompt = engine.renderer.prompt(items[0].sample(), reserve=6)
    first = int(engine.generate_batch([prompt], max_new_tokens=1)[0, 0])
    saved = engine.stop_ids
    engine.stop_ids = saved + [first]  # the first greedy token now ends the answer
    try:
        assert engine.generate_batch([prompt], max_new_tokens=6).shape[1] == 1
        forced = engine.generate_batch([prompt], max_new_tokens=6, min_new_tokens=6)
    finally:
        engine.stop_ids = saved
    assert forced.shape[1] == 6 and first not in forced[0].tolist()


def test_length_batches_keep_similar_lengths_together():
    from scitune.inference import length_batches

    lengths = [254, 191, 104, 75, 64, 64, 60, 53, 38, 37]
    batches = list(length_batches(range(len(lengths)), lengths, size=4))
    assert [i for b in batches for i in b] == list(range(len(lengths)))  # every item once, in order
    assert all(len(b) <= 4 for b in batches)
    assert all(lengths[i] >= 0.75 * lengths[b[0]] for b in batches for i in b)
    assert batches[:3] == [[0, 1], [2], [3, 4, 5, 6]]  # 191 is within 75% of 254; 104 is not, nor 75 of 104
    padded = sum(len(b) * lengths[b[0]] for b in batches)
    plain = sum(len(lengths[i : i + 4]) * lengths[i] for i in range(0, len(lengths), 4))
    assert padded < 0.8 * plain  # less padding than cutting every 4 items (1041 against 1348 tokens)
