"""Each test item's outcome for one evaluated model, kept so that two models can be compared
item by item (a paired test) and any metric recomputed on a resample of the items.

    {"scienceqa": {id: {"correct": bool, "image": bool, "chance": 1 / options}},
     "figure_type": {id: bool}, "figure_type_chance": 1 / labels,
     "captions": {id: {"bleu": [m1..m4, t1..t4, hyp_len, ref_len], "rouge_l": float}}}

A caption's BLEU counts sum over items to the corpus BLEU (`bleu_from_counts`); its ROUGE-L is
pycocoevalcap's per-caption score, whose mean is the corpus ROUGE-L the task reports.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from scitune.eval.tasks.captions.bleu import BleuCounts, bleu_counts, bleu_from_counts


def item_outcomes(sqa_run, problems: Sequence[dict], ft_task, ft_run, cap_task, cap_run) -> dict[str, Any]:
    """The outcomes from `run_task` results (`ModeResult`s) of the three built-in tasks."""
    from scitune.eval.tasks.captions.scoring import tokenize
    from scitune.eval.tasks.figure_type.scoring import find_label
    from scitune.eval.tasks.scienceqa.scoring import keyed_from_problems

    scienceqa = scienceqa_outcomes(sqa_run.result.rows, keyed_from_problems(problems))
    figure_type = {str(row["question_id"]): find_label(row["text"], ft_task.label_set) == ft_task.references[str(row["question_id"])]
                   for row in ft_run.rows}
    pairs = cap_task.pairs(cap_run.rows)
    captions = {}
    rouge = _rouge()
    for qid, hypothesis, references in zip(pairs.ids, pairs.hypotheses, pairs.references):
        hyp = tokenize(hypothesis, cap_task.tokenizer)
        refs = [tokenize(r, cap_task.tokenizer) for r in references]
        counts = bleu_counts([hyp], [refs], cap_task.bleu_convention)
        captions[str(qid)] = {
            "bleu": [*counts.matches, *counts.totals, counts.hypothesis_length, counts.reference_length],
            "rouge_l": None if rouge is None else float(rouge.calc_score([" ".join(hyp)], [" ".join(r) for r in refs])),
        }
    return {"scienceqa": scienceqa, "figure_type": figure_type, "captions": captions, "bleu_convention": cap_task.bleu_convention,
            "figure_type_chance": 1.0 / len(ft_task.label_set)}


def scienceqa_outcomes(rows: Sequence[dict], key: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each scored ScienceQA row's outcome; `key`: the task's answer key (`KeyedProblem`s by id)."""
    return {str(row["question_id"]): {"correct": bool(row["correct"]), "image": key[str(row["question_id"])].has_image,
                                      "chance": 1.0 / key[str(row["question_id"])].num_options}
            for row in rows}


def _rouge():
    try:
        from pycocoevalcap.rouge.rouge import Rouge
    except ImportError:  # the captions extra is missing: ROUGE-L is left out, as the task does
        return None
    return Rouge()


def bleu4(rows: Sequence[Sequence[int]], convention: str = "coco") -> float:
    """Corpus BLEU-4 (in [0, 1]) from per-caption count rows (`item_outcomes`' "bleu")."""
    sums = [sum(column) for column in zip(*rows)] if rows else [0] * 10
    counts = BleuCounts(tuple(sums[0:4]), tuple(sums[4:8]), sums[8], sums[9])
    return bleu_from_counts(counts, convention)["BLEU-4"]
