"""The families' own turn formats (`gemma` for Gemma 3, `idefics` for Idefics3 and SmolVLM): the
text follows the family's format, only the answer and its turn-end marker are supervised, prompt
ids equal training ids up to the answer, generation stops on the turn end, and a template whose
turn markers the vocabulary lacks is refused in one line."""

from __future__ import annotations

import pytest

from scitune.config import ModelConfig
from scitune.errors import ScituneError
from scitune.model import build_model
from scitune.prompting import IGNORE_INDEX, ImageLoader, Renderer
from tests.model.helpers import figure

CASES = [("tiny-gemma3", "gemma", "<end_of_turn>"), ("tiny-idefics3", "idefics", "<end_of_utterance>"), ("tiny-smolvlm", "idefics", "<end_of_utterance>")]
SAMPLE = {
    "id": "s",
    "image": "f.png",
    "conversations": [
        {"from": "human", "value": "<image>\nWhat is shown?"},
        {"from": "gpt", "value": "A bar chart."},
        {"from": "human", "value": "How many bars?"},
        {"from": "gpt", "value": "Three."},
    ],
}


@pytest.mark.parametrize("preset,template,end", CASES)
def test_family_template_text_labels_and_prompt(tmp_path, preset, template, end):
    figure(2, (40, 40)).save(tmp_path / "f.png")
    model, processor = build_model(ModelConfig(preset=preset, vocab_size=300, chat_template=template))
    tokenizer = processor.tokenizer
    renderer = Renderer(processor, images=ImageLoader(processor.image_processor, tmp_path))
    text = renderer.text(SAMPLE)
    if template == "gemma":
        assert text.startswith(tokenizer.bos_token + "<start_of_turn>user\n<start_of_image>\nWhat is shown?<end_of_turn>\n")
        assert "<start_of_turn>model\nA bar chart.<end_of_turn>\n<start_of_turn>user\nHow many bars?" in text
    else:
        assert text.startswith(tokenizer.bos_token + "User: <image>\nWhat is shown?<end_of_utterance>\nAssistant: A bar chart.<end_of_utterance>\n")
    item = renderer.train(SAMPLE)
    supervised = [t for t in item["labels"] if t != IGNORE_INDEX]
    decoded = tokenizer.decode(supervised, skip_special_tokens=False).replace(" ", "")
    assert decoded == f"Abarchart.{end}Three.{end}"
    first = next(i for i, label in enumerate(item["labels"]) if label != IGNORE_INDEX)
    one_turn = {**SAMPLE, "conversations": SAMPLE["conversations"][:2]}
    assert renderer.prompt(one_turn)["input_ids"] == renderer.train(one_turn)["input_ids"][:first]
    from scitune.inference.engine import Engine

    assert tokenizer.convert_tokens_to_ids(end) in Engine(model, processor, image_root=tmp_path).stop_ids


def test_a_template_whose_turn_markers_the_vocabulary_lacks_is_refused():
    with pytest.raises(ScituneError, match=r"^chat_template 'gemma': the tokenizer has no <start_of_turn>, <end_of_turn> token"):
        build_model(ModelConfig(preset="tiny", vocab_size=300, chat_template="gemma"))


# a family's own template in the style hub checkpoints ship: no {% generation %} blocks
NATIVE_GEMMA = (
    "{{ bos_token }}{% for m in messages %}<start_of_turn>{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n"
    "{{ m['content'] if m['content'] is string else '' }}<end_of_turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)


def test_a_checkpoint_whose_template_cannot_mask_labels_gets_its_familys_format(tmp_path, caplog):
    import logging

    from scitune.model import save_model
    from scitune.model.build import set_chat_template

    model, processor = build_model(ModelConfig(preset="tiny-gemma3", vocab_size=300, chat_template="gemma"))
    processor.tokenizer.chat_template = processor.chat_template = NATIVE_GEMMA
    native = save_model(model, processor, tmp_path / "native")
    with caplog.at_level(logging.INFO, logger="scitune"):
        _, loaded = build_model(ModelConfig(checkpoint=str(native), preset=None))
    assert "{%- generation -%}" in loaded.tokenizer.chat_template and "<start_of_turn>model" in loaded.tokenizer.chat_template
    assert "using scitune's 'gemma' template" in caplog.text
    # a template that marks assistant turns is kept as the checkpoint has it
    set_chat_template(processor, "gemma", "gemma3")
    kept = processor.tokenizer.chat_template + "{# the checkpoint's own #}"
    processor.tokenizer.chat_template = processor.chat_template = kept
    marked = save_model(model, processor, tmp_path / "marked")
    _, loaded = build_model(ModelConfig(checkpoint=str(marked), preset=None))
    assert loaded.tokenizer.chat_template == kept


def test_image_processor_settings_change_the_image_tokens_and_are_saved(tmp_path):
    from scitune.model import save_model
    from scitune.model.processors import load_processor

    figure(5, (64, 64)).save(tmp_path / "f.png")
    sample = {"id": "s", "image": "f.png", "conversations": [{"from": "human", "value": "<image>\nWhat?"}, {"from": "gpt", "value": "A."}]}

    def image_tokens(processor):
        renderer = Renderer(processor, images=ImageLoader(processor.image_processor, tmp_path))
        return renderer.train(sample)["input_ids"].count(processor.tokenizer.convert_tokens_to_ids("<|image_pad|>"))

    model, default = build_model(ModelConfig(preset="tiny-qwen2.5-vl", vocab_size=300))
    _, capped = build_model(ModelConfig(preset="tiny-qwen2.5-vl", vocab_size=300, image_processor={"max_pixels": 32 * 32}))
    assert image_tokens(default) == 16 and image_tokens(capped) == 4  # 64x64 -> 8x8 patches, 2x2 merged; capped at 32x32
    folder = save_model(model, capped, tmp_path / "m")
    assert image_tokens(load_processor(folder)) == 4


def test_image_processor_settings_the_class_does_not_take_are_refused():
    with pytest.raises(ScituneError, match=r"^model.image_processor: Qwen2VLImageProcessorPil takes no max_tiles \(it takes .*max_pixels"):
        build_model(ModelConfig(preset="tiny-qwen2.5-vl", vocab_size=300, image_processor={"max_tiles": 4}))
    with pytest.raises(ScituneError, match=r"^model.image_processor: a LLaVA model's image size is fixed"):
        build_model(ModelConfig(preset="tiny", vocab_size=300, image_processor={"size": {"height": 64}}))
    with pytest.raises(ScituneError, match=r"image_processor.size: .*not a number"):
        ModelConfig(preset="tiny-qwen2.5-vl", image_processor={"size": {"a": {"b": 1}}})


def test_a_template_without_generation_blocks_is_masked_by_its_prefixes(tmp_path):
    """A hub checkpoint's own template (no {% generation %}): predict, eval and serve use it as it
    is; the answer's tokens are found between the renderings of the turns before and through it."""
    from scitune.inference.engine import Engine
    from scitune.inference.items import EvalItem
    from scitune.prompting.render import LabelMaskError

    figure(2, (40, 40)).save(tmp_path / "f.png")
    model, processor = build_model(ModelConfig(preset="tiny-gemma3", vocab_size=300, chat_template="gemma"))
    processor.tokenizer.chat_template = processor.chat_template = NATIVE_GEMMA
    no_image = {**SAMPLE, "image": None, "conversations": [{**SAMPLE["conversations"][0], "value": "What is shown?"}, *SAMPLE["conversations"][1:]]}
    no_image.pop("image")
    renderer = Renderer(processor, images=ImageLoader(processor.image_processor, tmp_path))
    assert not renderer.marks_turns
    item = renderer.train(no_image)
    supervised = [t for t in item["labels"] if t != IGNORE_INDEX]
    assert processor.tokenizer.decode(supervised, skip_special_tokens=False).replace(" ", "") == "Abarchart.<end_of_turn>Three.<end_of_turn>"
    engine = Engine(model, processor, image_root=tmp_path)
    assert processor.tokenizer.convert_tokens_to_ids("<end_of_turn>") in engine.stop_ids
    scores = engine.score_options(EvalItem(question_id="q", prompt="Which?", options=("A", "Bar Chart")))
    assert len(scores) == 2 and all(s < 0 for s in scores)
    # a template whose prefixes render differently from the whole cannot be masked this way
    processor.tokenizer.chat_template = NATIVE_GEMMA.replace("{% if add_generation_prompt %}<start_of_turn>model\n", "{% if add_generation_prompt %}<start_of_turn>model:\n")
    with pytest.raises(LabelMaskError, match=r"no \{% generation %\} blocks and its renderings"):
        Renderer(processor).train(no_image)


def test_pad_to_square_is_refused_for_a_family_in_one_line():
    from scitune.prompting import set_pad_to_square

    _, processor = build_model(ModelConfig(preset="tiny-qwen2.5-vl", vocab_size=300))
    set_pad_to_square(processor, False)  # nothing to do
    with pytest.raises(ScituneError, match=r"^data.pad_to_square: for LLaVA models only; the Qwen2_5_VLProcessor sizes"):
        set_pad_to_square(processor, True)
