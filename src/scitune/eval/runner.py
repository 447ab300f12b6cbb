"""The one evaluation runner: a task's items -> batched generation or option likelihood
(`Engine`) -> prediction rows -> the task's metrics, written as predictions JSONL and metrics
JSON under one folder per mode. The CLI, the demo and the benchmarks call it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from scitune.errors import ScituneError
from scitune.inference import Engine, EvalItem
from scitune.eval.predictions import write_predictions
from scitune.io.atomic import write_json

MODES = ("generate", "likelihood")


class Task(Protocol):
    """An evaluation task (one folder under `scitune/eval/tasks/`). `summary(result, label)`: the
    terminal table, its rows labelled with `label` (the mode, or "" for a predictions file)."""

    name: str
    modes: tuple[str, ...]

    def items(self, mode: str) -> list[EvalItem]: ...

    def score(self, rows: list[dict], mode: str) -> Any: ...

    def metrics(self, result: Any) -> dict: ...

    def failures(self, result: Any) -> list[dict]: ...

    def write_extra(self, result: Any, folder: Path) -> None: ...

    def summary(self, result: Any, label: str = "") -> str: ...


def parse_modes(value: str, allowed: Sequence[str] = MODES) -> list[str]:
    """`generate`, `likelihood` or `generate,likelihood` -> the list (duplicates dropped)."""
    modes = [m.strip() for m in value.split(",") if m.strip()]
    bad = [m for m in modes if m not in allowed]
    if not modes or bad:
        raise ScituneError(f"--mode: expected {' or '.join(allowed)} (comma-separated), got {value!r}")
    return list(dict.fromkeys(modes))


def predict(
    engine: Engine, items: Sequence[EvalItem], mode: str, batch_size: int = 8, max_new_tokens: int = 64, progress: bool = False
) -> list[dict]:
    """Prediction rows for `items` in `mode`. A likelihood row's `text` is the chosen option (as
    the format writes the answer) and it carries every option's score."""
    if mode == "generate":
        texts = engine.generate(items, batch_size=batch_size, max_new_tokens=max_new_tokens, progress=progress)
        return [
            {"question_id": item.question_id, "prompt": item.prompt, "text": text, "mode": mode, **item.extra}
            for item, text in zip(items, texts)
        ]
    if mode == "likelihood":
        return [
            {
                "question_id": item.question_id, "prompt": item.prompt, "text": item.options[choice], "mode": mode,
                "choice": choice, "option_scores": scores, **item.extra,
            }
            for item, (choice, scores) in zip(items, engine.choose(items, progress=progress, batch_size=batch_size))
        ]
    raise ScituneError(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")


@dataclass
class ModeResult:
    mode: str
    rows: list[dict]
    result: Any
    folder: Path | None


def run_task(
    task: Task,
    engine: Engine,
    modes: Sequence[str],
    out: str | Path | None,
    batch_size: int = 8,
    max_new_tokens: int = 64,
    progress: bool = False,
) -> list[ModeResult]:
    """Every mode's items are built first (a bad option fails before any model time), then each
    mode is run, scored and written to `out/<mode>/` (predictions.jsonl, metrics.json,
    parse_failures.jsonl and the task's extra files)."""
    for mode in modes:
        if mode not in task.modes:
            raise ScituneError(f"{task.name}: mode {mode!r} is not available (modes: {', '.join(task.modes)})")
    items = {mode: task.items(mode) for mode in modes}
    results = []
    for mode in modes:
        rows = predict(engine, items[mode], mode, batch_size, max_new_tokens, progress)
        result = task.score(rows, mode)
        folder = Path(out) / mode if out is not None else None
        if folder is not None:
            write_predictions(folder / "predictions.jsonl", rows)
            write_outputs(task, result, folder)
        results.append(ModeResult(mode, rows, result, folder))
    return results


def write_outputs(task: Task, result: Any, folder: Path) -> None:
    """metrics.json, parse_failures.jsonl and the task's own extra files in `folder`."""
    write_json(folder / "metrics.json", task.metrics(result))
    failures = task.failures(result)
    if failures is not None:  # None: the task has no answer to parse
        write_predictions(folder / "parse_failures.jsonl", failures)
    task.write_extra(result, folder)
