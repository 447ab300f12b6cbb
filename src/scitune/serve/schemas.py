"""Request bodies: OpenAI's chat completion request and our figure endpoints, and the error
object every failure answers with.

Every field of OpenAI's chat request is declared. A field is either acted on (model, messages,
max_tokens / max_completion_tokens, temperature, top_p, seed, stop, stream, stream_options, n=1,
logprobs, top_logprobs, frequency_penalty, presence_penalty, logit_bias), an identifier that
changes no answer (user, prompt_cache_key, safety_identifier), or refused with a 400 naming it
when it asks for something this server does not do (tools and tool_choice other than "none",
response_format other than text, audio, store: true, ...; `ChatRequest.unsupported`). A field
OpenAI does not define is refused too (400, `unsupported_parameter`): a request is never answered
as if a field it relies on had been honoured.

Bodies are parsed strictly (`parse_body`): JSON as RFC 8259 defines it (no NaN or Infinity), no
number that does not fit a double or an integer of more than `MAX_INT_DIGITS` digits, no lone
UTF-16 surrogate in a string (`"\\ud800"`: it cannot be encoded, and the tokenizer would fail on
it), nesting at most `MAX_JSON_DEPTH` deep: each a 400. A wrong type is a 422 naming the field,
never coerced ("5" is not 5). Sizes that depend on the server's limits (message count, stop
strings, labels, max_tokens cap) are checked in `scitune.serve.prompts`.

Responses are plain dicts in OpenAI's shapes, built in `scitune.serve.app`.
"""

from __future__ import annotations

import json
import math
import re
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from scitune.errors import ScituneError
from scitune.io import read
from scitune.serve.errors import ApiError

MAX_JSON_DEPTH = 16
MAX_INT_DIGITS = 40  # no integer field of the API needs more (seeds are below 2**64: 20 digits)
MAX_TOP_LOGPROBS = 20  # as OpenAI
MAX_LOGIT_BIAS = 300  # entries, as OpenAI
SURROGATE = re.compile("[\ud800-\udfff]")


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


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
    # what an assistant message of an earlier answer may carry (clients send them back as they
    # got them): accepted when empty, refused otherwise (`ChatRequest.unsupported`)
    tool_calls: list[dict[str, Any]] | None = None
    function_call: dict[str, Any] | None = None
    refusal: str | None = None
    audio: dict[str, Any] | None = None
    annotations: list[dict[str, Any]] | None = None  # citations of an earlier answer: changes nothing


class StreamOptions(Body):
    include_usage: bool | None = None
    include_obfuscation: bool | None = None  # padding against side channels: refused when true


Penalty = Annotated[float, Field(ge=-2, le=2)]


class ChatRequest(Body):
    model: str
    messages: list[Message] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)
    seed: int | None = Field(default=None, ge=-(2**63), lt=2**64)
    stop: str | list[str] | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    n: int | None = Field(default=None, ge=1)
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=MAX_TOP_LOGPROBS)
    frequency_penalty: Penalty | None = None
    presence_penalty: Penalty | None = None
    logit_bias: dict[str, Annotated[float, Field(ge=-100, le=100)]] | None = None
    # identifiers: accepted, change no answer
    user: str | None = None
    prompt_cache_key: str | None = None
    safety_identifier: str | None = None
    # refused unless absent or their default (`unsupported`)
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    functions: list[dict[str, Any]] | None = None
    function_call: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    audio: dict[str, Any] | None = None
    modalities: list[str] | None = None
    prediction: dict[str, Any] | None = None
    reasoning_effort: str | None = None
    verbosity: str | None = None
    web_search_options: dict[str, Any] | None = None
    store: bool | None = None
    metadata: dict[str, Any] | None = None
    service_tier: str | None = None

    def unsupported(self) -> tuple[str, str] | None:
        """(field, why) for the first field that asks for what this server does not do."""
        refused = {
            "tools": "tool calling is not supported" if self.tools else None,
            "tool_choice": "tool calling is not supported; only \"none\" is accepted"
            if self.tool_choice not in (None, "none") else None,
            "parallel_tool_calls": "tool calling is not supported" if self.parallel_tool_calls is not None else None,
            "functions": "function calling is not supported" if self.functions else None,
            "function_call": "function calling is not supported; only \"none\" is accepted"
            if self.function_call not in (None, "none") else None,
            "response_format": "only {\"type\": \"text\"} is supported (no JSON mode or schemas)"
            if self.response_format not in (None, {"type": "text"}) else None,
            "audio": "audio output is not supported" if self.audio is not None else None,
            "modalities": "only [\"text\"] is supported" if self.modalities not in (None, ["text"]) else None,
            "prediction": "predicted outputs are not supported" if self.prediction is not None else None,
            "reasoning_effort": "not a reasoning model" if self.reasoning_effort is not None else None,
            "verbosity": "not supported" if self.verbosity is not None else None,
            "web_search_options": "web search is not supported" if self.web_search_options is not None else None,
            "store": "this server stores no completions" if self.store else None,
            "metadata": "this server stores no completions, so takes no metadata" if self.metadata else None,
            "service_tier": "only \"auto\" or \"default\" is accepted"
            if self.service_tier not in (None, "auto", "default") else None,
            "stream_options": "only allowed with stream: true" if self.stream_options is not None and not self.stream
            else "include_obfuscation is not supported" if self.stream_options and self.stream_options.include_obfuscation
            else None,
            "top_logprobs": "needs logprobs: true" if self.top_logprobs is not None and not self.logprobs else None,
            "logit_bias": f"at most {MAX_LOGIT_BIAS} entries"
            if self.logit_bias is not None and len(self.logit_bias) > MAX_LOGIT_BIAS else None,
        }
        for name, why in refused.items():
            if why:
                return name, why
        for i, message in enumerate(self.messages):
            for name in ("tool_calls", "function_call", "refusal", "audio"):
                if getattr(message, name):
                    return f"messages[{i}].{name}", "tool calls, refusals and audio in messages are not supported"
        return None


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


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorBody(BaseModel):
    """OpenAI's error object: every answer that is not a 200."""

    error: ErrorDetail


class _Refused(Exception):
    pass


def _int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise _Refused(f"an integer of {digits} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def _float(text: str) -> float | int:
    """A JSON number with a fraction or exponent; one with an integral value is an integer (JSON
    has one number type, and JSON Schema counts 5.0 as an integer), so `max_tokens: 5.0` is 5."""
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"the number {text[:24]}{'...' if len(text) > 24 else ''} is out of range")
    if value.is_integer() and abs(value) < 2**64:
        return int(value)
    return value


def _constant(name: str):
    raise _Refused(f"{name} is not a JSON value")


def parse_json(body: bytes) -> Any:
    """The request body as a JSON value, strictly (see the module's docstring); 400 otherwise."""
    try:
        text = read.decode_text(body, "request body")
    except ScituneError as err:
        raise ApiError(400, f"{err} (expected a JSON object)", "invalid_json") from None
    try:
        value = json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except json.JSONDecodeError as err:
        raise ApiError(400, f"request body: not valid JSON ({err.msg} at line {err.lineno} column {err.colno})",
                       "invalid_json") from None
    except RecursionError:
        raise ApiError(400, f"request body: nested more than {MAX_JSON_DEPTH} levels deep", "invalid_json") from None
    except _Refused as err:
        raise ApiError(400, f"request body: {err}", "invalid_number") from None
    try:
        read.check_depth(value, "request body", MAX_JSON_DEPTH)
    except ScituneError as err:
        raise ApiError(400, str(err), "invalid_json") from None
    where = _surrogate(value)
    if where is not None:
        raise ApiError(400, f"{where or 'request body'}: a string holds a lone UTF-16 surrogate, which is not text",
                       "invalid_string", where or None)
    return value


def _surrogate(value: Any, where: str = "") -> str | None:
    """Where (`messages[0].content`) a string, or an object's key, holds a lone surrogate."""
    stack = [(value, where)]
    while stack:
        item, at = stack.pop()
        if isinstance(item, str):
            if SURROGATE.search(item):
                return at
        elif isinstance(item, list):
            stack.extend((child, f"{at}[{i}]") for i, child in enumerate(item))
        elif isinstance(item, dict):
            for key, child in item.items():
                name = f"{at}.{key}" if at else key
                if SURROGATE.search(key):
                    return at
                stack.append((child, name))
    return None


def parse_body(model: type[Body], body: bytes) -> Body:
    """A request body as `model`: 400 for bytes that are not strict JSON or name a field the
    model does not have, 422 for JSON of the wrong shape."""
    value = parse_json(body)
    if not isinstance(value, dict):
        raise ApiError(422, f"request body: expected a JSON object, got {type(value).__name__}", "invalid_type")
    try:
        return model.model_validate(value, strict=True)
    except ValidationError as err:
        errors = err.errors(include_url=False)
        extra = next((e for e in errors if e["type"] == "extra_forbidden"), None)
        if extra is not None:
            where = _loc(extra)
            raise ApiError(400, f"{where}: not a field of this request (unsupported)", "unsupported_parameter", where) from None
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
