"""Model-driven evaluation: batched greedy generation, and option scoring by log-likelihood.

Generation: prompts are rendered with the checkpoint's chat template (generation prompt on),
each `<image>` expanded by the processor, then left-padded into a batch with an attention mask
that hides the padding and position ids that start at 0 on each row's first real token, so a
row's tokens see exactly what they would see alone. Decoding is greedy (no sampling, no
temperature), so results are deterministic and do not depend on the batch size. Items are
batched in order of prompt length (less padding), images read one batch at a time, and
results returned in input order.

Likelihood: for a question with options o_1..o_k, the k sequences "prompt + the assistant turn
answering o_i" (the chat template's own rendering, end-of-turn included) go through the model
in one batched forward pass; each option's score is the summed log-probability of its
continuation tokens given the prompt. The prediction is the best-scoring option (ties go to the
first). The continuation is tokenised after the prompt, as generation would produce it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from scitune.errors import ScituneError


@dataclass(frozen=True)
class EvalItem:
    """One prompt to run: the user turn (with `<image>` placeholders) and its image files."""

    question_id: str
    prompt: str
    images: tuple[str, ...] = ()
    options: tuple[str, ...] = ()  # answers to score in likelihood mode (e.g. "A", "B", ...)
    extra: dict = field(default_factory=dict, compare=False)  # copied into the prediction row


def _load_images(paths: Sequence[str]):
    from PIL import Image

    images = []
    for path in paths:
        try:
            with Image.open(path) as image:
                images.append(image.convert("RGB"))
        except OSError as err:
            raise ScituneError(f"image {path}: cannot open ({err})") from None
    return images


def render_prompt(processor, prompt: str, answer: str | None = None) -> str:
    """The chat-template text of one user turn (and, when given, the assistant's answer)."""
    messages = [{"role": "user", "content": prompt}]
    if answer is None:
        return processor.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    messages.append({"role": "assistant", "content": answer})
    return processor.tokenizer.apply_chat_template(messages, tokenize=False)


def stop_token_ids(model, processor) -> list[int]:
    """Tokens that end an answer: the tokenizer's and the generation config's EOS, and the
    special token the chat template closes an assistant turn with (e.g. ChatML's <|im_end|>)."""
    tokenizer = processor.tokenizer
    ids: list[int] = []
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for value in (tokenizer.eos_token_id, configured):
        for token in value if isinstance(value, (list, tuple)) else [value]:
            if token is not None and token not in ids:
                ids.append(int(token))
    probe = "probe"
    prompt = render_prompt(processor, probe)
    full = render_prompt(processor, probe, "x")
    if full.startswith(prompt):
        special = set(tokenizer.all_special_ids)
        for token in tokenizer(full[len(prompt) :], add_special_tokens=False)["input_ids"]:
            if token in special:
                if token not in ids:
                    ids.append(int(token))
                break
    if not ids:
        raise ScituneError("the checkpoint's tokenizer has no end-of-sequence token")
    return ids


def _encode(processor, text: str, images) -> tuple[list[int], object]:
    """Token ids of `text` with each `<image>` expanded, and the pixel values (or None)."""
    count = text.count(processor.image_token) if hasattr(processor, "image_token") else text.count("<image>")
    if count != len(images):
        raise ScituneError(f"prompt has {count} <image> placeholders but {len(images)} images")
    encoded = processor(text=[text], images=images or None, return_tensors="pt", add_special_tokens=False)
    return encoded["input_ids"][0].tolist(), encoded.get("pixel_values")


def _pad_left(rows: list[list[int]], pad_id: int):
    import torch

    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        input_ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
        attention[i, width - len(row) :] = 1
    position_ids = (attention.cumsum(-1) - 1).clamp(min=0)
    return input_ids, attention, position_ids


def _chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _cat_pixels(values):
    import torch

    values = [v for v in values if v is not None]
    return torch.cat(values, dim=0) if values else None


def generate(
    model, processor, items: Sequence[EvalItem], batch_size: int = 8, max_new_tokens: int = 64, progress: bool = False
) -> list[str]:
    """Greedy generations for `items`, in input order. Images are read one batch at a time."""
    import torch

    if batch_size < 1:
        raise ScituneError(f"batch size must be at least 1, got {batch_size}")
    tokenizer = processor.tokenizer
    if tokenizer.pad_token_id is None:
        raise ScituneError("the checkpoint's tokenizer has no pad token; batched generation needs one")
    stop_ids = stop_token_ids(model, processor)
    rendered = [render_prompt(processor, item.prompt) for item in items]
    # Batch similar lengths together (every image expands to the same number of tokens, so
    # items are grouped by image count first); the order never changes a result.
    lengths = [len(tokenizer(text, add_special_tokens=False)["input_ids"]) for text in rendered]
    order = sorted(range(len(items)), key=lambda i: (-len(items[i].images), -lengths[i], i))
    texts: list[str | None] = [None] * len(items)
    device = next(model.parameters()).device
    model.eval()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(items), desc="generate", unit="item")
    for chunk in _chunks(order, batch_size):
        encoded = [_encode(processor, rendered[i], _load_images(items[i].images)) for i in chunk]
        input_ids, attention, position_ids = _pad_left([ids for ids, _ in encoded], tokenizer.pad_token_id)
        inputs = {"input_ids": input_ids, "attention_mask": attention, "position_ids": position_ids}
        pixels = _cat_pixels([pixels for _, pixels in encoded])
        if pixels is not None:
            inputs["pixel_values"] = pixels.to(dtype=model.dtype)
        inputs = {k: v.to(device) for k, v in inputs.items()}
        with torch.inference_mode():
            output = model.generate(
                **inputs,
                do_sample=False,
                num_beams=1,
                temperature=None,
                top_p=None,
                top_k=None,
                max_new_tokens=max_new_tokens,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=stop_ids,
            )
        new_tokens = output[:, input_ids.shape[1] :]
        for row, index in enumerate(chunk):
            texts[index] = tokenizer.decode(new_tokens[row], skip_special_tokens=True).strip()
        if bar is not None:
            bar.update(len(chunk))
    if bar is not None:
        bar.close()
    return texts  # type: ignore[return-value]


def score_options(model, processor, item: EvalItem) -> list[float]:
    """Summed log-probability of each option's assistant turn after the prompt: one batched forward."""
    import torch

    if not item.options:
        raise ScituneError(f"item {item.question_id}: no options to score")
    tokenizer = processor.tokenizer
    prompt_text = render_prompt(processor, item.prompt)
    images = _load_images(item.images)
    prompt_ids, pixels = _encode(processor, prompt_text, images)
    rows, lengths = [], []
    for option in item.options:
        full = render_prompt(processor, item.prompt, option)
        if not full.startswith(prompt_text):
            raise ScituneError("the chat template renders the prompt differently with an answer; cannot score options")
        continuation = tokenizer(full[len(prompt_text) :], add_special_tokens=False)["input_ids"]
        if not continuation:
            raise ScituneError(f"item {item.question_id}: option {option!r} has no tokens")
        rows.append(prompt_ids + continuation)
        lengths.append(len(continuation))
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    attention = torch.zeros_like(input_ids)
    for i, row in enumerate(rows):  # right padding: pads come after every real token
        input_ids[i, : len(row)] = torch.tensor(row)
        attention[i, : len(row)] = 1
    device = next(model.parameters()).device
    inputs = {"input_ids": input_ids.to(device), "attention_mask": attention.to(device)}
    if pixels is not None:
        inputs["pixel_values"] = pixels.repeat(len(rows), *([1] * (pixels.dim() - 1))).to(device, model.dtype)
    # Logits at position t predict token t + 1: the continuations are predicted from position
    # start = len(prompt) - 1 on, so only those positions go through the LM head.
    start = len(prompt_ids) - 1
    model.eval()
    with torch.inference_mode():
        logits = model(**inputs, logits_to_keep=width - start).logits.float()
    log_probs = torch.log_softmax(logits[:, :-1], dim=-1)
    targets = input_ids[:, start + 1 :].to(device)
    token_scores = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return [float(token_scores[i, : lengths[i]].sum()) for i in range(len(rows))]


def choose_option(scores: Sequence[float]) -> int:
    """Index of the highest score; the first on ties."""
    best = 0
    for i, value in enumerate(scores):
        if value > scores[best]:
            best = i
    return best


def resolve_images(sample: dict, image_root: str | Path | None) -> tuple[str, ...]:
    """A LLaVA sample's image paths, joined to `image_root`."""
    from scitune.data.sample import image_paths

    paths = image_paths(sample)
    if paths and image_root is None:
        raise ScituneError(f"sample {sample.get('id')}: has images; give the image folder (--images)")
    return tuple(str(Path(image_root) / p) for p in paths)
