"""Evaluation tasks, one folder each: `<name>/` holds the task's prompts, scoring, the task itself
(records -> items, items + model outputs -> rows, rows -> metrics) and `cli.py`, whose `CLI` the
package exports. `scitune.eval.registry` finds every folder here that exports one, so adding a
task is adding a folder; `scitune.eval.runner` runs any of them."""
