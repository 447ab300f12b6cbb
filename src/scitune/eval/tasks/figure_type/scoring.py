"""Figure-type classification: reading a label from generated text, accuracy, macro-F1,
per-type precision and recall, and the confusion matrix (JSON and a PNG plot).

The predicted label of a generated text is the label of the label set that the text names
first (case-insensitive, whole words; at one position the longer label wins, so "Bar Chart"
beats "Chart"). A text that names no label is a failure: scored wrong, counted, and shown in
the confusion matrix's last column, "(none)". In likelihood mode the prediction is the most
likely label itself.

Per type: precision = TP / predicted as the type, recall = TP / references of the type; each is
None (printed "n/a") when its denominator is 0. F1 = 2TP / (2TP + FP + FN); macro-F1 is the mean
F1 over the types that occur among the references or the predictions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from scitune.errors import ScituneError

NONE_LABEL = "(none)"


def find_label(text: str, labels: Sequence[str]) -> str | None:
    """The label that `text` names first, or None."""
    best: tuple[int, int, str] | None = None
    for label in labels:
        match = re.search(r"(?<!\w)" + re.escape(label.lower()) + r"(?!\w)", text.lower())
        if match:
            candidate = (match.start(), -len(label), label)
            if best is None or candidate < best:
                best = candidate
    return best[2] if best else None


@dataclass
class FigureTypeScores:
    labels: list[str]
    count: int
    correct: int
    failures: list[dict] = field(default_factory=list)  # {question_id, text}
    per_type: dict[str, dict] = field(default_factory=dict)  # label -> precision, recall, f1, support
    matrix: list[list[int]] = field(default_factory=list)  # rows: reference; columns: labels + (none)

    @property
    def accuracy(self) -> float:
        return 100.0 * self.correct / self.count if self.count else 0.0

    @property
    def macro_f1(self) -> float | None:
        values = [v["f1"] for v in self.per_type.values() if v["f1"] is not None]
        return sum(values) / len(values) if values else None

    def to_json(self) -> dict:
        return {
            "count": self.count,
            "correct": self.correct,
            "parse_failures": len(self.failures),
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "per_type": self.per_type,
        }

    def confusion_json(self) -> dict:
        return {"references": list(self.labels), "predictions": list(self.labels) + [NONE_LABEL], "matrix": self.matrix}


def score_figure_types(
    references: Mapping[str, str], predictions: Mapping[str, str], labels: Sequence[str] | None = None, parse: bool = True
) -> FigureTypeScores:
    """Scores predictions (id -> generated text, or id -> label when `parse` is False) against
    references (id -> label). Labels default to the sorted reference labels. Every reference
    needs a prediction; extra predictions are an error too (they would have no reference)."""
    labels = list(labels) if labels else sorted(set(references.values()))
    unknown = sorted(set(references.values()) - set(labels))
    if unknown:
        raise ScituneError(f"figure types: reference labels outside the label set: {', '.join(unknown)}")
    missing = [k for k in references if k not in predictions]
    if missing:
        raise ScituneError(f"figure types: no prediction for {len(missing)} items (first: {', '.join(missing[:5])})")
    extra = [k for k in predictions if k not in references]
    if extra:
        raise ScituneError(f"figure types: no reference for {len(extra)} predictions (first: {', '.join(extra[:5])})")
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * (len(labels) + 1) for _ in labels]
    scores = FigureTypeScores(labels=labels, count=len(references), correct=0, matrix=matrix)
    for key, reference in references.items():
        value = predictions[key]
        predicted = find_label(value, labels) if parse else (value if value in index else None)
        if predicted is None:
            scores.failures.append({"question_id": key, "text": value})
        matrix[index[reference]][index[predicted] if predicted is not None else len(labels)] += 1
        scores.correct += predicted == reference
    for i, label in enumerate(labels):
        tp = matrix[i][i]
        support = sum(matrix[i])
        predicted_as = sum(row[i] for row in matrix)
        fp, fn = predicted_as - tp, support - tp
        scores.per_type[label] = {
            "precision": 100.0 * tp / predicted_as if predicted_as else None,
            "recall": 100.0 * tp / support if support else None,
            "f1": 100.0 * 2 * tp / (2 * tp + fp + fn) if (support or predicted_as) else None,
            "support": support,
        }
    return scores


def write_confusion(scores: FigureTypeScores, out_dir: str | Path) -> tuple[Path, Path]:
    """Writes confusion_matrix.json and confusion_matrix.png; returns their paths."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "confusion_matrix.json"
    json_path.write_text(json.dumps(scores.confusion_json(), indent=2) + "\n", encoding="utf-8")

    columns = scores.labels + [NONE_LABEL]
    size = max(4.0, 0.6 * len(columns) + 2.0)
    figure = Figure(figsize=(size, size * 0.9))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    image = axes.imshow(scores.matrix, cmap="Blues", aspect="auto")
    figure.colorbar(image, ax=axes)
    axes.set_xticks(range(len(columns)), labels=columns, rotation=45, ha="right")
    axes.set_yticks(range(len(scores.labels)), labels=scores.labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("reference")
    axes.set_title(f"Figure type: accuracy {scores.accuracy:.2f}%")
    peak = max((max(row) for row in scores.matrix), default=0)
    for r, row in enumerate(scores.matrix):
        for c, value in enumerate(row):
            axes.text(c, r, str(value), ha="center", va="center", color="white" if value > peak / 2 else "black")
    figure.tight_layout()
    png_path = out_dir / "confusion_matrix.png"
    figure.savefig(png_path, dpi=100)
    return json_path, png_path
