"""A stage of a recipe: what it trains (`StageConfig`, `TRAINABLE_BY_STAGE`), on what data
(`DataConfig`), and how long and fast (`StageRun`).

A stage is data, not code: `TRAINABLE_BY_STAGE` says what each stage trains, and one function
(`scitune.model.stages.apply_stage`) applies it.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from scitune.config.fields import MAX_BATCH, MAX_STEPS, MAX_TOKENS, Bool, Float, Int, Section, Str, StrList, fail, section

STAGES = ("align", "instruct")
ON_BAD_RECORD = ("fail", "skip")
SCHEDULERS = ("cosine", "linear", "constant")
INIT_FROM = ("projector", "model")
_MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@section("lora_config")
class LoraConfig(Section):
    """LoRA adapters on the language model (a stage with `lora: true`)."""

    r: Int = Field(default=16, gt=0, le=4096, description="adapter rank")
    alpha: Int = Field(default=32, gt=0, description="scaling numerator (scale = alpha / r)")
    dropout: Float = Field(default=0.05, ge=0, lt=1, description="dropout on the adapter's input")
    target_modules: StrList = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        description="module names inside the language model; matched only under `language_model` "
        "(peft's plain `q_proj` would also match the CLIP vision tower's attention layers)",
    )

    @field_validator("target_modules")
    @classmethod
    def _module_names(cls, modules: list[str]) -> list[str]:
        if not modules or not all(_MODULE_NAME.match(m) for m in modules):
            raise fail(f"expected a non-empty list of module names such as q_proj, got {modules!r}")
        return modules


@dataclasses.dataclass(frozen=True)
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


@section("stage")
class StageConfig(Section):
    """What a stage trains: `name` picks the base plan (align: the projector; instruct: the
    projector and the LLM)."""

    name: Literal["align", "instruct"] = Field(default="align", description="the stage's base plan; in the mapping form, its key")
    lora: Bool = Field(default=False, description="train LoRA adapters on the LLM instead of its full weights (instruct only)")
    lora_config: LoraConfig = Field(default_factory=LoraConfig, description="the adapters, when `lora` is true")
    tune_vision: Bool = Field(default=False, description="also train the vision tower")

    @model_validator(mode="after")
    def _lora_needs_the_llm(self) -> StageConfig:
        if self.lora and not TRAINABLE_BY_STAGE[self.name].language_model:
            raise fail(f"stage {self.name!r} keeps the LLM frozen, so lora=true does not apply", at=("lora",))
        return self

    @property
    def trainable(self) -> Trainable:
        plan = TRAINABLE_BY_STAGE[self.name]
        return dataclasses.replace(plan, vision_tower=plan.vision_tower or self.tune_vision)


@section("data")
class DataConfig(Section):
    """A stage's training data: LLaVA conversation JSON/JSONL and the folder its images are in."""

    train: Str = Field(default="", description="LLaVA conversations (.json or .jsonl)")
    images: Str = Field(default="", description="the folder the conversations' image paths are relative to")
    max_length: Int = Field(default=512, gt=0, le=MAX_TOKENS, description="tokens per sample, image tokens included")
    pad_to_square: Bool = Field(
        default=False,
        description="pad wide figures to a square (the processor's mean colour) instead of centre-cropping them; "
        "stored in the saved processor, so evaluation and serving pad the same way",
    )
    image_placement: Literal["front", "keep"] = Field(
        default="front",
        description='"front": each turn\'s `<image>` moved to its start, as LLaVA trains; "keep": where the file puts it',
    )
    group_by_length: Bool = Field(default=False, description="batches of samples of similar lengths")
    group_by_modality: Bool = Field(
        default=False,
        description="LLaVA's modality-length grouping: samples with images and text-only samples fill separate "
        "global batches, each of similar lengths (implies length grouping)",
    )
    packing: Bool = Field(
        default=False,
        description="pack each micro-batch's samples into few rows: position ids restart per sample, attention "
        "stays inside it; same loss, less padding",
    )
    num_workers: Int = Field(
        default=0, ge=0, le=64,
        description="DataLoader worker processes that render samples and decode images (0: in the training process)",
    )
    on_bad_record: Literal["fail", "skip"] = Field(
        default="fail", description='"fail": list the bad records and stop; "skip": drop and count them'
    )
    fail_on_overlap_with: StrList = Field(
        default_factory=list,
        description="leakage guard: evaluation sets (as `scitune data overlap --against` takes them; `PATH=IMAGES` "
        "for their images) that the training figures and texts must not overlap; training refuses to start when they do",
    )


@section("stage")
class StageRun(Section):
    """One stage of a recipe: what trains (`stage`), on what (`data`), and how long and fast."""

    stage: StageConfig = Field(default_factory=StageConfig, description="what the stage trains")
    data: DataConfig = Field(default_factory=DataConfig, description="what it trains on")
    init_from: Literal["projector", "model"] | None = Field(
        default=None,
        description="a later stage: start from the previous stage's projector on a fresh base (SciTune) or from its whole model",
    )
    epochs: Float = Field(default=1.0, gt=0, le=1e6, description="passes over the data")
    max_steps: Int | None = Field(
        default=None, gt=0, le=MAX_STEPS, description="stop after this many optimizer steps (null: the epochs decide)"
    )
    batch_size: Int = Field(default=8, ge=1, le=MAX_BATCH, description="samples per process and micro-step")
    grad_accum: Int = Field(default=1, ge=1, le=MAX_BATCH, description="micro-steps per optimizer step")
    lr: Float = Field(default=2e-3, gt=0, description="peak learning rate")
    projector_lr: Float | None = Field(
        default=None, gt=0, description="peak learning rate of the projector (LLaVA-1.5's mm_projector_lr); null: `lr`"
    )
    vision_lr: Float | None = Field(
        default=None, gt=0, description="peak learning rate of the vision tower (needs `stage.tune_vision`); null: `lr`"
    )
    weight_decay: Float = Field(default=0.0, ge=0, description="AdamW weight decay")
    warmup_ratio: Float = Field(default=0.03, ge=0, lt=1, description="share of the steps spent warming up")
    scheduler: Literal["cosine", "linear", "constant"] = Field(default="cosine", description="decay after warmup")
    max_grad_norm: Float | None = Field(default=1.0, ge=0, description="gradient clipping norm (0 or null: no clipping)")
    gradient_checkpointing: Bool = Field(default=False, description="recompute activations in the backward pass")
    feature_cache: Bool = Field(default=False, description="frozen vision tower: compute each image's features once")

    @model_validator(mode="after")
    def _consistent(self) -> StageRun:
        if self.feature_cache and self.stage.trainable.vision_tower:
            raise fail("needs a frozen vision tower (tune_vision is on)", at=("feature_cache",))
        if self.vision_lr is not None and not self.stage.trainable.vision_tower:
            raise fail("the vision tower is frozen in this stage (set stage.tune_vision: true)", at=("vision_lr",))
        return self
