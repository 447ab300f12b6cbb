"""ScienceQA scoring: the published numbers from the real prediction files, and the rules."""

import json

import pytest

from scitune.errors import ScituneError
from scitune.eval.tasks.scienceqa.scoring import (
    COLUMNS,
    KeyedProblem,
    keyed_from_problems,
    option_count,
    read_answer_key,
    read_scienceqa_predictions,
    score,
)


@pytest.fixture(scope="module")
def sqa(shared_data):
    return shared_data / "scienceqa"


@pytest.fixture(scope="module")
def answer_key(sqa):
    return read_answer_key(sqa / "llava_test_CQM-A.json")


@pytest.fixture(scope="module")
def subset_key(sqa):
    from scitune.data.scienceqa import read_problems

    return keyed_from_problems(read_problems(sqa / "problems_subset.json", split="test"))


def rounded(columns):
    return {k: (round(v, 2) if v is not None else None) for k, v in columns.items()}


def test_answer_key_covers_the_test_split(answer_key, sqa):
    splits = json.loads((sqa / "pid_splits.json").read_text())
    assert len(answer_key) == 4241
    assert set(answer_key) == set(splits["test"])
    assert sum(p.has_image for p in answer_key.values()) == 2017


def test_gpt3_cot_reproduces_published_numbers(answer_key, sqa):
    result = score(answer_key, read_scienceqa_predictions(sqa / "predictions/gpt3_cot_QCM-ALE_test.json"))
    official = rounded(result.official)
    assert (result.count, result.correct) == (4241, 3188)
    assert official["Avg"] == 75.17
    assert official["IMG"] == 67.43
    assert official["TXT"] == 74.68
    assert official["NO"] == 79.93
    # subject and grade are unknown in the answer key: null, never 0
    for name in ("NAT", "SOC", "LAN", "G1-6", "G7-12"):
        assert result.official[name] is None and result.scitune[name] is None


def test_llava13b_reproduces_published_numbers(answer_key, sqa):
    result = score(answer_key, read_scienceqa_predictions(sqa / "predictions/llava_13b_v0_test.json"))
    official = rounded(result.official)
    assert (result.correct, result.failures) == (3856, [])
    assert (official["Avg"], official["IMG"], official["TXT"], official["NO"]) == (90.92, 88.00, 89.49, 90.66)


def test_llava13b_raw_outputs_parse_to_3855(answer_key, sqa):
    predictions = read_scienceqa_predictions(sqa / "predictions/llava_13b_v0_test.json", source="outputs")
    assert all(isinstance(v, str) for v in predictions.values())
    result = score(answer_key, predictions)
    assert result.correct == 3855
    # problem 3247's text names D, an option it does not have; the stored index (B) was a random pick
    assert [f["question_id"] for f in result.failures] == ["3247"]
    assert result.metrics()["parse_failures"] == 1


def test_lcs558k_and_llava15_match_their_published_overall(answer_key, sqa):
    lcs = score(answer_key, read_scienceqa_predictions(sqa / "predictions/llava_lcs558k_vicuna13b_12e_test.json"))
    assert (round(lcs.official["Avg"], 2), round(lcs.official["IMG"], 2)) == (91.09, 88.30)
    v15 = score(answer_key, read_scienceqa_predictions(sqa / "predictions/llava_v1.5_13b_CQM-A_test.json", "outputs"))
    assert round(v15.official["Avg"], 2) == 74.39
    assert round(v15.official["IMG"], 1) == 71.6


def test_subject_and_grade_columns_on_the_subset(subset_key, sqa):
    assert len(subset_key) == 361
    predictions = read_scienceqa_predictions(sqa / "predictions/llava_13b_v0_test.json")
    result = score(subset_key, predictions)
    problems = json.loads((sqa / "problems_subset.json").read_text())
    rows = [(p, problems[p], predictions[p] == problems[p]["answer"]) for p in subset_key]

    def acc(test):
        hits = [ok for _, rec, ok in rows if test(rec)]
        return 100 * sum(hits) / len(hits)

    def grade(rec):
        return int(rec["grade"].removeprefix("grade"))

    official = {
        "NAT": acc(lambda r: r["subject"] == "natural science"),
        "SOC": acc(lambda r: r["subject"] == "social science"),
        "LAN": acc(lambda r: r["subject"] == "language science"),
        "TXT": acc(lambda r: r["hint"] != ""),
        "IMG": acc(lambda r: r["image"] is not None),
        "NO": acc(lambda r: r["hint"] == "" and r["image"] is None),
        "G1-6": acc(lambda r: grade(r) <= 6),
        "G7-12": acc(lambda r: grade(r) >= 7),
        "Avg": acc(lambda r: True),
    }
    assert result.official == pytest.approx(official)
    per_grade = {g: acc(lambda r, g=g: grade(r) == g) for g in {grade(r) for _, r, _ in rows}}
    scitune = dict(official)
    scitune["TXT"] = acc(lambda r: r["image"] is None)
    scitune["NO"] = acc(lambda r: r["hint"] == "")
    scitune["G1-6"] = sum(v for g, v in per_grade.items() if g <= 6) / len([g for g in per_grade if g <= 6])
    scitune["G7-12"] = sum(v for g, v in per_grade.items() if g >= 7) / len([g for g in per_grade if g >= 7])
    assert result.scitune == pytest.approx(scitune)
    # the two definitions really differ on this data
    assert result.scitune["TXT"] != result.official["TXT"]
    assert result.scitune["G1-6"] != result.official["G1-6"]
    assert set(result.metrics()["official"]) == set(COLUMNS)


def test_subset_flags_agree_with_answer_key(subset_key, answer_key):
    for pid, problem in subset_key.items():
        other = answer_key[pid]
        assert (problem.answer, problem.num_options, problem.has_image, problem.has_context) == (
            other.answer,
            other.num_options,
            other.has_image,
            other.has_context,
        ), pid


def _key():
    return {
        "1": KeyedProblem("1", answer=0, num_options=2, has_image=True, has_context=False),
        "2": KeyedProblem("2", answer=1, num_options=3, has_image=False, has_context=True),
        "3": KeyedProblem("3", answer=2, num_options=3, has_image=False, has_context=False),
    }


def test_every_prediction_format(tmp_path):
    key = _key()
    jsonl = tmp_path / "preds.jsonl"
    jsonl.write_text("".join(json.dumps({"question_id": q, "prompt": "p", "text": t}) + "\n" for q, t in
                             [("1", "A"), ("2", "The answer is B."), ("3", "gibberish")]))
    as_dict = tmp_path / "dict.json"
    as_dict.write_text(json.dumps({"results": {"1": 0, "2": 1, "3": 7}}))
    as_list = tmp_path / "list.json"
    as_list.write_text(json.dumps({"results": [["1", 0], ["2", 1], ["3", -1]], "outputs": [["1", "A"], ["2", "B"], ["3", "?"]]}))
    for path, source in ((jsonl, "auto"), (as_dict, "auto"), (as_list, "auto"), (as_list, "outputs")):
        result = score(key, read_scienceqa_predictions(path, source))
        assert (result.correct, len(result.failures)) == (2, 1), (path, source)
        assert result.failures[0]["question_id"] == "3"
        metrics = result.metrics()
        assert set(metrics) == {"count", "correct", "parse_failures", "official", "scitune"}
        assert metrics["official"]["TXT"] == 100.0 and metrics["official"]["NO"] == 0.0
        assert metrics["scitune"]["TXT"] == 50.0 and metrics["scitune"]["NO"] == 50.0


def test_missing_prediction_is_an_error(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"results": {"1": 0}}))
    with pytest.raises(ScituneError, match="no prediction for 2 of 3"):
        score(_key(), read_scienceqa_predictions(path), source=str(path))


def test_bad_prediction_files(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question_id": "1", "text": "A"}\nnot json\n')
    with pytest.raises(ScituneError, match=r"bad.jsonl:2"):
        read_scienceqa_predictions(bad)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"acc": 1}))
    with pytest.raises(ScituneError, match="results"):
        read_scienceqa_predictions(other)


def test_option_count():
    assert option_count("Q?\nA. x\nB. y") == 2
    assert option_count("Which closing?\nA. See you,\nJanet\nB. See You,\nJanet") == 2
    assert option_count("no options") == 0


def test_gpt3_raw_outputs(answer_key, sqa):
    """Parsing GPT-3's raw outputs instead of its stored indices: the 243 empty outputs are parse
    failures (the stored indices for them were random picks), and problem 19351, which says
    "The answer is B." twice, reads B (ScienceQA's scorer wanted exactly one match and stored a
    random 0)."""
    outputs = read_scienceqa_predictions(sqa / "predictions/gpt3_cot_QCM-ALE_test.json", source="outputs")
    stored = read_scienceqa_predictions(sqa / "predictions/gpt3_cot_QCM-ALE_test.json", source="results")
    result = score(answer_key, outputs)
    assert len(result.failures) == 243
    assert all(not f["text"].strip() for f in result.failures)
    rows = {r["question_id"]: r for r in result.rows}
    assert rows["19351"]["prediction"] == 1 and stored["19351"] == 0
    disagreeing = [pid for pid, r in rows.items() if r["prediction"] is not None and r["prediction"] != stored[pid]]
    assert disagreeing == ["19351"]


@pytest.mark.parametrize("fmt", ["CQM-A", "QCM-A", "QCM-LEA", "QCM-LEPA"])
def test_answer_key_from_any_llava_layout_agrees_with_problems(subset_key, sqa, fmt):
    from scitune.data.scienceqa import build_scienceqa_samples, read_problems
    from scitune.eval.tasks.scienceqa.scoring import keyed_from_conversations

    samples = build_scienceqa_samples(read_problems(sqa / "problems_subset.json", split="test"), format=fmt)
    key = keyed_from_conversations(samples, source=fmt)
    assert set(key) == set(subset_key)
    for pid, problem in subset_key.items():
        other = key[pid]
        assert (other.answer, other.num_options, other.has_image, other.has_context) == (
            problem.answer, problem.num_options, problem.has_image, problem.has_context,
        ), (fmt, pid)
