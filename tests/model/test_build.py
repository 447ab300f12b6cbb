import subprocess
import sys

import pytest
import torch
from transformers import (
    CLIPVisionConfig,
    CLIPVisionModel,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
    SiglipVisionConfig,
    SiglipVisionModel,
)

from scitune.cli import main
from scitune.config import ModelConfig
from scitune.errors import ScituneError
from scitune.model import build_model, image_tokens_per_image
from scitune.model.tokenizer import train_bpe_tokenizer

from .helpers import batch, figure


@pytest.fixture(scope="module")
def tiny():
    return build_model(ModelConfig(preset="tiny"))


def test_tiny_shapes_and_tokens(tiny):
    model, processor = tiny
    tok = processor.tokenizer
    assert image_tokens_per_image(model.config) == (64 // 16) ** 2 == 16
    assert model.config.vision_feature_layer == -2
    assert model.config.vision_feature_select_strategy == "default"  # CLS dropped
    assert tok.pad_token_id not in (tok.bos_token_id, tok.eos_token_id)
    assert tok.convert_tokens_to_ids("<image>") == model.config.image_token_id
    assert model.get_input_embeddings().num_embeddings == len(tok)
    assert "{% generation %}" in tok.chat_template.replace("{%- generation -%}", "{% generation %}")
    assert processor.chat_template == tok.chat_template
    enc = processor(text=["<image>\nhello"], images=[figure(0)], return_tensors="pt")
    assert int((enc["input_ids"] == model.config.image_token_id).sum()) == 16
    assert next(model.parameters()).dtype == torch.float32


def test_forward_backward(tiny):
    model, processor = tiny
    enc = batch(processor, n=2)
    out = model(**enc)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    model.zero_grad(set_to_none=True)


def test_linear_projector_is_one_affine_map(tiny):
    model, _ = tiny
    proj = model.model.multi_modal_projector
    x = torch.randn(3, 5, model.config.vision_config.hidden_size)
    expected = x @ proj.linear_1.weight.T + proj.linear_1.bias
    torch.testing.assert_close(proj(x), expected)
    assert torch.equal(proj.linear_2.weight, torch.eye(model.config.text_config.hidden_size))


def test_mlp_projector_is_nonlinear():
    model, _ = build_model(ModelConfig(preset="tiny", projector="mlp2x_gelu"))
    assert model.config.projector_hidden_act == "gelu"
    proj = model.model.multi_modal_projector
    x = torch.randn(4, model.config.vision_config.hidden_size)
    assert not torch.allclose(proj(2 * x) - proj(x), proj(x) - proj(0 * x), atol=1e-4)


def test_build_is_seeded():
    a, _ = build_model(ModelConfig(preset="tiny", seed=3))
    b, _ = build_model(ModelConfig(preset="tiny", seed=3))
    c, _ = build_model(ModelConfig(preset="tiny", seed=4))
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


# ---- any HF vision tower + any HF causal LM, from local folders -------------------------------

VISION = {
    "clip": (CLIPVisionModel, CLIPVisionConfig, "default", 16),
    "siglip": (SiglipVisionModel, SiglipVisionConfig, "full", 16),
}
LMS = {"llama": (LlamaForCausalLM, LlamaConfig), "mistral": (MistralForCausalLM, MistralConfig), "qwen2": (Qwen2ForCausalLM, Qwen2Config)}


def _save_vision(tmp_path, kind, image_size=64, patch_size=16):
    model_cls, config_cls, _, _ = VISION[kind]
    cfg = config_cls(
        image_size=image_size, patch_size=patch_size, hidden_size=32, intermediate_size=64,
        num_hidden_layers=2, num_attention_heads=2,
    )
    path = tmp_path / f"vision-{kind}"
    model_cls(cfg).save_pretrained(path)
    return path


def _save_lm(tmp_path, kind, tokenizer):
    model_cls, config_cls = LMS[kind]
    cfg = config_cls(
        vocab_size=len(tokenizer), hidden_size=48, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
    )
    path = tmp_path / f"lm-{kind}"
    model_cls(cfg).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.mark.parametrize("vision_kind,lm_kind", [("clip", "llama"), ("siglip", "mistral"), ("clip", "qwen2")])
def test_any_vision_tower_and_causal_lm(tmp_path, vision_kind, lm_kind):
    # an LM tokenizer without <image> or pad: the builder adds both and resizes the embeddings
    tokenizer = _plain_lm_tokenizer()
    vision_path = _save_vision(tmp_path, vision_kind)
    lm_path = _save_lm(tmp_path, lm_kind, tokenizer)
    model, processor = build_model(
        ModelConfig(preset=None, vision_tower=str(vision_path), language_model=str(lm_path), projector="mlp2x_gelu")
    )
    _, _, strategy, n_tokens = VISION[vision_kind]
    assert model.config.vision_feature_select_strategy == strategy
    assert model.config.text_config.model_type == lm_kind
    assert model.get_input_embeddings().num_embeddings == len(processor.tokenizer) == len(tokenizer) + 2
    enc = processor(text=["<image>\nwhat is plotted?"], images=[figure(1)], return_tensors="pt")
    assert int((enc["input_ids"] == model.config.image_token_id).sum()) == n_tokens
    out = model(**enc, labels=enc["input_ids"])
    assert torch.isfinite(out.loss)
    # the LM's own weights were loaded, not re-initialised
    reference = LMS[lm_kind][0].from_pretrained(lm_path)
    torch.testing.assert_close(
        model.model.language_model.layers[0].mlp.up_proj.weight, reference.model.layers[0].mlp.up_proj.weight
    )


def _plain_lm_tokenizer():
    """A byte-level BPE like a stock LM's: BOS/EOS only, no <image>, no pad token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<s>", "</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    raw.train_from_iterator(["a plot of energy against time"], trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<s>", eos_token="</s>")


# ---- bad input: one line, exit code 2, no traceback ---------------------------------------------


def _cli(args):
    proc = subprocess.run(
        [sys.executable, "-m", "scitune", *args], capture_output=True, text=True, timeout=120
    )
    return proc.returncode, proc.stderr.strip()


def test_unknown_preset_cli():
    code, err = _cli(["model", "build", "--preset", "huge", "--out", "unused"])
    assert code == 2
    from scitune.model.family_presets import FAMILY_PRESETS

    listed = ", ".join(["tiny", "smollm2-135m", *FAMILY_PRESETS])
    assert err == f"scitune: error: unknown preset 'huge'; expected one of {listed}"
    assert "tiny-qwen2.5-vl" in listed and "tiny-gemma3" in listed


def test_missing_model_folder(tmp_path, capsys):
    code = main(["model", "build", "--vision-tower", str(tmp_path / "nope"), "--language-model", "x", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "model folder not found" in err and str(tmp_path / "nope") in err
    assert len(err.splitlines()) == 1


def test_vision_tower_that_is_not_one(tmp_path):
    tokenizer = train_bpe_tokenizer(["x y z"], vocab_size=280)
    lm_path = _save_lm(tmp_path, "llama", tokenizer)
    with pytest.raises(ScituneError, match=r"model_type 'llama' is not a vision tower; expected one of clip"):
        build_model(ModelConfig(preset=None, vision_tower=str(lm_path), language_model=str(lm_path)))


def test_image_size_not_multiple_of_patch(tmp_path):
    tokenizer = train_bpe_tokenizer(["x y z"], vocab_size=280)
    vision_path = _save_vision(tmp_path, "clip", image_size=60, patch_size=16)
    lm_path = _save_lm(tmp_path, "llama", tokenizer)
    code, err = _cli(["model", "build", "--vision-tower", str(vision_path), "--language-model", str(lm_path), "--out", str(tmp_path / "o")])
    assert code == 2
    assert "image_size 60 is not a multiple of patch_size 16" in err and "Traceback" not in err
