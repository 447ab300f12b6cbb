"""The corpus is read by the same readers as the real datasets, with no special path, and the
instruction files built from it pass `scitune data validate` (and the library's validate_samples)."""

from __future__ import annotations

import json

import pytest

from scitune.cli import main

SPLITS = ("train", "val", "test")


def test_scienceqa_layout_reads_and_passes_data_validate(corpus, tmp_path, capsys):
    from scitune.data.scienceqa import read_problems

    root = corpus.root / "scienceqa"
    for split in SPLITS:
        problems = read_problems(root, split=split)
        assert [p["id"] for p in problems] == corpus.pid_splits[split]
        out = tmp_path / f"sqa_{split}.json"
        assert main(["data", "scienceqa", "--root", str(root), "--split", split, "--format", "QCM-LEA",
                     "--out", str(out)]) == 0
        samples = json.loads(out.read_text())
        assert len(samples) == len(problems)
        assert sum("image" in s for s in samples) == sum(p["image"] is not None for p in problems) > 0
        assert main(["data", "validate", str(out), "--images", str(root / "images" / split)]) == 0
    capsys.readouterr()


def test_scicap_layout_reads_and_passes_data_validate(corpus, tmp_path, capsys):
    from scitune.data.scicap import read_scicap

    for split in SPLITS:
        path = corpus.root / "scicap" / f"{split}.json"
        records = read_scicap(path)
        images = {i["id"]: i for i in corpus.scicap[split]["images"]}
        annotations = {a["image_id"]: a for a in corpus.scicap[split]["annotations"]}
        assert len(records) == len(images)
        for record in records:
            image, ann = images[int(record["id"])], annotations[int(record["id"])]
            assert record["image"] == image["file_name"] and record["figure_type"] == image["figure_type"]
            assert record["ocr"] == image["ocr"] and record["caption_no_index"] == ann["caption_no_index"]
            assert record["mentions"] == [s for sentences in ann["mention"] for s in sentences]
        out = tmp_path / f"scicap_{split}.json"
        assert main(["data", "scicap", "--input", str(path), "--images", str(corpus.root / "scicap" / "images"),
                     "--out", str(out)]) == 0
        assert main(["data", "validate", str(out), "--images", str(corpus.root / "scicap" / "images")]) == 0
    capsys.readouterr()


@pytest.mark.parametrize("split", SPLITS)
def test_corpus_reads_and_validates(corpus, split):
    from scitune.data.scicap import build_instructions, read_scicap
    from scitune.data.scienceqa import build_scienceqa_samples, read_problems
    from scitune.data.validate import validate_samples

    root = corpus.root
    records = read_scicap(root / "scicap" / f"{split}.json")
    for task in ("describe", "figure-type", "caption"):
        samples = build_instructions(records, task=task)
        assert validate_samples(samples, root / "scicap" / "images").ok
    problems = read_problems(root / "scienceqa", split=split)
    samples = build_scienceqa_samples(problems)
    assert validate_samples(samples, root / "scienceqa" / "images" / split).ok
