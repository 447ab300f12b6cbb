"""The recipe reference (docs/reference/recipe.md), rendered from the schema's fields: each
section's keys with their type, default, allowed range and description.

Regenerate after changing the schema: `python -m scitune.config.reference docs/reference/recipe.md`
(a test checks that the committed page equals `render()`).
"""

from __future__ import annotations

import sys
import types
import typing
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from scitune.config.messages import bounds_of, number_text, section_type
from scitune.config.recipe import Recipe

INTRO = """\
# Recipe reference

<!-- Generated from the schema (scitune.config) by `python -m scitune.config.reference
docs/reference/recipe.md`; edit the field descriptions there, not this page. -->

A recipe is a YAML file with three sections: `model`, `stages` and `run`. Unknown keys are
errors; numbers must be finite; each error is one line naming the key's path
(`align.lr: must be > 0, got -0.001`).

`stages` is a mapping keyed by stage name, in the order the stages run:

```yaml
stages:
  align:
    data: {train: data/align.json, images: data/images}
    lr: 2.0e-3
  instruct:
    init_from: projector
    data: {train: data/instruct.json, images: data/images}
```

The older list form (`- stage: {name: align}`, ...) is still read. Any key can be overridden on
the command line as `key=value` (the value read as YAML), with a stage addressed by its name:
`scitune train recipe.yaml align.lr=1e-4 stages.instruct.data.max_length=1024 run.out=runs/x`.
"""


def _type(annotation: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _type(args[0])
    if origin in (typing.Union, types.UnionType):
        kinds = [_type(a) for a in args if a is not type(None)]
        return " or ".join(kinds) + (" or null" if type(None) in args else "")
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if origin is list:
        return f"list of {_type(args[0])}"
    if origin is dict:
        return f"mapping of {_type(args[0])} to values"
    if section_type(annotation) is not None:
        return "mapping"
    return {int: "integer", float: "number", str: "text", bool: "true/false"}.get(annotation, str(annotation))


def _value(value: Any) -> str:
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list):
        return "`[" + ", ".join(map(str, value)) + "]`"
    if value == "":
        return '`""`'
    return f"`{value:g}`" if isinstance(value, float) else f"`{value}`"


def _default(info: FieldInfo) -> str:
    if info.default_factory is not None:
        value = info.default_factory()
        return "" if section_type(type(value)) is not None else _value(value)
    return "" if info.default is PydanticUndefined else _value(info.default)


def _range(info: FieldInfo) -> str:
    bounds = bounds_of(info)
    if "ge" in bounds and "lt" in bounds:
        return f"[{number_text(bounds['ge'])}, {number_text(bounds['lt'])})"
    signs = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}
    return ", ".join(f"{signs[key]} {number_text(value)}" for key, value in bounds.items())


def _sections(cls: type, path: str) -> list[tuple[str, type]]:
    """`cls` and the sections inside it, in field order, each with its key path."""
    found = [(path, cls)]
    for name, info in cls.__pydantic_fields__.items():
        inner = section_type(info.annotation)
        if inner is not None:
            found += _sections(inner, "stages.<name>" if name == "stages" else f"{path}.{name}".lstrip("."))
    return found


def render() -> str:
    """The Markdown reference of every recipe section."""
    parts = [INTRO]
    for path, cls in _sections(Recipe, "")[1:]:
        doc = " ".join((cls.__doc__ or "").split())
        parts.append(f"\n## `{path}`\n\n{doc}\n\n| key | type | default | range | description |\n|---|---|---|---|---|\n")
        for name, info in cls.__pydantic_fields__.items():
            description = (info.description or "").replace("|", "\\|")
            if section_type(info.annotation) is not None:
                description += f" (section `{path}.{name}`)" if path else ""
            parts.append(f"| `{name}` | {_type(info.annotation)} | {_default(info)} | {_range(info)} | {description} |\n")
    return "".join(parts)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m scitune.config.reference OUT.md")
    from scitune.io.atomic import write_text

    write_text(sys.argv[1], render())
