"""The five SciCap figure types, sampled as data and rendered with matplotlib.

A figure is first a *spec*: a JSON-ready dict holding everything drawn (axis quantities, tick
values, series data, node labels and arrows, equations). Captions, OCR and questions are
computed from the spec, and `render_png` draws it. Rendering uses `matplotlib.figure.Figure` with
its own `FigureCanvasAgg` (no pyplot, no global matplotlib state), so it is safe to call from a
program that uses matplotlib itself.

Figures are laid out on a fixed 2.4-inch square and rendered at `dpi = image_size / 2.4`, so the
layout is the same at every image size; fonts are large and ticks few, so text stays legible at
128 px.
"""

from __future__ import annotations

import io
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


# ----------------------------------------------------------------------------------- rendering


def _apply_axis(ax, which: str, axis: dict, font: float) -> None:
    set_scale = ax.set_xscale if which == "x" else ax.set_yscale
    set_lim = ax.set_xlim if which == "x" else ax.set_ylim
    set_ticks = ax.set_xticks if which == "x" else ax.set_yticks
    set_label = ax.set_xlabel if which == "x" else ax.set_ylabel
    set_scale(axis["scale"])
    set_lim(*axis["limits"])
    set_ticks(axis["ticks"], axis["tick_labels"], fontsize=font - 1)
    set_ticks([], minor=True)
    set_label(axis["label"], fontsize=font if len(axis["label"]) <= 16 else font - 2, labelpad=2)


def _frame(ax, spec: Spec) -> None:
    style = spec["style"]
    if style["open_frame"]:
        ax.spines["top"].set_visible(False)
        ax.spines["right"].set_visible(False)
    if style["grid"]:
        ax.grid(True, color="#cccccc", linewidth=0.6)
        ax.set_axisbelow(True)
    ax.tick_params(length=3, pad=2)
    if spec.get("title"):
        ax.set_title(spec["title"], fontsize=style["font"], pad=4)
    if spec.get("legend"):
        ax.legend(loc=spec["legend_loc"], fontsize=style["font"] - 3, frameon=False,
                  handlelength=1.4, borderaxespad=0.2, labelspacing=0.2)


def _margins(fig, spec: Spec, left: float = 0.29, bottom: float = 0.2) -> None:
    top = 0.9 if spec.get("title") else 0.96
    fig.subplots_adjust(left=left, right=0.93, bottom=bottom, top=top)


def _draw_graph_plot(fig, spec: Spec) -> None:
    ax = fig.add_subplot()
    for s in spec["series"]:
        kwargs = dict(color=s["color"], linestyle=s["linestyle"], linewidth=2.6, label=s["name"],
                      marker=s["marker"] or None, markersize=3.5)
        if "yerr" in s:
            ax.errorbar(s["x"], s["y"], yerr=s["yerr"], capsize=2, elinewidth=0.8, **kwargs)
        else:
            ax.plot(s["x"], s["y"], **kwargs)
    font = spec["style"]["font"]
    _apply_axis(ax, "x", spec["x"], font)
    _apply_axis(ax, "y", spec["y"], font)
    _frame(ax, spec)
    _margins(fig, spec)


def _draw_scatterplot(fig, spec: Spec) -> None:
    ax = fig.add_subplot()
    for s in spec["series"]:
        ax.scatter(s["x"], s["y"], s=20, color=s["color"], marker=s["marker"], label=s["name"],
                   linewidths=0)
    font = spec["style"]["font"]
    _apply_axis(ax, "x", spec["x"], font)
    _apply_axis(ax, "y", spec["y"], font)
    _frame(ax, spec)
    _margins(fig, spec)


def _draw_bar_chart(fig, spec: Spec) -> None:
    ax = fig.add_subplot()
    n_series = len(spec["series"])
    n_cat = len(spec["categories"])
    width = 0.8 / n_series
    positions = np.arange(n_cat)
    font = spec["style"]["font"]
    vertical = spec["orientation"] == "vertical"
    for k, s in enumerate(spec["series"]):
        where = positions - 0.4 + width * (k + 0.5)
        err = s.get("err")
        if vertical:
            bars = ax.bar(where, s["values"], width * 0.9, color=s["color"], label=s["name"],
                          yerr=err, capsize=2 if err else 0, error_kw={"elinewidth": 0.8})
        else:
            bars = ax.barh(where, s["values"], width * 0.9, color=s["color"], label=s["name"],
                           xerr=err, capsize=2 if err else 0, error_kw={"elinewidth": 0.8})
        if spec["value_labels"]:
            ax.bar_label(bars, labels=[fmt(v) for v in s["values"]], fontsize=font - 3, padding=1)
    axis = spec["value_axis"]
    top = max(v + (e if "err" in s else 0) for s in spec["series"]
              for v, e in zip(s["values"], s.get("err", s["values"])))
    room = (1.12 if vertical else 1.22) if spec["value_labels"] else 1.04
    axis = dict(axis, limits=[0.0, max(axis["limits"][1], top * room)])
    cat_axis = "x" if vertical else "y"
    _apply_axis(ax, "y" if vertical else "x", axis, font)
    set_ticks = ax.set_xticks if vertical else ax.set_yticks
    crowded = n_cat > 4 or sum(len(c) for c in spec["categories"]) > X_TICK_CHARS
    rotated = vertical and crowded
    set_ticks(list(positions), spec["categories"], fontsize=font - (2 if vertical else 3),
              rotation=30 if rotated else 0, ha="right" if rotated else "center",
              rotation_mode="anchor" if rotated else "default")
    ax.tick_params(axis=cat_axis, length=0)
    if vertical:
        ax.set_xlim(-0.6, n_cat - 0.4)
    else:
        ax.set_ylim(-0.6, n_cat - 0.4)
    _frame(ax, spec)
    _margins(fig, spec, left=0.29 if vertical else 0.34, bottom=0.26 if vertical else 0.2)


def _draw_node_diagram(fig, spec: Spec) -> None:
    from matplotlib.patches import Ellipse, FancyArrowPatch, FancyBboxPatch

    ax = fig.add_axes((0.0, 0.0, 1.0, 0.9 if spec.get("title") else 1.0))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_axis_off()
    half_w, half_h = 0.15, 0.075
    font = spec["style"]["font"]
    for node in spec["nodes"]:
        x, y = node["pos"]
        if spec["shape"] == "box":
            patch = FancyBboxPatch((x - half_w + 0.02, y - half_h + 0.02), 2 * half_w - 0.04, 2 * half_h - 0.04,
                                   boxstyle="round,pad=0.02", facecolor=spec["node_color"],
                                   edgecolor="#333333", linewidth=1.2)
        else:
            patch = Ellipse((x, y), 2 * half_w, 2 * half_h, facecolor=spec["node_color"],
                            edgecolor="#333333", linewidth=1.2)
        ax.add_patch(patch)
        size = font if len(node["label"]) <= 6 else font - 1.5
        ax.text(x, y, node["label"], ha="center", va="center", fontsize=size)
    for a, b in spec["edges"]:
        (xa, ya), (xb, yb) = spec["nodes"][a]["pos"], spec["nodes"][b]["pos"]
        dx, dy = xb - xa, yb - ya
        if spec["shape"] == "box":
            t = min(half_w / abs(dx) if dx else math.inf, half_h / abs(dy) if dy else math.inf)
        else:
            t = 1.0 / math.hypot(dx / half_w, dy / half_h)
        t = min(t + 0.02 / math.hypot(dx, dy), 0.45)
        start = (xa + t * dx, ya + t * dy)
        end = (xb - t * dx, yb - t * dy)
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=11, linewidth=1.4,
                                     color="#222222", shrinkA=0, shrinkB=0))
    if spec.get("title"):
        fig.text(0.5, 0.95, spec["title"], ha="center", va="center", fontsize=font + 2)


def _draw_equation(fig, spec: Spec) -> None:
    count = len(spec["equations"])
    font = spec["style"]["font"]
    left = spec["align"] == "left"
    for i, eq in enumerate(spec["equations"]):
        y = 0.5 + (count - 1 - 2 * i) * 0.17
        x = 0.06 if left else (0.45 if eq["number"] is not None else 0.5)
        fig.text(x, y, f"${eq['tex']}$", ha="left" if left else "center", va="center", fontsize=font)
        if eq["number"] is not None:
            fig.text(0.95, y, f"({eq['number']})", ha="right", va="center", fontsize=font - 4)


DRAWERS = {
    "Graph Plot": _draw_graph_plot,
    "Scatterplot": _draw_scatterplot,
    "Bar Chart": _draw_bar_chart,
    "Node Diagram": _draw_node_diagram,
    "Equation": _draw_equation,
}


def draw_figure(spec: Spec, image_size: int):
    """The drawn `matplotlib.figure.Figure` of `spec`, on its own Agg canvas (no pyplot).

    It is drawn with matplotlib's default settings whatever the caller's rcParams or style, so
    the corpus looks the same everywhere; the caller's settings are restored afterwards."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        fig = Figure(figsize=(FIGURE_INCHES, FIGURE_INCHES), dpi=image_size / FIGURE_INCHES, facecolor="white")
        FigureCanvasAgg(fig)
        DRAWERS[spec["figure_type"]](fig, spec)
        fig.canvas.draw()
    return fig


def drawn_text(spec: Spec) -> list[str]:
    """Every string the figure draws, in drawing order: title, axis labels, tick labels, legend
    entries, bar value labels, node labels, equations and their numbers (computed from the spec)."""
    kind = spec["figure_type"]
    texts: list[str] = []
    if kind == "Equation":
        for eq in spec["equations"]:
            texts.append(f"${eq['tex']}$")
            if eq["number"] is not None:
                texts.append(f"({eq['number']})")
        return texts
    if kind == "Node Diagram":
        texts += [node["label"] for node in spec["nodes"]]
        if spec.get("title"):
            texts.append(spec["title"])
        return texts
    if spec.get("title"):
        texts.append(spec["title"])
    if kind == "Bar Chart":
        axis = spec["value_axis"]
        if spec["orientation"] == "vertical":
            texts += list(spec["categories"]) + [axis["label"]] + axis["tick_labels"]
        else:
            texts += [axis["label"]] + axis["tick_labels"] + list(spec["categories"])
        if spec["value_labels"]:
            texts += [fmt(v) for v in spec["series"][0]["values"]]
    else:
        for key in ("x", "y"):
            texts += [spec[key]["label"]] + spec[key]["tick_labels"]
    if spec.get("legend"):
        texts += [s["name"] for s in spec["series"]]
    return texts


def render_png(spec: Spec, image_size: int) -> bytes:
    """The figure as an RGB PNG, `image_size` pixels square, with no metadata (so the bytes
    depend only on the spec, the size and the matplotlib version)."""
    from PIL import Image

    fig = draw_figure(spec, image_size)
    rgba = np.asarray(fig.canvas.buffer_rgba())
    image = Image.fromarray(np.ascontiguousarray(rgba[..., :3]), mode="RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
