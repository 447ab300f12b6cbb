"""Batching arithmetic for the engine: context length, length-grouped batches, the best option."""

from __future__ import annotations

from collections.abc import Iterator, Sequence


def max_positions(config) -> int | None:
    """The LM's context length (text config's max_position_embeddings), when it has one."""
    text = getattr(config, "text_config", config)
    return getattr(text, "max_position_embeddings", None)


def length_batches(order: Sequence[int], lengths: Sequence[int], size: int, spread: float = 0.75) -> Iterator[list[int]]:
    """`order` (indices, longest first within each group) cut into batches of at most `size`
    whose every row is at least `spread` times the batch's first row, so a left-padded batch is
    mostly real tokens: one long prompt no longer pads seven short ones to its length (on a CPU,
    where batching buys little, that padding made a batch of 8 slower than one at a time)."""
    batch: list[int] = []
    for index in order:
        if batch and (len(batch) == size or lengths[index] < spread * lengths[batch[0]]):
            yield batch
            batch = []
        batch.append(index)
    if batch:
        yield batch


def choose_option(scores: Sequence[float]) -> int:
    """Index of the highest score; the first on ties."""
    best = 0
    for i, value in enumerate(scores):
        if value > scores[best]:
            best = i
    return best
