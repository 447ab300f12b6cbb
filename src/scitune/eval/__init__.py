"""Evaluation: batched generation and likelihood scoring, answer parsing, ScienceQA categories,
figure-type classification and caption metrics, predictions I/O and terminal tables.

One small module per task; eval may use `scitune.data` and `scitune.model`, never `scitune.train`.
"""
