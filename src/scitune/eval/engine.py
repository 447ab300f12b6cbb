"""One loaded model answering prompts: batched greedy generation, and option scoring by
log-likelihood. Evaluation, `scitune predict`, the demo, the benchmarks and serving all use it,
and it renders every input through `scitune.prompting` (the same ids and pixels as training).

Generation: prompts are left-padded into a batch with an attention mask that hides the padding
and position ids that start at 0 on each row's first real token, so a row's tokens see exactly
what they would see alone. Decoding is greedy (no sampling, no temperature), so results are
deterministic and do not depend on the batch size. Items are batched in order of prompt length
(less padding), images read one batch at a time, and results returned in input order.

Likelihood: for a question with options o_1..o_k, the k sequences "prompt + the tokens training
would supervise for answer o_i" go through the model in one batched forward pass; each option's
score is the summed log-probability of its continuation tokens given the prompt. The prediction
is the best-scoring option (ties go to the first).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from scitune.data.sample import image_paths
from scitune.errors import ScituneError
from scitune.progress import progress_bar
from scitune.prompting import ImageLoader, PaddingCollator, Renderer


@dataclass(frozen=True)
class EvalItem:
    """One prompt to run: the user turn (with `<image>` placeholders) and its image files
    (relative to the engine's image root, or as given when it has none)."""

    question_id: str
    prompt: str
    images: tuple[str, ...] = ()
    options: tuple[str, ...] = ()  # answers to score in likelihood mode (e.g. "A", "B", ...)
    extra: dict = field(default_factory=dict, compare=False)  # copied into the prediction row

    def sample(self) -> dict:
        """The item as a LLaVA record whose last turn is the question."""
        record = {"id": self.question_id, "conversations": [{"from": "human", "value": self.prompt}]}
        if self.images:
            record["image"] = list(self.images)
        return record

    @classmethod
    def from_sample(cls, sample: dict, options: Sequence[str] = (), extra: dict | None = None) -> EvalItem:
        """The first human turn of a LLaVA record, with its images."""
        turns = sample.get("conversations")
        human = next((t.get("value") for t in turns or [] if isinstance(t, dict) and t.get("from") == "human"), None)
        if not isinstance(human, str):
            raise ScituneError(f"sample {sample.get('id')!r}: needs a human turn with text")
        return cls(str(sample.get("id")), human, tuple(image_paths(sample)), tuple(options), extra or {})


def max_positions(config) -> int | None:
    """The LM's context length (text config's max_position_embeddings), when it has one."""
    text = getattr(config, "text_config", config)
    return getattr(text, "max_position_embeddings", None)


def _chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def choose_option(scores: Sequence[float]) -> int:
    """Index of the highest score; the first on ties."""
    best = 0
    for i, value in enumerate(scores):
        if value > scores[best]:
            best = i
    return best


class Engine:
    """A model and its processor, with the renderer, image loader and collator they imply."""

    def __init__(self, model, processor, image_root: str | Path | None = None, image_placement: str = "front"):
        self.model = model
        self.processor = processor
        self.tokenizer = processor.tokenizer
        if self.tokenizer.pad_token_id is None:
            raise ScituneError("the checkpoint's tokenizer has no pad token; batched generation needs one")
        config = model.get_base_model().config if hasattr(model, "get_base_model") else model.config
        self.renderer = Renderer(processor, max_length=max_positions(config), image_placement=image_placement)
        self.images = ImageLoader(processor.image_processor, image_root)
        self.collate = PaddingCollator(self.tokenizer.pad_token_id, self.images, side="left")
        self.stop_ids = self._stop_token_ids()

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _stop_token_ids(self) -> list[int]:
        """Tokens that end an answer: the tokenizer's and the generation config's EOS, and the
        special token the chat template closes an assistant turn with (e.g. ChatML's <|im_end|>)."""
        ids: list[int] = []
        configured = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        for value in (self.tokenizer.eos_token_id, configured):
            for token in value if isinstance(value, (list, tuple)) else [value]:
                if token is not None and token not in ids:
                    ids.append(int(token))
        probe = {"id": "probe", "conversations": [{"from": "human", "value": "probe"}, {"from": "gpt", "value": "x"}]}
        supervised = [t for t in self.renderer.train(probe)["labels"] if t != -100]
        special = set(self.tokenizer.all_special_ids)
        closing = [t for t in supervised if t in special]
        if closing and closing[0] not in ids:
            ids.append(int(closing[0]))
        if not ids:
            raise ScituneError("the checkpoint's tokenizer has no end-of-sequence token")
        return ids

    def _inputs(self, batch: dict) -> dict:
        inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "position_ids") if k in batch}
        if "pixel_values" in batch:
            inputs["pixel_values"] = batch["pixel_values"].to(dtype=self.model.dtype)
        return {k: v.to(self.device) for k, v in inputs.items()}

    def generate(
        self, items: Sequence[EvalItem], batch_size: int = 8, max_new_tokens: int = 64, progress: bool = False
    ) -> list[str]:
        """Greedy generations for `items`, in input order. Images are read one batch at a time."""
        if batch_size < 1:
            raise ScituneError(f"batch size must be at least 1, got {batch_size}")
        if max_new_tokens < 1:
            raise ScituneError(f"max new tokens must be at least 1, got {max_new_tokens}")
        prompts = [self.renderer.prompt(item.sample(), reserve=max_new_tokens) for item in items]
        # Batch similar lengths together (grouped by image count first); the order never changes a result.
        order = sorted(range(len(items)), key=lambda i: (-len(items[i].images), -len(prompts[i]["input_ids"]), i))
        texts: list[str | None] = [None] * len(items)
        self.model.eval()
        bar = progress_bar(total=len(items), desc="generate", unit="item", enabled=progress)
        for chunk in _chunks(order, batch_size):
            batch = self.collate([prompts[i] for i in chunk])
            inputs = self._inputs(batch)
            with torch.inference_mode():
                output = self.model.generate(
                    **inputs,
                    do_sample=False,
                    num_beams=1,
                    temperature=None,
                    top_p=None,
                    top_k=None,
                    max_new_tokens=max_new_tokens,
                    pad_token_id=self.tokenizer.pad_token_id,
                    eos_token_id=self.stop_ids,
                )
            new_tokens = output[:, batch["input_ids"].shape[1] :]
            for row, index in enumerate(chunk):
                texts[index] = self.tokenizer.decode(new_tokens[row], skip_special_tokens=True).strip()
            bar.update(len(chunk))
        bar.close()
        return texts  # type: ignore[return-value]

    def score_options(self, item: EvalItem) -> list[float]:
        """Summed log-probability of each option's continuation after the prompt: one batched forward."""
        if not item.options:
            raise ScituneError(f"item {item.question_id}: no options to score")
        prompt, continuations = self.renderer.options(item.sample(), list(item.options))
        rows = [{"id": item.question_id, "input_ids": prompt + c, "attention_mask": [1] * (len(prompt) + len(c))} for c in continuations]
        batch = PaddingCollator(self.tokenizer.pad_token_id, side="right")(rows)
        inputs = self._inputs(batch)
        if item.images:
            pixels = self.images(list(item.images))
            inputs["pixel_values"] = pixels.repeat(len(rows), *([1] * (pixels.dim() - 1))).to(self.device, self.model.dtype)
        # Logits at position t predict token t + 1: the continuations are predicted from position
        # start = len(prompt) - 1 on, so only those positions go through the LM head.
        width = batch["input_ids"].shape[1]
        start = len(prompt) - 1
        self.model.eval()
        with torch.inference_mode():
            logits = self.model(**inputs, logits_to_keep=width - start).logits.float()
        log_probs = torch.log_softmax(logits[:, :-1], dim=-1)
        targets = batch["input_ids"][:, start + 1 :].to(self.device)
        token_scores = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        return [float(token_scores[i, : len(c)].sum()) for i, c in enumerate(continuations)]

    def choose(self, items: Sequence[EvalItem], progress: bool = False) -> list[tuple[int, list[float]]]:
        """(chosen option index, every option's score) for each item."""
        bar = progress_bar(items, desc="likelihood", unit="item", enabled=progress)
        out = []
        for item in bar:
            scores = self.score_options(item)
            out.append((choose_option(scores), scores))
        return out
