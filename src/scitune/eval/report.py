"""The demo's HTML report: one self-contained file (images inlined as PNG data)."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

CATEGORIES = ("NAT", "SOC", "LAN", "TXT", "IMG", "NO", "G1-6", "G7-12", "Avg")
RUNS = (("with_align", "stage 1 + stage 2 (SciTune)"), ("without_align", "stage 2 only (ablation)"))


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()


def _img_file(path: str | Path, width: int = 160) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" width="{width}">'


def _fmt(value, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def loss_curves(curves: dict[str, list[float]]) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    shown = {k: v for k, v in curves.items() if v}
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
    return f'<img src="data:image/png;base64,{_png(figure)}">'


def confusion(matrix_json: dict, title: str) -> str:
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
    return f'<img src="data:image/png;base64,{_png(figure)}">'


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


def _chance(summary: dict[str, Any]) -> float:
    kinds = summary["with_align"]["scienceqa_by_question_kind"].values()
    return sum(k["chance"] * k["count"] for k in kinds) / sum(k["count"] for k in kinds)


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def write_report(path: Path, summary: dict[str, Any], results: dict[str, Any], curves: dict[str, list[float]]) -> Path:
    ablation = ablation_rows(summary)
    columns = list(ablation[0][1])
    parts = [
        "<!doctype html><meta charset='utf-8'><title>scitune demo report</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}"
        "th{background:#eef}td:first-child{text-align:left}.ex{display:inline-block;width:250px;vertical-align:top;margin:6px;font-size:12px}"
        "</style>",
        "<h1>scitune demo</h1>",
        f"<p>Preset <b>{html.escape(summary['preset'])}</b>, seed {summary['seed']}, "
        f"{'quick' if summary['quick'] else 'full'} size: {html.escape(str(summary['size']))}. "
        "Everything ran on the CPU from the built-in corpus; nothing was downloaded. "
        + ("The tiny preset starts from random weights (no pretrained model can be downloaded here): "
           "its LM was first trained on the corpus text." if summary["preset"] == "tiny" else "")
        + "</p>",
        "<h2>The ablation: does stage 1 (concept alignment) help?</h2>",
        _table(["run"] + columns, [[label] + [v[c] for c in columns] for label, v in ablation]),
        f"<p>{html.escape(verdict(summary))}</p>",
        "<h2>ScienceQA-style accuracy by category (official definitions)</h2>",
        _table(["run"] + list(CATEGORIES),
               [[label] + [_fmt(summary[key]["scienceqa"]["official"].get(c)) for c in CATEGORIES] for key, label in RUNS]),
        f"<p>Chance (mean over the test questions): {_fmt(_chance(summary))}; figure type: 20.00 (five balanced types). "
        + " ".join(f"{html.escape(label)}: {summary[key]['scienceqa_vs_chance']['correct']}/{summary[key]['scienceqa_vs_chance']['count']} "
                   f"right, P(as many by guessing) = {summary[key]['scienceqa_vs_chance']['p_value']:.2g}." for key, label in RUNS)
        + "</p>",
        "<h3>By question kind, with chance</h3>",
        _table(["question kind", "n", "chance"] + [label for _, label in RUNS], [
            [kind, str(v["count"]), _fmt(v["chance"])] + [_fmt(summary[key]["scienceqa_by_question_kind"][kind]["accuracy"]) for key, _ in RUNS]
            for kind, v in summary["with_align"]["scienceqa_by_question_kind"].items()
        ]),
        "<h2>Loss curves</h2>", loss_curves(curves),
        "<h2>Figure type: confusion matrices (test split)</h2>",
        "".join(confusion(results[key]["confusion"], label) for key, label in RUNS),
        "<h2>Test figures and the model's answers (stage 1 + stage 2)</h2>",
    ]
    for ex in results["with_align"]["examples"]:
        parts.append(
            f"<div class='ex'>{_img_file(ex['image'])}<br><b>Q:</b> {html.escape(ex['prompt'].replace('<image>', '').strip())}"
            f"<br><b>model:</b> {html.escape(ex['answer'])}<br><b>reference:</b> {html.escape(ex['reference'])}</div>"
        )
    parts += [
        "<h2>Timings (seconds)</h2>",
        _table(["step", "seconds"], [[k, f"{v:.1f}"] for k, v in summary["timings_s"].items()]),
        "<h2>Data</h2>", _table(["file", "samples"], [[k, str(v)] for k, v in summary["counts"].items()]),
    ]
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
