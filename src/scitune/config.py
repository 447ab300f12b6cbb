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
    folders or hub ids; `gguf_file` names a GGUF file inside the `language_model` folder), or
    `checkpoint`: a saved Llava directory (e.g. from `scitune model build`) to start from.
    """

    preset: str | None = "tiny"
    checkpoint: str | None = None
    vision_tower: str | None = None
    language_model: str | None = None
    gguf_file: str | None = None
    projector: str = "linear"  # "linear" (SciTune, LLaVA-1) or "mlp2x_gelu" (LLaVA-1.5)
    vision_feature_layer: int = -2
    chat_template: str | None = None  # a name in scitune.data.chat_templates; None: the LM's own or "vicuna_v1"
    dtype: str = "auto"  # "auto": float32 weights for training (bf16 autocast on GPU), bf16 for GPU inference
    # tiny preset only: the BPE tokenizer is trained on these texts (None: a built-in science text)
    vocab_size: int = 1024
    seed: int = 0

    def __post_init__(self) -> None:
        if self.projector not in PROJECTORS:
            raise ScituneError(f"model.projector: unknown projector {self.projector!r}; expected one of {', '.join(PROJECTORS)}")
        if self.checkpoint is not None:
            self.preset = None
        elif self.preset is None and not (self.vision_tower and self.language_model):
            raise ScituneError("model: give a preset, a checkpoint, or both vision_tower and language_model")


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
    """Builds dataclass `cls` from a dict, naming unknown keys and ill-typed values as errors.
    Numbers written as YAML strings (`1e-3` is a string in YAML 1.1) are converted."""
    import typing

    if not isinstance(values, dict):
        raise ScituneError(f"{where}: expected a mapping, got {type(values).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ScituneError(f"{where}: unknown key(s) {', '.join(unknown)}; expected some of {', '.join(sorted(names))}")
    hints = typing.get_type_hints(cls)
    return cls(**{key: _coerce(value, hints[key], f"{where}.{key}") for key, value in values.items()})


def _coerce(value: Any, hint: Any, where: str) -> Any:
    import typing

    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, getattr(__import__("types"), "UnionType", None)) else (hint,)
    if value is None:
        if type(None) in options:
            return None
        raise ScituneError(f"{where}: must not be null")
    for option in options:
        if option is bool and isinstance(value, bool):
            return value
        if option in (int, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
            if option is int and float(value) != int(value):
                continue
            return option(value)
        if option in (int, float) and isinstance(value, str):
            try:
                return option(value)
            except ValueError:
                continue
        if option is str and isinstance(value, str):
            return value
        if option is str and isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
    if any(o in (bool, int, float, str) for o in options):
        expected = " or ".join(getattr(o, "__name__", str(o)) for o in options)
        raise ScituneError(f"{where}: {value!r} is not a valid {expected}")
    return value


# ---- training recipes -------------------------------------------------------------------------

ON_BAD_RECORD = ("fail", "skip")
SCHEDULERS = ("cosine", "linear", "constant")
INIT_FROM = ("projector", "model")


@dataclass
class DataConfig:
    """A stage's training data: LLaVA conversation JSON/JSONL and the folder its images are in."""

    train: str = ""
    images: str = ""
    max_length: int = 512
    pad_to_square: bool = False  # pad wide figures to a square instead of center-cropping them
    group_by_length: bool = False
    on_bad_record: str = "fail"  # "fail": list the bad records and stop; "skip": drop and count them

    def __post_init__(self) -> None:
        if self.on_bad_record not in ON_BAD_RECORD:
            raise ScituneError(f"data.on_bad_record: {self.on_bad_record!r}; expected fail or skip")


@dataclass
class StageRun:
    """One stage of a recipe: what trains (`stage`), on what (`data`), and how long and fast."""

    stage: StageConfig = field(default_factory=StageConfig)
    data: DataConfig = field(default_factory=DataConfig)
    # instruct after align: start from the align stage's projector (SciTune) or its whole model
    init_from: str | None = None
    epochs: float = 1.0
    max_steps: int | None = None  # stop after this many optimizer steps (None: the epochs decide)
    batch_size: int = 8  # per process and micro-step
    grad_accum: int = 1
    lr: float = 2e-3
    weight_decay: float = 0.0
    warmup_ratio: float = 0.03
    scheduler: str = "cosine"
    max_grad_norm: float | None = 1.0
    gradient_checkpointing: bool = False
    feature_cache: bool = False  # frozen vision tower: compute each image's features once

    def __post_init__(self) -> None:
        if isinstance(self.stage, dict):
            self.stage = from_dict(StageConfig, self.stage, "stage")
        if isinstance(self.data, dict):
            self.data = from_dict(DataConfig, self.data, f"{self.stage.name}.data")
        if self.scheduler not in SCHEDULERS:
            raise ScituneError(f"{self.stage.name}.scheduler: {self.scheduler!r}; expected one of {', '.join(SCHEDULERS)}")
        if self.init_from is not None and self.init_from not in INIT_FROM:
            raise ScituneError(f"{self.stage.name}.init_from: {self.init_from!r}; expected projector, model or null")
        if self.feature_cache and self.stage.trainable.vision_tower:
            raise ScituneError(f"{self.stage.name}.feature_cache needs a frozen vision tower (tune_vision is on)")
        for key in ("batch_size", "grad_accum"):
            if int(getattr(self, key)) < 1:
                raise ScituneError(f"{self.stage.name}.{key} must be >= 1")


@dataclass
class RunConfig:
    out: str = "runs/scitune"
    seed: int = 0
    log_every: int = 1
    save_every: int = 50  # optimizer steps between checkpoints (0: only at the end of a stage)
    keep_last: int = 2
    # Peak rate for the MFU estimate, FLOP/s. The default is this project's 2-core CPU development
    # machine in fp32 (3.3e11: 3.27e11 with both threads, 1.68e11 with one), measured by
    # benchmarks/peak_flops.py; set your accelerator's (e.g. 989e12 for an H100's dense bf16).
    peak_flops: float = 3.3e11
    tensorboard: bool = True  # also write TensorBoard events when tensorboard is installed


@dataclass
class Recipe:
    model: ModelConfig = field(default_factory=ModelConfig)
    stages: list[StageRun] = field(default_factory=list)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        if isinstance(self.model, dict):
            self.model = from_dict(ModelConfig, self.model, "model")
        if isinstance(self.run, dict):
            self.run = from_dict(RunConfig, self.run, "run")
        stages = []
        for index, stage in enumerate(self.stages):
            stages.append(from_dict(StageRun, stage, f"stages[{index}]") if isinstance(stage, dict) else stage)
        self.stages = stages
        if not self.stages:
            raise ScituneError("recipe: no stages")
        names = [s.stage.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ScituneError(f"recipe: stage names repeat ({', '.join(names)})")
        for index, stage in enumerate(self.stages):
            if stage.init_from is not None and index == 0:
                raise ScituneError(f"{stage.stage.name}.init_from: the first stage has no earlier stage to start from")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_recipe(path: str, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Reads a YAML recipe and applies `key=value` overrides (dotted keys; a stage is addressed
    by its name, e.g. `align.lr=1e-3`, `model.preset=tiny`, `run.out=runs/x`)."""
    from pathlib import Path

    import yaml

    file = Path(path)
    if not file.is_file():
        raise ScituneError(f"recipe {path!r}: file not found")
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ScituneError(f"recipe {path!r}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise ScituneError(f"recipe {path!r}: expected a mapping at the top")
    for item in overrides:
        apply_override(raw, item)
    try:
        return from_dict(Recipe, raw, "recipe")
    except TypeError as err:
        raise ScituneError(f"recipe {path!r}: {err}") from None


def apply_override(raw: dict[str, Any], item: str) -> None:
    import yaml

    if "=" not in item:
        raise ScituneError(f"override {item!r}: expected key=value")
    key, value = item.split("=", 1)
    parts = key.strip().split(".")
    stages = {s.get("stage", {}).get("name", "align"): s for s in raw.get("stages", [])}
    if parts[0] in stages:
        node: Any = stages[parts[0]]
        parts = parts[1:]
    else:
        node = raw
    for part in parts[:-1]:
        if part in STAGES and part not in node:
            raise ScituneError(f"override {item!r}: the recipe has no stage {part!r}")
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ScituneError(f"override {item!r}: {part!r} is not a section")
    if not parts:
        raise ScituneError(f"override {item!r}: names a stage, not a setting")
    node[parts[-1]] = yaml.safe_load(value)
