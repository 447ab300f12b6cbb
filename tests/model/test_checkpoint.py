import json

import pytest
import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

from scitune.config import LoraConfig, ModelConfig, StageConfig
from scitune.errors import ScituneError
from scitune.model import apply_stage, build_model, load_model, save_model
from scitune.model.checkpoint import load_lora, load_projector, merge_lora, projector_state, save_projector

from .helpers import batch, figure


def _inputs(processor):
    text = processor.tokenizer.apply_chat_template(
        [{"role": "user", "content": "<image>\nWhich series is highest?"}], tokenize=False, add_generation_prompt=True
    )
    return processor(text=[text], images=[figure(7)], return_tensors="pt")


@pytest.mark.parametrize("projector", ["linear", "mlp2x_gelu"])
def test_save_reload_with_plain_transformers(tmp_path, projector):
    model, processor = build_model(ModelConfig(preset="tiny", projector=projector))
    out = save_model(model, processor, tmp_path / "ckpt")
    files = {p.name for p in out.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "processor_config.json"} <= files
    assert not any(name.endswith((".bin", ".pt", ".pkl")) for name in files)
    assert json.loads((out / "config.json").read_text())["architectures"] == ["LlavaForConditionalGeneration"]

    plain = AutoModelForImageTextToText.from_pretrained(out)
    plain_processor = AutoProcessor.from_pretrained(out)
    ours = _inputs(processor)
    theirs = _inputs(plain_processor)
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)  # same chat template, tokens and pixels
    with torch.no_grad():
        assert torch.equal(model(**ours).logits, plain(**theirs).logits)


def test_load_model_and_overwrite_is_atomic(tmp_path):
    model, processor = build_model(ModelConfig(preset="tiny"))
    save_model(model, processor, tmp_path / "ckpt")
    save_model(model, processor, tmp_path / "ckpt")  # replacing an existing checkpoint
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
    loaded, loaded_processor = load_model(tmp_path / "ckpt")
    with torch.no_grad():
        assert torch.equal(model(**_inputs(processor)).logits, loaded(**_inputs(loaded_processor)).logits)


def test_load_model_errors(tmp_path):
    with pytest.raises(ScituneError, match="no config.json"):
        load_model(tmp_path)


def test_projector_round_trip(tmp_path):
    trained, processor = build_model(ModelConfig(preset="tiny", seed=1))
    path = save_projector(trained, tmp_path / "projector.safetensors")
    fresh, _ = build_model(ModelConfig(preset="tiny", seed=2))
    assert not torch.equal(fresh.model.multi_modal_projector.linear_1.weight, trained.model.multi_modal_projector.linear_1.weight)
    load_projector(fresh, path)
    for key, value in projector_state(trained).items():
        assert torch.equal(projector_state(fresh)[key], value)
    # the rest of the later-stage model is untouched: only the projector moved over
    assert not torch.equal(fresh.lm_head.weight, trained.lm_head.weight)
    assert path.stat().st_size < 200_000


def test_projector_mismatch_is_refused(tmp_path):
    linear, _ = build_model(ModelConfig(preset="tiny", projector="linear"))
    mlp, _ = build_model(ModelConfig(preset="tiny", projector="mlp2x_gelu"))
    path = save_projector(linear, tmp_path / "p.safetensors")
    with pytest.raises(ScituneError, match="projector_hidden_act is linear but the model expects gelu"):
        load_projector(mlp, path)


def test_lora_adapter_round_trip_and_merge(tmp_path):
    model, processor = build_model(ModelConfig(preset="tiny", projector="mlp2x_gelu"))
    base_dir = save_model(model, processor, tmp_path / "base")
    peft_model = apply_stage(model, StageConfig(name="instruct", lora=True, lora_config=LoraConfig(r=4, alpha=8, dropout=0.0)))
    optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=5e-2)
    for _ in range(3):
        peft_model(**batch(processor, n=2)).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    peft_model.eval()
    inputs = _inputs(processor)
    with torch.no_grad():
        expected = peft_model(**inputs).logits

    adapter_dir = save_model(peft_model, processor, tmp_path / "adapter")
    assert (adapter_dir / "adapter_config.json").is_file() and not (adapter_dir / "model.safetensors").exists()
    base, _ = load_model(base_dir)
    reloaded = load_lora(base, adapter_dir)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**inputs).logits, expected, rtol=0, atol=1e-5)

    merged = merge_lora(reloaded)
    assert not any("lora_" in n for n, _ in merged.named_parameters())
    merged_dir = save_model(merged, processor, tmp_path / "merged")
    plain = AutoModelForImageTextToText.from_pretrained(merged_dir)
    with torch.no_grad():
        torch.testing.assert_close(plain(**inputs).logits, expected, rtol=0, atol=1e-5)
        # the trained projector came along, not the base's
        base_again, _ = load_model(base_dir)
        assert not torch.allclose(base_again(**inputs).logits, expected, atol=1e-3)
