"""From the grid's per-item outcomes to the ablation's answer: per (preset, fraction, metric),
each arm's mean over seeds with its t interval, and the paired difference (with minus without
stage 1) on the same test items over the seeds both arms finished: a two-level paired bootstrap
(seeds, then items) interval and p-value for every metric, and McNemar's exact test on the
right/wrong ones (pooled over seeds). A verdict names a direction only when the bootstrap
interval excludes 0."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scitune.experiment.grid import Cell
from scitune.experiment.outcomes import bleu4
from scitune.experiment.stats import mcnemar_exact, mean_interval, paired_bootstrap


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    binary: bool  # right/wrong per item (McNemar applies); else a caption score
    scale: str  # "points" (0-100) or "[0, 1]"


METRICS = (
    Metric("scienceqa", "ScienceQA accuracy", True, "points"),
    Metric("scienceqa_img", "ScienceQA IMG accuracy", True, "points"),
    Metric("figure_type", "figure-type accuracy", True, "points"),
    Metric("bleu4", "caption BLEU-4", False, "[0, 1]"),
    Metric("rouge_l", "caption ROUGE-L", False, "[0, 1]"),
)


def item_values(metric: Metric, outcomes: Mapping[str, Any]) -> dict[str, Any]:
    """id -> the item's value for `metric` (None: the metric is missing from these outcomes)."""
    if metric.key == "scienceqa":
        return {k: v["correct"] for k, v in outcomes["scienceqa"].items()}
    if metric.key == "scienceqa_img":
        return {k: v["correct"] for k, v in outcomes["scienceqa"].items() if v["image"]}
    if metric.key == "figure_type":
        return dict(outcomes["figure_type"])
    if metric.key == "bleu4":
        return {k: v["bleu"] for k, v in outcomes["captions"].items()}
    if metric.key == "rouge_l":
        return {k: v["rouge_l"] for k, v in outcomes["captions"].items() if v["rouge_l"] is not None}
    raise ValueError(f"unknown metric {metric.key!r}")


def score(metric: Metric, values: Sequence[Any], convention: str = "coco") -> float:
    """The metric over a list of item values (a resample may repeat items)."""
    if metric.binary:
        return 100.0 * sum(bool(v) for v in values) / len(values)
    if metric.key == "bleu4":
        return bleu4(values, convention)
    return sum(values) / len(values)


def chance(metric: Metric, outcomes: Mapping[str, Any]) -> float | None:
    """Accuracy by uniform guessing (points), for the accuracy metrics."""
    if metric.key in ("scienceqa", "scienceqa_img"):
        items = [v for v in outcomes["scienceqa"].values() if metric.key == "scienceqa" or v["image"]]
        return 100.0 * sum(v["chance"] for v in items) / len(items) if items else None
    if metric.key == "figure_type":
        return 100.0 * outcomes["figure_type_chance"]
    return None


def compare(metric: Metric, with_runs: Sequence[Mapping], without_runs: Sequence[Mapping], resamples: int = 2000,
            seed: int = 0) -> dict[str, Any] | None:
    """One metric, both arms, seed-paired outcome dicts (with_runs[i] and without_runs[i] share
    a seed). None when the arms share no test item for it."""
    with_values = [item_values(metric, o) for o in with_runs]
    without_values = [item_values(metric, o) for o in without_runs]
    ids = sorted(set.intersection(*(set(v) for v in with_values + without_values)))
    if not ids:
        return None
    convention = with_runs[0].get("bleu_convention", "coco")
    a = [[v[i] for i in ids] for v in with_values]
    b = [[v[i] for i in ids] for v in without_values]

    def difference(seeds: Sequence[int], indices: Sequence[int]) -> float:
        seeds, indices = list(seeds), list(indices)
        mean_with = sum(score(metric, [a[s][i] for i in indices], convention) for s in seeds) / len(seeds)
        mean_without = sum(score(metric, [b[s][i] for i in indices], convention) for s in seeds) / len(seeds)
        return mean_with - mean_without

    bounds = (0.0, 100.0) if metric.scale == "points" else (0.0, 1.0)
    per_seed = {"with": [score(metric, run, convention) for run in a], "without": [score(metric, run, convention) for run in b]}
    result = {
        "items": len(ids), "seeds": len(a), "per_seed": per_seed,
        "with": mean_interval(per_seed["with"], bounds=bounds).to_json(),
        "without": mean_interval(per_seed["without"], bounds=bounds).to_json(),
        "difference": paired_bootstrap(len(ids), difference, seeds=len(a), resamples=resamples, seed=seed).to_json(),
        "chance": chance(metric, with_runs[0]),
    }
    if metric.binary:
        result["mcnemar"] = mcnemar_exact([x for run in a for x in run], [x for run in b for x in run])
    return result


def analyse(results: Mapping[Cell, Mapping[str, Any]], resamples: int = 2000) -> list[dict[str, Any]]:
    """One row per (preset, fraction, metric) with at least one seed done in both arms."""
    rows = []
    keys = sorted({(c.preset, c.fraction) for c in results})
    for preset, fraction in keys:
        seeds = sorted(c.seed for c in results if c.preset == preset and c.fraction == fraction and c.with_align
                       and Cell(preset, c.seed, fraction, False) in results)
        if not seeds:
            continue
        with_runs = [results[Cell(preset, s, fraction, True)]["outcomes"] for s in seeds]
        without_runs = [results[Cell(preset, s, fraction, False)]["outcomes"] for s in seeds]
        for metric in METRICS:
            compared = compare(metric, with_runs, without_runs, resamples)
            if compared is not None:
                rows.append({"preset": preset, "fraction": fraction, "metric": metric.key, "label": metric.label,
                             "scale": metric.scale, "seed_list": seeds, **compared})
    return rows


def verdict(row: Mapping[str, Any]) -> str:
    """What one row shows, in words the interval supports: a direction only when the 95%
    interval of the paired difference excludes 0."""
    d = {k: round(v, 6) + 0.0 for k, v in row["difference"].items()}  # no "-0.00" from float noise
    unit = " points" if row["scale"] == "points" else ""
    digits = 2 if row["scale"] == "points" else 4
    where = f"{row['label']}, {row['preset']}, {100 * row['fraction']:g}% of stage-2 data"
    interval = f"{d['difference']:+.{digits}f}{unit}, 95% CI {d['low']:+.{digits}f} to {d['high']:+.{digits}f}, p = {d['p_value']:.2g}"
    seeds = f"{row['seeds']} seed{'s' if row['seeds'] > 1 else ''} x {row['items']} items"
    if d["low"] > 0:
        return f"{where}: stage 1 helps ({interval}; {seeds})"
    if d["high"] < 0:
        return f"{where}: stage 1 hurts ({interval}; {seeds})"
    return f"{where}: no difference the data support ({interval}; {seeds})"
