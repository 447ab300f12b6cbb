"""Inference: one loaded model answering prompts (`Engine`: batched greedy generation and
option scoring by log-likelihood), the items it runs (`EvalItem`) and its batching.

Evaluation (`scitune.eval`), `scitune predict`, ingest's figure classifier, the demo, the
benchmarks and serving (`scitune.serve`) all depend on it; it depends on `scitune.prompting`,
`scitune.data` and `scitune.model` only. `scitune.inference.items` imports no torch.
"""

from scitune.inference.batching import choose_option, length_batches, max_positions
from scitune.inference.engine import Engine
from scitune.inference.items import EvalItem

__all__ = ["Engine", "EvalItem", "choose_option", "length_batches", "max_positions"]
