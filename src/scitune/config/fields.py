"""The building blocks of the recipe schema: value types that read YAML and `key=value`
overrides, the base of every section, and the error a rule raises.

Sections are pydantic dataclasses (not `BaseModel`s) so that `dataclasses.asdict`, `replace` and
`fields` keep working for the code that saves and compares settings.

Scalars are parsed by our own before-validators (`to_int`, `to_float`, ...) rather than by
pydantic's lax mode: a recipe's numbers often arrive as YAML strings (`1e-3` and `1e30` are strings
in YAML 1.1), while a boolean must never pass for a number; lax mode takes `true` as 1 and refuses
"1e3" as an int, and strict mode refuses every string. Ranges stay pydantic `Field` constraints."""

from __future__ import annotations

import functools
import math
from typing import Annotated, Any

from pydantic import BeforeValidator, ConfigDict, ValidationError, model_validator
from pydantic.dataclasses import dataclass
from pydantic_core import ArgsKwargs, PydanticCustomError

from scitune.errors import ScituneError

# Sizes that bound the work a recipe can ask for.
MAX_TOKENS = 1_048_576
MAX_BATCH = 65_536
MAX_VOCAB = 1_000_000
MAX_STEPS = 1_000_000_000
MAX_SEED = 2**63 - 1

SECTION_CONFIG = ConfigDict(extra="forbid", allow_inf_nan=False)


def fail(message: str, at: tuple[str | int, ...] = ()) -> PydanticCustomError:
    """A rule's error: `message` completes "<key path>: ..."; `at` is the key's path below the
    section being checked (empty: the section itself)."""
    return PydanticCustomError("scitune", "{message}", {"message": message, "at": at})


def _not_valid(value: Any, kind: str) -> PydanticCustomError:
    return fail(f"{value!r} is not a valid {kind}")


def _not_null(value: Any) -> None:
    if value is None:
        raise fail("must not be null")


def to_int(value: Any) -> int:
    """An int from an int, an integral float, or a string of either (`"1e3"`); never a bool."""
    _not_null(value)
    if isinstance(value, bool):
        raise _not_valid(value, "int")
    if isinstance(value, int):
        return value
    number = value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            try:
                number = float(value)
            except ValueError:
                raise _not_valid(value, "int") from None
    if isinstance(number, float) and math.isfinite(number) and number == int(number):
        return int(number)
    raise _not_valid(value, "int")


def to_float(value: Any) -> float:
    """A finite float from a number or a numeric string; never a bool."""
    _not_null(value)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _not_valid(value, "float")
    try:
        number = float(value)
    except ValueError:
        raise _not_valid(value, "float") from None
    if not math.isfinite(number):
        raise fail(f"must be a finite number, got {number}")
    return number


def to_str(value: Any) -> str:
    """Text; a YAML number where text is expected (a folder named `2024`) becomes its text."""
    _not_null(value)
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise _not_valid(value, "str")


def to_bool(value: Any) -> bool:
    _not_null(value)
    if not isinstance(value, bool):
        raise _not_valid(value, "bool")
    return value


def to_list(value: Any) -> list:
    _not_null(value)
    if not isinstance(value, list):
        raise fail(f"expected a list, got {type(value).__name__}")
    return value


Int = Annotated[int, BeforeValidator(to_int)]
Float = Annotated[float, BeforeValidator(to_float)]
Str = Annotated[str, BeforeValidator(to_str)]
Bool = Annotated[bool, BeforeValidator(to_bool)]
StrList = Annotated[list[Str], BeforeValidator(to_list)]


@dataclass(config=SECTION_CONFIG)
class Section:
    """The base of every recipe section: a mapping of known names (unknown keys are listed in
    one error, before pydantic's `extra="forbid"` would name them one by one)."""

    @model_validator(mode="before")
    @classmethod
    def _a_mapping_of_known_keys(cls, value: Any) -> Any:
        if isinstance(value, (cls, ArgsKwargs)):
            return value
        _not_null(value)
        if not isinstance(value, dict):
            raise fail(f"expected a mapping, got {type(value).__name__}")
        if not all(isinstance(key, str) for key in value):
            raise fail(f"keys must be names, got {sorted(map(repr, value))}")
        names = cls.__pydantic_fields__
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise fail(f"unknown key(s) {', '.join(unknown)}; expected some of {', '.join(sorted(names))}")
        return value


def section(where: str, labels=None):
    """Makes `cls` a section of the recipe schema: a pydantic dataclass (so `dataclasses.asdict`
    and `dataclasses.replace` work) whose direct construction (`ModelConfig(preset="tiny")`) fails
    with the same one-line ScituneError as a recipe file. `where` names it in messages; `labels`,
    given the keyword arguments, names the stages."""

    def wrap(cls):
        cls = dataclass(cls, config=SECTION_CONFIG)
        init = cls.__init__

        @functools.wraps(init)
        def __init__(self, *args, **kwargs):
            try:
                init(self, *args, **kwargs)
            except ValidationError as err:
                from scitune.config.messages import one_line

                raise ScituneError(one_line(err, cls, where, labels(kwargs) if labels else None)) from None

        cls.__init__ = __init__
        return cls

    return wrap
