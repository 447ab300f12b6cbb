"""One input path per model family: the Renderer uses the family's own processor (its image-token
expansion, pixel values and extra inputs) and the collator hands them to the model.

Per family: training ids equal the generation prompt's ids up to the first supervised token;
they and the pixels equal what the family's plain processor gives for the same text and image;
only the answer is supervised; the engine's greedy tokens equal plain `generate` on the saved
folder loaded with AutoModelForImageTextToText + AutoProcessor.

Every family runs here. Without torchvision (the CPU torch wheel), the Qwen-VL, SmolVLM and
LLaVA-OneVision processors are their images-only form (scitune.model.processors)."""

from __future__ import annotations

import pytest
import torch

from scitune.config import ModelConfig
from scitune.inference.engine import Engine
from scitune.inference.items import EvalItem
from scitune.model import build_model, save_model
from scitune.model.processors import has_torchvision, load_processor
from scitune.prompting import IGNORE_INDEX, ImageLoader, PaddingCollator, Renderer, model_inputs
from tests.model.helpers import figure

PRESETS = [
    "tiny-gemma3", "tiny-idefics3", "tiny-smolvlm", "tiny-qwen2-vl", "tiny-qwen2.5-vl", "tiny-qwen3-vl", "tiny-llava-onevision",
    "tiny-llava-next", "tiny-internvl",
]
ANSWER = "A bar chart."


@pytest.fixture(scope="module", params=PRESETS)
def family(request, tmp_path_factory):
    torch.manual_seed(0)
    model, processor = build_model(ModelConfig(preset=request.param, vocab_size=300))
    root = tmp_path_factory.mktemp("images")
    figure(3, (60, 40)).save(root / "wide.png")
    figure(4, (30, 90)).save(root / "tall.png")
    return request.param, model, processor, root


def _sample(image="wide.png", answer=ANSWER):
    return {
        "id": "s1",
        "image": image,
        "conversations": [{"from": "human", "value": "<image>\nWhat type of figure is this?"}, {"from": "gpt", "value": answer}],
    }


def _plain(processor, text, root, image):
    from PIL import Image

    with Image.open(root / image) as img:
        return processor(text=[text], images=[[img.convert("RGB")]], return_tensors="pt")


def test_training_ids_and_pixels_equal_the_family_processor_and_only_the_answer_is_supervised(family):
    _, _, processor, root = family
    loader = ImageLoader(processor.image_processor, root)
    renderer = Renderer(processor, images=loader)
    for image in ("wide.png", "tall.png"):
        sample = _sample(image)
        item = renderer.train(sample)
        plain = _plain(processor, renderer.text(sample), root, image)
        assert item["input_ids"] == plain["input_ids"][0].tolist()
        prompt = renderer.prompt(sample)
        first = next(i for i, label in enumerate(item["labels"]) if label != IGNORE_INDEX)
        assert item["input_ids"][:first] == prompt["input_ids"]
        supervised = [t for t in item["labels"] if t != IGNORE_INDEX]
        decoded = processor.tokenizer.decode(supervised, skip_special_tokens=False)
        assert decoded.strip() == ANSWER + processor.tokenizer.eos_token
        family_ = renderer.family
        collate = PaddingCollator(processor.tokenizer.pad_token_id, loader, image_inputs=family_.image_inputs)
        batch = collate([item])
        assert torch.equal(batch["pixel_values"], plain["pixel_values"])
        for key in (*family_.image_inputs, family_.token_type_input):
            if key and key in plain:
                assert torch.equal(batch[key], plain[key]), key


def test_a_training_batch_runs_through_the_model_with_its_family_inputs(family):
    _, model, processor, root = family
    loader = ImageLoader(processor.image_processor, root)
    renderer = Renderer(processor, images=loader)
    collate = PaddingCollator(processor.tokenizer.pad_token_id, loader, image_inputs=renderer.family.image_inputs)
    items = [renderer.train(_sample("wide.png")), renderer.train(_sample("tall.png", "A scatter plot of three samples."))]
    batch = model_inputs(collate(items))
    model.train()
    loss = model(**batch).loss
    alone = [model(**model_inputs(collate([item]))).loss for item in items]
    assert torch.isfinite(loss)
    # the mean over all supervised tokens equals the per-sample losses weighted by their token counts
    counts = [sum(t != IGNORE_INDEX for t in item["labels"][1:]) for item in items]
    weighted = sum(a * c for a, c in zip(alone, counts)) / sum(counts)
    assert torch.allclose(loss, weighted, atol=1e-5)


def test_engine_greedy_tokens_equal_plain_generate_on_the_saved_folder(family, tmp_path):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    _, model, processor, root = family
    folder = save_model(model, processor, tmp_path / "model")
    plain_model = AutoModelForImageTextToText.from_pretrained(folder).eval()
    # plain AutoProcessor where torchvision is installed; without it (a CPU torch), the family's
    # own processor class in its images-only form (scitune.model.processors)
    plain_processor = AutoProcessor.from_pretrained(folder) if has_torchvision() else load_processor(folder)
    engine = Engine(plain_model, plain_processor, image_root=root)
    questions = ["What type of figure is this?", "Describe the figure in detail please."]
    items = [EvalItem(question_id=str(i), prompt=f"<image>\n{q}", images=(image,)) for i, (q, image) in enumerate(zip(questions, ("wide.png", "tall.png")))]
    texts = engine.generate(items, batch_size=2, max_new_tokens=6)
    assert all(texts)  # random weights, but some tokens before an end token
    for item, question, text in zip(items, questions, texts):
        sample = item.sample()
        prompt = plain_processor.tokenizer.apply_chat_template(
            [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}],
            tokenize=False, add_generation_prompt=True,
        )
        assert prompt == engine.renderer.text(sample, prompt_only=True)
        inputs = _plain(plain_processor, prompt, root, item.images[0])
        with torch.inference_mode():
            out = plain_model.generate(**inputs, do_sample=False, max_new_tokens=6, eos_token_id=engine.stop_ids,
                                       pad_token_id=plain_processor.tokenizer.pad_token_id)
        expected = plain_processor.tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()
        assert text == expected


def test_option_scoring_equals_the_full_sequence_likelihood(family):
    preset, model, processor, root = family
    engine = Engine(model, processor, image_root=root)
    item = EvalItem(question_id="q", prompt="<image>\nWhich type is it?", images=("wide.png",), options=("A", "Bar Chart"))
    scores = engine.score_options(item)
    loader = ImageLoader(processor.image_processor, root)
    renderer = Renderer(processor, images=loader)
    collate = PaddingCollator(processor.tokenizer.pad_token_id, loader, image_inputs=renderer.family.image_inputs)
    model.eval()
    for option, score in zip(item.options, scores):
        full = renderer.train({**item.sample(), "conversations": item.sample()["conversations"] + [{"from": "gpt", "value": option}]})
        prompt_length = len(renderer.prompt(item.sample())["input_ids"])
        continuation = renderer.options(item.sample(), [option])[1][0]
        batch = model_inputs(collate([full]))
        batch.pop("labels")
        with torch.inference_mode():
            logits = model(**batch).logits[0].float().log_softmax(-1)
        expected = sum(logits[prompt_length - 1 + k, token] for k, token in enumerate(continuation))
        assert abs(float(expected) - score) < 1e-4
