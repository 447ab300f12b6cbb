"""ScienceQA-style multiple-choice problems: one per figure, answered from what the figure shows
(the text-only ones are scitune.data.corpus.text_questions), and what every problem is made of.

Every problem records its `kind` and the `params` its answer depends on, so the answer can be
recomputed from the figure's data.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from scitune.data.corpus import annotations as ann
from scitune.data.corpus import vocab
from scitune.data.corpus.figures import Spec, fmt

Problem = dict[str, Any]

# kind -> (lowest grade, highest grade): what a pupil of that grade would be asked.
GRADES = {
    "figure_type": (2, 5),
    "x_axis": (3, 6),
    "y_axis": (3, 6),
    "bar_count": (1, 3),
    "tallest_bar": (3, 6),
    "node_count": (1, 3),
    "arrow_target": (4, 7),
    "highest_at_x": (6, 9),
    "trend": (6, 9),
    "correlation": (8, 11),
    "highest_group": (7, 10),
    "equation_name": (9, 12),
    "equation_count": (2, 4),
    "alphabetical": (2, 4),
    "guide_words": (3, 5),
    "speed": (7, 9),
    "unit_compare": (5, 6),
    "density": (8, 10),
    "budget": (2, 4),
    "time_span": (7, 9),
}

# kind -> (category, skill) in ScienceQA's manner.
SKILLS = {
    "figure_type": ("Scientific figures", "Identify the type of a scientific figure"),
    "x_axis": ("Reading graphs", "Identify the quantity on the x-axis of a graph"),
    "y_axis": ("Reading graphs", "Identify the quantity on the y-axis of a graph"),
    "bar_count": ("Reading graphs", "Count the bars in a bar chart"),
    "tallest_bar": ("Reading graphs", "Compare values in a bar chart"),
    "node_count": ("Diagrams", "Count the parts of a diagram"),
    "arrow_target": ("Diagrams", "Follow the arrows in a diagram"),
    "highest_at_x": ("Reading graphs", "Compare series in a line graph"),
    "trend": ("Reading graphs", "Describe the trend of a line graph"),
    "correlation": ("Analyzing data", "Describe the relationship in a scatter plot"),
    "highest_group": ("Analyzing data", "Compare groups in a scatter plot"),
    "equation_name": ("Scientific formulas", "Identify a scientific formula"),
    "equation_count": ("Scientific formulas", "Count the equations in a figure"),
    "alphabetical": ("Reference skills", "Put words in alphabetical order"),
    "guide_words": ("Reference skills", "Use guide words"),
    "speed": ("Velocity, acceleration, and forces", "Calculate average speed"),
    "unit_compare": ("Units and measurement", "Compare measurements in different units"),
    "density": ("Materials", "Calculate density from mass and volume"),
    "budget": ("Basic economic principles", "Decide whether a budget covers a purchase"),
    "time_span": ("Chronology", "Find the time between two events"),
}

LECTURES = {
    "figure_type": "Scientists show results in figures. A line graph joins measurements with lines; a scatter plot "
                   "shows each measurement as a separate dot; a bar chart compares values with bars; a node "
                   "diagram shows things as boxes or ovals joined by arrows; an equation figure shows a formula.",
    "axis": "A graph has two axes. The horizontal axis is the x-axis and the vertical axis is the y-axis. "
            "Each axis label names the quantity and, in brackets, its unit.",
    "bars": "A bar chart compares values. Each bar stands for one group, and the longer the bar, the larger "
            "the value. Read a bar's value where its end meets the value axis.",
    "nodes": "A diagram shows how parts are connected. Each box or oval is a node, and an arrow points from "
             "one node to the node it leads to.",
    "lines": "A line graph shows how a quantity changes as another changes. Each line is one series; the legend "
             "tells which line is which. A higher point means a larger value.",
    "scatter": "A scatter plot shows pairs of measurements as dots. If the dots rise from left to right the two "
               "quantities have a positive correlation; if they fall, a negative correlation; if they show no "
               "direction, no correlation.",
    "equations": "Scientific laws are often written as equations. Each letter stands for a quantity, such as m for "
                 "mass or v for speed.",
    "alphabetical": "Words in a dictionary are in alphabetical order. Compare the first letters of the words; if "
                    "they are the same, compare the next letters, and so on.",
    "speed": "Average speed is the distance travelled divided by the time taken: speed = distance / time.",
    "units": "To compare measurements, write them in the same unit first. There are 1,000 metres in a kilometre "
             "and 1,000 grams in a kilogram.",
    "density": "Density is mass per unit volume: density = mass / volume.",
    "budget": "A budget is the money a person can spend. To afford several things, the total price must not be "
              "more than the money the person has.",
    "time_span": "To find how much time passed between two events, subtract the earlier year from the later year.",
}


def _grade(rng: np.random.Generator, kind: str) -> str:
    low, high = GRADES[kind]
    return f"grade{int(rng.integers(low, high + 1))}"


def _choices(rng: np.random.Generator, answer: str, distractors: list[str], count: int) -> tuple[list[str], int]:
    """`answer` and up to count-1 distinct distractors, shuffled; returns (choices, answer index)."""
    others = []
    for d in distractors:
        if d != answer and d not in others:
            others.append(d)
    picked = [others[int(i)] for i in rng.permutation(len(others))[: count - 1]] if others else []
    choices = picked + [answer]
    order = [int(i) for i in rng.permutation(len(choices))]
    choices = [choices[i] for i in order]
    return choices, choices.index(answer)


def _problem(rng, kind, question, answer, distractors, lecture, solution, subject, topic,
             params, count=4, hint="", task="closed choice") -> Problem:
    choices, index = _choices(rng, answer, distractors, count)
    category, skill = SKILLS[kind]
    return {
        "kind": kind,
        "params": params,
        "question": question,
        "choices": choices,
        "answer": index,
        "hint": hint,
        "task": task,
        "grade": _grade(rng, kind),
        "subject": subject,
        "topic": topic,
        "category": category,
        "skill": skill,
        "lecture": lecture,
        "solution": solution,
    }


# ------------------------------------------------------------------------------ figure questions


def figure_kinds(spec: Spec) -> list[str]:
    """The question kinds this figure can answer clearly (margins big enough to see)."""
    kind = spec["figure_type"]
    kinds = ["figure_type"]
    if kind in ("Graph Plot", "Scatterplot"):
        kinds += ["x_axis", "y_axis"]
    if kind == "Graph Plot":
        if len(spec["series"]) > 1 and _best_x_index(spec)[1] >= 0.1:
            kinds.append("highest_at_x")
        if _clean_trend_series(spec):
            kinds.append("trend")
    elif kind == "Scatterplot":
        if any(ann.relation(ann.correlation(s["x"], s["y"])) != "weak" for s in spec["series"]):
            kinds.append("correlation")
        if len(spec["series"]) > 1 and _mean_gap(spec) >= 0.08:
            kinds.append("highest_group")
    elif kind == "Bar Chart":
        kinds.append("bar_count")
        if len(spec["series"]) == 1 and _bar_gap(spec) >= 0.05:
            kinds.append("tallest_bar")
    elif kind == "Node Diagram":
        kinds.append("node_count")
        if _single_target_sources(spec):
            kinds.append("arrow_target")
    elif kind == "Equation":
        kinds.append("equation_name" if len(spec["equations"]) == 1 else "equation_count")
    return kinds


def _best_x_index(spec: Spec) -> tuple[int, float]:
    gaps = [ann.highest_series_at(spec, i)[1] for i in range(len(spec["series"][0]["x"]))]
    best = int(np.argmax(gaps))
    return best, gaps[best]


def _clean_trend_series(spec: Spec) -> list[str]:
    return [s["name"] for s in spec["series"] if ann.trend(s["y"]) in ann.TRENDS[:3]]


def _mean_gap(spec: Spec) -> float:
    means = sorted(ann.group_means(spec).values(), reverse=True)
    low, high = spec["y"]["limits"]
    return (means[0] - means[1]) / (high - low)


def _bar_gap(spec: Spec) -> float:
    values = sorted(spec["series"][0]["values"], reverse=True)
    return (values[0] - values[1]) / spec["value_axis"]["limits"][1]


def _single_target_sources(spec: Spec) -> list[int]:
    out: dict[int, list[int]] = {}
    for a, b in spec["edges"]:
        out.setdefault(a, []).append(b)
    return sorted(a for a, targets in out.items() if len(targets) == 1)


def _other_quantities(exclude: str) -> list[str]:
    names = sorted({q.name for q in vocab.X_QUANTITIES + vocab.Y_QUANTITIES})
    return [n for n in names if n != exclude]


def figure_question(spec: Spec, rng: np.random.Generator, kind: str | None = None) -> Problem:
    """One question about the figure, of `kind` or of a kind drawn from `figure_kinds(spec)`."""
    kinds = figure_kinds(spec)
    if kind is None:
        weights = np.array([1.0 if k == "figure_type" else 2.0 for k in kinds])
        kind = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
    subject, topic = spec["subject"], spec["topic"]
    ftype = spec["figure_type"]
    names = {"Graph Plot": "a line graph", "Scatterplot": "a scatter plot", "Bar Chart": "a bar chart",
             "Node Diagram": "a node diagram", "Equation": "an equation"}
    if kind == "figure_type":
        answer = ftype
        return _problem(
            rng, kind, "What type of figure is this?", answer, list(vocab.FIGURE_TYPES), LECTURES["figure_type"],
            f"The figure is {names[ftype]}, so its type is {answer}.", vocab.NAT,
            "science-and-engineering-practices", {}, count=4)
    if kind in ("x_axis", "y_axis"):
        axis = spec[kind[0]]
        other = spec["y" if kind == "x_axis" else "x"]["name"]
        distractors = [other] + [str(n) for n in rng.permutation(_other_quantities(axis["name"]))]
        where = "horizontal" if kind == "x_axis" else "vertical"
        return _problem(
            rng, kind, f"What quantity is shown on the {kind[0]}-axis?", axis["name"], distractors,
            LECTURES["axis"], f"The {where} axis is labelled \"{axis['label']}\", so it shows {axis['name'].lower()}.",
            subject, topic, {}, count=3)
    if kind == "highest_at_x":
        index, _ = _best_x_index(spec)
        top, _ = ann.highest_series_at(spec, index)
        x_value = spec["series"][0]["x"][index]
        x = spec["x"]
        at = f"{x['name'].lower()} = {fmt(x_value)}{(' ' + x['unit']) if x['unit'] else ''}"
        values = ", ".join(f"{s['name']} {fmt(s['y'][index])}" for s in spec["series"])
        return _problem(
            rng, kind, f"Which series has the highest {spec['y']['name'].lower()} at {at}?", top,
            [s["name"] for s in spec["series"]], LECTURES["lines"],
            f"At {at} the values are: {values}. The highest line there is {top}.", subject, topic,
            {"x": x_value}, count=4)
    if kind == "trend":
        candidates = _clean_trend_series(spec)
        name = candidates[int(rng.integers(len(candidates)))]
        series = next(s for s in spec["series"] if s["name"] == name)
        answer = ann.trend(series["y"])
        who = f"of {name} " if len(spec["series"]) > 1 else ""
        question = f"How does the {spec['y']['name'].lower()} {who}change as the {spec['x']['name'].lower()} increases?"
        return _problem(
            rng, kind, question, f"It {answer}.", [f"It {t}." for t in ann.TRENDS[:3]] + ["It stays the same."],
            LECTURES["lines"], f"Follow the {name} line from left to right: it {answer}.", subject, topic,
            {"series": name}, count=3)
    if kind == "correlation":
        candidates = [s for s in spec["series"] if ann.relation(ann.correlation(s["x"], s["y"])) != "weak"]
        series = candidates[int(rng.integers(len(candidates)))]
        answer = ann.relation(ann.correlation(series["x"], series["y"]))
        texts = {"positive": "a positive correlation", "negative": "a negative correlation", "none": "no correlation"}
        who = f" for {series['name']}" if len(spec["series"]) > 1 else ""
        question = (f"What relationship between {spec['x']['name'].lower()} and {spec['y']['name'].lower()} "
                    f"does the plot show{who}?")
        return _problem(
            rng, kind, question, texts[answer], list(texts.values()), LECTURES["scatter"],
            f"The {series['name']} dots {'rise' if answer == 'positive' else 'fall' if answer == 'negative' else 'show no direction'}"
            f" from left to right, so there is {texts[answer]}.", subject, topic, {"series": series["name"]}, count=3)
    if kind == "highest_group":
        means = ann.group_means(spec)
        top = max(means, key=means.get)
        return _problem(
            rng, kind, f"Which group has the highest {spec['y']['name'].lower()} values?", top, list(means),
            LECTURES["scatter"], f"The {top} dots lie highest on the plot, so {top} has the highest values.",
            subject, topic, {}, count=3)
    if kind == "bar_count":
        count = sum(len(s["values"]) for s in spec["series"])
        distractors = [str(count + d) for d in (-2, -1, 1, 2, 3) if count + d > 0]
        return _problem(
            rng, kind, "How many bars are in the chart?", str(count), distractors, LECTURES["bars"],
            f"Counting the bars gives {count}.", subject, topic, {}, count=4)
    if kind == "tallest_bar":
        values = dict(zip(spec["categories"], spec["series"][0]["values"]))
        top = max(values, key=values.get)
        axis = spec["value_axis"]
        longest = "tallest" if spec["orientation"] == "vertical" else "longest"
        return _problem(
            rng, kind, f"Which group has the highest {axis['name'].lower()}?", top, list(values), LECTURES["bars"],
            f"The {longest} bar is {top}, at {fmt(values[top])}{(' ' + axis['unit']) if axis['unit'] else ''}.",
            subject, topic, {}, count=4)
    if kind == "node_count":
        count = len(spec["nodes"])
        distractors = [str(count + d) for d in (-2, -1, 1, 2) if count + d > 1]
        return _problem(
            rng, kind, "How many nodes does the diagram have?", str(count), distractors, LECTURES["nodes"],
            f"The diagram has {count} nodes: {', '.join(n['label'] for n in spec['nodes'])}.", subject, topic,
            {}, count=3)
    if kind == "arrow_target":
        sources = _single_target_sources(spec)
        source = sources[int(rng.integers(len(sources)))]
        target = next(b for a, b in spec["edges"] if a == source)
        labels = [n["label"] for n in spec["nodes"]]
        return _problem(
            rng, kind, f"In this diagram, which node does the arrow from {labels[source]} point to?", labels[target],
            [lab for i, lab in enumerate(labels) if i != source], LECTURES["nodes"],
            f"Follow the arrow that leaves {labels[source]}: it points to {labels[target]}. In this "
            f"{spec['theme']}, {spec['arrow_meaning'].format(a=labels[source], b=labels[target])}.",
            subject, topic, {"source": labels[source]}, count=3)
    if kind == "equation_name":
        eq = spec["equations"][0]
        others = [e.name for e in vocab.EQUATIONS]
        return _problem(
            rng, kind, "Which relation does the equation express?", eq["name"], others, LECTURES["equations"],
            f"The equation ${eq['tex']}$ is {eq['name']}.", subject, topic, {}, count=3)
    if kind == "equation_count":
        count = len(spec["equations"])
        return _problem(
            rng, kind, "How many equations are shown?", str(count), ["1", "2", "3", "4"], LECTURES["equations"],
            f"The figure shows {count} equations: {', '.join(e['name'] for e in spec['equations'])}.",
            subject, topic, {}, count=3)
    raise ValueError(f"unknown figure question kind {kind!r}")


def figure_hint(spec: Spec, rng: np.random.Generator) -> str:
    """A context line that helps without giving the answer away (ScienceQA's `hint`)."""
    topic = spec["topic"].replace("-", " ")
    return str(rng.choice([
        f"Figure: a figure from a {topic} paper.",
        f"The figure below comes from a report on {topic}.",
        f"A team of scientists studied {topic} and made the figure below.",
    ]))
