"""`scitune eval ...` and `scitune predict` end to end (files in, files and a table out)."""

import json

from scitune.cli import main

METRIC_KEYS = {"count", "correct", "parse_failures", "official", "scitune"}
COLUMNS = {"NAT", "SOC", "LAN", "TXT", "IMG", "NO", "G1-6", "G7-12", "Avg"}


def test_eval_scienceqa_predictions_file(shared_data, tmp_path, capsys):
    sqa = shared_data / "scienceqa"
    code = main([
        "eval", "scienceqa", "--answer-key", str(sqa / "llava_test_CQM-A.json"),
        "--predictions", str(sqa / "predictions" / "gpt3_cot_QCM-ALE_test.json"), "--out", str(tmp_path),
    ])
    assert code == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(metrics) == METRIC_KEYS
    assert set(metrics["official"]) == COLUMNS == set(metrics["scitune"])
    assert metrics["official"]["NAT"] is None
    assert round(metrics["official"]["Avg"], 2) == 75.17
    table = capsys.readouterr().out
    assert "75.17" in table and "n/a" in table and "official" in table and "scitune" in table


def test_eval_scienceqa_problems_prints_subject_columns(shared_data, capsys):
    sqa = shared_data / "scienceqa"
    assert main([
        "eval", "scienceqa", "--problems", str(sqa / "problems_subset.json"), "--split", "test",
        "--predictions", str(sqa / "predictions" / "llava_13b_v0_test.json"),
    ]) == 0
    out = capsys.readouterr().out
    assert "n/a" not in out and "320/361 correct" in out


def test_bad_input_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    assert main(["eval", "scienceqa", "--answer-key", str(bad), "--predictions", str(bad)]) == 2
    assert "scitune: error:" in capsys.readouterr().err


def test_eval_scienceqa_with_the_tiny_model(tiny, sqa_records, sqa_images, tmp_path, capsys):
    key = tmp_path / "key.json"
    key.write_text(json.dumps(sqa_records[:6]))
    out = tmp_path / "eval"
    code = main([
        "eval", "scienceqa", "--answer-key", str(key), "--model", str(tiny[2]), "--images", str(sqa_images),
        "--mode", "generate,likelihood", "--batch-size", "4", "--max-new-tokens", "4", "--out", str(out),
    ])
    assert code == 0
    for mode in ("generate", "likelihood"):
        metrics = json.loads((out / mode / "metrics.json").read_text())
        assert set(metrics) == METRIC_KEYS and metrics["count"] == 6
        rows = [json.loads(line) for line in (out / mode / "predictions.jsonl").read_text().splitlines()]
        assert [r["question_id"] for r in rows] == [r["id"] for r in sqa_records[:6]]
        failures = (out / mode / "parse_failures.jsonl").read_text().splitlines()
        assert len(failures) == metrics["parse_failures"]
    likely = [json.loads(line) for line in (out / "likelihood" / "predictions.jsonl").read_text().splitlines()]
    assert all(r["text"] in "ABCDE" and len(r["option_scores"]) >= 2 for r in likely)
    assert json.loads((out / "likelihood" / "metrics.json").read_text())["parse_failures"] == 0
    printed = capsys.readouterr().out
    assert "generate official" in printed and "likelihood scitune" in printed


def test_predict_one_and_batch(tiny, sqa_images, tmp_path, capsys):
    image = sqa_images / "23" / "image.png"
    assert main(["predict", "--model", str(tiny[2]), "--image", str(image), "--max-new-tokens", "4", "What is shown?"]) == 0
    single = capsys.readouterr().out.strip("\n")
    batch = tmp_path / "batch.jsonl"
    batch.write_text(
        json.dumps({"question_id": "q1", "prompt": "What is shown?", "image": "23/image.png"}) + "\n"
        + json.dumps({"question_id": "q2", "prompt": "Name a planet."}) + "\n"
    )
    preds = tmp_path / "preds.jsonl"
    assert main(["predict", "--model", str(tiny[2]), "--batch", str(batch), "--images", str(sqa_images),
                 "--max-new-tokens", "4", "--out", str(preds)]) == 0
    rows = [json.loads(line) for line in preds.read_text().splitlines()]
    assert [r["question_id"] for r in rows] == ["q1", "q2"]
    assert rows[0]["text"] == single  # the same question gives the same answer alone or in a batch


def test_eval_figure_type_files(tmp_path, capsys):
    refs = tmp_path / "refs.json"
    refs.write_text(json.dumps({"1": "Graph Plot", "2": "Table", "3": "Table"}))
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps({"question_id": q, "text": t}) + "\n" for q, t in
                             [("1", "This is a graph plot."), ("2", "A table."), ("3", "unsure")]))
    out = tmp_path / "out"
    assert main(["eval", "figure-type", "--predictions", str(preds), "--references", str(refs), "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["correct"] == 2 and metrics["parse_failures"] == 1
    assert (out / "confusion_matrix.png").stat().st_size > 0
    assert json.loads((out / "confusion_matrix.json").read_text())["matrix"] == [[1, 0, 0], [0, 1, 1]]


def test_eval_captions_pairs(tmp_path, capsys):
    pairs = tmp_path / "pairs.json"
    pairs.write_text(json.dumps({"hypo": ["the loss of the model .", "a bar chart ."],
                                 "gold": ["the training loss of the model .", "bar chart of counts ."]}))
    out = tmp_path / "out"
    assert main(["eval", "captions", "--pairs", str(pairs), "--no-meteor", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["tokenizer"] == "whitespace" and metrics["metrics"]["BLEU-1"] > 0.5
    assert {"ROUGE-L", "CIDEr"} <= set(metrics["metrics"])
    assert "BLEU-4" in capsys.readouterr().out


def test_eval_scienceqa_problems_with_the_tiny_model(tiny, shared_data, sqa_images, tmp_path, capsys):
    problems = json.loads((shared_data / "scienceqa" / "problems_subset.json").read_text())
    chosen = {pid: p for pid, p in problems.items() if p["split"] == "test" and (not p["image"] or pid == "23")}
    chosen = dict(list(chosen.items())[:5])
    assert any(p["image"] for p in chosen.values())
    path = tmp_path / "problems.json"
    path.write_text(json.dumps(chosen))
    out = tmp_path / "eval"
    args = ["eval", "scienceqa", "--problems", str(path), "--model", str(tiny[2]), "--images", str(sqa_images),
            "--max-new-tokens", "4"]
    assert main(args + ["--format", "QCM-A", "--mode", "likelihood", "--out", str(out)]) == 0
    rows = [json.loads(line) for line in (out / "likelihood" / "predictions.jsonl").read_text().splitlines()]
    assert all(r["text"].startswith("The answer is ") for r in rows)  # the format's own answer target
    metrics = json.loads((out / "likelihood" / "metrics.json").read_text())
    assert metrics["parse_failures"] == 0 and metrics["official"]["NAT"] is not None  # subject known here
    # a reasoning format cannot be scored by likelihood: refused before the model runs
    refused = tmp_path / "refused"
    assert main(args + ["--format", "QCM-LEA", "--mode", "generate,likelihood", "--out", str(refused)]) == 2
    assert "answer-only format" in capsys.readouterr().err
    assert not refused.exists()
