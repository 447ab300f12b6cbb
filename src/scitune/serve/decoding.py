"""Each request's own ending inside one batched generation, and its text as it streams.

`BatchStopping` is a transformers `StoppingCriteria` that transformers calls after every new
token with the whole batch; it hands each row's token to that row's `RowDecoder`, which ends the
row at the checkpoint's end tokens, at its own `max_tokens`, at a stop string or when the request
was cancelled (timeout, client gone). A row that has ended is padded by transformers while the
others go on, and the batch stops when every row has ended.

The text of a row is what `Engine.generate` returns for the same tokens (decoded without special
tokens, stripped), cut before the first stop string. Streamed pieces are prefixes of that text:
a piece is sent only once it cannot change, so trailing whitespace, a possible start of a stop
string and an incomplete UTF-8 character (decoded as U+FFFD) are held back until the next token
settles them. The token count (usage) includes the token that ended the row.

`RowLogits` is a transformers `LogitsProcessor` for the rows that ask for log-probabilities,
`logit_bias` or penalties. transformers runs it before temperature and top_p. It keeps the
log-softmax of the model's logits at each step (what `logprobs` reports: the model's own
distribution, before bias, penalties, temperature and top_p), then adds each row's `logit_bias`
and subtracts OpenAI's penalties, counted over the tokens the row has generated so far
(`logit[j] -= count[j] * frequency_penalty + (count[j] > 0) * presence_penalty`).
A row's logprobs are the entries of its generated tokens (the end token not included), in
OpenAI's shape `{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}`; a stop string
drops the tokens that start at or after it. Streamed, each piece carries the entries of the
tokens that begin in it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import torch
from transformers import LogitsProcessor, StoppingCriteria

REPLACEMENT = "\ufffd"


class RowDecoder:
    def __init__(
        self,
        tokenizer,
        lock: threading.Lock,
        end_ids: Sequence[int],
        max_tokens: int,
        stop: Sequence[str] = (),
        emit: Callable[..., None] | None = None,  # (piece) or, with logprobs, (piece, entries)
        cancelled: Callable[[], bool] | None = None,
        logprobs: int | None = None,
    ):
        self.tokenizer = tokenizer
        self.lock = lock
        self.end_ids = set(end_ids)
        self.max_tokens = max_tokens
        self.stop = tuple(s for s in stop if s)
        self.emit = emit
        self.cancelled = cancelled
        self.tokens: list[int] = []
        self.count = 0  # generated tokens, the ending one included
        self.done = False
        self.finish_reason: str | None = None
        self.emitted = ""
        self._cut: int | None = None  # where a stop string starts in the text
        self.top = logprobs  # None: no logprobs
        self.entries: list[tuple[int, dict]] = []  # (where the token starts in the text, its logprobs entry)
        self._sent_entries = 0
        self._length = 0  # of the decoded text so far

    def _decode(self) -> str:
        with self.lock:
            return self.tokenizer.decode(self.tokens, skip_special_tokens=True).lstrip()

    def _end(self, reason: str) -> None:
        self.done, self.finish_reason = True, reason

    def _entry(self, token: int, logprobs: torch.Tensor) -> dict:
        """OpenAI's logprobs entry of `token` from a row of log-probabilities."""
        def described(ids, values):
            with self.lock:
                texts = [self.tokenizer.decode([i]) for i in ids]
            # a token ruled out (-inf) is -9999.0, as OpenAI reports it: JSON has no infinities
            return [{"token": t, "logprob": max(v, -9999.0), "bytes": list(t.encode("utf-8", "replace"))}
                    for t, v in zip(texts, values)]

        chosen = described([token], [float(logprobs[token])])[0]
        top = []
        if self.top:
            values, ids = torch.topk(logprobs, min(self.top, logprobs.shape[-1]))
            top = described(ids.tolist(), values.tolist())
        return {**chosen, "top_logprobs": top}

    def step(self, token: int, logprobs: torch.Tensor | None = None) -> bool:
        """Takes the row's next token (and the log-probabilities it was drawn from, for a row
        that reports them); True when the row has ended."""
        if self.done:
            return True
        if self.cancelled is not None and self.cancelled():
            self._end("cancelled")
            return True
        self.count += 1
        if token in self.end_ids:
            self._end("stop")
            return True
        self.tokens.append(token)
        if self.top is not None and logprobs is not None:
            self.entries.append((self._length, self._entry(token, logprobs)))
        if self.stop or self.emit is not None or self.top is not None:
            text = self._decode()
            self._length = len(text)
            cut = self._find_stop(text)
            if cut is not None:
                self._cut = cut
                self._end("stop")
                return True
            if self.emit is not None:
                self._send(self._settled(text))
        if self.count >= self.max_tokens:
            self._end("length")
        return self.done

    def _find_stop(self, text: str) -> int | None:
        found = [i for i in (text.find(s) for s in self.stop) if i >= 0]
        return min(found) if found else None

    def _settled(self, text: str) -> str:
        """The part of `text` no later token can change."""
        while True:
            before = text
            text = text.rstrip().rstrip(REPLACEMENT)
            for s in self.stop:  # hold back a suffix that could start a stop string
                for k in range(min(len(s) - 1, len(text)), 0, -1):
                    if s.startswith(text[-k:]):
                        text = text[:-k]
                        break
            if text == before:
                return text

    def _send(self, settled: str, final: bool = False) -> None:
        piece = ""
        if len(settled) > len(self.emitted) and settled.startswith(self.emitted):
            piece = settled[len(self.emitted) :]
            self.emitted = settled
        entries = None
        if self.top is not None:
            kept = self.logprobs() if final else [e for start, e in self.entries if start < len(settled)]
            entries = kept[self._sent_entries :]
            self._sent_entries = max(self._sent_entries, len(kept))
        if entries is not None and (piece or entries):
            self.emit(piece, entries)
        elif piece:
            self.emit(piece)

    def logprobs(self) -> list[dict] | None:
        """The row's logprobs entries (None when it asked for none), without those of tokens at
        or after a stop string."""
        if self.top is None:
            return None
        return [entry for start, entry in self.entries if self._cut is None or start < self._cut]

    def text(self) -> str:
        """The row's answer: decoded, cut before a stop string, stripped."""
        text = self._decode()
        if self._cut is not None:
            text = text[: self._cut]
        return text.strip()

    def finish(self) -> str:
        """Ends the row (by length, if nothing ended it) and returns its text; a streaming row
        sends what it held back."""
        if not self.done:
            self._end("length")
        text = self.text()
        if self.emit is not None:
            self._send(text, final=True)
        return text


class RowLogits(LogitsProcessor):
    """Per row: records log-probabilities, adds logit_bias, subtracts OpenAI's frequency and
    presence penalties (see the module's docstring). `rows[i]` is (logit_bias, frequency_penalty,
    presence_penalty, wants_logprobs) of batch row i."""

    def __init__(self, rows: Sequence[tuple[dict[int, float], float, float, bool]]):
        self.rows = list(rows)
        self.start: int | None = None  # the prompts' (padded) length: what comes after is generated
        self.last: torch.Tensor | None = None  # the last step's log-softmax of the model's logits

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.start is None:
            self.start = input_ids.shape[1]
        if any(wants for *_, wants in self.rows):
            self.last = torch.log_softmax(scores.float(), dim=-1)
        scores = scores.clone()
        vocabulary = scores.shape[-1]
        for i, (bias, frequency, presence, _) in enumerate(self.rows):
            if bias:
                ids = torch.tensor(list(bias), device=scores.device)
                scores[i, ids] += torch.tensor(list(bias.values()), dtype=scores.dtype, device=scores.device)
            if frequency or presence:
                generated = input_ids[i, self.start :]
                counts = torch.bincount(generated, minlength=vocabulary)[:vocabulary].to(scores.dtype)
                scores[i] -= counts * frequency + (counts > 0).to(scores.dtype) * presence
        return scores


class BatchStopping(StoppingCriteria):
    """Feeds each row's new token to its `RowDecoder` (with the log-probabilities `logits`
    recorded, when given); ends the rows that have ended."""

    def __init__(self, rows: Sequence[RowDecoder], logits: RowLogits | None = None):
        self.rows = list(rows)
        self.logits = logits

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        last = input_ids[:, -1].tolist()
        recorded = self.logits.last if self.logits is not None else None
        done = [row.step(token, recorded[i] if recorded is not None and row.top is not None else None)
                for i, (row, token) in enumerate(zip(self.rows, last))]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)
