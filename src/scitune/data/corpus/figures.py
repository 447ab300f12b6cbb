"""The five SciCap figure types, sampled as data and rendered with matplotlib.

A figure is first a *spec*: a JSON-ready dict holding everything drawn (axis quantities, tick
values, series data, node labels and arrows, equations). Captions, OCR and questions are
computed from the spec, and `scitune.data.corpus.drawing.render_png` draws it. Figures are laid
out on a fixed 2.4-inch square; fonts are large and ticks few, so text stays legible at 128 px.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from scitune.data.corpus import vocab

FIGURE_INCHES = 2.4
Spec = dict[str, Any]


# ----------------------------------------------------------------------------------- numbers


def sig(value: float, digits: int = 3) -> float:
    """`value` rounded to `digits` significant digits (a float that prints the same everywhere)."""
    if value == 0 or not math.isfinite(value):
        return 0.0
    exponent = math.floor(math.log10(abs(value)))
    return float(round(value, digits - 1 - exponent))


def fmt(value: float) -> str:
    """A number as a scientist writes it on an axis: no trailing zeros, no exponent."""
    value = sig(value, 4)
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4f}".rstrip("0").rstrip(".")


def nice_step(span: float, count: int) -> float:
    """A 1/2/2.5/5 x 10^k step that cuts `span` into about `count` pieces."""
    raw = span / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    for mult in (1, 2, 2.5, 5, 10):
        if mult * power >= raw:
            return mult * power
    return 10 * power


def linear_ticks(low: float, high: float, count: int) -> list[float]:
    """Round-numbered ticks inside [low, high], as close to `count` of them as a 1/2/2.5/5 x 10^k
    step allows (at least two)."""
    power = 10 ** math.floor(math.log10((high - low) / max(count, 1)))
    best: list[float] = []
    for scale in (power / 10, power, power * 10):
        for mult in (1, 2, 2.5, 5):
            step = mult * scale
            first = math.ceil(low / step - 1e-9)
            last = math.floor(high / step + 1e-9)
            ticks = [sig(k * step, 6) for k in range(first, last + 1)]
            if len(ticks) >= 2 and (not best or abs(len(ticks) - count) < abs(len(best) - count)):
                best = ticks
    return best


def log_ticks(low: float, high: float) -> list[float]:
    lo, hi = math.floor(math.log10(low)), math.ceil(math.log10(high))
    stride = max(1, math.ceil((hi - lo) / 4))
    return [float(10**e) for e in range(lo, hi + 1, stride)]


# A horizontal axis holds about this many tick-label characters side by side without overlap.
X_TICK_CHARS = 13


def _axis(rng: np.random.Generator, quantity: vocab.Quantity, values: list[float], log: bool,
          horizontal: bool = False) -> dict:
    """An axis spec covering `values`: label, scale, limits and the tick labels drawn."""
    low, high = min(values), max(values)
    if log:
        ticks = log_ticks(low, high)
        limits = [ticks[0], ticks[-1]]
    else:
        pad = 0.06 * (high - low or 1.0)
        ticks = linear_ticks(low - pad / 2, high + pad / 2, int(rng.integers(3, 5)))
        while horizontal and len(ticks) > 2 and sum(len(fmt(t)) for t in ticks) > X_TICK_CHARS:
            ticks = ticks[::2]
        limits = [sig(min(low - pad, ticks[0]), 6), sig(max(high + pad, ticks[-1]), 6)]
    return {
        "name": quantity.name,
        "unit": quantity.unit,
        "label": quantity.label,
        "scale": "log" if log else "linear",
        "limits": limits,
        "ticks": ticks,
        "tick_labels": [f"$10^{{{round(math.log10(t))}}}$" for t in ticks] if log else [fmt(t) for t in ticks],
    }


def _style(rng: np.random.Generator) -> dict:
    return {
        "grid": bool(rng.random() < 0.35),
        "open_frame": bool(rng.random() < 0.5),  # top and right spines hidden
        "font": float(rng.choice([10.0, 11.0, 12.0])),
    }


def _pick_quantities(rng: np.random.Generator, positive: bool = False) -> tuple[vocab.Quantity, vocab.Quantity]:
    x = vocab.X_QUANTITIES[int(rng.integers(len(vocab.X_QUANTITIES)))]
    ys = [q for q in vocab.Y_QUANTITIES if q.name != x.name and (q.low >= 0 or not positive)]
    return x, ys[int(rng.integers(len(ys)))]


def _series_names(rng: np.random.Generator, topic: str, count: int) -> list[str]:
    theme = topic if rng.random() < 0.7 else "model"
    names = vocab.SERIES_NAMES.get(theme, vocab.SERIES_NAMES["model"])
    return [str(n) for n in rng.choice(names, size=count, replace=False)]


def _short(title: str, fallback: str) -> str:
    """`title` if it fits the figure width at title size, else `fallback`."""
    return title if len(title) <= 18 else fallback


def _colors(rng: np.random.Generator, count: int) -> list[str]:
    return [str(c) for c in rng.choice(vocab.COLORS, size=count, replace=False)]


def _to_range(u: np.ndarray, low: float, high: float, log: bool, digits: int = 3) -> list[float]:
    """Unit-interval values mapped onto [low, high], rounded to `digits` significant digits."""
    if log:
        values = 10 ** (math.log10(low) + u * (math.log10(high) - math.log10(low)))
    else:
        values = low + u * (high - low)
    return [sig(float(v), digits) for v in values]


# ------------------------------------------------------------------------------------ sampling


def sample_graph_plot(rng: np.random.Generator) -> Spec:
    xq, yq = _pick_quantities(rng)
    n_series = int(rng.choice([1, 2, 2, 3, 3, 4]))
    n_points = int(rng.integers(6, 11))
    x_log = xq.log_ok and rng.random() < 0.5
    y_log = yq.log_ok and rng.random() < 0.5
    if x_log:
        xs = np.geomspace(max(xq.low, 1e-3), xq.high, n_points)
    else:
        step = nice_step(xq.high - xq.low, n_points - 1)
        xs = xq.low + step * np.arange(n_points)
    x_values = [sig(float(v), 6) for v in xs]
    t = np.linspace(0.0, 1.0, n_points)
    names = _series_names(rng, yq.topic, n_series)
    colors = _colors(rng, n_series)
    levels = rng.permutation(np.linspace(0.0, 0.45, n_series)) if n_series > 1 else np.array([0.1])
    use_markers = bool(rng.random() < 0.25)
    with_errors = bool(rng.random() < 0.15)
    series = []
    for k in range(n_series):
        shape = str(rng.choice(["increasing", "decreasing", "peak"], p=[0.45, 0.35, 0.2]))
        power = float(rng.uniform(0.5, 2.0))
        if shape == "increasing":
            u = t**power
        elif shape == "decreasing":
            u = 1 - t**power
        else:
            centre = float(rng.uniform(0.3, 0.7))
            u = np.exp(-((t - centre) ** 2) / (2 * 0.18**2))
        u = levels[k] + 0.5 * u + rng.normal(0, 0.004, n_points)
        u = np.clip(u, 0.0, 1.0)
        y = _to_range(u, max(yq.low, 1e-2) if y_log else yq.low, yq.high, y_log)
        entry = {
            "name": names[k],
            "color": colors[k],
            "marker": str(rng.choice(vocab.MARKERS)) if use_markers else "",
            "linestyle": str(rng.choice(["-", "-", "--", "-."])),
            "x": x_values,
            "y": y,
        }
        if with_errors:
            entry["yerr"] = [sig(abs(v) * 0.06 + 1e-3) for v in y]
        series.append(entry)
    all_y = [v for s in series for v in s["y"]]
    title = None
    if rng.random() < 0.4:
        title = f"{yq.name} vs {xq.name}" if rng.random() < 0.5 else f"{yq.topic.replace('-', ' ').capitalize()} data"
        title = _short(title, yq.name)
    return {
        "figure_type": "Graph Plot",
        "subject": vocab.subject_of(yq.topic),
        "topic": yq.topic,
        "title": title,
        "x": _axis(rng, xq, x_values, x_log, horizontal=True),
        "y": _axis(rng, yq, all_y, y_log),
        "series": series,
        "legend": n_series > 1,
        "legend_loc": str(rng.choice(["upper left", "upper right", "lower left", "lower right", "center left"])),
        "style": _style(rng),
    }


def sample_scatterplot(rng: np.random.Generator) -> Spec:
    xq, yq = _pick_quantities(rng)
    n_groups = int(rng.choice([1, 1, 2, 2, 3]))
    names = _series_names(rng, yq.topic, n_groups)
    colors = _colors(rng, n_groups)
    offsets = rng.permutation(np.linspace(0.0, 0.4, n_groups)) if n_groups > 1 else np.array([0.2])
    series = []
    for k in range(n_groups):
        n = int(rng.integers(30, 61))
        relation = str(rng.choice(["positive", "negative", "none"], p=[0.45, 0.35, 0.2]))
        u_x = rng.uniform(0.0, 1.0, n)
        slope = {"positive": 0.45, "negative": -0.45, "none": 0.0}[relation]
        u_y = offsets[k] + 0.3 + slope * (u_x - 0.5) + rng.normal(0, 0.09, n)
        series.append({
            "name": names[k],
            "color": colors[k],
            "marker": str(rng.choice(vocab.MARKERS)),
            "x": _to_range(u_x, xq.low, xq.high, False, digits=5),  # years need more than 3
            "y": _to_range(np.clip(u_y, 0.0, 1.0), yq.low, yq.high, False),
        })
    all_x = [v for s in series for v in s["x"]]
    all_y = [v for s in series for v in s["y"]]
    title = _short(f"{yq.name} and {xq.name}", yq.name) if rng.random() < 0.35 else None
    return {
        "figure_type": "Scatterplot",
        "subject": vocab.subject_of(yq.topic),
        "topic": yq.topic,
        "title": title,
        "x": _axis(rng, xq, all_x, False, horizontal=True),
        "y": _axis(rng, yq, all_y, False),
        "series": series,
        "legend": n_groups > 1,
        "legend_loc": str(rng.choice(["upper left", "upper right", "lower left", "lower right"])),
        "style": _style(rng),
    }


def sample_bar_chart(rng: np.random.Generator) -> Spec:
    _, yq = _pick_quantities(rng, positive=True)
    n_series = int(rng.choice([1, 1, 1, 2, 2, 3]))
    n_categories = int(rng.integers(3, 7)) if n_series == 1 else int(rng.integers(2, 5))
    names = _series_names(rng, yq.topic, n_categories + n_series)
    categories, series_names = names[:n_categories], names[n_categories:]
    if n_series > 1:
        groups = [("2010", "2015", "2020"), ("Lab", "Field", "Model"), ("Day", "Night", "Dusk"), ("Before", "After", "Later")]
        series_names = list(groups[int(rng.integers(len(groups)))][:n_series])
    colors = _colors(rng, n_series)
    with_errors = bool(rng.random() < 0.3)
    series = []
    for k in range(n_series):
        u = rng.uniform(0.15, 0.95, n_categories)
        values = _to_range(u, max(yq.low, 0.0), yq.high, False)
        entry = {"name": series_names[k], "color": colors[k], "values": values}
        if with_errors:
            entry["err"] = [sig(abs(v) * 0.08 + 1e-3) for v in values]
        series.append(entry)
    all_values = [v for s in series for v in s["values"]] + [0.0]
    orientation = "vertical" if rng.random() < 0.75 else "horizontal"
    axis = _axis(rng, yq, all_values, False, horizontal=orientation == "horizontal")
    axis["limits"][0] = 0.0
    axis["ticks"] = [t for t in axis["ticks"] if t >= 0]
    axis["tick_labels"] = [fmt(t) for t in axis["ticks"]]
    return {
        "figure_type": "Bar Chart",
        "subject": vocab.subject_of(yq.topic),
        "topic": yq.topic,
        "title": _short(f"{yq.name} by group", yq.name) if rng.random() < 0.3 else None,
        "orientation": orientation,
        "categories": categories,
        "value_axis": axis,
        "series": series,
        "value_labels": bool(n_series == 1 and rng.random() < 0.3),
        "legend": n_series > 1,
        "legend_loc": str(rng.choice(["upper left", "upper right"])),
        "style": _style(rng),
    }


_LAYOUT_SIZES = {"chain": (3, 4), "column": (3, 4), "cycle": (3, 5), "tree": (3, 5)}


def _layout(kind: str, n: int) -> tuple[list[list[float]], list[list[int]]]:
    if kind == "chain":
        pos = [[0.15 + 0.7 * i / (n - 1), 0.5 + (0.18 if i % 2 else -0.18) * (n > 3)] for i in range(n)]
        edges = [[i, i + 1] for i in range(n - 1)]
    elif kind == "column":
        pos = [[0.5 + (0.2 if i % 2 else -0.2) * (n > 3), 0.85 - 0.7 * i / (n - 1)] for i in range(n)]
        edges = [[i, i + 1] for i in range(n - 1)]
    elif kind == "cycle":
        pos = [[0.5 + 0.33 * math.sin(2 * math.pi * i / n), 0.47 + 0.33 * math.cos(2 * math.pi * i / n)] for i in range(n)]
        edges = [[i, (i + 1) % n] for i in range(n)]
    else:  # tree: one root, two children, grandchildren under the first child
        pos = [[0.5, 0.82], [0.25, 0.5], [0.75, 0.5], [0.2, 0.15], [0.62, 0.15]][:n]
        edges = [[0, 1], [0, 2], [1, 3], [2, 4]][: n - 1]
    return [[round(x, 4), round(y, 4)] for x, y in pos], edges


def sample_node_diagram(rng: np.random.Generator) -> Spec:
    theme = vocab.DIAGRAM_THEMES[int(rng.integers(len(vocab.DIAGRAM_THEMES)))]
    layout = str(rng.choice(list(_LAYOUT_SIZES)))
    low, high = _LAYOUT_SIZES[layout]
    n = int(rng.integers(low, high + 1))
    labels = [str(s) for s in rng.choice(theme.labels, size=n, replace=False)]
    positions, edges = _layout(layout, n)
    if rng.random() < 0.5:  # arrows may point the other way
        edges = [[b, a] for a, b in edges]
    return {
        "figure_type": "Node Diagram",
        "subject": vocab.subject_of(theme.topic),
        "topic": theme.topic,
        "theme": theme.name,
        "arrow_meaning": theme.arrow_meaning,
        "title": theme.name.capitalize() if rng.random() < 0.5 else None,
        "layout": layout,
        "shape": str(rng.choice(["box", "ellipse"])),
        "nodes": [{"label": labels[i], "pos": positions[i]} for i in range(n)],
        "edges": edges,
        "node_color": str(rng.choice(["#dbe9f6", "#fde2c8", "#dff3d8", "#eeeeee", "#f6dbe9"])),
        "style": {"font": float(rng.choice([9.0, 10.0]))},
    }


def sample_equation(rng: np.random.Generator) -> Spec:
    count = int(rng.choice([1, 1, 2, 3]))
    picks = rng.choice(len(vocab.EQUATIONS), size=count, replace=False)
    equations = [vocab.EQUATIONS[int(i)] for i in picks]
    numbered = bool(rng.random() < 0.5)
    first_number = int(rng.integers(1, 9))
    return {
        "figure_type": "Equation",
        "subject": vocab.NAT,
        "topic": equations[0].topic,
        "title": None,
        "equations": [
            {"name": eq.name, "tex": eq.tex, "number": (first_number + i) if numbered else None}
            for i, eq in enumerate(equations)
        ],
        "align": str(rng.choice(["center", "left"])),
        "style": {"font": float({1: 17.0, 2: 14.0, 3: 12.0}[count])},
    }


SAMPLERS = {
    "Graph Plot": sample_graph_plot,
    "Scatterplot": sample_scatterplot,
    "Bar Chart": sample_bar_chart,
    "Node Diagram": sample_node_diagram,
    "Equation": sample_equation,
}


def sample_figure(rng: np.random.Generator, figure_type: str) -> Spec:
    """The data of one figure of `figure_type` (one of `vocab.FIGURE_TYPES`)."""
    return SAMPLERS[figure_type](rng)
