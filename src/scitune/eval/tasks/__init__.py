"""Evaluation tasks, one folder each. A folder `<name>/` holds the task's prompts, scoring, the
task itself (records -> items, items + model outputs -> rows, rows -> metrics: the
`scitune.eval.runner.Task` protocol) and `cli.py`, whose `CLI` (a `scitune.eval.registry.TaskCLI`:
arguments, modes, how to build the task for `--model`, how to score a predictions file) the
folder's `__init__.py` exports. `scitune.eval.registry` finds every folder here that exports
one, so adding a task is adding a folder (tests/eval/test_registry.py adds a toy one);
`scitune.eval.runner` runs any of them. Keep `__init__.py` and `cli.py` light (no torch, no
scoring imports at module level): every `scitune` command line imports them to build its parser."""
