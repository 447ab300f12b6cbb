"""How likely an accuracy is under guessing, for tests whose questions have different numbers of
options (ScienceQA: 2 to 5): the number correct by uniform guessing is Poisson-binomial."""

from __future__ import annotations

from collections.abc import Sequence


def guessing_distribution(chances: Sequence[float]) -> list[float]:
    """P(k correct) for k = 0..n when question i is right with probability chances[i]."""
    probs = [1.0]
    for p in chances:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"chance {p} is not a probability")
        nxt = [0.0] * (len(probs) + 1)
        for k, q in enumerate(probs):
            nxt[k] += q * (1.0 - p)
            nxt[k + 1] += q * p
        probs = nxt
    return probs


def p_value_above_chance(correct: int, chances: Sequence[float]) -> float:
    """P(at least `correct` right by guessing): small means the accuracy is not luck."""
    if not 0 <= correct <= len(chances):
        raise ValueError(f"{correct} correct out of {len(chances)} questions")
    return min(1.0, sum(guessing_distribution(chances)[correct:]))
