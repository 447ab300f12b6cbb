"""Batched generation and likelihood scoring on the tiny model: batch size never changes a result."""

import pytest
import torch

from scitune.eval.generate import EvalItem, _encode, _pad_left, choose_option, generate, render_prompt, resolve_images, score_options


@pytest.fixture(scope="module")
def items(sqa_records, sqa_images):
    return [
        EvalItem(r["id"], r["conversations"][0]["value"], resolve_images(r, sqa_images), ("A", "B"))
        for r in sqa_records
    ]


def test_batch_size_does_not_change_predictions(tiny, items):
    model, processor, _ = tiny
    one = generate(model, processor, items, batch_size=1, max_new_tokens=8)
    eight = generate(model, processor, items, batch_size=8, max_new_tokens=8)
    five = generate(model, processor, items, batch_size=5, max_new_tokens=8)
    assert len(one) == len(items)
    assert one == eight == five
    assert len(set(one)) > 1  # the outputs are not all the same string


def test_left_padded_rows_see_what_they_see_alone(tiny, items):
    model, processor, _ = tiny
    encoded = [_encode(processor, render_prompt(processor, it.prompt), []) for it in items if not it.images][:3]
    rows = [ids for ids, _ in encoded]
    assert len({len(r) for r in rows}) == 3  # different lengths, so two rows are padded
    input_ids, attention, position_ids = _pad_left(rows, processor.tokenizer.pad_token_id)
    assert (attention.sum(-1).tolist()) == [len(r) for r in rows]
    for i, row in enumerate(rows):  # each row's positions start at 0 on its first real token
        assert position_ids[i, -len(row) :].tolist() == list(range(len(row)))
        assert input_ids[i, -len(row) :].tolist() == row
    with torch.inference_mode():
        batched = model(input_ids=input_ids, attention_mask=attention, position_ids=position_ids).logits[:, -1]
        for i, row in enumerate(rows):
            alone = model(input_ids=torch.tensor([row])).logits[0, -1]
            torch.testing.assert_close(batched[i], alone, atol=1e-4, rtol=1e-4)


def test_option_scores_equal_one_sequence_at_a_time(tiny, items):
    model, processor, _ = tiny
    item = next(it for it in items if it.images)
    scores = score_options(model, processor, item)
    assert len(scores) == 2 and scores[0] != scores[1]
    # recompute each option alone, unpadded
    prompt = render_prompt(processor, item.prompt)
    from scitune.eval.generate import _load_images

    images = _load_images(item.images)
    prompt_ids, pixels = _encode(processor, prompt, images)
    for option, score in zip(item.options, scores):
        cont = processor.tokenizer(render_prompt(processor, item.prompt, option)[len(prompt):], add_special_tokens=False)["input_ids"]
        ids = torch.tensor([prompt_ids + cont])
        with torch.inference_mode():
            logp = torch.log_softmax(model(input_ids=ids, pixel_values=pixels).logits[0].float(), -1)
        expected = sum(float(logp[len(prompt_ids) - 1 + j, t]) for j, t in enumerate(cont))
        assert score == pytest.approx(expected, abs=1e-4)


def test_choose_option_is_first_on_ties():
    assert choose_option([-1.0, -0.5, -0.5]) == 1
    assert choose_option([-2.0]) == 0


def test_stop_tokens_include_the_template_end_of_turn(tiny):
    from scitune.eval.generate import stop_token_ids

    model, processor, _ = tiny
    ids = stop_token_ids(model, processor)
    assert processor.tokenizer.eos_token_id in ids
    assert processor.tokenizer.pad_token_id not in ids
