"""Pure functions of (seed, epoch, step): which samples each process sees, and the learning rate
(the one schedule, `lr_at`; scitune.train.order keeps a stage's order as it runs).

The order of samples depends only on the seed and the epoch, never on the number of processes:
a global batch (batch_size x grad_accum x world_size samples) is cut into one micro-batch per
process and accumulation step. With the loss normalised by the global batch's supervised-token
count, any split of the same global batch gives the same update (up to float rounding).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Plan:
    num_samples: int
    global_batch: int  # samples per optimizer step, all processes together
    steps_per_epoch: int
    total_steps: int


def make_plan(num_samples: int, batch_size: int, grad_accum: int, world_size: int, epochs: float, max_steps: int | None) -> Plan:
    global_batch = batch_size * grad_accum * world_size
    # The last, incomplete global batch of an epoch is kept when every micro-batch still gets a sample.
    full, rest = divmod(num_samples, global_batch)
    steps_per_epoch = full + (1 if rest >= grad_accum * world_size else 0)
    if steps_per_epoch == 0:
        raise ValueError(
            f"{num_samples} samples cannot fill one micro-batch per process and accumulation step "
            f"({grad_accum} x {world_size})"
        )
    total = math.ceil(epochs * steps_per_epoch)
    if max_steps is not None:
        total = min(total, max_steps)
    return Plan(num_samples, global_batch, steps_per_epoch, total)


class LengthGroupedSampler:
    """Indices in batches of similar length: shuffled with `seed` (and the epoch), split into
    mega-batches of `batch_size * mega` items, each sorted by length (longest first)."""

    def __init__(self, lengths: list[int], batch_size: int, seed: int = 0, mega: int = 50):
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.mega = mega
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        order = list(range(len(self.lengths)))
        random.Random(f"{self.seed}:{self.epoch}").shuffle(order)
        size = self.batch_size * self.mega
        for start in range(0, len(order), size):
            chunk = sorted(order[start : start + size], key=lambda i: -self.lengths[i])
            yield from chunk


def epoch_order(num_samples: int, seed: int, epoch: int, lengths: list[int] | None = None, group_size: int = 0) -> np.ndarray:
    """A seeded permutation; with `lengths` and `group_size`, samples of similar length share
    global batches (LengthGroupedSampler's order)."""
    if lengths is not None and group_size > 1:
        sampler = LengthGroupedSampler(lengths, group_size, seed=seed)
        sampler.set_epoch(epoch)
        return np.fromiter(iter(sampler), dtype=np.int64, count=num_samples)
    return np.random.default_rng([seed, epoch]).permutation(num_samples)


def step_indices(plan: Plan, order: np.ndarray, step_in_epoch: int) -> np.ndarray:
    """The sample indices of one optimizer step (all processes)."""
    start = step_in_epoch * plan.global_batch
    return order[start : start + plan.global_batch]


def micro_batches(indices: np.ndarray, grad_accum: int, world_size: int, rank: int) -> list[np.ndarray]:
    """This process's micro-batches of one global batch (non-empty by construction of the plan)."""
    pieces = np.array_split(indices, grad_accum * world_size)
    return [pieces[k * world_size + rank] for k in range(grad_accum)]


def warmup_steps(warmup_ratio: float, total_steps: int) -> int:
    """Optimizer steps of linear warmup for a stage's `warmup_ratio`."""
    return math.ceil(warmup_ratio * total_steps)


def lr_at(step: int, total_steps: int, base_lr: float, warmup: int, scheduler: str = "cosine") -> float:
    """The one learning-rate schedule (stages and pretraining alike), for optimizer step `step`
    (0-based): linear warmup over `warmup` steps, then cosine/linear decay to zero at
    `total_steps`, or constant."""
    if warmup and step < warmup:
        return base_lr * (step + 1) / warmup
    if scheduler == "constant":
        return base_lr
    span = max(1, total_steps - warmup)
    progress = min(1.0, (step - warmup) / span)
    if scheduler == "linear":
        return base_lr * (1.0 - progress)
    return base_lr * 0.5 * (1.0 + math.cos(math.pi * progress))
