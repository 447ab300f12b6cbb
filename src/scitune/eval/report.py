"""The demo's HTML report: one self-contained file (images inlined as base64 data).

This module computes the values (tables as header + rows of text, figures as base64 PNG); the
page itself is the Jinja2 template `templates/report.html.jinja` (package data), rendered with
autoescaping on, so a prompt or an answer that contains HTML shows as text.
"""

from __future__ import annotations

import base64
import io
import mimetypes
from pathlib import Path
from typing import Any

import jinja2

from scitune.errors import ScituneError
from scitune.io.atomic import write_text
from scitune.io.read import read_bytes

CATEGORIES = ("NAT", "SOC", "LAN", "TXT", "IMG", "NO", "G1-6", "G7-12", "Avg")
RUNS = (("with_align", "stage 1 + stage 2 (SciTune)"), ("without_align", "stage 2 only (ablation)"))
TEMPLATE = "report.html.jinja"
MAX_EXAMPLE_IMAGE_BYTES = 16 * 1024**2  # one example figure inlined into the page


def _fmt(value, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _table(header: list[str], rows: list[list[Any]]) -> dict[str, list]:
    return {"header": list(header), "rows": [[str(cell) for cell in row] for row in rows]}


def _image(data: bytes, mime: str, alt: str) -> dict[str, str]:
    return {"data": base64.b64encode(data).decode("ascii"), "mime": mime, "alt": alt}


def _figure_png(figure, alt: str) -> dict[str, str]:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return _image(buffer.getvalue(), "image/png", alt)


def image_file(path: str | Path) -> dict[str, str]:
    """An image file inlined: its bytes (bounded) and its type from the file name."""
    mime = mimetypes.guess_type(str(path))[0]
    if mime is None or not mime.startswith("image/"):
        raise ScituneError(f"{path}: not an image file name (expected .png, .jpg, ...)")
    return _image(read_bytes(path, max_bytes=MAX_EXAMPLE_IMAGE_BYTES, what="example image"), mime, Path(path).name)


def loss_curves(curves: dict[str, list[float]]) -> dict[str, str] | None:
    """One panel per curve that has values, side by side; None when no curve has any."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    shown = {k: v for k, v in curves.items() if v}
    if not shown:
        return None
    figure = Figure(figsize=(4.0 * len(shown), 3.0))
    FigureCanvasAgg(figure)
    for i, (name, values) in enumerate(shown.items(), start=1):
        axes = figure.add_subplot(1, len(shown), i)
        axes.plot(range(1, len(values) + 1), values, linewidth=1.2)
        axes.set_title(name)
        axes.set_xlabel("step")
        axes.set_ylabel("loss")
        axes.grid(alpha=0.3)
    figure.tight_layout()
    return _figure_png(figure, "loss curves: " + ", ".join(shown))


def confusion(matrix_json: dict, title: str) -> dict[str, str]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4.6, 3.8))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    matrix = matrix_json["matrix"]
    axes.imshow(matrix, cmap="Blues")
    axes.set_xticks(range(len(matrix_json["predictions"])), labels=matrix_json["predictions"], rotation=45, ha="right")
    axes.set_yticks(range(len(matrix_json["references"])), labels=matrix_json["references"])
    for r, row in enumerate(matrix):
        for c, value in enumerate(row):
            if value:
                axes.text(c, r, str(value), ha="center", va="center", fontsize=8)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    figure.tight_layout()
    return _figure_png(figure, f"confusion matrix: {title}")


def ablation_rows(summary: dict[str, Any]) -> list[tuple[str, dict[str, str]]]:
    rows = []
    for key, label in RUNS:
        m = summary[key]
        rows.append((label, {
            "ScienceQA Avg": _fmt(m["scienceqa"]["official"]["Avg"]),
            "IMG": _fmt(m["scienceqa"]["official"]["IMG"]),
            "figure type acc": _fmt(m["figure_type"]["accuracy"]),
            "figure type macro-F1": _fmt(m["figure_type"]["macro_f1"], 3),
            "BLEU-4": _fmt(m["captions"]["metrics"].get("BLEU-4"), 4),
            "ROUGE-L": _fmt(m["captions"]["metrics"].get("ROUGE-L"), 4),
        }))
    return rows


def verdict(summary: dict[str, Any]) -> str:
    """What the ablation found, in words, from the numbers (not assumed)."""
    a, b = summary["with_align"], summary["without_align"]
    parts = []
    for name, x, y in (("ScienceQA accuracy", a["scienceqa"]["official"]["Avg"], b["scienceqa"]["official"]["Avg"]),
                       ("figure-type accuracy", a["figure_type"]["accuracy"], b["figure_type"]["accuracy"]),
                       ("caption BLEU-4", 100 * a["captions"]["metrics"].get("BLEU-4", 0), 100 * b["captions"]["metrics"].get("BLEU-4", 0))):
        if x is None or y is None:
            continue
        word = "higher" if x > y else "lower" if x < y else "equal"
        parts.append(f"{name} {word} with stage 1 ({x:.2f} vs {y:.2f})")
    return "; ".join(parts) + ". One seed on a small corpus: differences of a few points are within run-to-run noise."


def _chance(summary: dict[str, Any]) -> float | None:
    kinds = summary["with_align"]["scienceqa_by_question_kind"].values()
    total = sum(k["count"] for k in kinds)
    return sum(k["chance"] * k["count"] for k in kinds) / total if total else None


def _vs_chance(vs: dict[str, Any], label: str) -> dict[str, Any]:
    return {"label": label, "correct": vs["correct"], "count": vs["count"], "p_value": f"{vs['p_value']:.2g}"}


def report_context(summary: dict[str, Any], results: dict[str, Any], curves: dict[str, list[float]]) -> dict[str, Any]:
    """Everything the template shows, as text, tables and base64 images."""
    ablation = ablation_rows(summary)
    columns = list(ablation[0][1])
    kinds = summary["with_align"]["scienceqa_by_question_kind"]
    return {
        "preset": summary["preset"],
        "seed": summary["seed"],
        "mode": "quick" if summary["quick"] else "full",
        "size": ", ".join(f"{k}={v}" for k, v in summary["size"].items()) if isinstance(summary["size"], dict) else str(summary["size"]),
        "from_scratch": summary["preset"] == "tiny",
        "ablation": _table(["run"] + columns, [[label] + [v[c] for c in columns] for label, v in ablation]),
        "verdict": verdict(summary),
        "categories": _table(["run"] + list(CATEGORIES),
                             [[label] + [_fmt(summary[key]["scienceqa"]["official"].get(c)) for c in CATEGORIES] for key, label in RUNS]),
        "chance": _fmt(_chance(summary)),
        "vs_chance": [_vs_chance(summary[key]["scienceqa_vs_chance"], label) for key, label in RUNS],
        "question_kinds": _table(
            ["question kind", "n", "chance"] + [label for _, label in RUNS],
            [[kind, v["count"], _fmt(v["chance"])] + [_fmt(summary[key]["scienceqa_by_question_kind"][kind]["accuracy"]) for key, _ in RUNS]
             for kind, v in kinds.items()],
        ),
        "loss_curves": loss_curves(curves),
        "confusions": [confusion(results[key]["confusion"], label) for key, label in RUNS],
        "examples": [
            {"image": image_file(ex["image"]), "question": ex["prompt"].replace("<image>", "").strip(),
             "answer": ex["answer"], "reference": ex["reference"]}
            for ex in results["with_align"]["examples"]
        ],
        "timings": _table(["step", "seconds"], [[k, f"{v:.1f}"] for k, v in summary["timings_s"].items()]),
        "counts": _table(["file", "samples"], [[k, v] for k, v in summary["counts"].items()]),
    }


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("scitune.eval", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def render_report(summary: dict[str, Any], results: dict[str, Any], curves: dict[str, list[float]]) -> str:
    return _environment().get_template(TEMPLATE).render(report_context(summary, results, curves))


def write_report(path: Path, summary: dict[str, Any], results: dict[str, Any], curves: dict[str, list[float]]) -> Path:
    """Renders the report and writes it atomically to `path`."""
    return write_text(path, render_report(summary, results, curves))
