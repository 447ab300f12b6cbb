"""Figure captioning: corpus BLEU-1..4 (`bleu`, ours), ROUGE-L, CIDEr and METEOR (`scoring`), the
task (`task`; its prompts are the LLaVA records' own human turns) and `scitune eval captions` (`cli`).
References are read by `scitune.eval.references`, which the figure-type task shares."""

from scitune.eval.tasks.captions.cli import CLI

__all__ = ["CLI"]
