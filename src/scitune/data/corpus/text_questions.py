"""ScienceQA-style text-only problems (some with a hint, some without) in natural, social and
language science. Every problem records its `kind` and the `params` its answer depends on, so the
answer can be recomputed from the params; figure problems are scitune.data.corpus.questions.
"""

from __future__ import annotations

import numpy as np

from scitune.data.corpus import vocab
from scitune.data.corpus.questions import LECTURES, Problem, _problem

# The schedule text-only problems cycle through: every subject, with and without a hint, both
# grade bands, within the first seven problems.
TEXT_KINDS = ("speed", "alphabetical", "budget", "unit_compare", "time_span", "guide_words", "density")
TEXT_WITH_HINT = {"speed", "budget", "time_span", "density"}


def text_question(kind: str, rng: np.random.Generator) -> Problem:
    """A text-only problem of `kind` (one of TEXT_KINDS). Kinds in TEXT_WITH_HINT put the data in
    the hint (ScienceQA's TXT context); the others carry it in the question (NO context)."""
    nat, soc, lan = vocab.NAT, vocab.SOC, vocab.LAN
    if kind == "speed":
        mover = str(rng.choice(vocab.MOVERS))
        time = int(rng.integers(2, 13))
        speed = int(rng.integers(2, 21))
        distance = speed * time
        return _problem(
            rng, kind, f"What was the average speed of the {mover}?", f"{speed} m/s",
            [f"{distance * time} m/s", f"{speed + 1} m/s", f"{max(speed - 2, 1)} m/s", f"{speed * 2} m/s"],
            LECTURES["speed"], f"speed = {distance} m / {time} s = {speed} m/s.", nat, "physics",
            {"distance": distance, "time": time}, count=3,
            hint=f"A {mover} travelled {distance} m in {time} s at a steady pace.")
    if kind == "density":
        volume = int(rng.integers(2, 11))
        density = int(rng.integers(1, 12))
        mass = density * volume
        return _problem(
            rng, kind, "What is the density of the block?", f"{density} g/cm³",
            [f"{mass * volume} g/cm³", f"{density + 2} g/cm³", f"{max(density - 1, 1) if density > 1 else 3} g/cm³"],
            LECTURES["density"], f"density = {mass} g / {volume} cm³ = {density} g/cm³.", nat, "physics",
            {"mass": mass, "volume": volume}, count=3,
            hint=f"A block has a mass of {mass} g and a volume of {volume} cm³.")
    if kind == "unit_compare":
        big = int(rng.choice([1, 2, 3, 4, 5]))
        small = int(rng.choice([v for v in range(300, 5001, 100) if v != big * 1000]))
        unit_big, unit_small = [("km", "m"), ("kg", "g"), ("L", "mL")][int(rng.integers(3))]
        a, b = f"{big} {unit_big}", f"{small} {unit_small}"
        answer = a if big * 1000 > small else b
        return _problem(
            rng, kind, "Which is greater?", answer, [a, b], LECTURES["units"],
            f"{big} {unit_big} = {big * 1000} {unit_small}, so {answer} is greater.", nat, "units-and-measurement",
            {"a": [big, unit_big], "b": [small, unit_small]}, count=2)
    if kind == "budget":
        name = str(rng.choice(vocab.NAMES))
        picks = rng.choice(len(vocab.GOODS), size=2, replace=False)
        items = [vocab.GOODS[int(i)] for i in picks]
        prices = [int(rng.integers(lo, hi + 1)) for _, lo, hi in items]
        total = sum(prices)
        money = int(total + rng.choice([-3, -2, -1, 1, 2, 5]))
        answer = "yes" if money >= total else "no"
        return _problem(
            rng, kind, f"Does {name} have enough money to buy a {items[0][0]} and a {items[1][0]}?", answer,
            ["yes", "no"], LECTURES["budget"],
            f"Together they cost ${prices[0]} + ${prices[1]} = ${total}. {name} has ${money}, so the answer is {answer}.",
            soc, "economics", {"money": money, "prices": prices}, count=2, task="yes or no",
            hint=f"{name} has ${money}. A {items[0][0]} costs ${prices[0]} and a {items[1][0]} costs ${prices[1]}.")
    if kind == "time_span":
        first, second = vocab.EVENTS[int(rng.integers(len(vocab.EVENTS)))]
        start = int(rng.integers(1500, 1900))
        span = int(rng.integers(5, 120))
        return _problem(
            rng, kind, "How many years passed between the two events?", str(span),
            [str(span + d) for d in (-10, -1, 1, 10, 100) if span + d > 0], LECTURES["time_span"],
            f"{start + span} - {start} = {span} years.", soc, "world-history", {"start": start, "end": start + span},
            count=3, hint=f"In {start}, {first}. In {start + span}, {second}.")
    if kind == "alphabetical":
        words = [str(w) for w in rng.choice(vocab.WORDS, size=3, replace=False)]
        answer = min(words)
        return _problem(
            rng, kind, "Which word comes first in alphabetical order?", answer, words, LECTURES["alphabetical"],
            f"In alphabetical order the words are {', '.join(sorted(words))}, so {answer} comes first.", lan,
            "reference-skills", {"words": words}, count=3)
    if kind == "guide_words":
        ordered = sorted(vocab.WORDS)
        start = int(rng.integers(0, len(ordered) - 6))
        first, inside, last = ordered[start], ordered[start + int(rng.integers(1, 5))], ordered[start + 5]
        outside = [w for w in ordered if w < first or w > last]
        wrong = outside[int(rng.integers(len(outside)))]
        return _problem(
            rng, kind, f"Which word would you find on a dictionary page with the guide words {first} - {last}?",
            inside, [wrong], LECTURES["alphabetical"],
            f"{inside} comes between {first} and {last} in alphabetical order; {wrong} does not.", lan,
            "reference-skills", {"first": first, "last": last}, count=2)
    raise ValueError(f"unknown text question kind {kind!r}")
