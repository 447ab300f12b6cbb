"""The GPU recipes of the model families parse, with SciTune's hyper-parameters, and each one's
tiny CPU twin (`model.preset=tiny-... model.checkpoint=null`) builds with the recipe's chat
template and renders a training sample whose supervised tokens are exactly the answer."""

from __future__ import annotations

import pytest

from scitune.config import load_recipe
from scitune.model.family_presets import FAMILY_PRESETS, tiny_family_model, tiny_family_tokenizer
from scitune.prompting import IGNORE_INDEX, Renderer
from scitune.settings import PROJECT_ROOT

TWINS = {
    "qwen2.5-vl-7b.yaml": "tiny-qwen2.5-vl",
    "smolvlm-256m.yaml": "tiny-smolvlm",
    "llava-onevision-0.5b.yaml": "tiny-llava-onevision",
    "gemma3-4b.yaml": "tiny-gemma3",
}


@pytest.mark.parametrize("name", TWINS)
def test_family_recipe_has_scitune_hyper_parameters_and_a_tiny_twin(name):
    path = PROJECT_ROOT / "recipes" / name
    recipe = load_recipe(str(path))
    align, instruct = recipe.stages
    assert recipe.model.checkpoint and recipe.model.chat_template
    assert (align.lr, align.epochs, align.batch_size * align.grad_accum) == (2e-3, 1, 16)
    assert (instruct.lr, instruct.batch_size * instruct.grad_accum, instruct.init_from) == (2e-5, 64, "projector")
    assert not align.data.packing and not instruct.data.packing
    twin = load_recipe(str(path), [f"model.preset={TWINS[name]}", "model.checkpoint=null", "model.vocab_size=300"])
    model_type = FAMILY_PRESETS[twin.model.preset]
    tokenizer = tiny_family_tokenizer(model_type, vocab_size=300, chat_template=twin.model.chat_template)
    model = tiny_family_model(model_type, tokenizer)
    assert model.config.model_type == model_type
    sample = {"id": "t", "conversations": [{"from": "human", "value": "Which is larger?"}, {"from": "gpt", "value": "The answer is B."}]}
    assert _supervised(Renderer(tokenizer, image_tokens=1), tokenizer, sample).startswith("The answer is B.")
    from scitune.model import build_model

    model, processor = build_model(twin.model)
    assert _supervised(Renderer(processor), processor.tokenizer, sample).startswith("The answer is B.")


def _supervised(renderer, tokenizer, sample) -> str:
    item = renderer.train(sample)  # raises LabelMaskError unless the spans are the answer + end marker
    return tokenizer.decode([t for t in item["labels"] if t != IGNORE_INDEX]).strip()
