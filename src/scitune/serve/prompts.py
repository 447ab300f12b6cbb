"""A request -> what the model thread runs: the rendered prompt (through the checkpoint's
`Renderer`, the same ids as training and `scitune eval`), what the model thread needs of its
images (`scitune.serve.images.RequestImages`), and the generation settings, each checked against the server's limits.

Chat messages become a LLaVA conversation: system/developer -> system, user -> human,
assistant -> gpt; a message's parts are joined with newlines, each image part becoming an
`<image>` placeholder where it stands (the renderer then places it as the checkpoint was trained,
at the start of its turn by default). Text may not carry `<image>` itself.

Runs in a worker thread of the web server (not the model thread): decoding images and tokenizing
never hold up generation. The tokenizer is used under the model slot's lock.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

from scitune.data.sample import IMAGE_TOKEN
from scitune.errors import ScituneError
from scitune.inference import EvalItem
from scitune.serve.errors import ApiError
from scitune.serve.images import decode_image, image_bytes
from scitune.serve.limits import ServeLimits
from scitune.serve.models import ModelSlot
from scitune.serve.schemas import CaptionRequest, ChatRequest, ClassifyRequest, ImageURL

ROLE_OF = {"system": "system", "developer": "system", "user": "human", "assistant": "gpt"}
CAPTION_TOKENS = 64


@dataclass
class Prepared:
    """One request, ready for the model thread."""

    slot: ModelSlot
    item: EvalItem
    prompt: dict | None = None  # Renderer.prompt output (generation)
    images: dict = field(default_factory=dict)  # image key -> what RequestImages holds of it
    max_tokens: int = 0
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    logprobs: int | None = None  # None: no log-probabilities; k: each token's and its k likeliest
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    logit_bias: dict[int, float] = field(default_factory=dict)

    @property
    def shapes_logits(self) -> bool:
        """Whether generation must change or read this request's logits (`decoding.RowLogits`)."""
        return self.logprobs is not None or bool(self.logit_bias) or bool(self.frequency_penalty or self.presence_penalty)

    @property
    def prompt_tokens(self) -> int:
        return len(self.prompt["input_ids"]) if self.prompt else 0


def request_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def load_image(url: str, slot: ModelSlot, limits: ServeLimits, image_root: Path | None, where: str):
    """(key, what the slot's `RequestImages` holds of it) for one request image."""
    try:
        image = decode_image(image_bytes(url, limits, image_root, where), limits, where)
    except OSError as err:  # a path the system refuses (too long, a loop of links, ...): the request's fault
        raise ApiError(400, f"{where}: cannot read the image ({err.strerror or type(err).__name__})", "invalid_image_url",
                       where) from None
    try:
        held = slot.images.prepare(image)
    except (ValueError, OSError, RuntimeError) as err:
        raise ApiError(400, f"{where}: the image processor refused the image ({' '.join(str(err).split())[:200]})",
                       "invalid_image", where) from None
    return f"image-{uuid.uuid4().hex}", held


def _max_tokens(requested: int | None, limits: ServeLimits, param: str, default: int | None = None) -> int:
    value = requested if requested is not None else (default or limits.default_max_tokens)
    if value > limits.max_tokens:
        raise ApiError(400, f"{param} is {value}; this server allows at most {limits.max_tokens}", "max_tokens_too_large", param)
    return value


def _render(slot: ModelSlot, sample: dict, reserve: int, images: dict) -> dict:
    """The prompt of `sample`, whose image keys are `images`' (a model family's renderer opens them)."""
    try:
        with slot.tokenizer_lock, slot.images.visible(images):
            return slot.engine.renderer.prompt(sample, reserve=reserve)
    except ScituneError as err:
        text = str(err)
        if "positions" in text:
            raise ApiError(400, text.replace(f"sample {sample['id']!r}: ", ""), "context_length_exceeded", "messages") from None
        raise ApiError(400, text.replace(f"sample {sample['id']!r}: ", ""), "invalid_messages", "messages") from None


def _check_text(texts: list[str], limits: ServeLimits) -> None:
    total = sum(len(t) for t in texts)
    if total > limits.max_text_chars:
        raise ApiError(413, f"the request's text is {total} characters, over the limit of {limits.max_text_chars}",
                       "text_too_long", "messages")
    if any(IMAGE_TOKEN in t for t in texts):
        raise ApiError(400, f"text may not contain {IMAGE_TOKEN}; send images as image_url parts", "invalid_messages", "messages")


def _logit_bias(slot: ModelSlot, bias: dict[str, float] | None) -> dict[int, float]:
    """OpenAI's logit_bias (token id as a string -> bias) as token id -> bias."""
    vocabulary = len(slot.engine.tokenizer)
    out = {}
    for key, value in (bias or {}).items():
        if not (key.isascii() and key.isdigit() and len(key) <= 12 and int(key) < vocabulary):
            raise ApiError(400, f"logit_bias: {key[:40]!r} is not a token id of this model (0 to {vocabulary - 1})",
                           "invalid_logit_bias", "logit_bias")
        if value:
            out[int(key)] = float(value)
    return out


def prepare_chat(slot: ModelSlot, request: ChatRequest, limits: ServeLimits, image_root: Path | None) -> Prepared:
    refused = request.unsupported()
    if refused is not None:
        name, why = refused
        raise ApiError(400, f"{name}: {why}", "unsupported_parameter", name)
    if request.n not in (None, 1):
        raise ApiError(400, "n: this server returns one choice per request (n=1)", "invalid_n", "n")
    if len(request.messages) > limits.max_messages:
        raise ApiError(413, f"messages: {len(request.messages)} messages, over the limit of {limits.max_messages}",
                       "too_many_messages", "messages")
    stop = [request.stop] if isinstance(request.stop, str) else list(request.stop or [])
    if len(stop) > limits.max_stop or any(len(s) > limits.max_stop_chars or not s for s in stop):
        raise ApiError(400, f"stop: at most {limits.max_stop} non-empty strings of up to {limits.max_stop_chars} characters",
                       "invalid_stop", "stop")
    if request.max_tokens is not None and request.max_completion_tokens is not None \
            and request.max_tokens != request.max_completion_tokens:
        raise ApiError(400, "max_tokens and max_completion_tokens differ; give one", "invalid_max_tokens", "max_tokens")
    requested = request.max_completion_tokens if request.max_completion_tokens is not None else request.max_tokens
    max_tokens = _max_tokens(requested, limits, "max_tokens")
    texts, urls, turns = [], [], []
    for i, message in enumerate(request.messages):
        content = message.content
        pieces: list[str] = []
        if content is None:
            if message.role != "assistant":
                raise ApiError(400, f"messages[{i}].content: a {message.role} message needs content", "invalid_messages",
                               f"messages[{i}].content")
        elif not content or (message.role == "user" and isinstance(content, str) and not content.strip()):
            raise ApiError(400, f"messages[{i}].content: is empty", "empty_content", f"messages[{i}].content")
        elif isinstance(content, str):
            pieces.append(content)
        else:
            for j, part in enumerate(content):
                if part.type == "text":
                    pieces.append(part.text)
                elif message.role != "user":
                    raise ApiError(400, f"messages[{i}].content[{j}]: only user messages may carry images",
                                   "invalid_messages", f"messages[{i}].content[{j}]")
                else:
                    urls.append((part.image_url.url, f"messages[{i}].content[{j}].image_url"))
                    pieces.append(IMAGE_TOKEN)
        texts += [p for p in pieces if p != IMAGE_TOKEN]
        turns.append({"from": ROLE_OF[message.role], "value": "\n".join(pieces)})
    if request.messages[-1].role != "user":
        raise ApiError(400, f"messages: the last message must be the user's (got {request.messages[-1].role})",
                       "invalid_messages", "messages")
    last = turns[-1]["value"]
    if not last.replace(IMAGE_TOKEN, "").strip() and IMAGE_TOKEN not in last:
        raise ApiError(400, f"messages[{len(turns) - 1}].content: the last message has no text and no image",
                       "empty_content", f"messages[{len(turns) - 1}].content")
    _check_text(texts, limits)
    if len(urls) > limits.max_images:
        raise ApiError(413, f"the request has {len(urls)} images, over the limit of {limits.max_images}", "too_many_images", "messages")
    images = dict(load_image(url, slot, limits, image_root, where) for url, where in urls)
    sample = {"id": request_id("chat"), "conversations": turns}
    if images:
        sample["image"] = list(images)
    prompt = _render(slot, sample, max_tokens, images)
    temperature = request.temperature if request.temperature is not None else 0.0
    top_p = request.top_p if request.top_p is not None else 1.0
    logprobs = (request.top_logprobs or 0) if request.logprobs else None
    return Prepared(slot, EvalItem(sample["id"], "", tuple(images)), prompt, images, max_tokens, temperature, top_p,
                    request.seed, tuple(stop), logprobs, request.frequency_penalty or 0.0, request.presence_penalty or 0.0,
                    _logit_bias(slot, request.logit_bias))


def _image_url(image: str | ImageURL) -> str:
    return image if isinstance(image, str) else image.url


def prepare_classify(slot: ModelSlot, request: ClassifyRequest, limits: ServeLimits, image_root: Path | None,
                     default_labels: tuple[str, ...], default_question: str) -> Prepared:
    labels = list(request.labels) if request.labels is not None else list(default_labels)
    if len(labels) < 2 or len(labels) > limits.max_labels:
        raise ApiError(400, f"labels: give 2 to {limits.max_labels} labels", "invalid_labels", "labels")
    if any(not label.strip() or len(label) > limits.max_label_chars for label in labels) or len(set(labels)) != len(labels):
        raise ApiError(400, f"labels: each label must be distinct, non-blank and at most {limits.max_label_chars} characters",
                       "invalid_labels", "labels")
    question = request.question if request.question is not None else default_question
    if not question.strip():
        raise ApiError(400, "question: must not be blank", "invalid_question", "question")
    _check_text([question, *labels], limits)
    key, held = load_image(_image_url(request.image), slot, limits, image_root, "image")
    item = EvalItem(request_id("classify"), f"{IMAGE_TOKEN}\n{question}", (key,), tuple(labels))
    # the prompt with the longest label must fit the model's positions
    longest = max(len(label) for label in labels)
    _render(slot, item.sample(), longest + 8, {key: held})
    return Prepared(slot, item, None, {key: held})


def prepare_caption(slot: ModelSlot, request: CaptionRequest, limits: ServeLimits, image_root: Path | None,
                    question: str) -> Prepared:
    max_tokens = _max_tokens(request.max_tokens, limits, "max_tokens", default=min(CAPTION_TOKENS, limits.max_tokens))
    key, held = load_image(_image_url(request.image), slot, limits, image_root, "image")
    item = EvalItem(request_id("caption"), f"{IMAGE_TOKEN}\n{question}", (key,))
    prompt = _render(slot, item.sample(), max_tokens, {key: held})
    return Prepared(slot, item, prompt, {key: held}, max_tokens)
