"""One line per bad recipe: pydantic's first error, worded as `<key path>: must ..., got ...`.

The key path names a stage by its name (`align.lr`), or by its place when it has no valid name
(`stages[0]`); `labels` gives those names, one per stage, in order.
"""

from __future__ import annotations

import re
import types
import typing
from typing import Any

from pydantic import ValidationError
from pydantic.fields import FieldInfo

_BOUNDS = {"greater_than": "gt", "greater_than_equal": "ge", "less_than": "lt", "less_than_equal": "le"}
_SIGNS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def one_line(err: ValidationError, root: type, where: str = "", labels: list[str] | None = None) -> str:
    """The first error of `err` (from validating `root`), its key path prefixed by `where`."""
    first = err.errors(include_url=False)[0]
    ctx = first.get("ctx") or {}
    loc = tuple(first["loc"]) + tuple(ctx.get("at", ()))
    path = key_path(loc, where, labels) or where or "recipe"
    return f"{path}: {_reason(first, field_info(root, tuple(first['loc'])))}"


def key_path(loc: tuple[str | int, ...], where: str = "", labels: list[str] | None = None) -> str:
    parts = list(loc)
    text = where
    if labels and len(parts) > 1 and parts[0] == "stages" and isinstance(parts[1], int) and parts[1] < len(labels):
        text = f"{where}.{labels[parts[1]]}" if where else labels[parts[1]]
        parts = parts[2:]
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def number_text(value: Any) -> str:
    """A bound as written in messages and the reference: `1e+06` for a float, digits for an int."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def _reason(error: dict[str, Any], info: FieldInfo | None) -> str:
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    if kind == "scitune":
        return ctx["message"]
    if kind in _BOUNDS:
        bounds = bounds_of(info)
        if "ge" in bounds and "lt" in bounds:
            return f"must be in [{number_text(bounds['ge'])}, {number_text(bounds['lt'])}), got {value!r}"
        key = _BOUNDS[kind]
        return f"must be {_SIGNS[key]} {number_text(ctx[key])}, got {value!r}"
    if value is None:
        return "must not be null"
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", ctx.get("expected", ""))
        return f"must be one of {', '.join(choices)}, got {value!r}"
    return error["msg"][:1].lower() + error["msg"][1:]


def bounds_of(info: FieldInfo | None) -> dict[str, Any]:
    """A field's range constraints (`gt`, `ge`, `lt`, `le`) from its pydantic metadata."""
    bounds = {}
    for item in info.metadata if info is not None else ():
        for key in _SIGNS:
            if getattr(item, key, None) is not None:
                bounds[key] = getattr(item, key)
    return bounds


def field_info(root: type, loc: tuple[str | int, ...]) -> FieldInfo | None:
    """The pydantic field that `loc` (a validation error's location under `root`) names."""
    cls, info = root, None
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(cls, "__pydantic_fields__", None)
        if not fields or part not in fields:
            return None
        info = fields[part]
        cls = section_type(info.annotation)
    return info


def section_type(annotation: Any) -> type | None:
    """The section class inside an annotation (`StageRun` in `list[StageRun]`), if any."""
    if hasattr(annotation, "__pydantic_fields__"):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, list, typing.Annotated):
        for arg in typing.get_args(annotation):
            found = section_type(arg)
            if found is not None:
                return found
    return None
