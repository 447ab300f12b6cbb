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
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import torch
from transformers import StoppingCriteria

REPLACEMENT = "\ufffd"


class RowDecoder:
    def __init__(
        self,
        tokenizer,
        lock: threading.Lock,
        end_ids: Sequence[int],
        max_tokens: int,
        stop: Sequence[str] = (),
        emit: Callable[[str], None] | None = None,
        cancelled: Callable[[], bool] | None = None,
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

    def _decode(self) -> str:
        with self.lock:
            return self.tokenizer.decode(self.tokens, skip_special_tokens=True).lstrip()

    def _end(self, reason: str) -> None:
        self.done, self.finish_reason = True, reason

    def step(self, token: int) -> bool:
        """Takes the row's next token; True when the row has ended."""
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
        if self.stop or self.emit is not None:
            text = self._decode()
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

    def _send(self, settled: str) -> None:
        if len(settled) > len(self.emitted) and settled.startswith(self.emitted):
            piece = settled[len(self.emitted) :]
            self.emitted = settled
            self.emit(piece)

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
            self._send(text)
        return text


class BatchStopping(StoppingCriteria):
    """Feeds each row's new token to its `RowDecoder`; ends the rows that have ended."""

    def __init__(self, rows: Sequence[RowDecoder]):
        self.rows = list(rows)

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        last = input_ids[:, -1].tolist()
        done = [row.step(token) for row, token in zip(self.rows, last)]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)
