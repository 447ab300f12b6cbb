"""The evaluation tasks the CLI offers, found rather than listed: every package under
`scitune/eval/tasks/` that defines `CLI` (a `TaskCLI`) is a task, so adding a task is adding one
folder there. `scitune.commands.eval` builds one `scitune eval <name>` subcommand per entry.

A task declares its name, help and example, its own arguments (an input group with `--model`
and its predictions inputs), its modes (`--mode` is offered when there are several), how to
build the task for a model run (`build`) and how to score a predictions file (`score`). The
shared options (`--images`, `--batch-size`, ... `--out`, `--overwrite`) are added for every task.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scitune.errors import ScituneError


@dataclass(frozen=True)
class TaskCLI:
    name: str  # the subcommand: `scitune eval <name>`
    help: str
    example: str
    add_arguments: Callable[[argparse.ArgumentParser], None]  # the task's own arguments
    build: Callable[[argparse.Namespace], Any]  # --model: the task (a `scitune.eval.runner.Task`)
    score: Callable[[argparse.Namespace], int]  # --predictions (or the task's other inputs): score, print, write
    out_help: str = "folder for metrics.json (and predictions with --model)"
    modes: tuple[str, ...] = ("generate",)
    order: int = 100  # place in `scitune eval --help` (then by name)
    inputs: tuple[str, ...] = ()  # the task's own arguments that name input files (--out may not be on them)


def task_clis() -> list[TaskCLI]:
    """Every task package's `CLI`, in (order, name) order. A package without one is skipped; two
    with one name are an error."""
    import scitune.eval.tasks as tasks

    found: dict[str, TaskCLI] = {}
    for module in pkgutil.iter_modules(tasks.__path__):
        if not module.ispkg:
            continue
        cli = getattr(importlib.import_module(f"{tasks.__name__}.{module.name}"), "CLI", None)
        if cli is None:
            continue
        if cli.name in found:
            raise ScituneError(f"two evaluation tasks are named {cli.name!r} (scitune/eval/tasks/{module.name})")
        found[cli.name] = cli
    return sorted(found.values(), key=lambda cli: (cli.order, cli.name))


def require(args: argparse.Namespace, *names: str, because: str) -> None:
    """A clear error for an option that this combination of options needs."""
    for name in names:
        if getattr(args, name.replace("-", "_")) is None:
            raise ScituneError(f"--{name} is required {because}")


def print_failures(failures: list[dict], label: str = "") -> None:
    if failures:
        ids = ", ".join(str(f["question_id"]) for f in failures[:10])
        more = f" (+{len(failures) - 10} more)" if len(failures) > 10 else ""
        print(f"{label}parse failures: {len(failures)}, scored wrong: {ids}{more}")


def report_scored(task: Any, result: Any, out: str | None) -> None:
    """A scored predictions file: the task's summary and parse failures printed; its outputs
    (`scitune.eval.runner.write_outputs`) written under `out` when given."""
    from scitune.eval.runner import write_outputs

    print(task.summary(result, ""))
    print_failures(task.failures(result) or [])
    if out is not None:
        write_outputs(task, result, Path(out))
        print(f"wrote {out}")
