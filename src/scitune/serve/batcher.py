"""Requests gathered into batches, run by the one thread that touches the models.

Request handlers (on the event loop) `submit` a `Job`; a bounded queue refuses one more with
`QueueFull` (429). The model thread takes the oldest waiting job, waits up to the gathering window
(from that job's arrival) for more, then runs one batch: the waiting jobs for the same model with
the same decoding (greedy; or sampling at the same temperature and top_p), up to `max_batch`,
oldest first, and only while the batch's longest prompt plus its largest `max_tokens` fits the
model's positions. A sampled request with a seed runs alone, after `torch.manual_seed(seed)`,
so the same seed gives the same answer. Option scoring (figure classification) runs one request
at a time, as `Engine.score_options` batches a request's options itself (a family scored in
full, Qwen-VL or Gemma 3, at most `max_batch` options per forward pass).

Greedy answers do not depend on the batch: rows are left-padded with position ids that start at
each row's first token (`Engine.generate_batch`, the path `Engine.generate` takes), and each row
ends at its own length (`scitune.serve.decoding`).

Results go back to the job's asyncio queue through `loop.call_soon_threadsafe`: `("delta", text)`
pieces for streaming jobs, then `("done", Result)` or `("error", ApiError)`. A cancelled job
(timeout, client gone) is dropped while it waits, or ends at its next token while it runs.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field

import torch
from transformers import LogitsProcessorList, StoppingCriteriaList

from scitune.serve.decoding import BatchStopping, RowDecoder, RowLogits
from scitune.serve.errors import ApiError
from scitune.serve.limits import ServeLimits
from scitune.serve.prompts import Prepared

log = logging.getLogger("scitune.serve")


class QueueFull(Exception):
    pass


def held_bytes(prepared: Prepared) -> int:
    """What a request's held images take in memory: pixel tensors, or decoded images (PIL)."""
    total = 0
    for value in prepared.images.values():
        if isinstance(value, torch.Tensor):
            total += value.numel() * value.element_size()
        else:
            total += value.width * value.height * len(value.getbands())
    return total


class Closed(Exception):
    pass


@dataclass
class Result:
    text: str = ""
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    scores: list[float] | None = None  # option scoring
    logprobs: list[dict] | None = None  # OpenAI's logprobs entries, when asked for


@dataclass(eq=False)
class Job:
    prepared: Prepared
    kind: str  # "generate" or "score"
    loop: asyncio.AbstractEventLoop
    stream: bool = False
    events: asyncio.Queue = field(default_factory=asyncio.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    enqueued: float = field(default_factory=time.monotonic)

    def cancel(self) -> None:
        self.cancelled.set()

    def send(self, kind: str, value) -> None:
        try:
            self.loop.call_soon_threadsafe(self.events.put_nowait, (kind, value))
        except RuntimeError:  # the event loop has closed (server shutting down)
            pass

    def key(self) -> tuple:
        p = self.prepared
        if self.kind == "score":
            return (id(p.slot), "score", id(self))
        if p.temperature == 0:
            return (id(p.slot), "greedy")
        if p.seed is not None:
            return (id(p.slot), "seeded", id(self))
        return (id(p.slot), "sample", p.temperature, p.top_p)


class Batcher:
    def __init__(self, limits: ServeLimits):
        self.limits = limits
        self._pending: deque[Job] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None
        self.running = 0
        self.batch_sizes: Counter[int] = Counter()
        self.completed = 0
        self.failed = 0
        self.cancelled = 0  # requests ended early because their client left or timed out

    # ------------------------------------------------------------------ the event-loop side
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="scitune-model", daemon=True)
            self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def submit(self, job: Job) -> None:
        with self._cond:
            if self._closed or not self.alive:
                raise Closed("the server is shutting down" if self._closed else "the model thread has stopped")
            if len(self._pending) >= self.limits.max_queue:
                raise QueueFull(f"{len(self._pending)} requests are waiting, the most this server queues")
            waiting = sum(held_bytes(j.prepared) for j in self._pending)
            if self._pending and waiting + held_bytes(job.prepared) > self.limits.max_queued_image_bytes:
                raise QueueFull(f"the waiting requests' images hold {waiting} bytes; this one's would go over the server's "
                                f"{self.limits.max_queued_image_bytes}")
            self._pending.append(job)
            self._cond.notify_all()

    def close(self, timeout: float = 30.0) -> None:
        with self._cond:
            self._closed = True
            dropped = list(self._pending)
            self._pending.clear()
            self._cond.notify_all()
        for job in dropped:
            job.send("error", ApiError(503, "the server is shutting down", "shutting_down"))
        if self._thread is not None:
            self._thread.join(timeout)

    def stats(self) -> dict:
        with self._cond:
            pending = len(self._pending)
        return {
            "pending": pending, "running": self.running, "max_queue": self.limits.max_queue,
            "max_batch": self.limits.max_batch, "completed": self.completed, "failed": self.failed,
            "cancelled": self.cancelled,
            "batches": sum(self.batch_sizes.values()),
            "largest_batch": max(self.batch_sizes, default=0),
            "batch_sizes": {str(k): v for k, v in sorted(self.batch_sizes.items())},
        }

    # ------------------------------------------------------------------ the model thread
    def _work(self) -> None:
        torch.set_grad_enabled(False)
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            if not batch:
                continue
            self.running = len(batch)
            try:
                if batch[0].kind == "score":
                    self._score(batch[0])
                else:
                    self._generate(batch)
            except Exception as err:  # a failure answers its requests; the thread goes on
                log.exception("batch of %d failed", len(batch))
                self.failed += len(batch)
                for job in batch:
                    job.send("error", ApiError(500, f"generation failed ({type(err).__name__}: {' '.join(str(err).split())[:200]})",
                                               "generation_failed"))
            else:
                self.completed += len(batch)
            finally:
                self.running = 0
                self.batch_sizes[len(batch)] += 1

    def _next_batch(self) -> list[Job] | None:
        with self._cond:
            while True:
                while self._pending and self._pending[0].cancelled.is_set():
                    self._pending.popleft()
                if self._pending:
                    break
                if self._closed:
                    return None
                self._cond.wait()
            deadline = self._pending[0].enqueued + self.limits.window_ms / 1000
            while not self._closed and len(self._pending) < self.limits.max_batch:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return self._take()

    def _take(self) -> list[Job]:
        """The oldest live job and the waiting jobs that can share its batch (called under the lock)."""
        live = [job for job in self._pending if not job.cancelled.is_set()]
        if not live:
            self._pending.clear()
            return []
        first = live[0]
        key = first.key()
        positions = first.prepared.slot.positions
        batch = [first]
        longest, most = first.prepared.prompt_tokens, first.prepared.max_tokens
        for job in live[1:]:
            if len(batch) >= self.limits.max_batch:
                break
            if job.key() != key:
                continue
            new_longest = max(longest, job.prepared.prompt_tokens)
            new_most = max(most, job.prepared.max_tokens)
            if positions is not None and new_longest + new_most > positions:
                continue
            batch.append(job)
            longest, most = new_longest, new_most
        taken = set(map(id, batch))
        self._pending = deque(j for j in self._pending if id(j) not in taken and not j.cancelled.is_set())
        return batch

    def _score(self, job: Job) -> None:
        p = job.prepared
        p.slot.images.hold(p.images)
        try:
            scores = p.slot.engine.score_options(p.item, max_rows=self.limits.max_batch)
        finally:
            p.slot.images.release(p.images)
        job.send("done", Result(scores=scores))

    def _generate(self, batch: list[Job]) -> None:
        if not batch:
            return
        first = batch[0].prepared
        slot = first.slot
        engine = slot.engine
        rows = []
        for job in batch:
            p = job.prepared
            emit = (lambda piece, entries=None, job=job: job.send("delta", (piece, entries))) if job.stream else None
            rows.append(RowDecoder(engine.tokenizer, slot.tokenizer_lock, engine.stop_ids, p.max_tokens, p.stop, emit,
                                   job.cancelled.is_set, p.logprobs))
        logits = None
        if any(job.prepared.shapes_logits for job in batch):
            logits = RowLogits([(job.prepared.logit_bias, job.prepared.frequency_penalty, job.prepared.presence_penalty,
                                 job.prepared.logprobs is not None) for job in batch])
        if first.temperature > 0 and first.seed is not None:
            torch.manual_seed(first.seed % 2**63)
        for job in batch:
            slot.images.hold(job.prepared.images)
        try:
            engine.generate_batch(
                [job.prepared.prompt for job in batch],
                max_new_tokens=max(job.prepared.max_tokens for job in batch),
                temperature=first.temperature,
                top_p=first.top_p,
                stopping_criteria=StoppingCriteriaList([BatchStopping(rows, logits)]),
                logits_processor=LogitsProcessorList([logits]) if logits is not None else None,
            )
        finally:
            for job in batch:
                slot.images.release(job.prepared.images)
        for job, row in zip(batch, rows):
            self.cancelled += row.finish_reason == "cancelled"
            text = row.finish()
            job.send("done", Result(text, row.finish_reason or "length", job.prepared.prompt_tokens, row.count,
                                    logprobs=row.logprobs()))
