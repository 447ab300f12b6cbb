"""The built-in science figure corpus: matplotlib-rendered figures of SciCap's five types with
captions, OCR, paragraphs and mentions (SciCap challenge layout) and multiple-choice problems
(ScienceQA original layout), any size, any seed, no download.

    from scitune.data.corpus import build_corpus
    manifest = build_corpus("runs/corpus", figures=200, seed=0, image_size=128)
"""

from scitune.data.corpus.build import CORPUS_VERSION, build_corpus
from scitune.data.corpus.vocab import FIGURE_TYPES

__all__ = ["CORPUS_VERSION", "FIGURE_TYPES", "build_corpus"]
