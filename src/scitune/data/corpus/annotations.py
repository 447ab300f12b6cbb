"""SciCap-style text for a figure, computed from its spec: caption, OCR, paragraph and mentions.

Also the facts those texts (and the questions) rest on: the trend of a series, the correlation of
a scatter group, which series is highest; each is a small pure function of the spec's data.
"""

from __future__ import annotations

import numpy as np

from scitune.data.corpus.drawing import drawn_text
from scitune.data.corpus.figures import Spec, fmt

TRENDS = ("increases", "decreases", "rises then falls", "falls then rises")


def trend(values: list[float]) -> str:
    """How a series moves from left to right: one of TRENDS, or "varies"."""
    diffs = np.diff(np.asarray(values, dtype=float))
    if np.all(diffs > 0):
        return "increases"
    if np.all(diffs < 0):
        return "decreases"
    turn = int(np.argmax(values)) if diffs[0] > 0 else int(np.argmin(values))
    before, after = diffs[:turn], diffs[turn:]
    if diffs[0] > 0 and np.all(before > 0) and np.all(after < 0):
        return "rises then falls"
    if diffs[0] < 0 and np.all(before < 0) and np.all(after > 0):
        return "falls then rises"
    return "varies"


def correlation(xs: list[float], ys: list[float]) -> float:
    """Pearson's r of a scatter group."""
    return float(np.corrcoef(np.asarray(xs, dtype=float), np.asarray(ys, dtype=float))[0, 1])


def relation(r: float) -> str:
    """The relationship a reader sees: "positive", "negative", "none", or "weak" (ambiguous)."""
    if r >= 0.5:
        return "positive"
    if r <= -0.5:
        return "negative"
    if abs(r) < 0.25:
        return "none"
    return "weak"


def highest_series_at(spec: Spec, index: int) -> tuple[str, float]:
    """The series with the largest y at the index-th x value, and its margin over the second
    (as a fraction of the y span: how clearly a reader sees it)."""
    values = sorted(((s["y"][index], s["name"]) for s in spec["series"]), reverse=True)
    low, high = spec["y"]["limits"]
    if spec["y"]["scale"] == "log":
        gap = (np.log10(values[0][0]) - np.log10(values[1][0])) / (np.log10(high) - np.log10(low))
    else:
        gap = (values[0][0] - values[1][0]) / (high - low)
    return values[0][1], float(gap)


def group_means(spec: Spec) -> dict[str, float]:
    return {s["name"]: float(np.mean(s["y"])) for s in spec["series"]}


def _join(items: list[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _unit(axis: dict) -> str:
    return f" {axis['unit']}" if axis["unit"] else ""


def _lower(name: str) -> str:
    return name if name.isupper() or name[:1].isupper() and name[1:2].isupper() else name.lower()


def _plot_facts(spec: Spec) -> list[str]:
    x, y = spec["x"], spec["y"]
    facts = []
    if spec["figure_type"] == "Graph Plot":
        trends = {s["name"]: trend(s["y"]) for s in spec["series"]}
        kinds = set(trends.values())
        if len(kinds) == 1 and "varies" not in kinds:
            subject = "in all cases" if len(trends) > 1 else f"for {spec['series'][0]['name']}"
            facts.append(f"{y['name']} {kinds.pop()} with {_lower(x['name'])} {subject}.")
        else:
            for name, how in trends.items():
                if how != "varies":
                    facts.append(f"{y['name']} of {name} {how} with {_lower(x['name'])}.")
                    break
        if len(spec["series"]) > 1:
            last = len(spec["series"][0]["x"]) - 1
            top, _ = highest_series_at(spec, last)
            facts.append(f"{top} reaches the highest {_lower(y['name'])} at {fmt(spec['series'][0]['x'][last])}{_unit(x)}.")
    else:
        for s in spec["series"]:
            r = correlation(s["x"], s["y"])
            how = {"positive": "a positive correlation", "negative": "a negative correlation",
                   "none": "no clear correlation", "weak": "a weak correlation"}[relation(r)]
            who = f" for {s['name']}" if len(spec["series"]) > 1 else ""
            facts.append(f"{y['name']} shows {how} with {_lower(x['name'])}{who} (r = {r:.2f}).")
        if len(spec["series"]) > 1:
            means = group_means(spec)
            facts.append(f"{max(means, key=means.get)} has the highest {_lower(y['name'])} on average.")
    logs = [a for a, axis in (("x", x), ("y", y)) if axis["scale"] == "log"]
    if logs:
        facts.append(f"The {' and '.join(logs)} axis {'is' if len(logs) == 1 else 'are'} logarithmic.")
    return facts


def _bar_facts(spec: Spec) -> list[str]:
    axis = spec["value_axis"]
    facts = []
    for s in spec["series"]:
        values = dict(zip(spec["categories"], s["values"]))
        hi, lo = max(values, key=values.get), min(values, key=values.get)
        who = f" in {s['name']}" if len(spec["series"]) > 1 else ""
        facts.append(f"{hi} has the highest {_lower(axis['name'])}{who} ({fmt(values[hi])}{_unit(axis)}) "
                     f"and {lo} the lowest ({fmt(values[lo])}{_unit(axis)}).")
    return facts


def _edge_phrases(spec: Spec) -> list[str]:
    nodes = spec["nodes"]
    return [spec["arrow_meaning"].format(a=nodes[a]["label"], b=nodes[b]["label"]) for a, b in spec["edges"]]


def caption(spec: Spec, rng: np.random.Generator) -> str:
    """A caption without the "Figure N:" prefix, built from what the figure shows."""
    kind = spec["figure_type"]
    if kind in ("Graph Plot", "Scatterplot"):
        x, y = spec["x"], spec["y"]
        names = [s["name"] for s in spec["series"]]
        if kind == "Graph Plot":
            opening = (f"{y['name']} as a function of {_lower(x['name'])}" if rng.random() < 0.5
                       else f"{y['name']} versus {_lower(x['name'])}")
        else:
            opening = f"Scatter plot of {_lower(y['name'])} against {_lower(x['name'])}"
        opening += f" for {_join(names)}." if len(names) > 1 else (f" for {names[0]}." if rng.random() < 0.5 else ".")
        return " ".join([opening] + _plot_facts(spec)[:2])
    if kind == "Bar Chart":
        axis = spec["value_axis"]
        opening = f"{axis['name']} of {_join(spec['categories'])}"
        if len(spec["series"]) > 1:
            opening += f", compared between {_join([s['name'] for s in spec['series']])}"
        return " ".join([opening + "."] + _bar_facts(spec)[:1])
    if kind == "Node Diagram":
        edges = _edge_phrases(spec)
        head = f"A {spec['theme']} diagram with {len(spec['nodes'])} nodes"
        return f"{head}: {edges[0]}" + (f", and {edges[-1]}." if len(edges) > 1 else ".")
    names = [eq["name"] for eq in spec["equations"]]
    if len(names) == 1:
        return f"The expression for {names[0]}." if rng.random() < 0.5 else f"Definition of {names[0]}."
    return f"Equations for {_join(names)}."


def paragraph(spec: Spec, number: int, rng: np.random.Generator) -> list[str]:
    """Paper-like paragraphs that refer to the figure (SciCap's `paragraph`: a list of strings)."""
    kind = spec["figure_type"]
    topic = spec["topic"].replace("-", " ")
    if kind in ("Graph Plot", "Scatterplot"):
        facts = _plot_facts(spec)
        what = f"{_lower(spec['y']['name'])} against {_lower(spec['x']['name'])}"
    elif kind == "Bar Chart":
        facts = _bar_facts(spec)
        what = f"{_lower(spec['value_axis']['name'])} for each group"
    elif kind == "Node Diagram":
        facts = [p[0].upper() + p[1:] + "." for p in _edge_phrases(spec)[:2]]
        what = f"the {spec['theme']} as a diagram"
    else:
        facts = [f"We use {eq['name']} below." for eq in spec["equations"][:1]]
        what = "the relations used in this work"
    opening = str(rng.choice([f"Figure {number} shows {what}.", f"We plot {what} in Figure {number}.",
                              f"In Figure {number} we present {what}."]))
    if kind in ("Node Diagram", "Equation"):
        opening = opening.replace("We plot", "We give")
    return [f"This section reports our {topic} results. {opening} {' '.join(facts)}".strip()]


def mention(paragraphs: list[str], number: int) -> list[list[str]]:
    """The sentences of `paragraphs` that cite the figure, one list per paragraph (SciCap's
    `mention`: a list of lists of sentences)."""
    mentions = []
    for text in paragraphs:
        sentences = [s.strip() + "." for s in text.split(". ") if f"Figure {number}" in s]
        if sentences:
            mentions.append([s[:-1] if s.endswith("..") else s for s in sentences])
    return mentions or [[f"See Figure {number}."]]


def ocr(spec: Spec) -> list[str]:
    """The strings drawn in the figure (SciCap's `ocr`)."""
    return drawn_text(spec)
