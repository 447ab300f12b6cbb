"""The one tiny model of the test suite: `build_tiny` builds a fresh one (for a test that trains
or changes it), and the session fixture `tiny` (tests/conftest.py) is one built and saved once,
for the tests that only read it; `save_serving_checkpoints` saves the tiny model with the weights
and the LoRA adapter that the serving tests answer with (the session fixture `checkpoints`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple


class Tiny(NamedTuple):
    """A tiny preset model in eval mode, its processor, and the folder it was saved to."""

    model: Any
    processor: Any
    path: Path


def build_tiny(texts=None, **settings):
    """`(model, processor)` of the tiny preset (random weights, fp32, seeded by `seed`); `settings`
    are other ModelConfig fields (vocab_size, projector, seed), `texts` what its BPE tokenizer
    is trained on."""
    from scitune.config import ModelConfig
    from scitune.model import build_model

    return build_model(ModelConfig(preset="tiny", **settings), texts=texts)


def save_tiny(folder: Path) -> Tiny:
    """Builds a tiny model and saves it to `folder` (safetensors)."""
    from scitune.model import save_model

    model, processor = build_tiny()
    model.eval()
    return Tiny(model, processor, save_model(model, processor, folder))


def save_serving_checkpoints(root: Path) -> dict[str, Path]:
    """{"tiny": a random-init tiny checkpoint, "lora": a LoRA adapter folder on it (random
    non-zero adapter weights, so it answers differently), "merged": that adapter merged}.

    The weight matrices are drawn wider than the default initialisation (std 0.1), so that the
    answers differ from prompt to prompt: with the default one the random model answers every
    prompt with the same repeated token, and a server that swapped answers between requests
    would pass the tests."""
    import torch
    from peft import LoraConfig, get_peft_model

    from scitune.model import save_model

    torch.manual_seed(0)
    model, processor = build_tiny()
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() == 2:
                param.normal_(0, 0.1)
    base = save_model(model, processor, root / "tiny")
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    for config in peft_model.peft_config.values():
        config.base_model_name_or_path = str(base.resolve())
    adapter = save_model(peft_model, processor, root / "lora")
    merged = save_model(peft_model.merge_and_unload(), processor, root / "merged")
    return {"tiny": base, "lora": adapter, "merged": merged}
