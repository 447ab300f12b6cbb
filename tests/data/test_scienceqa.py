import json
from pathlib import Path
import shutil

import pytest

from scitune.cli import main
from scitune.data.sample import read_samples
from scitune.data.scienceqa import (
    FORMATS,
    build_prompt,
    build_scienceqa_samples,
    context_text,
    export_images,
    read_problems,
)
from scitune.data.validate import validate_samples
from scitune.errors import ScituneError

TEST_IMAGES = ("23", "849", "2839", "3988", "9344", "11246", "12799", "13015", "17228", "18609")


@pytest.fixture(scope="module")
def sqa(shared_data):
    return shared_data / "scienceqa"


@pytest.fixture(scope="module")
def test_problems(sqa):
    return read_problems(sqa / "problems_subset.json", split="test")


def test_cqm_a_matches_llava_published_file_character_for_character(sqa, test_problems):
    published = {r["id"]: r for r in json.loads((sqa / "llava_test_CQM-A.json").read_text())}
    ours = build_scienceqa_samples(test_problems, format="CQM-A")
    assert len(ours) == 361
    mismatched = [s["id"] for s in ours if s != published[s["id"]]]
    assert mismatched == []
    # the comparison covers both kinds of record
    assert sum("image" in s for s in ours) > 100 and sum("image" not in s for s in ours) > 100


def test_problem_records_keep_metadata_in_split_order(sqa, test_problems):
    order = json.loads((sqa / "pid_splits.json").read_text())["test"]
    ids = [p["id"] for p in test_problems]
    assert ids == [pid for pid in order if pid in set(ids)]
    for p in test_problems:
        assert {"subject", "grade", "category", "hint", "image", "choices", "answer", "lecture", "solution"} <= set(p)
        assert p["split"] == "test"
    # captions.json beside the problems file is attached
    captions = json.loads((sqa / "captions.json").read_text())["captions"]
    assert test_problems[1]["caption"] == captions.get(test_problems[1]["id"], "")


def test_validation_split_alias(sqa):
    assert len(read_problems(sqa / "problems_subset.json", split="validation")) == 371
    assert len(read_problems(sqa / "problems_subset.json", split="val")) == 371


def test_every_format_builds_and_places_image_as_llava(test_problems):
    with_image = next(p for p in test_problems if p["image"])
    for fmt in FORMATS:
        human, gpt = build_prompt(with_image, fmt)
        assert human.count("<image>") == 1 and gpt
        if fmt == "CQM-A":
            assert human.startswith("<image>\n")
        else:
            assert human.endswith("\n<image>") and "Options: (A)" in human
    assert len(FORMATS) == 8 * 10


def test_llava1_strings(test_problems):
    p = next(p for p in test_problems if p["id"] == "11")  # no hint, has an image
    human, gpt = build_prompt(p, "QCM-LEPA")
    assert human == (
        "What is the name of the colony shown?\nContext: N/A\n"
        "Options: (A) Maryland (B) New Hampshire (C) Rhode Island (D) Vermont\n<image>"
    )
    assert p["lecture"] == ""  # no lecture: LEPA leaves the LECTURE line out
    assert gpt == f"SOLUTION: {p['solution']}\n###\nANSWER: B."
    assert build_prompt(p, "QCM-A")[1] == "The answer is B."
    human, gpt = build_prompt(p, "CQM-LEA")
    assert human.startswith("Context: N/A\nQuestion: What is the name")


def test_al_and_ae_targets_follow_their_letters(test_problems):
    p = next(p for p in test_problems if p["lecture"].strip() and p["solution"].strip())
    lecture, solution = p["lecture"].replace("  ", " ").strip(), p["solution"].replace("  ", " ").strip()
    al, ae = build_prompt(p, "QCM-AL")[1], build_prompt(p, "QCM-AE")[1]
    assert al.startswith("The answer is ") and lecture[:40] in al and solution[:40] not in al
    assert solution[:40] in ae and lecture[:40] not in ae


def test_only_the_question_prefix_is_removed():
    problem = {"id": "q", "question": "Read: 'Question: why?' Which is right?", "choices": ["x", "y"], "answer": 0,
               "hint": "Answer: the hint says Question: no.", "image": None, "lecture": "", "solution": ""}
    human, gpt = build_prompt(problem, "QCM-A")
    assert human.startswith("Read: 'Question: why?'") and "Context: Answer: the hint says Question: no." in human
    assert gpt == "The answer is A."
    # empty lecture: the dangling BECAUSE: goes, as upstream
    assert build_prompt(problem, "QCM-AL")[1] == "The answer is A."


def test_use_caption_appends_caption_to_context(test_problems):
    p = {**test_problems[0], "hint": "A hint.", "caption": "A map of states."}
    assert context_text(p, use_caption=True) == "A hint. A map of states."
    assert "Context: A hint. A map of states.\n" in build_prompt(p, "CQM-A", use_caption=True)[0]
    assert "Context: A hint.\n" in build_prompt(p, "CQM-A")[0]
    samples = build_scienceqa_samples([p], "QCM-A", use_caption=True, captions={p["id"]: "Other caption."})
    assert "Context: A hint. Other caption.\n" in samples[0]["conversations"][0]["value"]


def test_glued_punnett_text_is_removed(test_problems):
    p = next(p for p in test_problems if p["id"] == "42")
    assert "This Punnett square is ff" in p["hint"]
    assert context_text(p).endswith("This Punnett square shows a cross between two sheep.")


def test_original_release_layout_and_images(tmp_path, sqa):
    root = tmp_path / "scienceqa"
    (root / "images").mkdir(parents=True)
    shutil.copy(sqa / "problems_subset.json", root / "problems.json")
    # a release's pid_splits.json names only problems it has (unknown ids are refused, below)
    subset = json.loads((sqa / "problems_subset.json").read_text())
    splits = json.loads((sqa / "pid_splits.json").read_text())
    (root / "pid_splits.json").write_text(json.dumps({k: [p for p in v if p in subset] for k, v in splits.items()}))
    shutil.copytree(sqa / "images" / "test", root / "images" / "test")
    problems = read_problems(root, split="test")
    assert len(problems) == 361 and all(p["caption"] == "" for p in problems)
    samples = {s["id"]: s for s in build_scienceqa_samples(problems)}
    in_subset = [pid for pid in TEST_IMAGES if pid in samples]
    assert in_subset == ["23", "849"]
    for pid in in_subset:
        assert (root / "images" / "test" / samples[pid]["image"]).is_file()
    shutil.copy(sqa / "pid_splits.json", root / "pid_splits.json")
    with pytest.raises(ScituneError, match="names 3880 problem"):
        read_problems(root, split="test")
    # a problems file given on its own may be a subset of pid_splits.json
    assert len(read_problems(root / "problems.json", split="test")) == 361


def test_bad_inputs(tmp_path, sqa):
    with pytest.raises(ScituneError, match="not a ScienceQA release"):
        read_problems(tmp_path)
    with pytest.raises(ScituneError, match="no split 'nope'"):
        read_problems(sqa / "problems_subset.json", split="nope")
    bad = tmp_path / "problems.json"
    bad.write_text(json.dumps({"1": {"question": "q", "choices": ["a", "b"], "answer": 5, "hint": "", "split": "test"}}))
    with pytest.raises(ScituneError, match="problem 1: answer 5"):
        read_problems(bad)
    with pytest.raises(ScituneError, match="unknown ScienceQA format"):
        build_prompt({"question": "q", "choices": ["a", "b"], "answer": 0}, "QXM-Z")


def test_parquet_release(tmp_path, sqa, test_problems):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    rows = []
    for p in test_problems[:6]:
        image = None
        if p["image"] and (sqa / "images" / "test" / p["id"]).is_dir():
            image = {"bytes": (sqa / "images" / "test" / p["id"] / "image.png").read_bytes(), "path": None}
        keys = ("question", "choices", "answer", "hint", "task", "grade", "subject", "topic", "category", "skill", "lecture", "solution")
        rows.append({"image": image, **{k: p[k] for k in keys}})
    (tmp_path / "data").mkdir()
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "data" / "test-00000-of-00001.parquet")
    problems = read_problems(tmp_path, split="test")
    assert [p["id"] for p in problems] == [f"test-{i}" for i in range(6)]
    assert export_images(problems, tmp_path / "img") == sum(r["image"] is not None for r in rows)
    ours = build_scienceqa_samples(problems)
    ref = build_scienceqa_samples([{**p, "image": "image.png" if r["image"] else None} for p, r in zip(test_problems[:6], rows)])
    assert [s["conversations"] for s in ours] == [s["conversations"] for s in ref]


def test_cli_scienceqa(tmp_path, sqa):
    out = tmp_path / "sqa.json"
    rc = main(["data", "scienceqa", "--root", str(sqa), "--problems", str(sqa / "problems_subset.json"),
               "--split", "test", "--format", "QCM-LEPA", "--out", str(out)])
    assert rc == 0
    samples = read_samples(out)
    assert len(samples) == 361 and samples[0]["conversations"][1]["value"].endswith("ANSWER: B.")
    rc = main(["data", "scienceqa", "--root", str(tmp_path), "--out", str(out)])
    assert rc == 2


def test_parquet_rows_without_pyarrow(tmp_path, monkeypatch, sqa, test_problems):
    """The row handling of the parquet reader, with `pyarrow.parquet.read_table` stood in by a
    reader of the same rows (the real pyarrow run is test_parquet_release, where pyarrow is installed)."""
    import sys
    import types

    keys = ("question", "choices", "answer", "hint", "task", "grade", "subject", "topic", "category", "skill", "lecture", "solution")
    image = {"bytes": (sqa / "images" / "test" / "23" / "image.png").read_bytes(), "path": None}
    rows = [{"image": image if p["id"] == "23" else None, **{k: p[k] for k in keys}} for p in test_problems[:12]]
    (tmp_path / "data").mkdir()
    stored = {}
    for part in range(2):
        path = tmp_path / "data" / f"test-0000{part}-of-00002.parquet"
        path.write_bytes(b"")  # only its name matters to the stand-in
        stored[path] = rows[part * 6 : part * 6 + 6]
    parquet = types.ModuleType("pyarrow.parquet")
    parquet.read_table = lambda path: types.SimpleNamespace(to_pylist=lambda: [dict(r) for r in stored[Path(path)]])
    arrow = types.ModuleType("pyarrow")
    arrow.parquet = parquet
    monkeypatch.setitem(sys.modules, "pyarrow", arrow)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", parquet)
    problems = read_problems(tmp_path, split="test")
    assert [p["id"] for p in problems] == [f"test-{i}" for i in range(12)]
    with_image = [p for p in problems if p["image"]]
    assert len(with_image) == 1 and with_image[0]["question"] == test_problems[[p["id"] for p in test_problems].index("23")]["question"]
    assert export_images(problems, tmp_path / "images") == 1
    assert (tmp_path / "images" / with_image[0]["id"] / "image.png").is_file()
    samples = build_scienceqa_samples(problems)
    assert validate_samples(samples, tmp_path / "images").ok
    assert [s["conversations"][1]["value"] for s in samples] == [chr(65 + p["answer"]) for p in test_problems[:12]]


def test_choice_orders_move_the_answer_with_its_choice(test_problems):
    from scitune.data.scienceqa import choice_orders

    problem = next(p for p in test_problems if len(p["choices"]) == 4)
    variants = choice_orders(problem, 5, seed=3)
    assert len(variants) == 5 and variants[0] == problem
    assert len({tuple(v["choices"]) for v in variants}) == 5  # distinct orders
    for v in variants:
        assert sorted(v["choices"]) == sorted(problem["choices"])
        assert v["choices"][v["answer"]] == problem["choices"][problem["answer"]]
    assert choice_orders(problem, 5, seed=3) == variants  # seeded
    assert choice_orders(problem, 5, seed=4) != variants
    two = next(p for p in test_problems if len(p["choices"]) == 2)
    assert len(choice_orders(two, 5)) == 2  # only 2! orders exist
    with pytest.raises(ScituneError, match="at least 1"):
        choice_orders(problem, 0)


def test_orders_augment_training_samples_and_keep_the_image(test_problems):
    samples = build_scienceqa_samples(test_problems[:20], orders=3)
    plain = build_scienceqa_samples(test_problems[:20])
    assert [s for s in samples if "-order" not in s["id"]] == plain
    by_id = {s["id"]: s for s in plain}
    for s in samples:
        pid, _, k = s["id"].partition("-order")
        assert s.get("image") == by_id[pid].get("image")
        if k:  # the letter names the same choice text as in the original order
            letter = s["conversations"][1]["value"]
            line = next(l for l in s["conversations"][0]["value"].split("\n") if l.startswith(f"{letter}. "))
            original = by_id[pid]["conversations"]
            right = next(l for l in original[0]["value"].split("\n") if l.startswith(f"{original[1]['value']}. "))
            assert line[3:] == right[3:]
    assert len(samples) > 2 * len(plain)
