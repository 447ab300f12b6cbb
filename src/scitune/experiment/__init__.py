"""Experiments over many ordinary scitune runs: `scitune experiment ablation` asks whether stage 1
(alignment) helps stage 2, over seeds and stage-2 data fractions, with intervals and a plot.

grid.py: the cells and their resumable run; sources.py: the user's own stage-1 and stage-2 data
and recipes; outcomes.py: per-item results of one evaluated model; stats.py: intervals and paired
tests; analysis.py: from outcomes to rows and verdicts; report.py: the table, the plot, HTML.
"""
