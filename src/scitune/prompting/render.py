"""THE one place a sample becomes token ids, labels and an attention mask: for training, for
generation prompts and for option scoring alike (`Renderer`).

1. The conversation is rendered by the model's chat template (`scitune.data.chat_templates`),
   with one `<image>` token per image, through `tokenizer.apply_chat_template(...,
   return_assistant_tokens_mask=True)`: the `{% generation %}` blocks give the exact tokens of
   each assistant turn. Labels are those tokens; everything else is -100.
2. Check: each supervised span, decoded, must be that assistant turn's text followed only by the
   end marker the template adds (EOS, `<|im_end|>`, ...), and there must be one span per
   assistant turn. Anything else raises `LabelMaskError` naming the sample: a mismatch is never
   trained on silently.
3. Each `<image>` id is expanded to the processor's number of image tokens at the id level
   (labels -100), so a prompt is the same ids whichever path renders it. For another model
   family (scitune.model.families: Qwen-VL, Idefics3/SmolVLM, LLaVA-OneVision, Gemma 3) the
   placeholder is written as the family's image text (`<|vision_start|><|image_pad|><|vision_end|>`,
   `<start_of_image>`, ...) and each image's marker becomes the ids the family's own processor
   expands it to for that image (tiles, dynamic resolution): the renderer opens the image
   through the `ImageLoader` the collator uses. Items then carry the family's per-token input
   (Qwen's `mm_token_type_ids`, Gemma 3's `token_type_ids`).
4. Truncation to `max_length` never cuts inside an image span nor inside an assistant turn: the
   sample keeps every assistant turn that fits whole. A sample whose image span or first target
   does not fit is dropped (`DroppedSample`, with the reason), and the caller counts it.
5. `<image>` placement: `front` (the default, as LLaVA trains: each turn's `<image>`
   placeholders are taken out and put at its start, `<image>\\n` + text) or `keep` (where the
   file puts them).

A generation prompt is the same rendering with the final assistant turn left out and the
template's generation prompt added; its ids equal the training ids up to the first supervised
token (tested for every shipped template). An option's continuation for likelihood scoring is the
supervised span that training would learn for that answer.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from scitune.data.chat_templates import CHAT_TEMPLATES, marks_assistant_turns
from scitune.data.sample import IMAGE_TOKEN, ROLES, image_paths
from scitune.errors import ScituneError
from scitune.model.families import family_of_processor

IGNORE_INDEX = -100

DROP_IMAGE = "image_does_not_fit"
DROP_TARGET = "target_does_not_fit"

IMAGE_PLACEMENTS = ("front", "keep")
CHARS_PER_TOKEN_BOUND = 64  # a prompt longer than this many characters per position cannot fit


class LabelMaskError(ScituneError):
    """The supervised token spans do not decode to the assistant turns."""


class DroppedSample(ScituneError):
    """The sample cannot be used at this max_length; `reason` is DROP_IMAGE or DROP_TARGET."""

    def __init__(self, sample_id: str, reason: str, length: int, max_length: int):
        super().__init__(f"sample {sample_id!r}: {reason.replace('_', ' ')} (length {length} > max_length {max_length})")
        self.sample_id, self.reason, self.length, self.max_length = sample_id, reason, length, max_length


def place_images(text: str, placement: str) -> str:
    """`front`: the turn's `<image>` placeholders moved to its start, each followed by a newline."""
    if placement == "keep" or IMAGE_TOKEN not in text:
        return text
    count = text.count(IMAGE_TOKEN)
    return (IMAGE_TOKEN + "\n") * count + text.replace(IMAGE_TOKEN, "").strip()


def to_messages(sample: dict[str, Any], prompt_only: bool = False, placement: str = "front") -> list[dict[str, str]]:
    """LLaVA turns -> chat messages (human -> user, gpt -> assistant); checks roles and order.

    `prompt_only`: the conversation up to its last human turn (a final gpt turn, if any, is
    left out), for a generation prompt.
    """
    sample_id = sample.get("id")
    turns = sample.get("conversations")
    if not isinstance(turns, list) or not turns:
        raise ScituneError(f"sample {sample_id!r}: no conversations")
    messages = []
    for index, turn in enumerate(turns):
        if not isinstance(turn, dict) or not isinstance(turn.get("from"), str) or turn["from"] not in ROLES:
            raise ScituneError(f"sample {sample_id!r}: turn {index} is not {{from: human|gpt|system, value: text}}")
        if not isinstance(turn.get("value"), str):
            raise ScituneError(f"sample {sample_id!r}: turn {index} has no text value")
        content = place_images(turn["value"], placement) if turn["from"] == "human" else turn["value"]
        messages.append({"role": ROLES[turn["from"]], "content": content})
    if prompt_only and messages[-1]["role"] == "assistant":
        messages = messages[:-1]
    body = messages[1:] if messages and messages[0]["role"] == "system" else messages
    expected = ["user", "assistant"] * (len(body) // 2 + 1)
    last = "user" if prompt_only else "assistant"
    if not body or [m["role"] for m in body] != expected[: len(body)] or body[-1]["role"] != last:
        ending = "a human turn" if prompt_only else "gpt"
        raise ScituneError(f"sample {sample_id!r}: turns must alternate human, gpt, ... and end with {ending}")
    return messages


def resolve_template(tokenizer, chat_template: str | None) -> str:
    """A template name from CHAT_TEMPLATES, a Jinja string, or None for the tokenizer's own."""
    if chat_template is None:
        if not tokenizer.chat_template:
            raise ScituneError("the tokenizer has no chat template; name one of " + ", ".join(CHAT_TEMPLATES))
        return tokenizer.chat_template
    return CHAT_TEMPLATES.get(chat_template, chat_template)


def _token_id(tokenizer, token: str) -> int:
    token_id = tokenizer.convert_tokens_to_ids(token)
    if token_id is None or token_id == tokenizer.unk_token_id:
        raise ScituneError(f"the tokenizer has no {token} token")
    return token_id


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


def special_token_ids(tokenizer) -> set[int]:
    """The tokenizer's named special tokens and its added special ones (a chat template's turn
    markers such as <end_of_turn>): the tokens an assistant turn can end with."""
    ids = set(tokenizer.all_special_ids)
    ids.update(i for i, t in tokenizer.added_tokens_decoder.items() if t.special)
    return ids


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


def _expand(ids: list[int], mask: list[int], image_id: int, expansions: list[list[int]]):
    """Expanded ids (the i-th `image_id` replaced by `expansions[i]`), expanded mask, and the
    (start, end) of each image span."""
    out_ids, out_mask, image_spans = [], [], []
    pending = iter(expansions)
    for token, m in zip(ids, mask):
        if token == image_id:
            expansion = next(pending)
            image_spans.append((len(out_ids), len(out_ids) + len(expansion)))
            out_ids += expansion
            out_mask += [0] * len(expansion)
        else:
            out_ids.append(token)
            out_mask.append(m)
    return out_ids, out_mask, image_spans


def image_tokens_of(processor) -> int:
    """How many `<image>` tokens one image becomes, as the (Llava) processor expands it."""
    image_processor = processor.image_processor
    if getattr(image_processor, "do_center_crop", False) and getattr(image_processor, "crop_size", None):
        height, width = image_processor.crop_size["height"], image_processor.crop_size["width"]
    else:
        size = image_processor.size
        height = size.get("height") or size.get("shortest_edge")
        width = size.get("width") or size.get("shortest_edge")
    patch = processor.patch_size
    count = (height // patch) * (width // patch) + (processor.num_additional_image_tokens or 0)
    if processor.vision_feature_select_strategy == "default":
        count -= 1
    return count


class Renderer:
    """Renders LLaVA conversation samples for one processor (tokenizer + image processor).

    - `train(sample)`: `{id, input_ids, labels, attention_mask, images, length, truncated}`;
    - `prompt(sample)`: `{id, input_ids, attention_mask, images}`, the generation prompt;
    - `options(sample, answers)`: (prompt ids, each answer's continuation ids) for likelihood.
    `max_length` bounds every rendering (training truncates as the module docstring says; a
    prompt that does not fit is an error naming the sample).
    """

    def __init__(
        self,
        processor,
        chat_template: str | None = None,
        max_length: int | None = None,
        image_placement: str = "front",
        image_tokens: int | None = None,
        images=None,
    ):
        """`images`: the `ImageLoader` the collator reads pixels with. A model family whose
        processor expands an image into a number of tokens that depends on the image (Qwen's
        dynamic resolution, Idefics3's tiles, LLaVA-OneVision's anyres grid) needs it to render."""
        if image_placement not in IMAGE_PLACEMENTS:
            raise ScituneError(f"image placement: expected one of {', '.join(IMAGE_PLACEMENTS)}, got {image_placement!r}")
        self.processor = processor
        self.tokenizer = processor.tokenizer if hasattr(processor, "image_processor") else processor
        self.template = resolve_template(self.tokenizer, chat_template)
        # a checkpoint's own template often has no {% generation %} blocks: its assistant spans
        # are then found by rendering each turn's prefix (`_masks_from_prefixes`)
        self.marks_turns = marks_assistant_turns(self.template)
        self.max_length = max_length
        self.image_placement = image_placement
        self.images = images
        family = family_of_processor(processor)
        # the LLaVA path expands `<image>` to a fixed count at the id level; other families
        # expand each image as their own processor does
        self.family = family if family is not None and family.model_types != ("llava",) else None
        if self.family is None:
            self.image_tokens = image_tokens if image_tokens is not None else image_tokens_of(processor)
            self.image_id = image_token_id(self.tokenizer)
        else:
            self.image_tokens = None
            self.image_id = _token_id(self.tokenizer, self.family.image_marker)
            self.feature_id = _token_id(self.tokenizer, self.family.feature_token)

    def _expansions(self, sample_id: str, paths: list[str]) -> list[list[int]]:
        """The ids each image's marker becomes."""
        if self.family is None:
            return [[self.image_id] * self.image_tokens for _ in paths]
        if paths and self.images is None:
            raise ScituneError(f"sample {sample_id!r}: rendering a {type(self.processor).__name__} sample's images needs their files (no image loader)")
        out = []
        for path in paths:
            # the family's processor on the marker alone: its own expansion of this image
            encoded = self.processor(
                text=[self.family.image_marker], images=[[self.images.open(path)]], add_special_tokens=False
            )
            out.append(list(encoded["input_ids"][0]))
        return out

    def _family_images(self, messages: list[dict[str, str]]) -> list[dict[str, str]]:
        """`<image>` placeholders written as the family's image text (Qwen's vision markers, ...)."""
        if self.family is None or self.family.image_text == IMAGE_TOKEN:
            return messages
        return [{**m, "content": m["content"].replace(IMAGE_TOKEN, self.family.image_text)} for m in messages]

    def with_token_types(self, item: dict[str, Any]) -> dict[str, Any]:
        """Adds the family's per-token input (1 on feature tokens) to a rendered item."""
        if self.family is not None and self.family.token_type_input:
            item[self.family.token_type_input] = [int(t == self.feature_id) for t in item["input_ids"]]
        return item

    # ------------------------------------------------------------------ the one rendering
    def text(self, sample: dict[str, Any], prompt_only: bool = False) -> str:
        """The chat-template text of a sample (one `<image>` per image), as `train`/`prompt` tokenize it."""
        messages = self._family_images(to_messages(sample, prompt_only=prompt_only, placement=self.image_placement))
        return self.tokenizer.apply_chat_template(
            messages, chat_template=self.template, tokenize=False, add_generation_prompt=prompt_only
        )

    def _render(self, sample: dict[str, Any], prompt_only: bool) -> tuple[list[int], list[int]]:
        """(ids, assistant mask) with one `<image>` id per image, images checked against placeholders."""
        sample_id = sample.get("id")
        messages = to_messages(sample, prompt_only=prompt_only, placement=self.image_placement)
        n_images = len(image_paths(sample))
        n_placeholders = sum(m["content"].count(IMAGE_TOKEN) for m in messages)
        if n_placeholders != n_images:
            raise ScituneError(f"sample {sample_id!r}: {n_placeholders} {IMAGE_TOKEN} placeholder(s) for {n_images} image(s)")
        messages = self._family_images(messages)
        out = self.tokenizer.apply_chat_template(
            messages,
            chat_template=self.template,
            tokenize=True,
            return_dict=True,
            return_assistant_tokens_mask=not prompt_only and self.marks_turns,
            add_generation_prompt=prompt_only,
        )
        ids = list(out["input_ids"])
        if prompt_only:
            mask = [0] * len(ids)
        elif self.marks_turns:
            mask = list(out["assistant_masks"])
        else:
            mask = self._masks_from_prefixes(str(sample_id), messages, ids)
        found = ids.count(self.image_id)
        if found != n_images:
            raise ScituneError(
                f"sample {sample_id!r}: the template rendered {found} {IMAGE_TOKEN} token(s) for {n_images} image(s)"
            )
        return ids, mask

    def _masks_from_prefixes(self, sample_id: str, messages: list[dict[str, str]], ids: list[int]) -> list[int]:
        """The assistant mask of a template without {% generation %} blocks: an assistant turn's
        tokens are those between the conversation before it (with the generation prompt) and the
        conversation up to it, through its last special token (the turn's end marker; a newline
        after it is not the answer). Each rendering must be a prefix of the whole one."""

        def tokens(turns, generation_prompt):
            return list(self.tokenizer.apply_chat_template(
                turns, chat_template=self.template, tokenize=True, return_dict=True, add_generation_prompt=generation_prompt
            )["input_ids"])

        special = special_token_ids(self.tokenizer)
        mask = [0] * len(ids)
        for i, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            before, through = tokens(messages[:i], True), tokens(messages[: i + 1], False)
            if ids[: len(before)] != before or ids[: len(through)] != through or len(through) <= len(before):
                raise LabelMaskError(
                    f"sample {sample_id!r}: the chat template has no {{% generation %}} blocks and its renderings of the "
                    "conversation's prefixes are not prefixes of the whole; set model.chat_template to one of scitune's"
                )
            closers = [k for k in range(len(before), len(through)) if ids[k] in special]
            if not closers:  # nothing would teach the model to stop
                raise LabelMaskError(
                    f"sample {sample_id!r}: the chat template has no {{% generation %}} blocks and ends an assistant turn "
                    "with no special token; set model.chat_template to one of scitune's"
                )
            end = closers[-1] + 1
            mask[len(before): end] = [1] * (end - len(before))
        return mask

    def train(self, sample: dict[str, Any]) -> dict[str, Any]:
        """Raises `DroppedSample` when the image span or the first target does not fit
        `max_length`, `LabelMaskError` when the template's spans do not match the assistant text,
        `ScituneError` for malformed samples."""
        sample_id = str(sample.get("id"))
        ids, mask = self._render(sample, prompt_only=False)
        targets = [t["value"] for t in sample["conversations"] if t["from"] == "gpt"]
        check_supervised_spans(sample_id, ids, mask, targets, self.tokenizer)
        ids, mask, image_spans = _expand(ids, mask, self.image_id, self._expansions(sample_id, image_paths(sample)))
        truncated = False
        max_length = self.max_length
        if max_length is not None and len(ids) > max_length:
            if any(end > max_length for _, end in image_spans):
                raise DroppedSample(sample_id, DROP_IMAGE, len(ids), max_length)
            fitting = [end for _, end in _spans(mask) if end <= max_length]
            if not fitting:
                raise DroppedSample(sample_id, DROP_TARGET, len(ids), max_length)
            cut = fitting[-1]
            ids, mask, truncated = ids[:cut], mask[:cut], True
        labels = [t if m else IGNORE_INDEX for t, m in zip(ids, mask)]
        return self.with_token_types({
            "id": sample_id,
            "input_ids": ids,
            "labels": labels,
            "attention_mask": [1] * len(ids),
            "images": image_paths(sample),
            "length": len(ids),
            "truncated": truncated,
        })

    def prompt(self, sample: dict[str, Any], reserve: int = 0) -> dict[str, Any]:
        """The generation prompt: every turn up to the last human one, then the template's
        generation prompt. `reserve` tokens (the generation budget) must fit after it."""
        sample_id = str(sample.get("id"))
        if self.max_length is not None:
            # bound the tokenizer's work first: no tokenizer packs this many characters into a token
            chars = sum(len(t.get("value", "")) for t in sample.get("conversations", []) if isinstance(t, dict) and isinstance(t.get("value"), str))
            if chars > CHARS_PER_TOKEN_BOUND * self.max_length:
                raise ScituneError(
                    f"sample {sample_id!r}: the prompt is {chars} characters, more than the model's {self.max_length} positions can hold"
                )
        ids, mask = self._render(sample, prompt_only=True)
        ids, _, _ = _expand(ids, mask, self.image_id, self._expansions(sample_id, image_paths(sample)))
        if self.max_length is not None and len(ids) + reserve > self.max_length:
            raise ScituneError(
                f"sample {sample_id!r}: the prompt is {len(ids)} tokens; with {reserve} new tokens it exceeds "
                f"the model's {self.max_length} positions"
            )
        return self.with_token_types({"id": sample_id, "input_ids": ids, "attention_mask": [1] * len(ids), "images": image_paths(sample)})

    def options(self, sample: dict[str, Any], answers: list[str]) -> tuple[list[int], list[list[int]]]:
        """The prompt's ids and, for each answer, the tokens training would supervise for it."""
        sample_id = str(sample.get("id"))
        prompt = self.prompt(sample)["input_ids"]
        turns = to_messages(sample, prompt_only=True, placement="keep")  # checks the shape
        base = sample["conversations"][: len(turns)]
        continuations = []
        for answer in answers:
            item = self.train({**sample, "id": sample_id, "conversations": base + [{"from": "gpt", "value": answer}]})
            start, end = _spans([label != IGNORE_INDEX for label in item["labels"]])[-1]
            if item["input_ids"][:start] != prompt:
                raise ScituneError(
                    f"sample {sample_id!r}: the chat template renders the prompt differently with an answer; cannot score options"
                )
            continuations.append(item["input_ids"][start:end])
        return prompt, continuations

    # ------------------------------------------------------------------ checks and counting
    def problem(self, sample: dict[str, Any]) -> tuple[str, str] | None:
        """(reason, detail) when the sample cannot be trained on at this max_length (for
        `scitune.data.validate`), None when it can."""
        try:
            self.train(sample)
        except DroppedSample as err:
            return "too_long", f"{err.reason}: {err.length} tokens > {err.max_length}"
        except LabelMaskError as err:
            return "bad_label_mask", str(err)
        return None


class SampleTokenizer:
    """Renders samples for training and counts the dropped ones by reason (`.dropped`)."""

    def __init__(self, renderer: Renderer):
        self.renderer = renderer
        self.dropped: Counter[str] = Counter()
        self.truncated = 0

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any] | None:
        try:
            item = self.renderer.train(sample)
        except DroppedSample as dropped:
            self.dropped[dropped.reason] += 1
            return None
        self.truncated += item["truncated"]
        return item

    def tokenize_all(self, samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [item for item in map(self, samples) if item is not None]
