"""Typed configuration: model, and what each stage trains.

A stage is data, not code: `TRAINABLE_BY_STAGE` says what each stage trains, and one function
(`scitune.model.stages.apply_stage`) applies it. Recipes (YAML) and `key=value` overrides fill
these dataclasses; unknown keys are errors, not silently ignored.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from scitune.errors import ScituneError

PROJECTORS = ("linear", "mlp2x_gelu")
STAGES = ("align", "instruct")


@dataclass
class ModelConfig:
    """Which model to build.

    Either `preset` ("tiny", "smollm2-135m"), or `vision_tower` + `language_model` (local
    folders or hub ids; `gguf_file` names a GGUF file inside the `language_model` folder).
    """

    preset: str | None = "tiny"
    vision_tower: str | None = None
    language_model: str | None = None
    gguf_file: str | None = None
    projector: str = "linear"  # "linear" (SciTune, LLaVA-1) or "mlp2x_gelu" (LLaVA-1.5)
    vision_feature_layer: int = -2
    chat_template: str | None = None  # a name in scitune.data.chat_templates; None: the LM's own or "vicuna_v1"
    dtype: str = "auto"  # "auto" = float32 on CPU, bfloat16 on GPU; or float32 / bfloat16 / float16
    # tiny preset only: the BPE tokenizer is trained on these texts (None: a built-in science text)
    vocab_size: int = 1024
    seed: int = 0

    def __post_init__(self) -> None:
        if self.projector not in PROJECTORS:
            raise ScituneError(f"model.projector: unknown projector {self.projector!r}; expected one of {', '.join(PROJECTORS)}")
        if self.preset is None and not (self.vision_tower and self.language_model):
            raise ScituneError("model: give a preset, or both vision_tower and language_model")


@dataclass
class LoraConfig:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    # Module names inside the language model; matched only under `language_model` (peft's plain
    # "q_proj" would also match the CLIP vision tower's attention layers).
    target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )


@dataclass(frozen=True)
class Trainable:
    """What one stage trains; everything else is frozen."""

    projector: bool
    language_model: bool
    vision_tower: bool = False


# The one place that says what each stage trains (options `lora` and `tune_vision` refine it).
TRAINABLE_BY_STAGE = {
    "align": Trainable(projector=True, language_model=False),
    "instruct": Trainable(projector=True, language_model=True),
}


@dataclass
class StageConfig:
    """What a stage trains: `name` picks the base plan; `lora` trains LoRA adapters on the LLM
    instead of its full weights (instruct only); `tune_vision` also trains the vision tower."""

    name: str = "align"
    lora: bool = False
    lora_config: LoraConfig = field(default_factory=LoraConfig)
    tune_vision: bool = False

    def __post_init__(self) -> None:
        if self.name not in STAGES:
            raise ScituneError(f"stage.name: unknown stage {self.name!r}; expected one of {', '.join(STAGES)}")
        if isinstance(self.lora_config, dict):
            self.lora_config = from_dict(LoraConfig, self.lora_config, "stage.lora_config")
        if self.lora and not TRAINABLE_BY_STAGE[self.name].language_model:
            raise ScituneError(f"stage {self.name!r} keeps the LLM frozen, so lora=true does not apply")

    @property
    def trainable(self) -> Trainable:
        plan = TRAINABLE_BY_STAGE[self.name]
        return dataclasses.replace(plan, vision_tower=plan.vision_tower or self.tune_vision)


def from_dict(cls: type, values: dict[str, Any], where: str):
    """Builds dataclass `cls` from a dict, naming unknown keys as errors."""
    if not isinstance(values, dict):
        raise ScituneError(f"{where}: expected a mapping, got {type(values).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ScituneError(f"{where}: unknown key(s) {', '.join(unknown)}; expected some of {', '.join(sorted(names))}")
    return cls(**values)
