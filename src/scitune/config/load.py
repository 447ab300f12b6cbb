"""Reading a recipe: a YAML file, then `key=value` overrides, then the schema.

An override's key is a dotted path into the recipe as written in its mapping form:
`model.preset=tiny`, `run.out=runs/x`, `stages.align.lr=1e-3`, or, for short, `align.lr=1e-3`.
A recipe written as a list of stages is keyed by name first, so the same overrides work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from scitune.config.messages import one_line
from scitune.config.recipe import Recipe, stage_labels, stages_by_name
from scitune.config.stage import STAGES
from scitune.errors import ScituneError


def from_dict(cls: type, values: Any, where: str = ""):
    """Builds section `cls` from plain values (a parsed YAML mapping); a bad value raises one
    ScituneError line naming its key path below `where`."""
    labels = stage_labels(values.get("stages")) if isinstance(values, dict) else None
    try:
        return TypeAdapter(cls).validate_python(values)
    except ValidationError as err:
        raise ScituneError(one_line(err, cls, where, labels)) from None


def load_recipe(path: str, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Reads a YAML recipe and applies `key=value` overrides (see the module's docstring)."""
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
    return from_dict(Recipe, raw)


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Sets one `key=value` (the value read as YAML) in a parsed recipe, in place."""
    from scitune.io.read import parse_yaml

    if "=" not in item:
        raise ScituneError(f"override {item!r}: expected key=value")
    key, value = item.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ScituneError(f"override {item!r}: empty name in {key!r}")
    if parts[0] in STAGES:
        parts = ["stages", *parts]
    if parts[0] == "stages" and len(parts) > 1:
        stages = stages_by_name(raw.get("stages", {}))
        if stages is None:
            raise ScituneError(f"override {item!r}: the recipe's stages cannot be addressed by name (fix the recipe's stages first)")
        raw["stages"] = stages
        if parts[1] not in stages:
            raise ScituneError(f"override {item!r}: the recipe has no stage {parts[1]!r}")
        if len(parts) == 2:
            raise ScituneError(f"override {item!r}: names a stage, not a setting")
    node: Any = raw
    for part in parts[:-1]:
        child = node.get(part, {})
        if not isinstance(child, dict):
            raise ScituneError(f"override {item!r}: {part!r} is not a section")
        # a copy: a section that YAML aliases share (`data: *common`) changes only here
        node[part] = node = dict(child)
    node[parts[-1]] = parse_yaml(value, f"override {item!r}")
