"""Typed configuration: the training recipe's schema (pydantic v2) and how a recipe is read.

- `fields`: value types, limits and the base of every section (unknown keys are errors);
- `model`: the `model` section; `stage`: a stage (what it trains, its data, its schedule) and
  `TRAINABLE_BY_STAGE`; `recipe`: the run section and the whole recipe;
- `load`: YAML file + `key=value` overrides -> `Recipe`; `messages`: each error as one line
  naming the key's path (`align.lr: must be > 0, got -0.001`); `reference`: the Markdown
  reference (docs/reference/recipe.md) rendered from the schema.

Every value is checked once, by the schema: NaN and infinities are refused, a boolean is never a
number, ranges are `Field` constraints and choices `Literal`s.
"""

from scitune.config.fields import MAX_BATCH, MAX_SEED, MAX_STEPS, MAX_TOKENS, MAX_VOCAB
from scitune.config.load import apply_override, from_dict, load_recipe
from scitune.config.model import DTYPES, PROJECTORS, ModelConfig
from scitune.config.recipe import Recipe, RunConfig
from scitune.config.stage import (
    INIT_FROM,
    ON_BAD_RECORD,
    SCHEDULERS,
    STAGES,
    TRAINABLE_BY_STAGE,
    DataConfig,
    LoraConfig,
    StageConfig,
    StageRun,
    Trainable,
)

__all__ = [
    "DTYPES", "INIT_FROM", "MAX_BATCH", "MAX_SEED", "MAX_STEPS", "MAX_TOKENS", "MAX_VOCAB", "ON_BAD_RECORD",
    "PROJECTORS", "SCHEDULERS", "STAGES", "TRAINABLE_BY_STAGE", "DataConfig", "LoraConfig", "ModelConfig",
    "Recipe", "RunConfig", "StageConfig", "StageRun", "Trainable", "apply_override", "from_dict", "load_recipe",
]
