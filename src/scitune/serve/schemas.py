"""Request bodies: OpenAI's chat completion request (the fields we act on; others are ignored
as OpenAI-compatible servers do) and our figure endpoints. Parsed strictly: a wrong type is a
422 naming the field, never coerced ("5" is not 5). Sizes that depend on the server's limits
(message count, stop strings, labels, max_tokens cap) are checked in `scitune.serve.prompts`.

Responses are plain dicts in OpenAI's shapes, built in `scitune.serve.app`.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scitune.errors import ScituneError
from scitune.io import read
from scitune.serve.errors import ApiError

MAX_JSON_DEPTH = 16


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class ImageURL(Body):
    url: str
    detail: Literal["auto", "low", "high"] | None = None


class TextPart(Body):
    type: Literal["text"]
    text: str


class ImagePart(Body):
    type: Literal["image_url"]
    image_url: ImageURL


Part = Annotated[Union[TextPart, ImagePart], Field(discriminator="type")]


class Message(Body):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[Part] | None = None
    name: str | None = None


class StreamOptions(Body):
    include_usage: bool = False


class ChatRequest(Body):
    model: str
    messages: list[Message] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    seed: int | None = Field(default=None, ge=-(2**63), lt=2**64)
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(default=1, ge=1)
    user: str | None = None


class ClassifyRequest(Body):
    """`image`: a data: URL (or a path under --image-root); `labels`: the figure types to choose
    among (default SciCap's five); `question`: the prompt (default the figure-type question)."""

    model: str
    image: str | ImageURL
    labels: list[str] | None = None
    question: str | None = None


class CaptionRequest(Body):
    model: str
    image: str | ImageURL
    max_tokens: int | None = Field(default=None, ge=1)


def parse_body(model: type[Body], body: bytes) -> Body:
    """A request body as `model`: 400 for bytes that are not JSON, 422 for JSON of the wrong shape."""
    try:
        text = read.decode_text(body, "request body")
        value = read.parse_json(text, "request body", max_depth=MAX_JSON_DEPTH)
    except ScituneError as err:
        raise ApiError(400, f"{err} (expected a JSON object)", "invalid_json") from None
    if not isinstance(value, dict):
        raise ApiError(422, f"request body: expected a JSON object, got {type(value).__name__}", "invalid_type")
    try:
        return model.model_validate(value, strict=True)
    except ValidationError as err:
        raise ApiError(422, describe(err), "invalid_request", _param(err)) from None


def _loc(error: dict) -> str:
    """`messages[0].content[1].image_url`: field names and indexes, without pydantic's names
    for union branches (`str`, `list[...]`, `tagged-union[...]`)."""
    parts: list[str] = []
    previous = None
    for part in error.get("loc", ()):
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif "[" in part or part in ("str", "int", "float", "bool", "ImageURL") or part == previous:
            continue
        else:
            parts.append(("." if parts else "") + part)
        previous = part
    return "".join(parts) or "body"


def _param(err: ValidationError) -> str | None:
    errors = err.errors(include_url=False)
    return _loc(errors[0]) if errors else None


def describe(err: ValidationError, limit: int = 3) -> str:
    """The first few validation errors, one line: `messages[0].role: Input should be ...`."""
    errors = err.errors(include_url=False)
    seen, lines = set(), []
    for error in errors:
        line = f"{_loc(error)}: {error['msg']}"
        if line not in seen:
            seen.add(line)
            lines.append(line)
    more = f" (and {len(lines) - limit} more)" if len(lines) > limit else ""
    return "; ".join(lines[:limit]) + more
