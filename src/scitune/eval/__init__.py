"""Evaluation: the tasks (`tasks/<name>/`: prompts, scoring, task, CLI, one folder each, found by
`registry`), the one runner (`runner`: items -> batched generation or likelihood through
`scitune.inference` -> rows -> metrics), answer parsing, predictions I/O, shared references,
terminal tables, chance levels and the demo's HTML report.

eval may use `scitune.data`, `scitune.model` and `scitune.inference`, never `scitune.train`.
"""
