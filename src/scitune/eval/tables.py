"""Plain-text tables for the terminal. A missing value (None) prints as "n/a", never 0."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def format_value(value, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def format_table(rows: Sequence[tuple[str, Mapping]], columns: Sequence[str], digits: int = 2) -> str:
    """One line per (label, values) row, one column per key in `columns`, right-aligned."""
    cells = [[label] + [format_value(values.get(c), digits) for c in columns] for label, values in rows]
    header = [""] + list(columns)
    widths = [max(len(row[i]) for row in [header] + cells) for i in range(len(header))]
    lines = []
    for row in [header] + cells:
        first = row[0].ljust(widths[0])
        rest = [cell.rjust(width) for cell, width in zip(row[1:], widths[1:])]
        lines.append("  ".join([first] + rest).rstrip())
    return "\n".join(lines)


def format_pairs(values: Mapping, digits: int = 4) -> str:
    """`name  value` lines, names padded to one width."""
    width = max((len(str(k)) for k in values), default=0)
    return "\n".join(f"{str(k).ljust(width)}  {format_value(v, digits)}" for k, v in values.items())
