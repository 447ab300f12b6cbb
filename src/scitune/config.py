"""Typed configuration: model, and what each stage trains.

A stage is data, not code: `TRAINABLE_BY_STAGE` says what each stage trains, and one function
(`scitune.model.stages.apply_stage`) applies it. Recipes (YAML) and `key=value` overrides fill
these dataclasses; unknown keys are errors, not silently ignored.

Every value is checked once, here: types when a section is read (`from_dict`), ranges by the
rules in each field's metadata (`check_fields`, called by each top-level section), each error one
line naming the key's path (`align.lr: must be > 0, got -0.001`). NaN and infinities are refused.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scitune.errors import ScituneError

# ---- range rules: field(metadata=...) --------------------------------------------------------


def _rule(test, text: str) -> dict[str, Any]:
    """Field metadata: `test(value)` is true for good values; `text` completes "must ..."."""
    return {"rules": ((test, text),)}


def _rules(*rules: dict[str, Any]) -> dict[str, Any]:
    return {"rules": tuple(r for rule in rules for r in rule["rules"])}


def gt(low: float, high: float | None = None) -> dict[str, Any]:
    return _rules(_rule(lambda v: v > low, f"be > {low}"), *([] if high is None else [at_most(high)]))


def ge(low: float, high: float | None = None) -> dict[str, Any]:
    return _rules(_rule(lambda v: v >= low, f"be >= {low}"), *([] if high is None else [at_most(high)]))


def at_most(high: float) -> dict[str, Any]:
    return _rule(lambda v: v <= high, f"be <= {high:g}")


def half_open(low: float, high: float) -> dict[str, Any]:
    return _rule(lambda v: low <= v < high, f"be in [{low}, {high})")


def one_of(*choices: str) -> dict[str, Any]:
    return _rule(lambda v: v in choices, f"be one of {', '.join(choices)}")


# Sizes that bound the work a recipe can ask for.
MAX_TOKENS = 1_048_576
MAX_BATCH = 65_536
MAX_VOCAB = 1_000_000
MAX_STEPS = 1_000_000_000
MAX_SEED = 2**63 - 1
DTYPES = ("auto", "float32", "bfloat16", "float16")
_MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_fields(obj: Any, where: str) -> None:
    """Checks every field of dataclass `obj` against its metadata rule (None passes where the
    field may be None); floats must be finite. Raises a one-line ScituneError naming `where.key`."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if value is None:
            continue
        key = f"{where}.{f.name}"
        if isinstance(value, float) and not math.isfinite(value):
            raise ScituneError(f"{key}: must be a finite number, got {value}")
        if not isinstance(value, (int, float, str)):
            continue
        for test, text in f.metadata.get("rules", ()):
            if not test(value):
                raise ScituneError(f"{key}: must {text}, got {value!r}")

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
    vision_feature_layer: int = field(default=-2, metadata=_rules(ge(-1000), at_most(1000)))
    chat_template: str | None = None  # a name in scitune.data.chat_templates; None: the LM's own or "vicuna_v1"
    dtype: str = field(default="auto", metadata=one_of(*DTYPES))  # "auto": float32 weights for training (bf16 autocast on GPU), bf16 for GPU inference
    # tiny preset only: the BPE tokenizer is trained on these texts (None: a built-in science text)
    vocab_size: int = field(default=1024, metadata=gt(0, MAX_VOCAB))
    seed: int = field(default=0, metadata=ge(0, MAX_SEED))

    def __post_init__(self) -> None:
        check_fields(self, "model")
        for key in ("preset", "checkpoint", "vision_tower", "language_model", "gguf_file"):
            if getattr(self, key) == "":
                raise ScituneError(f"model.{key}: must not be empty (leave it out or set null)")
        if self.projector not in PROJECTORS:
            raise ScituneError(f"model.projector: unknown projector {self.projector!r}; expected one of {', '.join(PROJECTORS)}")
        if self.checkpoint is not None:
            self.preset = None
        elif self.preset is None and not (self.vision_tower and self.language_model):
            raise ScituneError("model: give a preset, a checkpoint, or both vision_tower and language_model")


@dataclass
class LoraConfig:
    r: int = field(default=16, metadata=gt(0, 4096))
    alpha: int = field(default=32, metadata=gt(0))
    dropout: float = field(default=0.05, metadata=half_open(0, 1))
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
        if not isinstance(self.lora_config, LoraConfig):
            self.lora_config = from_dict(LoraConfig, self.lora_config, f"{self.name}.stage.lora_config")
        check_fields(self.lora_config, f"{self.name}.stage.lora_config")
        modules = self.lora_config.target_modules
        if not modules or not all(isinstance(m, str) and _MODULE_NAME.match(m) for m in modules):
            raise ScituneError(
                f"{self.name}.stage.lora_config.target_modules: expected a non-empty list of module names "
                f"such as q_proj, got {modules!r}"
            )
        if self.lora and not TRAINABLE_BY_STAGE[self.name].language_model:
            raise ScituneError(f"stage {self.name!r} keeps the LLM frozen, so lora=true does not apply")

    @property
    def trainable(self) -> Trainable:
        plan = TRAINABLE_BY_STAGE[self.name]
        return dataclasses.replace(plan, vision_tower=plan.vision_tower or self.tune_vision)


def from_dict(cls: type, values: dict[str, Any], where: str):
    """Builds dataclass `cls` from a dict, naming unknown keys and ill-typed values as errors.
    Numbers written as YAML strings (`1e-3` is a string in YAML 1.1) are converted."""
    if not isinstance(values, dict):
        raise ScituneError(f"{where or 'recipe'}: expected a mapping, got {type(values).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    if not all(isinstance(key, str) for key in values):
        raise ScituneError(f"{where or 'recipe'}: keys must be names, got {sorted(map(repr, values))}")
    unknown = sorted(set(values) - names)
    if unknown:
        raise ScituneError(f"{where or 'recipe'}: unknown key(s) {', '.join(unknown)}; expected some of {', '.join(sorted(names))}")
    hints = typing.get_type_hints(cls)
    return cls(**{key: _coerce(value, hints[key], f"{where}.{key}" if where else key) for key, value in values.items()})


def _coerce(value: Any, hint: Any, where: str) -> Any:
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    if value is None:
        if type(None) in options:
            return None
        raise ScituneError(f"{where}: must not be null")
    for option in options:
        if typing.get_origin(option) is list:
            if not isinstance(value, list):
                raise ScituneError(f"{where}: expected a list, got {type(value).__name__} {value!r}")
            (item,) = typing.get_args(option)
            return [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        if dataclasses.is_dataclass(option) and not isinstance(value, (dict, option)):
            raise ScituneError(f"{where}: expected a mapping, got {type(value).__name__}")
        if option is bool and isinstance(value, bool):
            return value
        if option in (int, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
            if option is int and (not math.isfinite(value) or float(value) != int(value)):
                continue
            return option(value)
        if option in (int, float) and isinstance(value, str):
            try:
                return option(value)
            except ValueError:
                if option is int:
                    with contextlib.suppress(ValueError, OverflowError):
                        number = float(value)
                        if number == int(number):
                            return int(number)
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
    max_length: int = field(default=512, metadata=gt(0, MAX_TOKENS))
    # pad wide figures to a square (the processor's mean colour) instead of centre-cropping them;
    # stored in the saved processor, so evaluation and serving pad the same way
    pad_to_square: bool = False
    # "front": each turn's <image> moved to its start ("<image>\n" + text), as LLaVA trains;
    # "keep": where the file puts it
    image_placement: str = field(default="front", metadata=one_of("front", "keep"))
    group_by_length: bool = False
    # LLaVA's modality-length grouping: samples with images and text-only samples fill separate
    # global batches, each of similar lengths (implies length grouping)
    group_by_modality: bool = False
    # pack each micro-batch's samples (with their image tokens) into few rows: position ids restart
    # per sample, attention stays inside it (scitune.prompting.packing); same loss, less padding
    packing: bool = False
    # DataLoader worker processes that render samples and decode images (0: in the training process);
    # also the processes of the one-off validation/indexing pass
    num_workers: int = field(default=0, metadata=ge(0, 64))
    on_bad_record: str = field(default="fail", metadata=one_of(*ON_BAD_RECORD))  # "fail": list the bad records and stop; "skip": drop and count them
    # leakage guard: evaluation sets (as `scitune data overlap --against` takes them: a ScienceQA
    # release folder, a corpus, a SciCap-layout file, any LLaVA JSON; `PATH=IMAGES` for its images)
    # that the training figures and texts must not overlap; training refuses to start when they do
    fail_on_overlap_with: list[str] = field(default_factory=list)


@dataclass
class StageRun:
    """One stage of a recipe: what trains (`stage`), on what (`data`), and how long and fast."""

    stage: StageConfig = field(default_factory=StageConfig)
    data: DataConfig = field(default_factory=DataConfig)
    # instruct after align: start from the align stage's projector (SciTune) or its whole model
    init_from: str | None = None
    epochs: float = field(default=1.0, metadata=gt(0, 1e6))
    max_steps: int | None = field(default=None, metadata=gt(0, MAX_STEPS))  # stop after this many optimizer steps (None: the epochs decide)
    batch_size: int = field(default=8, metadata=ge(1, MAX_BATCH))  # per process and micro-step
    grad_accum: int = field(default=1, metadata=ge(1, MAX_BATCH))
    lr: float = field(default=2e-3, metadata=gt(0))
    # peak learning rates of the projector and the vision tower (LLaVA-1.5's mm_projector_lr);
    # null: `lr`. They follow the same warmup and decay.
    projector_lr: float | None = field(default=None, metadata=gt(0))
    vision_lr: float | None = field(default=None, metadata=gt(0))
    weight_decay: float = field(default=0.0, metadata=ge(0))
    warmup_ratio: float = field(default=0.03, metadata=half_open(0, 1))
    scheduler: str = "cosine"
    max_grad_norm: float | None = field(default=1.0, metadata=ge(0))  # 0 or null: no clipping
    gradient_checkpointing: bool = False
    feature_cache: bool = False  # frozen vision tower: compute each image's features once

    def __post_init__(self) -> None:
        if not isinstance(self.stage, StageConfig):
            self.stage = from_dict(StageConfig, self.stage, "stage")
        if not isinstance(self.data, DataConfig):
            self.data = from_dict(DataConfig, self.data, f"{self.stage.name}.data")
        check_fields(self, self.stage.name)
        check_fields(self.data, f"{self.stage.name}.data")
        if self.scheduler not in SCHEDULERS:
            raise ScituneError(f"{self.stage.name}.scheduler: {self.scheduler!r}; expected one of {', '.join(SCHEDULERS)}")
        if self.init_from is not None and self.init_from not in INIT_FROM:
            raise ScituneError(f"{self.stage.name}.init_from: {self.init_from!r}; expected projector, model or null")
        if self.feature_cache and self.stage.trainable.vision_tower:
            raise ScituneError(f"{self.stage.name}.feature_cache needs a frozen vision tower (tune_vision is on)")
        if self.vision_lr is not None and not self.stage.trainable.vision_tower:
            raise ScituneError(f"{self.stage.name}.vision_lr: the vision tower is frozen in this stage (set stage.tune_vision: true)")


@dataclass
class RunConfig:
    out: str = "runs/scitune"
    seed: int = field(default=0, metadata=ge(0, MAX_SEED))
    log_every: int = field(default=1, metadata=ge(1, MAX_STEPS))
    save_every: int = field(default=50, metadata=ge(0, MAX_STEPS))  # optimizer steps between checkpoints (0: only at the end of a stage)
    keep_last: int = field(default=2, metadata=ge(1, 1000))
    # Peak rate for the MFU estimate, FLOP/s. The default is this project's 2-core CPU development
    # machine in fp32 (3.3e11: 3.27e11 with both threads, 1.68e11 with one), measured by
    # benchmarks/peak_flops.py; set your accelerator's (e.g. 989e12 for an H100's dense bf16).
    peak_flops: float = field(default=3.3e11, metadata=gt(0))
    tensorboard: bool = False  # also write TensorBoard events (needs the tensorboard extra)
    # "sharded": every process writes its own shard of the trainable weights and optimizer
    # (torch.distributed.checkpoint, safetensors); "full": gathered onto the main process, one file
    checkpoint_format: str = field(default="sharded", metadata=one_of("sharded", "full"))
    # "auto": as the launcher says (one process, DDP, accelerate's FSDP or DeepSpeed plugin);
    # "fsdp2": scitune shards the model itself with torch's fully_shard (each decoder layer and
    # the whole model), on GPUs (NCCL) or CPUs (gloo), without accelerate's FSDP plugin
    sharding: str = field(default="auto", metadata=one_of("auto", "fsdp2"))

    def __post_init__(self) -> None:
        check_fields(self, "run")
        if not self.out.strip():
            raise ScituneError("run.out: must name a folder")


@dataclass
class Recipe:
    model: ModelConfig = field(default_factory=ModelConfig)
    stages: list[StageRun] = field(default_factory=list)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        if not isinstance(self.model, ModelConfig):
            self.model = from_dict(ModelConfig, self.model, "model")
        if not isinstance(self.run, RunConfig):
            self.run = from_dict(RunConfig, self.run, "run")
        if not isinstance(self.stages, list):
            raise ScituneError(f"stages: expected a list of stages, got {type(self.stages).__name__}")
        stages = []
        for index, stage in enumerate(self.stages):
            stages.append(stage if isinstance(stage, StageRun) else from_dict(StageRun, stage, _stage_where(stage, index)))
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


def _stage_where(stage: Any, index: int) -> str:
    """A stage's path in messages: its name (`align`) when it has a valid one, else `stages[i]`."""
    name = stage.get("stage", {}).get("name") if isinstance(stage, dict) and isinstance(stage.get("stage"), dict) else None
    return name if name in STAGES else f"stages[{index}]"


def load_recipe(path: str, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Reads a YAML recipe and applies `key=value` overrides (dotted keys; a stage is addressed
    by its name, e.g. `align.lr=1e-3`, `model.preset=tiny`, `run.out=runs/x`)."""

    from scitune.io.read import read_yaml

    file = Path(path)
    if not file.is_file():
        raise ScituneError(f"recipe {path!r}: file not found")
    raw = read_yaml(file, what="recipe")
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ScituneError(f"recipe {path!r}: expected a mapping at the top")
    for item in overrides:
        apply_override(raw, item)
    try:
        return from_dict(Recipe, raw, "")
    except TypeError as err:
        raise ScituneError(f"recipe {path!r}: {err}") from None


def apply_override(raw: dict[str, Any], item: str) -> None:
    from scitune.io.read import parse_yaml

    if "=" not in item:
        raise ScituneError(f"override {item!r}: expected key=value")
    key, value = item.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ScituneError(f"override {item!r}: empty name in {key!r}")
    listed = raw.get("stages", [])
    listed = listed if isinstance(listed, list) else []
    stages = {
        (s.get("stage") if isinstance(s.get("stage"), dict) else {}).get("name", "align"): s
        for s in listed
        if isinstance(s, dict)
    }
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
    node[parts[-1]] = parse_yaml(value, f"override {item!r}")
