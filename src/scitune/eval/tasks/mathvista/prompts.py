"""The MathVista authors' prompt for a problem: their hint per answer type, the question (with its
unit) and the lettered choices; the figure goes first, as `<image>`, in `task.py`."""

from __future__ import annotations

from collections.abc import Mapping

from scitune.data.sample import OPTION_LETTERS

# The authors' hint for each kind of answer (question type, answer type, precision).
HINTS = {
    ("multi_choice", "text", None): "Please answer the question and provide the correct option letter, e.g., A, B, C, D, at the end.",
    ("free_form", "integer", None): "Please answer the question requiring an integer answer and provide the final value, e.g., 1, 2, 3, at the end.",
    ("free_form", "float", 1): "Please answer the question requiring a floating-point number with one decimal place and provide the final value, e.g., 1.2, 1.3, 1.4, at the end.",
    ("free_form", "float", 2): "Please answer the question requiring a floating-point number with two decimal places and provide the final value, e.g., 1.23, 1.34, 1.45, at the end.",
    ("free_form", "list", None): "Please answer the question requiring a Python list as an answer and provide the final list, e.g., [1, 2, 3], [1.2, 1.3, 1.4], at the end.",
}


def build_query(record: Mapping) -> str:
    """The authors' prompt for one problem record (what their output files store as `query`)."""
    precision = record.get("precision") if record.get("answer_type") == "float" else None
    hint = HINTS[(record["question_type"], record["answer_type"], int(precision) if precision is not None else None)]
    question = record["question"] + (f" (Unit: {record['unit']})" if record.get("unit") else "")
    lines = [f"Hint: {hint}", f"Question: {question}"]
    if record.get("choices"):
        lines.append("Choices:")
        lines += [f"({OPTION_LETTERS[i]}) {choice}" for i, choice in enumerate(record["choices"])]
    return "\n".join(lines)
