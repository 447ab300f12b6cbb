"""Sample -> token ids and labels, with label masks taken from the chat template's token spans.

1. The conversation is rendered by the model family's chat template (`chat_templates.py`),
   with one `<image>` token per image, through `tokenizer.apply_chat_template(...,
   return_assistant_tokens_mask=True)`: the `{% generation %}` blocks give the exact tokens of
   each assistant turn. Labels are those tokens; everything else is -100.
2. Check: each supervised span, decoded, must be that assistant turn's text followed only by the
   end marker the template adds (EOS, `<|im_end|>`, ...), and there must be one span per
   assistant turn. Anything else raises `LabelMaskError` naming the sample: a mismatch is never
   trained on silently.
3. Each `<image>` id is expanded to `image_tokens_per_image` copies at the id level (labels -100).
4. Truncation to `max_length` never cuts inside an image span nor inside an assistant turn: the
   sample keeps every assistant turn that fits whole. A sample whose image span or first target
   does not fit is dropped (`DroppedSample`, with the reason), and the caller counts it.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from scitune.data.chat_templates import CHAT_TEMPLATES
from scitune.data.sample import IMAGE_TOKEN, ROLES, image_paths
from scitune.errors import ScituneError

IGNORE_INDEX = -100

DROP_IMAGE = "image_does_not_fit"
DROP_TARGET = "target_does_not_fit"


class LabelMaskError(ScituneError):
    """The supervised token spans do not decode to the assistant turns."""


class DroppedSample(ScituneError):
    """The sample cannot be used at this max_length; `reason` is DROP_IMAGE or DROP_TARGET."""

    def __init__(self, sample_id: str, reason: str, length: int, max_length: int):
        super().__init__(f"sample {sample_id!r}: {reason.replace('_', ' ')} (length {length} > max_length {max_length})")
        self.sample_id, self.reason, self.length, self.max_length = sample_id, reason, length, max_length


def to_messages(sample: dict[str, Any], upto_last_user: bool = False) -> list[dict[str, str]]:
    """LLaVA turns -> chat messages (human -> user, gpt -> assistant); checks roles and order.

    `upto_last_user`: drop the final assistant turn (a generation prompt).
    """
    sample_id = sample.get("id")
    turns = sample.get("conversations")
    if not isinstance(turns, list) or not turns:
        raise ScituneError(f"sample {sample_id!r}: no conversations")
    messages = []
    for index, turn in enumerate(turns):
        if not isinstance(turn, dict) or turn.get("from") not in ROLES or not isinstance(turn.get("value"), str):
            raise ScituneError(f"sample {sample_id!r}: turn {index} is not {{from: human|gpt|system, value: text}}")
        messages.append({"role": ROLES[turn["from"]], "content": turn["value"]})
    body = messages[1:] if messages[0]["role"] == "system" else messages
    expected = ["user", "assistant"] * (len(body) // 2 + 1)
    if not body or [m["role"] for m in body] != expected[: len(body)] or body[-1]["role"] != "assistant":
        raise ScituneError(f"sample {sample_id!r}: turns must alternate human, gpt, ... and end with gpt")
    if upto_last_user:
        messages = messages[:-1]
    return messages


def resolve_template(tokenizer, chat_template: str | None) -> str:
    """A template name from CHAT_TEMPLATES, a Jinja string, or None for the tokenizer's own."""
    if chat_template is None:
        if not tokenizer.chat_template:
            raise ScituneError("the tokenizer has no chat template; name one of " + ", ".join(CHAT_TEMPLATES))
        return tokenizer.chat_template
    return CHAT_TEMPLATES.get(chat_template, chat_template)


def image_token_id(tokenizer) -> int:
    token_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    if token_id is None or token_id == tokenizer.unk_token_id:
        raise ScituneError(f"the tokenizer has no {IMAGE_TOKEN} token")
    return token_id


def _spans(mask: list[int]) -> list[tuple[int, int]]:
    spans, start = [], None
    for i, m in enumerate(mask):
        if m and start is None:
            start = i
        elif not m and start is not None:
            spans.append((start, i))
            start = None
    if start is not None:
        spans.append((start, len(mask)))
    return spans


def _end_markers(tokenizer) -> set[str]:
    markers = set(tokenizer.all_special_tokens)
    markers.update(t.content for t in tokenizer.added_tokens_decoder.values())
    return markers


def check_supervised_spans(sample_id: str, ids: list[int], mask: list[int], targets: list[str], tokenizer) -> list[tuple[int, int]]:
    """The assistant spans; raises LabelMaskError unless each decodes to its turn's text + end marker."""
    spans = _spans(mask)
    if len(spans) != len(targets):
        raise LabelMaskError(
            f"sample {sample_id!r}: the chat template marked {len(spans)} assistant span(s) for {len(targets)} "
            "assistant turn(s) (does the template wrap assistant turns in {% generation %}?)"
        )
    markers = _end_markers(tokenizer)
    for (start, end), target in zip(spans, targets):
        decoded = tokenizer.decode(ids[start:end], skip_special_tokens=False, clean_up_tokenization_spaces=False)
        text, want = decoded.strip(), target.strip()
        rest = text[len(want) :].strip() if text.startswith(want) else None
        if rest is None or (rest and rest not in markers):
            raise LabelMaskError(
                f"sample {sample_id!r}: supervised tokens decode to {decoded!r}, expected the assistant text "
                f"{target!r} followed by an end marker"
            )
    return spans


def _render(sample: dict[str, Any], tokenizer, template: str, prompt_only: bool) -> tuple[list[int], list[int], int]:
    """(ids, assistant mask, number of images) with one `<image>` id per image."""
    sample_id = sample.get("id")
    messages = to_messages(sample, upto_last_user=prompt_only)
    n_images = len(image_paths(sample))
    n_placeholders = sum(t["value"].count(IMAGE_TOKEN) for t in sample["conversations"])
    if n_placeholders != n_images:
        raise ScituneError(f"sample {sample_id!r}: {n_placeholders} {IMAGE_TOKEN} placeholder(s) for {n_images} image(s)")
    out = tokenizer.apply_chat_template(
        messages,
        chat_template=template,
        tokenize=True,
        return_dict=True,
        return_assistant_tokens_mask=not prompt_only,
        add_generation_prompt=prompt_only,
    )
    ids = list(out["input_ids"])
    mask = list(out["assistant_masks"]) if not prompt_only else [0] * len(ids)
    found = ids.count(image_token_id(tokenizer))
    if found != n_images and not prompt_only:
        raise ScituneError(
            f"sample {sample_id!r}: the template rendered {found} {IMAGE_TOKEN} token(s) for {n_images} image(s)"
        )
    return ids, mask, found


def _expand(ids: list[int], mask: list[int], image_id: int, per_image: int):
    """Expanded ids, expanded mask, and the (start, end) of each image span."""
    out_ids, out_mask, image_spans = [], [], []
    for token, m in zip(ids, mask):
        if token == image_id:
            image_spans.append((len(out_ids), len(out_ids) + per_image))
            out_ids += [image_id] * per_image
            out_mask += [0] * per_image
        else:
            out_ids.append(token)
            out_mask.append(m)
    return out_ids, out_mask, image_spans


def tokenize_sample(
    sample: dict[str, Any],
    tokenizer,
    image_tokens_per_image: int,
    max_length: int | None = None,
    chat_template: str | None = None,
) -> dict[str, Any]:
    """`{id, input_ids, labels, attention_mask, images, length, truncated}` for training.

    Raises `DroppedSample` when the image span or the first target does not fit `max_length`,
    `LabelMaskError` when the template's spans do not match the assistant text, `ScituneError`
    for malformed samples.
    """
    sample_id = str(sample.get("id"))
    template = resolve_template(tokenizer, chat_template)
    ids, mask, _ = _render(sample, tokenizer, template, prompt_only=False)
    targets = [t["value"] for t in sample["conversations"] if t["from"] == "gpt"]
    check_supervised_spans(sample_id, ids, mask, targets, tokenizer)
    image_id = image_token_id(tokenizer)
    ids, mask, image_spans = _expand(ids, mask, image_id, image_tokens_per_image)
    truncated = False
    if max_length is not None and len(ids) > max_length:
        if any(end > max_length for _, end in image_spans):
            raise DroppedSample(sample_id, DROP_IMAGE, len(ids), max_length)
        fitting = [end for _, end in _spans(mask) if end <= max_length]
        if not fitting:
            raise DroppedSample(sample_id, DROP_TARGET, len(ids), max_length)
        cut = fitting[-1]
        ids, mask, truncated = ids[:cut], mask[:cut], True
    labels = [t if m else IGNORE_INDEX for t, m in zip(ids, mask)]
    return {
        "id": sample_id,
        "input_ids": ids,
        "labels": labels,
        "attention_mask": [1] * len(ids),
        "images": image_paths(sample),
        "length": len(ids),
        "truncated": truncated,
    }


def tokenize_prompt(
    sample: dict[str, Any], tokenizer, image_tokens_per_image: int, chat_template: str | None = None
) -> dict[str, Any]:
    """The generation prompt (all turns but the last assistant one, + the template's generation
    prompt): `{id, input_ids, attention_mask, images, target}`; `target` is the final gpt value."""
    sample_id = str(sample.get("id"))
    template = resolve_template(tokenizer, chat_template)
    ids, mask, _ = _render(sample, tokenizer, template, prompt_only=True)
    ids, _, _ = _expand(ids, mask, image_token_id(tokenizer), image_tokens_per_image)
    return {
        "id": sample_id,
        "input_ids": ids,
        "attention_mask": [1] * len(ids),
        "images": image_paths(sample),
        "target": sample["conversations"][-1]["value"],
    }


class SampleTokenizer:
    """Tokenizes samples for training and counts the dropped ones by reason (`.dropped`)."""

    def __init__(self, tokenizer, image_tokens_per_image: int, max_length: int | None = None, chat_template: str | None = None):
        self.tokenizer = tokenizer
        self.image_tokens_per_image = image_tokens_per_image
        self.max_length = max_length
        self.chat_template = chat_template
        self.dropped: Counter[str] = Counter()
        self.truncated = 0

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any] | None:
        try:
            item = tokenize_sample(sample, self.tokenizer, self.image_tokens_per_image, self.max_length, self.chat_template)
        except DroppedSample as dropped:
            self.dropped[dropped.reason] += 1
            return None
        self.truncated += item["truncated"]
        return item

    def tokenize_all(self, samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [item for item in map(self, samples) if item is not None]
