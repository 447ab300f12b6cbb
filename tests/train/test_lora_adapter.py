"""A LoRA stage's adapter folder names its base, so plain peft loads it and gets the final model."""

import json

import torch
from peft import AutoPeftModel, PeftModel
from safetensors.torch import load_file
from transformers import LlavaForConditionalGeneration

from scitune.config import load_recipe
from scitune.train.run import run_recipe

from .data import write_dataset, write_recipe


def test_adapter_records_its_base_and_loads_with_peft(tmp_path):
    train, images = write_dataset(tmp_path / "data", n=8, text_only=2)
    recipe = write_recipe(
        tmp_path / "r.yaml", train, images, tmp_path / "run",
        align={"epochs": 1}, instruct={"stage": {"name": "instruct", "lora": True, "lora_config": {"r": 4, "alpha": 8}}, "epochs": 1},
    )
    run_recipe(load_recipe(str(recipe)))
    stage = tmp_path / "run" / "instruct"
    config = json.loads((stage / "adapter" / "adapter_config.json").read_text())
    base = config["base_model_name_or_path"]
    assert base and (stage / "base").resolve() == type(stage)(base)
    model = PeftModel.from_pretrained(LlavaForConditionalGeneration.from_pretrained(base), str(stage / "adapter"))
    merged = model.merge_and_unload().state_dict()
    final = load_file(str(stage / "final" / "model.safetensors"))
    key = "model.language_model.layers.0.self_attn.q_proj.weight"
    saved = next(k for k in final if k.endswith("layers.0.self_attn.q_proj.weight"))
    torch.testing.assert_close(merged[key], final[saved], atol=1e-5, rtol=0)
    auto = AutoPeftModel.from_pretrained(str(stage / "adapter"))  # the base found from the adapter alone
    assert isinstance(auto.get_base_model(), LlavaForConditionalGeneration)
    torch.testing.assert_close(auto.merge_and_unload().state_dict()[key], final[saved], atol=1e-5, rtol=0)
    base_weights = load_file(str(stage / "base" / "model.safetensors"))
    assert not torch.allclose(base_weights[saved], final[saved])  # the adapter changed the weights
