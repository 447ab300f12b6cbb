import json
import os

import pytest

from scitune.cli import main
from scitune.data.sample import read_samples
from scitune.data.scienceqa import build_scienceqa_samples, read_problems
from scitune.prompting import Renderer
from scitune.data.validate import REASONS, apply_policy, checked_samples, validate_file, validate_samples
from scitune.errors import ScituneError

# file in tests/data/bad/ -> the reason its record "bad" must get
BAD_KINDS = {
    "image_missing": "image_missing",
    "image_unreadable": "image_unreadable",
    "image_truncated": "image_truncated",
    "image_zero_size": "image_zero_size",
    "image_too_large": "image_too_large",
    "image_path_absolute": "image_path_escapes_root",
    "image_path_dotdot": "image_path_escapes_root",
    "image_token_mismatch": "image_token_mismatch",
    "empty_turn": "empty_turn",
    "missing_turns": "missing_turns",
    "turn_order": "turn_order",
    "unknown_role": "unknown_role",
    "duplicate_id": "duplicate_id",
}
TOO_LONG = dict(chat_template="plain", max_length=128, image_tokens=16)


def test_bad_corpus_has_one_file_per_kind(bad_dir):
    assert {p.stem for p in bad_dir.glob("*.json")} == set(BAD_KINDS) | {"too_long"}


@pytest.mark.parametrize("kind", sorted(BAD_KINDS))
def test_each_bad_kind_is_reported_by_id_and_reason(bad_dir, kind):
    report = validate_file(bad_dir / f"{kind}.json", bad_dir / "images")
    expected_id = "good" if kind == "duplicate_id" else "bad"
    assert [(p.id, p.reason) for p in report.problems] == [(expected_id, BAD_KINDS[kind])]
    assert not report.ok and report.n_samples == 2
    assert BAD_KINDS[kind] in report.summary_table()


def test_too_long_after_tokenization(bad_dir, tiny_tokenizer):
    path = bad_dir / "too_long.json"
    assert validate_file(path, bad_dir / "images").ok  # fine without the length check
    report = validate_file(path, bad_dir / "images", Renderer(tiny_tokenizer, **TOO_LONG))
    assert [(p.id, p.reason) for p in report.problems] == [("bad", "too_long")]
    assert "target_does_not_fit" in report.problems[0].detail


def test_escaping_symlink(tmp_path, bad_dir):
    root = tmp_path / "images"
    root.mkdir()
    os.symlink(bad_dir / "images" / "good.png", root / "link.png")
    samples = read_samples(bad_dir / "image_missing.json")
    samples[1]["image"] = "link.png"
    samples[0]["image"] = "link.png"
    report = validate_samples(samples, root)
    assert {p.reason for p in report.problems} == {"image_path_escapes_root"}


def test_summary_table_counts(bad_dir):
    samples = []
    for kind in ("image_missing", "empty_turn", "turn_order"):
        for s in read_samples(bad_dir / f"{kind}.json"):
            samples.append({**s, "id": f"{kind}-{s['id']}"})
    report = validate_samples(samples, bad_dir / "images")
    table = report.summary_table()
    assert report.counts() == {"image_missing": 1, "empty_turn": 1, "turn_order": 1}
    assert "3 of 6 samples bad, 3 good" in table
    for reason in report.counts():
        assert REASONS[reason] in table


def test_policy_fail_and_skip(bad_dir):
    samples = read_samples(bad_dir / "image_missing.json") + [
        {**s, "id": "x" + s["id"]} for s in read_samples(bad_dir / "unknown_role.json")
    ]
    report = validate_samples(samples, bad_dir / "images")
    with pytest.raises(ScituneError, match="2 bad record.*bad: image_missing; xbad: unknown_role"):
        apply_policy(samples, report, "fail")
    kept = apply_policy(samples, report, "skip")
    assert [s["id"] for s in kept] == ["good", "xgood"]
    with pytest.raises(ScituneError, match="on_bad_record"):
        apply_policy(samples, report, "ignore")
    kept, report = checked_samples(samples, bad_dir / "images", on_bad_record="skip")
    assert [s["id"] for s in kept] == ["good", "xgood"] and report.counts() == {"image_missing": 1, "unknown_role": 1}
    with pytest.raises(ScituneError, match="bad: image_missing"):
        checked_samples(samples, bad_dir / "images")


def test_question_without_answer_is_missing_turns():
    sample = {"id": "q", "conversations": [{"from": "human", "value": "Why?"}]}
    report = validate_samples([sample], None)
    assert [(p.id, p.reason) for p in report.problems] == [("q", "missing_turns")]


def test_real_files_are_valid(shared_data):
    sqa = shared_data / "scienceqa"
    images = sqa / "images" / "test"
    with_images = {p.name for p in images.iterdir()}
    published = [s for s in read_samples(sqa / "llava_test_CQM-A.json") if s.get("image", "x/").split("/")[0] in with_images | {"x"}]
    assert len(published) == 10 + sum("image" not in s for s in read_samples(sqa / "llava_test_CQM-A.json"))
    assert validate_samples(published, images).ok
    ours = build_scienceqa_samples(read_problems(sqa / "problems_subset.json", split="test"), "QCM-LEPA")
    report = validate_samples(ours, images)
    # the subset's test problems with images other than the 10 shipped ones are missing, nothing else
    assert {p.reason for p in report.problems} == {"image_missing"}
    assert {s["id"] for s in ours if "image" in s} - report.bad_ids == {"23", "849"}


def test_cli_exit_codes(bad_dir, tmp_path, tiny_tokenizer, capsys):
    images = str(bad_dir / "images")
    assert main(["data", "validate", str(bad_dir / "image_truncated.json"), "--images", images]) == 1
    out = capsys.readouterr().out
    assert "bad: image_truncated" in out and "1 of 2 samples bad" in out
    good = tmp_path / "good.json"
    good.write_text(json.dumps(read_samples(bad_dir / "image_truncated.json")[:1]))
    assert main(["data", "validate", str(good), "--images", images]) == 0
    assert main(["data", "validate", str(tmp_path / "missing.json"), "--images", images]) == 2
    assert "no such file" in capsys.readouterr().err
    # the length check with a saved tokenizer
    tiny_tokenizer.save_pretrained(tmp_path / "tok")
    args = ["data", "validate", str(bad_dir / "too_long.json"), "--images", images, "--tokenizer", str(tmp_path / "tok"),
            "--max-length", "128", "--image-tokens", "16", "--chat-template", "plain"]
    assert main(args) == 1
    assert "bad: too_long" in capsys.readouterr().out
    assert main(args[:5]) == 0
    assert main(args[:7]) == 2  # --tokenizer without --max-length
