from pathlib import Path

import pytest

from scitune.data.sample import make_sample
from scitune.data.scienceqa import build_scienceqa_samples, read_problems
from scitune.prompting.render import (
    DROP_IMAGE,
    DROP_TARGET,
    IGNORE_INDEX,
    DroppedSample,
    LabelMaskError,
    Renderer,
    SampleTokenizer,
)
from scitune.errors import ScituneError

PER_IMAGE = 5


def tokenize_sample(sample, tokenizer, per_image, max_length=None, chat_template=None):
    return Renderer(tokenizer, chat_template, max_length, image_tokens=per_image).train(sample)


def sample_tokenizer(tokenizer, per_image, max_length=None, chat_template=None):
    return SampleTokenizer(Renderer(tokenizer, chat_template, max_length, image_tokens=per_image))

TWO_TURNS = {
    "id": "two-turns",
    "image": "fig.png",
    "conversations": [
        {"from": "human", "value": "<image>\nWhat type of figure is this?"},
        {"from": "gpt", "value": "A graph plot of temperature against time."},
        {"from": "human", "value": "How many curves?"},
        {"from": "gpt", "value": "Three."},
    ],
}


def supervised_runs(item):
    """Contiguous runs of supervised label ids."""
    runs, current = [], []
    for label in item["labels"]:
        if label != IGNORE_INDEX:
            current.append(label)
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    return runs


def check_item(item, sample, tokenizer, end_marker):
    image_id = tokenizer.convert_tokens_to_ids("<image>")
    ids, labels = item["input_ids"], item["labels"]
    assert len(ids) == len(labels) == len(item["attention_mask"]) == item["length"]
    n_images = sample["conversations"][0]["value"].count("<image>")
    assert ids.count(image_id) == n_images * PER_IMAGE
    # the image span is contiguous and never supervised
    if n_images:
        start = ids.index(image_id)
        assert ids[start : start + PER_IMAGE] == [image_id] * PER_IMAGE
        assert labels[start : start + PER_IMAGE] == [IGNORE_INDEX] * PER_IMAGE
    # labels equal input ids where supervised
    assert all(label in (IGNORE_INDEX, token) for label, token in zip(labels, ids))
    targets = [t["value"] for t in sample["conversations"] if t["from"] == "gpt"]
    runs = supervised_runs(item)
    assert len(runs) == len(targets)
    for run, target in zip(runs, targets):
        text = tokenizer.decode(run, skip_special_tokens=False, clean_up_tokenization_spaces=False)
        assert text.strip() == f"{target}{end_marker}".strip()
    # the prompt part (everything before the first supervised token) holds the question
    first = labels.index(next(label for label in labels if label != IGNORE_INDEX))
    prompt = tokenizer.decode([t for t in ids[:first] if t != image_id], skip_special_tokens=False)
    assert "What type of figure is this?" in prompt and targets[0] not in prompt


@pytest.mark.parametrize("template, end_marker", [("plain", "</s>"), ("vicuna_v1", "</s>"), ("llama2", " </s>")])
def test_tiny_tokenizer_templates(tiny_tokenizer, template, end_marker):
    item = tokenize_sample(TWO_TURNS, tiny_tokenizer, PER_IMAGE, chat_template=template)
    check_item(item, TWO_TURNS, tiny_tokenizer, end_marker)
    assert item["images"] == ["fig.png"] and not item["truncated"]


def test_smollm2_chatml(smollm2_tokenizer):
    item = tokenize_sample(TWO_TURNS, smollm2_tokenizer, PER_IMAGE, chat_template="chatml")
    check_item(item, TWO_TURNS, smollm2_tokenizer, "<|im_end|>")
    text = smollm2_tokenizer.decode(item["input_ids"])
    assert text.startswith("<|im_start|>user\n<image>") and text.endswith("Three.<|im_end|>\n")


def test_smollm2_on_real_scienceqa_samples(smollm2_tokenizer, shared_data):
    problems = read_problems(shared_data / "scienceqa" / "problems_subset.json", split="test")
    samples = build_scienceqa_samples(problems, format="QCM-LEPA")
    tokenize = sample_tokenizer(smollm2_tokenizer, PER_IMAGE, max_length=4096, chat_template="chatml")
    items = tokenize.tokenize_all(samples)
    assert len(items) == len(samples) == 361 and not tokenize.dropped
    for item, sample in zip(items, samples):
        (run,) = supervised_runs(item)
        target = smollm2_tokenizer.decode(run, skip_special_tokens=False)
        assert target == sample["conversations"][1]["value"] + "<|im_end|>"


def test_tiny_tokenizer_on_real_cqm_a(tiny_tokenizer, shared_data):
    from scitune.data.sample import read_samples

    samples = read_samples(shared_data / "scienceqa" / "llava_test_CQM-A.json")[:200]
    items = sample_tokenizer(tiny_tokenizer, PER_IMAGE, chat_template="plain").tokenize_all(samples)
    for item, sample in zip(items, samples):
        (run,) = supervised_runs(item)
        assert tiny_tokenizer.decode(run).strip() == sample["conversations"][1]["value"] + "</s>"


def test_mismatched_spans_fail_loudly_naming_the_sample(tiny_tokenizer):
    # a template that drops the last character of each answer inside the generation block
    cut = (
        "{%- for m in messages -%}{%- if m['role'] == 'assistant' -%}"
        "{% generation %}{{ m['content'][:-1] + eos_token }}{% endgeneration %}"
        "{%- else -%}{{ m['content'] + '\\n' }}{%- endif -%}{%- endfor -%}"
    )
    with pytest.raises(LabelMaskError, match="sample 'two-turns'.*'A graph plot of temperature against time.'"):
        tokenize_sample(TWO_TURNS, tiny_tokenizer, PER_IMAGE, chat_template=cut)
    # a template without {% generation %} whose turns end with no special token: nothing to stop on
    plain = "{%- for m in messages -%}{{ m['content'] }}{%- endfor -%}"
    with pytest.raises(LabelMaskError, match="no special token"):
        tokenize_sample(TWO_TURNS, tiny_tokenizer, PER_IMAGE, chat_template=plain)
    # ChatML's end marker is not a token of the tiny tokenizer: caught, not trained on
    with pytest.raises(LabelMaskError, match="two-turns"):
        tokenize_sample(TWO_TURNS, tiny_tokenizer, PER_IMAGE, chat_template="chatml")


def test_truncation_never_cuts_image_or_target(tiny_tokenizer):
    full = tokenize_sample(TWO_TURNS, tiny_tokenizer, PER_IMAGE, chat_template="plain")
    runs_end = [i + 1 for i in range(full["length"]) if full["labels"][i] != IGNORE_INDEX
                and (i + 1 == full["length"] or full["labels"][i + 1] == IGNORE_INDEX)]
    first_end, last_end = runs_end
    # one token short: the trailing newline goes, both turns stay whole
    item = tokenize_sample(TWO_TURNS, tiny_tokenizer, PER_IMAGE, max_length=full["length"] - 1, chat_template="plain")
    assert item["length"] == last_end and item["truncated"]
    # the second answer does not fit whole: it goes entirely, the first stays
    item = tokenize_sample(TWO_TURNS, tiny_tokenizer, PER_IMAGE, max_length=last_end - 1, chat_template="plain")
    assert item["length"] == first_end and len(supervised_runs(item)) == 1
    with pytest.raises(DroppedSample) as dropped:
        tokenize_sample(TWO_TURNS, tiny_tokenizer, PER_IMAGE, max_length=first_end - 1, chat_template="plain")
    assert dropped.value.reason == DROP_TARGET and dropped.value.sample_id == "two-turns"
    image_end = max(i for i, t in enumerate(full["input_ids"]) if t == tiny_tokenizer.convert_tokens_to_ids("<image>")) + 1
    with pytest.raises(DroppedSample) as dropped:
        tokenize_sample(TWO_TURNS, tiny_tokenizer, PER_IMAGE, max_length=image_end - 2, chat_template="plain")
    assert dropped.value.reason == DROP_IMAGE


def test_sample_tokenizer_counts_drops(tiny_tokenizer):
    short = make_sample("short", "<image>\nType?", "Graph Plot", "a.png")
    long = make_sample("long", "<image>\nDescribe.", " ".join(["word"] * 200), "b.png")
    tokenize = sample_tokenizer(tiny_tokenizer, 16, max_length=64, chat_template="plain")
    items = tokenize.tokenize_all([short, long, long, make_sample("img", "<image>\nx", "y", "c.png")])
    assert [i["id"] for i in items] == ["short", "img"]
    assert tokenize.dropped == {DROP_TARGET: 2}
    tokenize = sample_tokenizer(tiny_tokenizer, 80, max_length=64, chat_template="plain")
    assert tokenize(short) is None and tokenize.dropped == {DROP_IMAGE: 1}


def test_prompt_for_generation(tiny_tokenizer):
    item = Renderer(tiny_tokenizer, "plain", image_tokens=PER_IMAGE).prompt(TWO_TURNS)
    text = tiny_tokenizer.decode(item["input_ids"])
    assert text.endswith("USER: How many curves?\nASSISTANT:") and "Three." not in text
    assert item["input_ids"].count(tiny_tokenizer.convert_tokens_to_ids("<image>")) == PER_IMAGE


def test_malformed_samples(tiny_tokenizer):
    bad_order = {"id": "o", "conversations": [{"from": "gpt", "value": "x"}, {"from": "human", "value": "y"}]}
    with pytest.raises(ScituneError, match="sample 'o': turns must alternate"):
        tokenize_sample(bad_order, tiny_tokenizer, PER_IMAGE, chat_template="plain")
    mismatch = make_sample("m", "no placeholder", "x", "a.png")
    with pytest.raises(ScituneError, match="sample 'm': 0 <image> placeholder"):
        tokenize_sample(mismatch, tiny_tokenizer, PER_IMAGE, chat_template="plain")


# ---------------------------------------------------------------- one rendering for every path

SNAPSHOTS = Path(__file__).parent / "snapshots"
TEMPLATES = ("plain", "vicuna_v1", "chatml", "llama2")
SNAPSHOT_SAMPLE = {
    "id": "snapshot",
    "image": "fig.png",
    "conversations": [
        {"from": "human", "value": "What type of figure is this?\n<image>"},
        {"from": "gpt", "value": "A graph plot."},
        {"from": "human", "value": "How many curves?"},
        {"from": "gpt", "value": "Three."},
    ],
}


def _tokenizer_for(template, tiny_tokenizer, smollm2_tokenizer):
    return smollm2_tokenizer if template == "chatml" else tiny_tokenizer


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("sample", [TWO_TURNS, make_sample("one", "<image>\nWhat type of figure is this?", "Bar Chart", "a.png"),
                                    make_sample("text", "Which is larger, 2 or 3?", "3")], ids=["two-turns", "one-turn", "text-only"])
def test_prompt_ids_equal_training_ids_up_to_the_first_supervised_token(template, sample, tiny_tokenizer, smollm2_tokenizer):
    tokenizer = _tokenizer_for(template, tiny_tokenizer, smollm2_tokenizer)
    renderer = Renderer(tokenizer, template, image_tokens=PER_IMAGE)
    # the prompt for the first answer: the conversation up to the first gpt turn
    first = {**sample, "conversations": sample["conversations"][:2]}
    train = renderer.train(first)
    start = next(i for i, label in enumerate(train["labels"]) if label != IGNORE_INDEX)
    prompt = renderer.prompt(first)
    assert prompt["input_ids"] == train["input_ids"][:start]
    # and for the last answer of a multi-turn sample: everything before its supervised span
    full = renderer.train(sample)
    spans = supervised_runs(full)
    last_start = max(i for i in range(len(full["labels"])) if full["labels"][i] != IGNORE_INDEX and full["labels"][i - 1] == IGNORE_INDEX)
    assert renderer.prompt(sample)["input_ids"] == full["input_ids"][:last_start]
    # option scoring scores exactly the tokens training supervises for that answer
    ids, (continuation,) = renderer.options(sample, [sample["conversations"][-1]["value"]])
    assert ids == full["input_ids"][:last_start] and continuation == spans[-1]


@pytest.mark.parametrize("template", TEMPLATES)
def test_prompt_snapshots(template, tiny_tokenizer, smollm2_tokenizer):
    """The rendered text of a fixed sample per template; an accidental change fails here.
    (Delete the snapshot file to write it anew after a deliberate change.)"""
    renderer = Renderer(_tokenizer_for(template, tiny_tokenizer, smollm2_tokenizer), template, image_tokens=PER_IMAGE)
    rendered = (
        "=== training ===\n" + renderer.text(SNAPSHOT_SAMPLE)
        + "\n=== generation prompt ===\n" + renderer.text(SNAPSHOT_SAMPLE, prompt_only=True)
    )
    path = SNAPSHOTS / f"{template}.txt"
    if not path.exists():
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(rendered, encoding="utf-8")
        pytest.fail(f"wrote the new snapshot {path}; check it and run again")
    assert rendered == path.read_text(encoding="utf-8")


def test_image_placement_front_is_llava_and_keep_keeps(tiny_tokenizer):
    front = Renderer(tiny_tokenizer, "plain", image_tokens=PER_IMAGE).text(SNAPSHOT_SAMPLE)
    kept = Renderer(tiny_tokenizer, "plain", image_tokens=PER_IMAGE, image_placement="keep").text(SNAPSHOT_SAMPLE)
    assert "USER: <image>\nWhat type of figure is this?\n" in front
    assert "USER: What type of figure is this?\n<image>\n" in kept
    with pytest.raises(ScituneError, match="image placement"):
        Renderer(tiny_tokenizer, "plain", image_tokens=PER_IMAGE, image_placement="middle")


def test_prompt_longer_than_the_positions_is_an_error(tiny_tokenizer):
    renderer = Renderer(tiny_tokenizer, "plain", max_length=40, image_tokens=PER_IMAGE)
    long = make_sample("long", "<image>\n" + "word " * 100, "x", "a.png")
    with pytest.raises(ScituneError, match="sample 'long': the prompt is .* exceeds the model's 40 positions"):
        renderer.prompt(long)
