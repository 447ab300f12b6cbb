"""One loaded model answering prompts: batched greedy generation, and option scoring by
log-likelihood. Evaluation, `scitune predict`, the demo, the benchmarks and serving all use it,
and it renders every input through `scitune.prompting` (the same ids and pixels as training).

Generation: prompts are left-padded into a batch with an attention mask that hides the padding
and position ids that start at 0 on each row's first real token, so a row's tokens see exactly
what they would see alone. Decoding is greedy (no sampling, no temperature), so results are
deterministic and do not depend on the batch size. Items are batched in order of prompt length,
each batch holding prompts of similar lengths (`length_batches`: less padding), images read one
batch at a time, and results returned in input order.

Likelihood: for a question with options o_1..o_k, each option's score is the summed
log-probability of "the tokens training would supervise for answer o_i" given the prompt. The
prompt (image tokens included) runs once: questions are batched, their prompts run as one
left-padded batch that keeps its KV cache, and then every option of every question runs on top
of its own prompt's cached keys and values (shared-prefix scoring; equal to scoring each
"prompt + option" in full within 1e-4). The prediction is the best-scoring option (ties go to
the first).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path

import torch

from scitune.errors import ScituneError
from scitune.progress import progress_bar
from scitune.inference.batching import choose_option, length_batches, max_positions
from scitune.inference.items import EvalItem
from scitune.prompting import ImageLoader, PaddingCollator, Renderer
from scitune.prompting.render import special_token_ids


class Engine:
    """A model and its processor, with the renderer, image loader and collator they imply."""

    def __init__(
        self, model, processor, image_root: str | Path | None = None, image_placement: str = "front", image_loader=None
    ):
        """`image_loader`: an `ImageLoader` to read item images with instead of files under
        `image_root` (serving passes one that holds the requests' decoded images)."""
        self.model = model
        self.processor = processor
        self.tokenizer = processor.tokenizer
        if self.tokenizer.pad_token_id is None:
            raise ScituneError("the checkpoint's tokenizer has no pad token; batched generation needs one")
        config = model.get_base_model().config if hasattr(model, "get_base_model") else model.config
        self.images = image_loader if image_loader is not None else ImageLoader(processor.image_processor, image_root)
        self.renderer = Renderer(
            processor, max_length=max_positions(config), image_placement=image_placement, images=self.images
        )
        family = self.renderer.family
        self.collate = PaddingCollator(
            self.tokenizer.pad_token_id, self.images, side="left",
            image_inputs=family.image_inputs if family else (),
            # Qwen's M-RoPE derives its 3-D positions from the attention mask itself
            position_ids=not (family and family.token_type_input == "mm_token_type_ids"),
        )
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
        special = special_token_ids(self.tokenizer)
        closing = [t for t in supervised if t in special]
        if closing and closing[0] not in ids:
            ids.append(int(closing[0]))
        if not ids:
            raise ScituneError("the checkpoint's tokenizer has no end-of-sequence token")
        return ids

    def _inputs(self, batch: dict) -> dict:
        from scitune.prompting.collate import IMAGE_INPUTS, TOKEN_TYPE_INPUTS

        keys = ("input_ids", "attention_mask", "position_ids", *TOKEN_TYPE_INPUTS, *IMAGE_INPUTS)
        inputs = {k: batch[k] for k in keys if k in batch}
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
        for chunk in length_batches(order, [len(p["input_ids"]) for p in prompts], batch_size):
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

    def generate_batch(
        self,
        prompts: Sequence[dict],
        max_new_tokens: int,
        temperature: float = 0.0,
        top_p: float = 1.0,
        stopping_criteria=None,
        min_new_tokens: int = 0,
        logits_processor=None,
    ) -> torch.Tensor:
        """The new token ids of prompts rendered by `self.renderer.prompt` (their images read by
        `self.images`), run as one left-padded batch: one row per prompt, padded after its end.

        Temperature 0 decodes greedily with `generate`'s settings (the same tokens). Above 0 it
        samples with `temperature` and nucleus `top_p` (no top-k) from torch's global generator,
        which the caller seeds. `stopping_criteria` (a transformers `StoppingCriteriaList`) can end
        rows early; serving uses it for per-request lengths, stop strings and cancellation.
        `min_new_tokens` holds back the stop tokens until that many are generated (benchmarks use
        it to time answers of a known length). `logits_processor` (a transformers
        `LogitsProcessorList`) runs before temperature and top_p; serving uses it for logprobs,
        logit_bias and penalties."""
        if max_new_tokens < 1:
            raise ScituneError(f"max new tokens must be at least 1, got {max_new_tokens}")
        if temperature < 0 or not 0 < top_p <= 1:
            raise ScituneError(f"sampling: temperature must be >= 0 and top_p in (0, 1], got {temperature}, {top_p}")
        if temperature == 0:
            sampling = {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        else:
            sampling = {"do_sample": True, "temperature": float(temperature), "top_p": float(top_p), "top_k": 0}
        batch = self.collate(list(prompts))
        inputs = self._inputs(batch)
        self.model.eval()
        with torch.inference_mode():
            output = self.model.generate(
                **inputs,
                **sampling,
                num_beams=1,
                max_new_tokens=max_new_tokens,
                pad_token_id=self.tokenizer.pad_token_id,
                eos_token_id=self.stop_ids,
                stopping_criteria=stopping_criteria,
                logits_processor=logits_processor,
                **({"min_new_tokens": min_new_tokens} if min_new_tokens else {}),
            )
        return output[:, batch["input_ids"].shape[1] :]

    def score_options(self, item: EvalItem, max_rows: int | None = None) -> list[float]:
        """Summed log-probability of each option's continuation after the prompt (see `choose`);
        a family scored in full runs at most `max_rows` options per forward pass (None: all)."""
        return self._score_batch([item], [self._render_options(item)], max_rows)[0]

    def _render_options(self, item: EvalItem) -> tuple[list[int], list[list[int]]]:
        if not item.options:
            raise ScituneError(f"item {item.question_id}: no options to score")
        return self.renderer.options(item.sample(), list(item.options))

    def _shared_prefix(self) -> bool:
        """Whether options are scored on the prompt's KV cache. Families with a per-token type
        input (Qwen's 3-D M-RoPE positions, Gemma 3's bidirectional image attention) derive
        positions or masks from the whole sequence, so they score each option in full."""
        family = self.renderer.family
        return family is None or family.token_type_input is None

    def _cache_kwarg(self) -> str:
        """The name the model's forward takes its KV cache by (`cache` from transformers 5.x on,
        `past_key_values` before)."""
        base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"

    def _score_batch(
        self, items: Sequence[EvalItem], rendered: Sequence[tuple[list[int], list[list[int]]]], max_rows: int | None = None
    ) -> list[list[float]]:
        """Shared-prefix scoring of several questions: their prompts (with images) run once, as
        one left-padded batch that keeps its KV cache; the last prompt position's log-probabilities
        score each option's first token. The cache rows are then repeated once per option, and
        every option of every question runs as one right-padded batch on top of them (position
        ids continuing after its own prompt), scoring the rest of its tokens. Equal to running
        "prompt + option" in full for each option (tested within 1e-4). Families whose positions
        or masks depend on the whole sequence run every "prompt + option" in full instead, at
        most `max_rows` sequences per forward pass (None: all of them in one)."""
        if not self._shared_prefix():
            return self._score_full(items, rendered, max_rows)
        prompts = [
            {"id": item.question_id, "input_ids": prompt, "attention_mask": [1] * len(prompt), "images": list(item.images)}
            for item, (prompt, _) in zip(items, rendered)
        ]
        batch = self.collate(prompts)
        inputs = self._inputs(batch)
        cache_kwarg = self._cache_kwarg()
        self.model.eval()
        with torch.inference_mode():
            out = self.model(**inputs, use_cache=True, logits_to_keep=1)
            first = torch.log_softmax(out.logits[:, -1].float(), dim=-1)  # (questions, vocab)
            owner = [q for q, (_, continuations) in enumerate(rendered) for _ in continuations]
            options = [c for _, continuations in rendered for c in continuations]
            owner_t = torch.tensor(owner, device=self.device)
            scores = first[owner_t, torch.tensor([c[0] for c in options], device=self.device)]
            width = max(len(c) for c in options) - 1  # the last token of an option predicts nothing
            if width > 0:
                cache = getattr(out, cache_kwarg, None) or out.past_key_values
                cache.reorder_cache(owner_t)  # one cache row per option: its question's prompt
                pad = self.tokenizer.pad_token_id
                ids = torch.tensor([c[:-1] + [pad] * (width + 1 - len(c)) for c in options], device=self.device)
                real = torch.tensor([[1] * (len(c) - 1) + [0] * (width + 1 - len(c)) for c in options], device=self.device)
                prompt_mask = inputs["attention_mask"][owner_t]
                lengths = prompt_mask.sum(-1, keepdim=True)
                positions = lengths + torch.arange(width, device=self.device)
                rest = self.model(
                    input_ids=ids,
                    attention_mask=torch.cat([prompt_mask, real], dim=-1),
                    position_ids=positions,
                    use_cache=True,
                    **{cache_kwarg: cache},
                ).logits.float()
                log_probs = torch.log_softmax(rest, dim=-1)
                targets = torch.tensor([c[1:] + [pad] * (width + 1 - len(c)) for c in options], device=self.device)
                token_scores = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1) * real
                scores = scores + token_scores.sum(-1)
        values = scores.tolist()
        out_scores: list[list[float]] = [[] for _ in items]
        for q, value in zip(owner, values):
            out_scores[q].append(float(value))
        return out_scores

    def _score_full(
        self, items: Sequence[EvalItem], rendered: Sequence[tuple[list[int], list[list[int]]]], max_rows: int | None = None
    ) -> list[list[float]]:
        """Every "prompt + option" of every question, as left-padded batches of at most `max_rows`
        rows (an option of n tokens sits at the end of its row, its tokens scored by the n
        positions before them). `choose` passes its batch size: 8 ScienceQA questions are up to
        40 full sequences, each with its image, and the batch size is what the user sized to the
        device's memory. A row's score does not depend on the rows beside it."""
        rows, owner = [], []
        for q, (item, (prompt, continuations)) in enumerate(zip(items, rendered)):
            for continuation in continuations:
                ids = prompt + continuation
                row = {"id": item.question_id, "input_ids": ids, "attention_mask": [1] * len(ids), "images": list(item.images)}
                rows.append(self.renderer.with_token_types(row))
                owner.append(q)
        options = [c for _, continuations in rendered for c in continuations]
        step = max_rows or len(rows)
        out_scores: list[list[float]] = [[] for _ in items]
        self.model.eval()
        for start in range(0, len(rows), step):
            inputs = self._inputs(self.collate(rows[start : start + step]))
            chunk = options[start : start + step]
            longest = max(len(c) for c in chunk)
            with torch.inference_mode():
                logits = self.model(**inputs, logits_to_keep=longest + 1).logits.float()
            log_probs = torch.log_softmax(logits[:, :-1], dim=-1)  # kept positions width-longest-1 .. width-2
            for row, (q, continuation) in enumerate(zip(owner[start : start + step], chunk)):
                first = longest - len(continuation)
                picked = log_probs[row, first + torch.arange(len(continuation))].gather(
                    -1, torch.tensor(continuation, device=log_probs.device).unsqueeze(-1)
                )
                out_scores[q].append(float(picked.sum()))
        return out_scores

    def choose(
        self, items: Sequence[EvalItem], progress: bool = False, batch_size: int = 8
    ) -> list[tuple[int, list[float]]]:
        """(chosen option index, every option's score) for each item, `batch_size` questions at a
        time (grouped by image count and prompt length; the grouping never changes a score). A
        family scored in full (`_shared_prefix`) runs at most `batch_size` sequences per forward
        pass, each a question's prompt with one option."""
        if batch_size < 1:
            raise ScituneError(f"batch size must be at least 1, got {batch_size}")
        rendered = [self._render_options(item) for item in items]
        lengths = [len(prompt) for prompt, _ in rendered]
        order = sorted(range(len(items)), key=lambda i: (-len(items[i].images), -lengths[i], i))
        results: list[tuple[int, list[float]] | None] = [None] * len(items)
        bar = progress_bar(total=len(items), desc="likelihood", unit="item", enabled=progress)
        for chunk in length_batches(order, lengths, batch_size):
            scored = self._score_batch([items[i] for i in chunk], [rendered[i] for i in chunk], max_rows=batch_size)
            for index, scores in zip(chunk, scored):
                results[index] = (choose_option(scores), scores)
            bar.update(len(chunk))
        bar.close()
        return results  # type: ignore[return-value]
