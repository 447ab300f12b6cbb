"""What the corpus says is what the figures show: answers recomputed from the stored figure data,
OCR strings compared with the text matplotlib actually drew, images re-rendered from the data."""

from __future__ import annotations

from collections import Counter

import numpy as np
from matplotlib.text import Text

from scitune.data.corpus import drawing


def _trend(values):
    d = np.diff(values)
    if (d > 0).all():
        return "It increases."
    if (d < 0).all():
        return "It decreases."
    top = int(np.argmax(values))
    if 0 < top < len(values) - 1 and (d[:top] > 0).all() and (d[top:] < 0).all():
        return "It rises then falls."
    raise AssertionError(f"a trend question about a series with no clear trend: {values}")


def _expected_figure_answer(kind, params, spec):
    """The answer text, computed here from the figure's data (not by the corpus code)."""
    series = spec.get("series", [])
    by_name = {s["name"]: s for s in series}
    if kind == "figure_type":
        return spec["figure_type"]
    if kind in ("x_axis", "y_axis"):
        return spec[kind[0]]["name"]
    if kind == "highest_at_x":
        index = series[0]["x"].index(params["x"])
        return max(series, key=lambda s: s["y"][index])["name"]
    if kind == "trend":
        return _trend(by_name[params["series"]]["y"])
    if kind == "correlation":
        s = by_name[params["series"]]
        r = np.corrcoef(s["x"], s["y"])[0, 1]
        assert abs(r) >= 0.5 or abs(r) < 0.25, "an ambiguous correlation was asked about"
        return "a positive correlation" if r >= 0.5 else "a negative correlation" if r <= -0.5 else "no correlation"
    if kind == "highest_group":
        return max(series, key=lambda s: np.mean(s["y"]))["name"]
    if kind == "bar_count":
        return str(sum(len(s["values"]) for s in series))
    if kind == "tallest_bar":
        values = series[0]["values"]
        return spec["categories"][values.index(max(values))]
    if kind == "node_count":
        return str(len(spec["nodes"]))
    if kind == "arrow_target":
        labels = [n["label"] for n in spec["nodes"]]
        targets = [b for a, b in spec["edges"] if labels[a] == params["source"]]
        assert len(targets) == 1
        return labels[targets[0]]
    if kind == "equation_name":
        assert len(spec["equations"]) == 1
        return spec["equations"][0]["name"]
    if kind == "equation_count":
        return str(len(spec["equations"]))
    raise AssertionError(f"no check for figure question kind {kind}")


def _expected_text_answer(kind, params, problem):
    hint, choices = problem["hint"], problem["choices"]
    if kind == "speed":
        assert f"{params['distance']} m in {params['time']} s" in hint
        return f"{params['distance'] / params['time']:g} m/s"
    if kind == "density":
        assert f"{params['mass']} g and a volume of {params['volume']} cm³" in hint
        return f"{params['mass'] / params['volume']:g} g/cm³"
    if kind == "unit_compare":
        (a, unit_a), (b, unit_b) = params["a"], params["b"]
        assert f"{a} {unit_a}" in choices and f"{b} {unit_b}" in choices
        return f"{a} {unit_a}" if a * 1000 > b else f"{b} {unit_b}"
    if kind == "budget":
        assert f"has ${params['money']}" in hint and all(f"${p}" in hint for p in params["prices"])
        return "yes" if params["money"] >= sum(params["prices"]) else "no"
    if kind == "time_span":
        assert str(params["start"]) in hint and str(params["end"]) in hint
        return str(params["end"] - params["start"])
    if kind == "alphabetical":
        assert sorted(params["words"]) == sorted(choices)
        return sorted(params["words"])[0]
    if kind == "guide_words":
        assert f"{params['first']} - {params['last']}" in problem["question"]
        inside = [c for c in choices if params["first"] < c < params["last"]]
        assert len(inside) == 1
        return inside[0]
    raise AssertionError(f"no check for text question kind {kind}")


def test_every_answer_is_recomputed_from_the_figure_data(corpus):
    figures_by_index = {f["index"]: f for f in corpus.data["figures"]}
    kinds = Counter()
    for pid, problem in corpus.problems.items():
        info = corpus.data["problems"][pid]
        if info["figure"] is None:
            assert problem["image"] is None
            expected = _expected_text_answer(info["kind"], info["params"], problem)
        else:
            figure = figures_by_index[info["figure"]]
            assert figure["pid"] == pid and problem["image"] == "image.png"
            expected = _expected_figure_answer(info["kind"], info["params"], figure["spec"])
        assert problem["choices"][problem["answer"]] == expected, (pid, info, problem["choices"])
        assert problem["choices"].count(expected) == 1
        kinds[info["kind"]] += 1
    assert len(kinds) >= 10  # many kinds were exercised


def _rendered_strings(fig):
    renderer = fig.canvas.get_renderer()
    width, height = fig.canvas.get_width_height()
    strings = []
    for artist in fig.findobj(Text):
        if not artist.get_visible() or not artist.get_text():
            continue
        box = artist.get_window_extent(renderer)
        # drawn, and whole: inside the image (1 px of anti-aliasing allowed)
        assert box.x0 >= -1 and box.y0 >= -1 and box.x1 <= width + 1 and box.y1 <= height + 1, artist.get_text()
        strings.append(artist.get_text())
    return strings


def test_every_ocr_string_is_text_that_was_drawn(corpus):
    ocr = {i["file_name"]: i["ocr"] for s in ("train", "val", "test") for i in corpus.scicap[s]["images"]}
    for figure in corpus.data["figures"]:
        fig = drawing.draw_figure(figure["spec"], corpus.size)
        drawn = _rendered_strings(fig)
        assert Counter(ocr[figure["file_name"]]) == Counter(drawn), figure["file_name"]


def test_images_are_the_stored_figure_data_rendered(corpus):
    for figure in corpus.data["figures"][:8]:
        png = drawing.render_png(figure["spec"], corpus.size)
        assert (corpus.root / "scicap" / "images" / figure["file_name"]).read_bytes() == png
        split, pid = figure["split"], figure["pid"]
        assert (corpus.root / "scienceqa" / "images" / split / pid / "image.png").read_bytes() == png


def test_rendering_ignores_and_keeps_the_callers_matplotlib_settings(corpus):
    import matplotlib

    figure = next(f for f in corpus.data["figures"] if f["spec"]["figure_type"] == "Graph Plot")
    stored = (corpus.root / "scicap" / "images" / figure["file_name"]).read_bytes()
    with matplotlib.rc_context({"lines.linewidth": 9.0, "font.size": 30.0, "axes.facecolor": "black"}):
        assert drawing.render_png(figure["spec"], corpus.size) == stored
        assert matplotlib.rcParams["lines.linewidth"] == 9.0 and matplotlib.rcParams["axes.facecolor"] == "black"


def test_every_scienceqa_category_occurs(corpus):
    counts = Counter()
    for problem in corpus.problems.values():
        counts[{"natural science": "NAT", "social science": "SOC", "language science": "LAN"}[problem["subject"]]] += 1
        has_hint, has_image = problem["hint"] != "", problem["image"] is not None
        counts["TXT"] += has_hint
        counts["IMG"] += has_image
        counts["NO"] += not has_hint and not has_image
        counts["G1-6" if int(problem["grade"][5:]) <= 6 else "G7-12"] += 1
        if not has_image:
            counts["text-only with hint" if has_hint else "text-only without hint"] += 1
        counts["image with hint"] += has_image and has_hint
    for category in ("NAT", "SOC", "LAN", "TXT", "IMG", "NO", "G1-6", "G7-12", "text-only with hint",
                     "text-only without hint", "image with hint"):
        assert counts[category] > 0, category
    assert {k: counts[k] for k in corpus.manifest["counts"]["scienceqa_category"]} == corpus.manifest["counts"]["scienceqa_category"]


def test_figure_types_look_different(corpus):
    """Cheap visual sanity: equations and diagrams have no axes, so far fewer dark pixels along
    the left frame than plots and bar charts."""
    from PIL import Image

    def left_frame_darkness(path):
        pixels = np.asarray(Image.open(path).convert("L"), dtype=float) / 255
        return (pixels[:, : pixels.shape[1] // 3] < 0.5).mean(axis=0).max()

    by_type = {}
    for figure in corpus.data["figures"]:
        by_type.setdefault(figure["spec"]["figure_type"], []).append(
            left_frame_darkness(corpus.root / "scicap" / "images" / figure["file_name"]))
    framed = min(min(by_type[t]) for t in ("Graph Plot", "Scatterplot"))
    unframed = max(max(by_type[t]) for t in ("Node Diagram", "Equation"))
    assert framed > unframed
