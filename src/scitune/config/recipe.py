"""A whole recipe: the model, its stages in order, and the run's settings.

Stages are written as a mapping keyed by name (`stages: {align: {...}, instruct: {...}}`, in
the order they run) or, as before, as a list whose items name themselves (`- stage: {name:
align}`). Both read into `Recipe.stages`, a list of `StageRun`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from scitune.config.fields import MAX_SEED, MAX_STEPS, Bool, Float, Int, Section, Str, fail, section
from scitune.config.model import ModelConfig
from scitune.config.stage import STAGES, StageRun


@section("run")
class RunConfig(Section):
    """Where the run is written and how often."""

    out: Str = Field(default="runs/scitune", description="the run folder")
    seed: Int = Field(default=0, ge=0, le=MAX_SEED, description="data order")
    log_every: Int = Field(default=1, ge=1, le=MAX_STEPS, description="optimizer steps between metric lines")
    save_every: Int = Field(
        default=50, ge=0, le=MAX_STEPS, description="optimizer steps between checkpoints (0: only at the end of a stage)"
    )
    keep_last: Int = Field(default=2, ge=1, le=1000, description="checkpoints kept per stage")
    peak_flops: Float = Field(
        default=3.3e11, gt=0,
        description="peak rate for the MFU estimate, FLOP/s; the default is the project's 2-core CPU development "
        "machine in fp32 (benchmarks/peak_flops.py); set your accelerator's (e.g. 989e12 for an H100's dense bf16)",
    )
    tensorboard: Bool = Field(default=False, description="also write TensorBoard events (needs the tensorboard extra)")
    trackers: list[Literal["tensorboard", "wandb", "mlflow"]] = Field(
        default_factory=list, description="experiment trackers, through accelerate (each needs its package installed)"
    )
    checkpoint_format: Literal["sharded", "full"] = Field(
        default="sharded",
        description='"sharded": every process writes its own shard of the trainable weights and optimizer; '
        '"full": gathered onto the main process, one file',
    )
    sharding: Literal["auto", "fsdp2"] = Field(
        default="auto",
        description='"auto": as the launcher says (one process, DDP, FSDP or DeepSpeed plugin); "fsdp2": scitune '
        "shards the model itself with torch's fully_shard, on GPUs or CPUs",
    )

    @model_validator(mode="after")
    def _a_folder(self) -> RunConfig:
        if not self.out.strip():
            raise fail("must name a folder", at=("out",))
        return self


def _name_of(stage: Any) -> str | None:
    """A list item's stage name, when it gives one."""
    if isinstance(stage, StageRun):
        return stage.stage.name
    if isinstance(stage, dict) and isinstance(stage.get("stage"), dict):
        name = stage["stage"].get("name")
        return name if isinstance(name, str) else None
    return None


def stage_labels(stages: Any) -> list[str]:
    """How messages name each stage: its name when valid, else `stages[i]` (list form) or
    `stages.<key>` (mapping form)."""
    if isinstance(stages, dict):
        return [key if key in STAGES else f"stages.{key}" for key in stages]
    if isinstance(stages, list):
        return [name if (name := _name_of(s)) in STAGES else f"stages[{i}]" for i, s in enumerate(stages)]
    return []


def stages_by_name(stages: Any) -> dict[str, Any] | None:
    """The list form as the mapping form (None when the list cannot be keyed: an item that is not
    a mapping, or a name that repeats); a mapping is returned as it is."""
    if isinstance(stages, dict):
        return stages
    if not isinstance(stages, list) or not all(isinstance(s, dict) for s in stages):
        return None
    names = [_name_of(s) or ("align" if "stage" not in s else None) for s in stages]
    if None in names or len(set(names)) != len(names):
        return None
    return dict(zip(names, stages))


@section("", labels=lambda kwargs: stage_labels(kwargs.get("stages")))
class Recipe(Section):
    """A training recipe: `model`, `stages` (run in order) and `run`."""

    model: ModelConfig = Field(default_factory=ModelConfig, description="which model to build")
    stages: list[StageRun] = Field(
        default_factory=list, description="the stages in the order they run: a mapping keyed by stage name (or a list)"
    )
    run: RunConfig = Field(default_factory=RunConfig, description="where the run is written and how often")

    @field_validator("stages", mode="before")
    @classmethod
    def _listed(cls, stages: Any) -> Any:
        if stages is None:
            raise fail("must not be null")
        if isinstance(stages, list):
            return stages
        if not isinstance(stages, dict):
            raise fail(f"expected a mapping of stages by name (or a list), got {type(stages).__name__}")
        if not all(isinstance(key, str) for key in stages):
            raise fail(f"keys must be stage names, got {sorted(map(repr, stages))}")
        listed = []
        for index, (key, body) in enumerate(stages.items()):
            if isinstance(body, dict):
                plan = body.get("stage", {})
                if isinstance(plan, dict):
                    if plan.get("name", key) != key:
                        raise fail(f"{plan['name']!r} is not the stage's key {key!r}", at=(index, "stage", "name"))
                    body = {**body, "stage": {**plan, "name": key}}
            listed.append(body)
        return listed

    @model_validator(mode="after")
    def _stages_in_order(self) -> Recipe:
        if not self.stages:
            raise fail("no stages")
        names = [s.stage.name for s in self.stages]
        if len(set(names)) != len(names):
            raise fail(f"stage names repeat ({', '.join(names)})")
        if self.stages[0].init_from is not None:
            raise fail("the first stage has no earlier stage to start from", at=("stages", 0, "init_from"))
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
