"""A stage's data order as it runs: which samples each optimizer step takes (from the pure
functions of scitune.train.schedule, one epoch's order kept at a time) and this process's
collated micro-batches, rendered and collated in `data.num_workers` DataLoader workers.

The order depends only on the seed, the epoch and the step, so a resumed run picks up the same
batches at its checkpoint's step.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from scitune.train import schedule


class StepOrder:
    """The sample indices of each optimizer step (all processes). `group_by_modality` keeps
    image and text-only samples in separate global batches; `group_by_length` puts samples of
    similar length together; otherwise a seeded permutation per epoch."""

    def __init__(self, plan: schedule.Plan, lengths: np.ndarray, has_image: np.ndarray, seed: int,
                 group_by_modality: bool = False, group_by_length: bool = False):
        self.plan, self.lengths, self.has_image, self.seed = plan, lengths, has_image, seed
        self.group_by_modality, self.group_by_length = group_by_modality, group_by_length
        self._orders: dict[int, np.ndarray] = {}

    def _epoch_order(self, epoch: int) -> np.ndarray:
        if self.group_by_modality:
            from scitune.train.dataset import modality_grouped_order

            return modality_grouped_order(self.lengths, self.has_image, self.plan.global_batch, self.seed, epoch)
        group = self.plan.global_batch if self.group_by_length else 0
        return schedule.epoch_order(self.plan.num_samples, self.seed, epoch, self.lengths, group)

    def step_indices(self, step: int) -> np.ndarray:
        epoch, in_epoch = divmod(step, self.plan.steps_per_epoch)
        if epoch not in self._orders:
            while len(self._orders) > 1:  # the loader may run an epoch ahead of the step
                self._orders.pop(min(self._orders))
            self._orders[epoch] = self._epoch_order(epoch)
        return schedule.step_indices(self.plan, self._orders[epoch], in_epoch)


class _Batches:
    """A DataLoader batch sampler over a generator of index lists (computed as they are needed)."""

    def __init__(self, make):
        self.make = make

    def __iter__(self):
        return self.make()


class MicroBatchStream:
    """This process's collated micro-batches, step after step: `for_step(step)` returns the
    `grad_accum` micro-batches of optimizer step `step`. A DataLoader is started at the first
    step asked for and runs on while the steps follow each other (a jump starts a new one)."""

    def __init__(self, items, order: StepOrder, collate, grad_accum: int, world: int, rank: int, num_workers: int):
        self.items, self.order, self.collate = items, order, collate
        self.grad_accum, self.world, self.rank, self.num_workers = grad_accum, world, rank, num_workers
        self._loader = None
        self._next_step: int | None = None

    def micro_indices(self, step: int) -> list[np.ndarray]:
        return schedule.micro_batches(self.order.step_indices(step), self.grad_accum, self.world, self.rank)

    def _start(self, start: int):
        from scitune.train.dataset import BatchCollate

        def parts():
            for step in range(start, self.order.plan.total_steps):
                for part in self.micro_indices(step):
                    yield part.tolist()

        workers = self.num_workers
        return iter(torch.utils.data.DataLoader(
            self.items, batch_sampler=_Batches(parts), collate_fn=BatchCollate(self.collate),
            num_workers=workers, prefetch_factor=2 if workers else None, persistent_workers=False,
        ))

    def for_step(self, step: int) -> list[dict[str, Any]]:
        if self._next_step != step:
            self._loader = self._start(step)
        self._next_step = step + 1
        return [next(self._loader) for _ in range(self.grad_accum)]
