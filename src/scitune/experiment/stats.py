"""The statistics of the ablation: a mean over seeds with its t interval, McNemar's exact test
on paired right/wrong outcomes, and a paired bootstrap over test items for any metric.

Written here rather than taken from scipy: scipy is only in the `ingest` extra, and these are a
few lines each (the tests check them against scipy).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

LEVEL = 0.95  # every interval is a 95% one


def _t_pdf(x: float, df: float) -> float:
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    return math.exp(log_c - (df + 1) / 2 * math.log1p(x * x / df))


def t_cdf(x: float, df: float, intervals: int = 4000) -> float:
    """Student's t CDF by Simpson's rule on [0, |x|] (the density is smooth and even)."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be > 0, got {df}")
    a = abs(x)
    if a == 0:
        return 0.5
    h = a / intervals
    total = _t_pdf(0.0, df) + _t_pdf(a, df)
    total += sum((4 if i % 2 else 2) * _t_pdf(i * h, df) for i in range(1, intervals))
    half = min(0.5, total * h / 3)
    return 0.5 + half if x > 0 else 0.5 - half


@lru_cache(maxsize=256)
def t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t (bisection on `t_cdf`), for 0.5 <= p < 1."""
    if not 0.5 <= p < 1:
        raise ValueError(f"p must be in [0.5, 1), got {p}")
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        high *= 2
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if t_cdf(mid, df) < p else (low, mid)
    return (low + high) / 2


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float | None  # None: one value, no interval
    high: float | None
    n: int

    def to_json(self) -> dict:
        return {"mean": self.mean, "low": self.low, "high": self.high, "n": self.n}


def mean_interval(values: Sequence[float], level: float = LEVEL, bounds: tuple[float, float] | None = None) -> Interval:
    """The mean of `values` (one per seed) and its t interval, cut to `bounds` (a metric's range:
    with 2 seeds t is 12.7 and the interval can reach past 0 or 100); no interval from one value."""
    n = len(values)
    if n == 0:
        raise ValueError("no values")
    mean = sum(values) / n
    if n == 1:
        return Interval(mean, None, None, 1)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile(1 - (1 - level) / 2, n - 1) * sd / math.sqrt(n)
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return Interval(mean, low, high, n)


def mcnemar_exact(with_right: Sequence[bool], without_right: Sequence[bool]) -> dict:
    """McNemar's exact test on paired outcomes: b = right only with, c = right only without; under
    no difference b ~ Binomial(b + c, 1/2). Two-sided p (doubled smaller tail, at most 1)."""
    if len(with_right) != len(without_right):
        raise ValueError("paired outcomes differ in number")
    b = sum(1 for x, y in zip(with_right, without_right) if x and not y)
    c = sum(1 for x, y in zip(with_right, without_right) if y and not x)
    n = b + c
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2**n if n else 1.0
    return {"only_with": b, "only_without": c, "p_value": min(1.0, 2 * tail)}


@dataclass(frozen=True)
class Comparison:
    """with minus without: the observed difference, its bootstrap interval and p-value."""

    difference: float
    low: float
    high: float
    p_value: float
    resamples: int

    def to_json(self) -> dict:
        return {"difference": self.difference, "low": self.low, "high": self.high, "p_value": self.p_value,
                "resamples": self.resamples}

    @property
    def supported(self) -> bool:
        """True when the interval excludes 0 (a difference the data back)."""
        return self.low > 0 or self.high < 0


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    position = q * (len(sorted_values) - 1)
    lower = math.floor(position)
    upper = min(lower + 1, len(sorted_values) - 1)
    return sorted_values[lower] + (sorted_values[upper] - sorted_values[lower]) * (position - lower)


def paired_bootstrap(
    items: int, difference: Callable[[Sequence[int], Sequence[int]], float], seeds: int = 1, resamples: int = 2000,
    seed: int = 0, level: float = LEVEL,
) -> Comparison:
    """`difference(seed_indices, item_indices)` is the metric with stage 1 minus without, averaged
    over the seeds at `seed_indices`, each computed on the test items at `item_indices`. Both
    levels are resampled with replacement (seeds, then items), so the interval holds the
    seed-to-seed spread as well as the test set's; the pairing is kept (a resampled item brings
    both arms' outcomes, a resampled seed both arms' runs). Percentile interval; the p-value is
    twice the share of resampled differences on the far side of 0 (at least 1/resamples), the
    bootstrap test by interval inversion."""
    if items < 1 or seeds < 1:
        raise ValueError("no items or no seeds to resample")
    rng = random.Random(seed)
    observed = difference(range(seeds), range(items))
    draws = sorted(
        difference([rng.randrange(seeds) for _ in range(seeds)], [rng.randrange(items) for _ in range(items)])
        for _ in range(resamples)
    )
    alpha = (1 - level) / 2
    at_or_below = sum(1 for d in draws if d <= 0) / resamples
    at_or_above = sum(1 for d in draws if d >= 0) / resamples
    p = min(1.0, max(2 * min(at_or_below, at_or_above), 1 / resamples))
    return Comparison(observed, _percentile(draws, alpha), _percentile(draws, 1 - alpha), p, resamples)
