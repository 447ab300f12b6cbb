"""A stage's training data as the runner uses it: the validated index (scitune.train.dataset)
with its per-sample lengths, supervised-target and image counts, and the collator that turns
rendered samples into batches (padding, or packing)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from scitune.errors import ScituneError
from scitune.train.stage_settings import file_digest

log = logging.getLogger(__name__)


@dataclass
class StageData:
    items: Any  # scitune.train.dataset.IndexedSamples: samples read and rendered when a batch needs them
    data_sha256: str
    dropped: dict[str, int]  # samples dropped at max_length, by reason
    skipped: int  # bad records skipped (data.on_bad_record)
    lengths: np.ndarray
    targets: np.ndarray  # supervised tokens per sample
    n_images: np.ndarray


def supervised_tokens(item: dict[str, Any]) -> int:
    """Positions of a rendered sample that contribute to the causal-LM loss (labels are shifted by one)."""
    return sum(1 for label in item["labels"][1:] if label != -100)


def load_stage_data(name: str, data, renderer, accelerator) -> StageData:
    """The data as an index: built, validated and cached once by the main process (in
    `data.num_workers` processes), read from the cache by the others."""
    from scitune.train.dataset import IndexedSamples, apply_bad_record_policy, build_index, load_index, report_of

    if not data.train:
        raise ScituneError(f"{name}.data.train: no training file given")
    digest = file_digest(data.train)
    if accelerator.is_main_process:
        index, _ = build_index(data.train, digest, data.images or None, renderer, data.num_workers)
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        index = load_index(data.train, digest, data.images or None, renderer)
    if index.problems:
        log.info(report_of(index).summary_table())
    apply_bad_record_policy(data.train, index, data.on_bad_record)
    if not len(index.offsets):
        raise ScituneError(f"{data.train}: no usable samples (dropped: {index.dropped})")
    return StageData(
        IndexedSamples(data.train, index, renderer), digest, index.dropped, index.bad,
        index.lengths, index.targets, index.n_images,
    )


def make_collate(data, processor, llava, images, image_inputs: tuple[str, ...] = ()):
    """The collator of a stage's batches: padding, or with `data.packing` several samples per row
    (per-sample attention on SDPA through scitune.model.attention). `images`: the image loader,
    or None when the feature cache supplies the vision features."""
    from scitune.prompting import PaddingCollator

    pad = processor.tokenizer.pad_token_id
    if not data.packing:
        return PaddingCollator(pad, images, image_inputs=image_inputs)
    from scitune.model.families import family_of
    from scitune.prompting.packing import make_packing_collator

    family = family_of(llava)
    return make_packing_collator(llava, pad, images, data.max_length, None if family.model_types[0] == "llava" else family)
