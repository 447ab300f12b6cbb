"""Drawing a corpus figure's spec (scitune.data.corpus.figures) with matplotlib, and the text
it draws.

Rendering uses `matplotlib.figure.Figure` with its own `FigureCanvasAgg` (no pyplot, no global
matplotlib state), so it is safe to call from a program that uses matplotlib itself. Figures are
laid out on a fixed 2.4-inch square and rendered at `dpi = image_size / 2.4`, so the layout is the
same at every image size.
"""

from __future__ import annotations

import io
import math

import numpy as np

from scitune.data.corpus.figures import FIGURE_INCHES, X_TICK_CHARS, Spec, fmt



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


def _finish_xy(fig, ax, spec: Spec) -> None:
    """Axes, frame and margins of a plot with an x and a y axis (graph plot, scatterplot)."""
    font = spec["style"]["font"]
    _apply_axis(ax, "x", spec["x"], font)
    _apply_axis(ax, "y", spec["y"], font)
    _frame(ax, spec)
    _margins(fig, spec)


def _draw_graph_plot(fig, spec: Spec) -> None:
    ax = fig.add_subplot()
    for s in spec["series"]:
        kwargs = dict(color=s["color"], linestyle=s["linestyle"], linewidth=2.6, label=s["name"],
                      marker=s["marker"] or None, markersize=3.5)
        if "yerr" in s:
            ax.errorbar(s["x"], s["y"], yerr=s["yerr"], capsize=2, elinewidth=0.8, **kwargs)
        else:
            ax.plot(s["x"], s["y"], **kwargs)
    _finish_xy(fig, ax, spec)


def _draw_scatterplot(fig, spec: Spec) -> None:
    ax = fig.add_subplot()
    for s in spec["series"]:
        ax.scatter(s["x"], s["y"], s=20, color=s["color"], marker=s["marker"], label=s["name"],
                   linewidths=0)
    _finish_xy(fig, ax, spec)


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
