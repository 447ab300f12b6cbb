import json

import pytest

from scitune.data.sample import image_paths, make_sample, read_samples, write_samples
from scitune.errors import ScituneError


def test_json_and_jsonl_round_trip(tmp_path):
    samples = [
        make_sample("1", "<image>\nWhat is this?", "A graph plot.", "a/1.png"),
        make_sample("2", "Question without image", "Answer \u2014 with a dash"),
        {"id": "3", "image": ["x.png", "y.png"], "extra": {"kept": True},
         "conversations": [{"from": "human", "value": "<image>\n<image>\nCompare"}, {"from": "gpt", "value": "Same."}]},
    ]
    for name in ("s.json", "s.jsonl"):
        path = write_samples(samples, tmp_path / name)
        assert read_samples(path) == samples
    assert len((tmp_path / "s.jsonl").read_text().splitlines()) == 3
    assert json.loads((tmp_path / "s.json").read_text())[2]["extra"] == {"kept": True}
    assert "image" not in samples[1]
    assert image_paths(samples[0]) == ["a/1.png"] and image_paths(samples[1]) == [] and image_paths(samples[2]) == ["x.png", "y.png"]


def test_reads_llava_published_file(shared_data):
    samples = read_samples(shared_data / "scienceqa" / "llava_test_CQM-A.json")
    assert len(samples) == 4241
    assert samples[0]["conversations"][0]["from"] == "human"


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("a.json", "{not json", "not valid JSON"),
        ("b.json", '{"id": 1}', "expected a JSON list"),
        ("c.jsonl", '{"id": 1}\n[1, 2\n', "c.jsonl:2"),
        ("d.json", "[1]", "record 0"),
        ("e.txt", "[]", "expected a .json or .jsonl"),
    ],
)
def test_bad_files_name_the_file_and_reason(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ScituneError, match=message):
        read_samples(path)
