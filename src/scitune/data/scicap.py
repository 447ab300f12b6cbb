"""SciCap -> stage-1 (concept alignment) instruction samples.

Two releases are read into one figure record
`{id, image, figure_type, caption, caption_no_index, ocr: [str], paragraphs: [str], mentions: [str]}`:

- the SciCap challenge layout (used by SciTune): one JSON file
  `{"images": [{id, file_name, figure_type, ocr}], "annotations": [{image_id, caption,
  caption_no_index, paragraph, mention, ...}]}`; annotations join images on `image_id` (never
  on list position);
- the original per-figure JSON (`figure-ID`, `figure-type`, `Img-text`,
  `0-originally-extracted`, ...): one file, or a folder of them. It has no paragraphs/mentions.

Tasks (`build_instructions(task=...)`):
- `describe`: the paper's target "<figure type> <caption>\\n<OCR tokens>\\n<paragraphs>\\n<mentions>",
  with the fields selectable (default CTOM: caption + type + OCR + mentions, the paper's best).
  With `replace_figure_word` (default on), figure references in the caption ("Figure 2", "Fig. 3")
  are replaced whole by the figure type, so "Figure 2: Impact of ..." reads
  "Graph Plot: Impact of ..." (never "Graph Plot. 2"); off, the line is "<type> <caption as written>";
- `figure-type`: question -> the figure type;
- `figure-type-choice`: the same question as multiple choice in ScienceQA's CQM-A layout (the
  figure's type and up to three other types found in the records, one `A. type` line each) ->
  the answer letter;
- `caption`: question -> the caption (without its "Figure N:" label).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from scitune.data import instructions
from scitune.data.sample import OPTION_LETTERS, make_sample
from scitune.errors import ScituneError
from scitune.io.read import read_json

TASKS = ("describe", "figure-type", "figure-type-choice", "caption")
CHOICES = 4  # options of a figure-type-choice question
FIELDS = ("caption", "type", "ocr", "paragraph", "mention")
DEFAULT_FIELDS = ("caption", "type", "ocr", "mention")

# "Figure 2", "Fig. 3", "FIG. 4a", "Figure S1", "Fig.2(b)" -> one reference, replaced whole.
_FIGURE_REF = re.compile(r"\b(?:Figure|FIGURE|Fig|FIG)\.?(?:\s*S?\d+[a-z]?)?(?![A-Za-z])")
# The label a caption starts with: "Figure 2:", "Fig. 3.", "FIG. 1 -"
_LEADING_LABEL = re.compile(r"^\s*(?:Figure|FIGURE|Fig|FIG)\.?\s*S?\d+[a-z]?\s*[:.\-–—|]?\s*")


# ----------------------------------------------------------------------------- reading


INGEST_SPLITS = ("train", "val", "test")


def read_scicap(path: str | Path, split: str = "train") -> list[dict[str, Any]]:
    """Figure records from a challenge-layout file, an original per-figure JSON, a folder of
    those, or a `scitune ingest` output folder (its `split`: the papers of all its shards)."""
    path = Path(path)
    if path.is_dir() and (path / "ingest.json").is_file():
        return _ingest_records(path, split)
    if path.is_dir():
        files = sorted(path.glob("*.json"))
        if not files:
            raise ScituneError(f"{path}: no SciCap .json files in this folder")
        return [_original_record(_load(f), f) for f in files]
    data = _load(path)
    if isinstance(data, dict) and "images" in data and "annotations" in data:
        return _challenge_records(data, path)
    if isinstance(data, dict) and "figure-ID" in data:
        return [_original_record(data, path)]
    raise ScituneError(
        f"{path}: not a SciCap file: expected the challenge layout (images + annotations) "
        "or an original per-figure record (figure-ID, figure-type, Img-text, 0-originally-extracted)"
    )


def _ingest_records(out: Path, split: str) -> list[dict[str, Any]]:
    """One split of an ingest output: the split file the run wrote from its shards at the end."""
    if split not in INGEST_SPLITS:
        raise ScituneError(f"--split: expected one of {', '.join(INGEST_SPLITS)}, got {split!r}")
    report = _load(out / "ingest.json")
    if not isinstance(report, dict) or report.get("written") is False:
        raise ScituneError(f"{out}: the ingest run wrote no split files (see {out / 'ingest.json'}: "
                           "overlap with the evaluation sets, or a run that did not finish; re-run scitune ingest)")
    return _challenge_records(_load(out / f"{split}.json"), out / f"{split}.json")


def _load(path: Path) -> Any:
    if not path.is_file():
        raise ScituneError(f"{path}: no such file")
    return read_json(path)


def _texts(value: Any, where: str) -> list[str]:
    """A text field as a flat list of strings: the releases give one string, a list of strings,
    or (`mention`: the sentences citing the figure, per paragraph) a list of lists of strings."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list):
        flat = []
        for item in value:
            if isinstance(item, list) and all(isinstance(v, str) for v in item):
                flat += item
            elif isinstance(item, str):
                flat.append(item)
            else:
                raise ScituneError(f"{where}: expected strings or lists of strings, found {type(item).__name__}")
        return [v for v in flat if v.strip()]
    raise ScituneError(f"{where}: expected a string or a list of strings, got {type(value).__name__}")


def _challenge_records(data: dict[str, Any], path: Path) -> list[dict[str, Any]]:
    images, annotations = data["images"], data["annotations"]
    if not isinstance(images, list) or not isinstance(annotations, list):
        raise ScituneError(f"{path}: images and annotations must be lists")
    by_id: dict[Any, dict[str, Any]] = {}
    for index, image in enumerate(images):
        if not isinstance(image, dict) or "id" not in image or "file_name" not in image:
            raise ScituneError(f"{path}: images[{index}] needs id and file_name")
        if image["id"] in by_id:
            raise ScituneError(f"{path}: image id {image['id']!r} appears twice")
        by_id[image["id"]] = image
    joined: dict[Any, dict[str, Any]] = {}
    for index, ann in enumerate(annotations):
        if not isinstance(ann, dict) or "image_id" not in ann:
            raise ScituneError(f"{path}: annotations[{index}] has no image_id")
        if ann["image_id"] not in by_id:
            raise ScituneError(f"{path}: annotations[{index}] refers to image_id {ann['image_id']!r}, which is not in images")
        if ann["image_id"] in joined:
            raise ScituneError(f"{path}: image {ann['image_id']!r} has more than one annotation")
        joined[ann["image_id"]] = ann
    records = []
    for image_id, image in by_id.items():
        ann = joined.get(image_id, {})
        where = f"{path}: image {image_id!r}"
        caption = ann.get("caption")
        no_index = ann.get("caption_no_index")
        if no_index is None and caption is not None:
            no_index = _LEADING_LABEL.sub("", caption)
        records.append(
            {
                "id": str(image_id),
                "image": image["file_name"],
                "figure_type": image.get("figure_type"),
                "caption": caption,
                "caption_no_index": no_index,
                "ocr": _texts(image.get("ocr"), f"{where} ocr"),
                "paragraphs": _texts(ann.get("paragraph"), f"{where} paragraph"),
                "mentions": _texts(ann.get("mention"), f"{where} mention"),
            }
        )
    return records


def _original_record(data: Any, path: Path) -> dict[str, Any]:
    if not isinstance(data, dict) or "figure-ID" not in data:
        raise ScituneError(f"{path}: not an original SciCap figure record (no figure-ID)")
    caption = data.get("0-originally-extracted")
    figure_id = data["figure-ID"]
    return {
        "id": Path(figure_id).stem,
        "image": figure_id,
        "figure_type": data.get("figure-type"),
        "caption": caption,
        "caption_no_index": _LEADING_LABEL.sub("", caption) if isinstance(caption, str) else None,
        "ocr": _texts(data.get("Img-text"), f"{path} Img-text"),
        "paragraphs": [],
        "mentions": [],
    }


# ----------------------------------------------------------------------------- targets


def _need(record: dict[str, Any], key: str, what: str) -> str:
    value = record.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ScituneError(f"SciCap figure {record.get('id')!r}: no {what}")
    return value.strip()


def replace_figure_refs(caption: str, figure_type: str) -> str:
    """Each figure reference ("Figure 2", "Fig. 3b") replaced whole by the figure type."""
    return _FIGURE_REF.sub(figure_type, caption)


def describe_target(
    record: dict[str, Any], fields: Iterable[str] = DEFAULT_FIELDS, replace_figure_word: bool = True
) -> str:
    fields = tuple(fields)
    unknown = [f for f in fields if f not in FIELDS]
    if unknown or not fields:
        raise ScituneError(f"unknown SciCap field(s) {', '.join(unknown) or '(none)'}; expected some of {', '.join(FIELDS)}")
    if "type" in fields and len(fields) > 1 and not str(record.get("figure_type") or "").strip():
        # no figure type (papers read by `scitune ingest` without --classify): the line omits it
        fields = tuple(f for f in fields if f != "type")
    lines = []
    if "caption" in fields and "type" in fields:
        figure_type = _need(record, "figure_type", "figure type")
        if replace_figure_word:
            # the leading label ("Figure 2:", "Fig. 5.") becomes "<type>: "; later references
            # in the caption are replaced whole
            caption = record.get("caption") or ""
            label = _LEADING_LABEL.match(caption)
            body = caption[label.end() :] if label else _need(record, "caption_no_index", "caption")
            lines.append(f"{figure_type}: {replace_figure_refs(body.strip(), figure_type)}")
        else:
            caption = record.get("caption") or _need(record, "caption_no_index", "caption")
            lines.append(f"{figure_type} {caption.strip()}")
    elif "caption" in fields:
        lines.append(_need(record, "caption_no_index", "caption"))
    elif "type" in fields:
        lines.append(_need(record, "figure_type", "figure type"))
    if "ocr" in fields and record.get("ocr"):
        lines.append(" ".join(record["ocr"]))
    if "paragraph" in fields and record.get("paragraphs"):
        lines.append(" ".join(p.strip() for p in record["paragraphs"]))
    if "mention" in fields and record.get("mentions"):
        lines.append(" ".join(m.strip() for m in record["mentions"]))
    return "\n".join(lines)


def build_instructions(
    records: list[dict[str, Any]],
    task: str = "describe",
    fields: Iterable[str] = DEFAULT_FIELDS,
    seed: int = 0,
    replace_figure_word: bool = True,
) -> list[dict[str, Any]]:
    """One sample per figure; sample ids are `<figure id>-<task>`, images the figure's file name."""
    if task not in TASKS:
        raise ScituneError(f"unknown SciCap task {task!r}; expected one of {', '.join(TASKS)}")
    fields = tuple(fields)
    if task == "figure-type-choice":
        return _figure_type_choices(records, seed)
    samples = []
    for record in records:
        sample_id = f"{record['id']}-{task}"
        if task == "describe":
            phrasings, target = instructions.DESCRIBE, describe_target(record, fields, replace_figure_word)
        elif task == "figure-type":
            phrasings, target = instructions.FIGURE_TYPE, _need(record, "figure_type", "figure type")
        else:
            phrasings, target = instructions.CAPTION, _need(record, "caption_no_index", "caption")
        question = instructions.choose(phrasings, seed, sample_id)
        samples.append(make_sample(sample_id, f"<image>\n{question}", target, record["image"]))
    return samples


def _figure_type_choices(records: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    types = sorted({_need(r, "figure_type", "figure type") for r in records})
    if len(types) < 2:
        raise ScituneError(f"figure-type-choice: needs at least two figure types among the records, found {types}")
    samples = []
    for record in records:
        sample_id = f"{record['id']}-figure-type-choice"
        rng = random.Random(f"{seed}:{sample_id}")
        answer = record["figure_type"]
        others = rng.sample([t for t in types if t != answer], min(CHOICES, len(types)) - 1)
        choices = others + [answer]
        rng.shuffle(choices)
        question = instructions.choose(instructions.FIGURE_TYPE[:2], seed, sample_id)
        lines = [question] + [f"{OPTION_LETTERS[i]}. {c}" for i, c in enumerate(choices)]
        samples.append(make_sample(sample_id, "<image>\n" + "\n".join(lines), OPTION_LETTERS[choices.index(answer)], record["image"]))
    return samples
