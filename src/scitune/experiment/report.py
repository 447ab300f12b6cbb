"""The ablation's outputs: the table and verdicts (terminal and `summary.json`), the plot
(`ablation.png`: each metric against the stage-2 data fraction, one line per arm with its seed
interval as a band, chance dashed) and a self-contained `report.html` holding both."""

from __future__ import annotations

import base64
import io
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2

from scitune.eval.tables import format_table
from scitune.experiment.analysis import METRICS, analyse, verdict
from scitune.experiment.grid import Cell, Plan
from scitune.io.atomic import write_bytes, write_json, write_text

PAGE = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string("""<!doctype html>
<html><head><meta charset="utf-8"><title>scitune ablation: does stage 1 help?</title>
<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child{text-align:left}</style></head><body>
<h1>Does stage 1 help?</h1>
<p>{{ plan }}</p><p>{{ done }}</p>
<img alt="each metric against the stage-2 data fraction, with and without stage 1" src="data:image/png;base64,{{ png }}">
<h2>Table</h2>
<p>Mean over seeds [95% t interval over seeds]; difference = with minus without stage 1 on the same test items,
pooled over seeds, with its 95% paired-bootstrap interval and p-value; McNemar: exact test on the items right in one arm only.</p>
<table><tr>{% for h in header %}<th>{{ h }}</th>{% endfor %}</tr>
{% for row in rows %}<tr>{% for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>{% endfor %}</table>
<h2>What it shows</h2><ul>{% for v in verdicts %}<li>{{ v }}</li>{% endfor %}</ul>
</body></html>
""")


def _interval(i: Mapping[str, Any], digits: int) -> str:
    if i["low"] is None:
        return f"{i['mean']:.{digits}f}"
    return f"{i['mean']:.{digits}f} [{i['low']:.{digits}f}, {i['high']:.{digits}f}]"


COLUMNS = ("preset", "fraction", "metric", "with stage 1", "without", "difference [95% CI]", "p", "McNemar p", "chance")


def table_rows(rows: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    out = []
    for row in rows:
        digits = 2 if row["scale"] == "points" else 4
        d = {k: round(v, 6) + 0.0 for k, v in row["difference"].items()}  # no "-0.00" from float noise
        out.append([
            row["preset"], f"{row['fraction']:g}", row["label"], _interval(row["with"], digits), _interval(row["without"], digits),
            f"{d['difference']:+.{digits}f} [{d['low']:+.{digits}f}, {d['high']:+.{digits}f}]", f"{d['p_value']:.2g}",
            f"{row['mcnemar']['p_value']:.2g}" if "mcnemar" in row else "",
            f"{row['chance']:.2f}" if row["chance"] is not None else "",
        ])
    return out


def plot_png(rows: Sequence[Mapping[str, Any]]) -> bytes:
    """One panel per metric: mean against fraction per (preset, arm), seed interval as a band."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    metrics = [m for m in METRICS if any(r["metric"] == m.key for r in rows)]
    columns = min(3, len(metrics))
    lines = -(-len(metrics) // columns)
    figure = Figure(figsize=(4.4 * columns, 3.6 * lines))
    FigureCanvasAgg(figure)
    presets = sorted({r["preset"] for r in rows})
    for n, metric in enumerate(metrics, start=1):
        axes = figure.add_subplot(lines, columns, n)
        for preset in presets:
            mine = sorted((r for r in rows if r["metric"] == metric.key and r["preset"] == preset), key=lambda r: r["fraction"])
            x = [r["fraction"] for r in mine]
            for arm, color in (("with", "tab:blue"), ("without", "tab:orange")):
                label = f"{'with' if arm == 'with' else 'without'} stage 1" + (f" ({preset})" if len(presets) > 1 else "")
                style = "-" if preset == presets[0] else "--"
                y = [r[arm]["mean"] for r in mine]
                axes.plot(x, y, style, marker="o", color=color, label=label)
                if all(r[arm]["low"] is not None for r in mine):
                    axes.fill_between(x, [r[arm]["low"] for r in mine], [r[arm]["high"] for r in mine], color=color, alpha=0.15)
            chance = next((r["chance"] for r in mine if r["chance"] is not None), None)
            if chance is not None and preset == presets[0]:
                axes.axhline(chance, color="gray", linestyle=":", label="chance")
        axes.set_xscale("log")
        fractions = sorted({r["fraction"] for r in rows})
        axes.set_xticks(fractions, labels=[f"{100 * f:g}%" for f in fractions])
        axes.minorticks_off()
        axes.set_xlabel("stage-2 training data")
        axes.set_title(metric.label)
        axes.grid(alpha=0.3)
        if n == 1:
            axes.legend(fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def _commit() -> str | None:
    try:
        found = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10,
                               cwd=Path(__file__).parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return found.stdout.strip() or None if found.returncode == 0 else None


def write_outputs(root: Path, plan: Plan, results: Mapping[Cell, Mapping[str, Any]], resamples: int = 2000,
                  seconds: float | None = None) -> str:
    """summary.json, ablation.png and report.html in `root`; returns the terminal text."""
    rows = analyse(results, resamples)
    verdicts = [verdict(r) for r in rows]
    cells = len(plan.cells())
    done = (f"{len(results)} of {cells} cells done; cells' training + evaluation time "
            f"{sum(r.get('seconds', 0) for r in results.values()) / 60:.1f} min"
            + (f"; this command {seconds / 60:.1f} min" if seconds is not None else ""))
    described = (f"presets {', '.join(plan.presets)}; seeds {', '.join(map(str, plan.seeds))}; stage-2 fractions "
                 f"{', '.join(f'{f:g}' for f in plan.fractions)}" + ("" if plan.user_data else f"; {plan.size.figures} figures")
                 + f"; data seed {plan.data_seed}"
                 + (f"; corpus {plan.corpus}" if plan.corpus else "")
                 + (f"; recipes {', '.join(plan.recipes)}" if plan.recipes else "")
                 + (f"; stage-1 data {plan.user_data.stage1}, stage-2 data {plan.user_data.stage2}" if plan.user_data else "")
                 + f"; report written at scitune commit {_commit() or 'unknown'}")
    write_json(root / "summary.json", {"plan": plan.identity() | {"presets": plan.presets, "seeds": plan.seeds,
                                                                  "fractions": plan.fractions},
                                       "rows": rows, "verdicts": verdicts, "done": done, "commit": _commit()})
    header = list(COLUMNS)
    body = table_rows(rows)
    png = plot_png(rows) if rows else None
    if png is not None:
        write_bytes(root / "ablation.png", png)
    write_text(root / "report.html", PAGE.render(plan=described, done=done, png=base64.b64encode(png or b"").decode("ascii"),
                                                 header=header, rows=body, verdicts=verdicts))
    text = format_table([(" | ".join(r[:3]), dict(zip(header[3:], r[3:]))) for r in body], header[3:])
    return "\n".join([described, done, "", text, "", *verdicts])
