"""VisText -> chart captioning samples.

The release's `data_{train,validation,test}.json` hold records `{caption_id, img_id, scenegraph,
datatable, caption_L1, caption_L2L3, L1_properties}` (a JSON list; a JSON object keyed by
caption_id is read too); chart images are `images/<img_id>.png`. `caption_L1` is the synthetic
description of the chart's construction (type, title, axes, scales); `caption_L2L3` the
human-written trends and statistics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scitune.data import instructions
from scitune.data.sample import make_sample
from scitune.errors import ScituneError
from scitune.io.read import read_json

LEVELS = ("L1", "L2L3", "both")
REQUIRED_FIELDS = ("caption_id", "img_id", "caption_L1", "caption_L2L3")


def read_vistext(path: str | Path) -> list[dict[str, Any]]:
    """The records of one VisText data file, in file order."""
    path = Path(path)
    if not path.is_file():
        raise ScituneError(f"{path}: no such file")
    data = read_json(path)
    if isinstance(data, dict):
        data = list(data.values())
    if not isinstance(data, list):
        raise ScituneError(f"{path}: expected a list of VisText records")
    for index, record in enumerate(data):
        if not isinstance(record, dict):
            raise ScituneError(f"{path}: record {index} is not an object")
        missing = [f for f in REQUIRED_FIELDS if not isinstance(record.get(f), str)]
        if missing:
            name = record.get("caption_id", index)
            raise ScituneError(f"{path}: record {name!r}: missing or non-text field(s) {', '.join(missing)}")
    return data


def image_file(record: dict[str, Any]) -> str:
    """The chart image, relative to the release's images folder."""
    return f"{record['img_id']}.png"


def build_vistext_samples(records: list[dict[str, Any]], level: str = "L2L3", seed: int = 0) -> list[dict[str, Any]]:
    """One sample per record and level (`both`: an L1 and an L2L3 sample); ids `<caption_id>-<level>`."""
    if level not in LEVELS:
        raise ScituneError(f"unknown VisText level {level!r}; expected one of {', '.join(LEVELS)}")
    levels = ("L1", "L2L3") if level == "both" else (level,)
    samples = []
    for record in records:
        for lv in levels:
            target = record[f"caption_{lv}"].strip()
            if not target:
                raise ScituneError(f"VisText record {record['caption_id']!r}: empty caption_{lv}")
            sample_id = f"{record['caption_id']}-{lv}"
            phrasings = instructions.CHART_L1 if lv == "L1" else instructions.CHART_L2L3
            question = instructions.choose(phrasings, seed, sample_id)
            samples.append(make_sample(sample_id, f"<image>\n{question}", target, image_file(record)))
    return samples
