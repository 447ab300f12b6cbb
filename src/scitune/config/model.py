"""The `model` section: which model to build."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from scitune.config.fields import MAX_SEED, MAX_VOCAB, Int, Section, Str, fail, section

PROJECTORS = ("linear", "mlp2x_gelu")
DTYPES = ("auto", "float32", "bfloat16", "float16")


@section("model")
class ModelConfig(Section):
    """Which model to build: a `preset`, or `vision_tower` + `language_model`, or `checkpoint`
    (a model folder of a supported family, e.g. from `scitune model build` or the hub; it wins over `preset`)."""

    preset: Str | None = Field(default="tiny", description='"tiny", "smollm2-135m" or a tiny family ("tiny-qwen2.5-vl", ...); null with `vision_tower` + `language_model`')
    checkpoint: Str | None = Field(default=None, description="a model folder to start from: a saved LLaVA or a checkpoint of a supported family (sets `preset` to null)")
    vision_tower: Str | None = Field(default=None, description="a CLIP vision tower: local folder or hub id")
    language_model: Str | None = Field(default=None, description="a causal LM: local folder or hub id")
    gguf_file: Str | None = Field(default=None, description="a GGUF file inside the `language_model` folder")
    projector: Literal["linear", "mlp2x_gelu"] = Field(
        default="linear", description='"linear" (SciTune, LLaVA-1) or "mlp2x_gelu" (LLaVA-1.5)'
    )
    vision_feature_layer: Int = Field(default=-2, ge=-1000, le=1000, description="the vision layer whose features feed the projector")
    chat_template: Str | None = Field(
        default=None,
        description=(
            "plain, vicuna_v1, llama2, chatml, gemma or idefics (scitune.data.chat_templates); null: a checkpoint's own "
            "if it marks assistant turns with {% generation %}, else its family's (chatml, gemma, idefics); a composed "
            'model: "chatml" for a ChatML vocabulary, else "vicuna_v1"'
        ),
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        default="auto", description='"auto": float32 weights for training (bf16 autocast on GPU), bf16 for GPU inference'
    )
    image_processor: dict[Str, Any] = Field(
        default_factory=dict,
        description=(
            "settings of the model's own image processor, saved with it (a family checkpoint or tiny family preset): "
            "e.g. {max_pixels: 1003520} caps a Qwen-VL figure's image tokens, {size: {longest_edge: 1536}} SmolVLM's tiles; "
            "keys the processor class does not take are refused"
        ),
    )
    vocab_size: Int = Field(default=1024, gt=0, le=MAX_VOCAB, description="tiny preset only: the BPE tokenizer's vocabulary size")
    seed: Int = Field(default=0, ge=0, le=MAX_SEED, description="weight initialisation")

    @model_validator(mode="after")
    def _one_source(self) -> ModelConfig:
        for key in ("preset", "checkpoint", "vision_tower", "language_model", "gguf_file"):
            if getattr(self, key) == "":
                raise fail("must not be empty (leave it out or set null)", at=(key,))
        _check_settings(self.image_processor)
        if self.checkpoint is not None:
            self.preset = None
        elif self.preset is None and not (self.vision_tower and self.language_model):
            raise fail("give a preset, a checkpoint, or both vision_tower and language_model")
        return self


MAX_SETTINGS = 64


def _check_settings(settings: dict[str, Any]) -> None:
    """Image processor settings: at most MAX_SETTINGS keys, each a number, bool, short string, or a
    mapping of those (`size: {longest_edge: 1536}`) or a short list of numbers (`image_mean`)."""
    if len(settings) > MAX_SETTINGS:
        raise fail(f"at most {MAX_SETTINGS} settings, got {len(settings)}", at=("image_processor",))

    def scalar(value: Any) -> bool:
        if isinstance(value, float):
            return value == value and abs(value) != float("inf")
        return isinstance(value, (bool, int)) or (isinstance(value, str) and len(value) <= 200)

    for key, value in settings.items():
        ok = scalar(value) or (
            isinstance(value, dict) and len(value) <= 16 and all(isinstance(k, str) and scalar(v) for k, v in value.items())
        ) or (isinstance(value, list) and len(value) <= 16 and all(scalar(v) for v in value))
        if not ok:
            raise fail(f"{value!r} is not a number, bool, string, or a small mapping or list of those", at=("image_processor", key))
