import json
import shutil

import pytest

from scitune.cli import main
from scitune.data.sample import read_samples
from scitune.data.scicap import build_instructions, describe_target, read_scicap, replace_figure_refs
from scitune.data.validate import validate_samples
from scitune.errors import ScituneError

FIGURE = "1001.0025v1-Figure2-1"


@pytest.fixture(scope="module")
def scicap(shared_data):
    return shared_data / "scicap"


@pytest.fixture(scope="module")
def original(scicap):
    return json.loads((scicap / f"{FIGURE}.json").read_text())


def challenge_file(tmp_path, original):
    """The challenge layout for the real figure plus a second one, annotations in reverse order."""
    data = {
        "images": [
            {"id": 7, "file_name": f"{FIGURE}.png", "figure_type": original["figure-type"], "ocr": original["Img-text"]},
            {"id": 3, "file_name": "other.png", "figure_type": "Bar Chart", "ocr": ["0", "10"]},
        ],
        "annotations": [
            {"image_id": 3, "id": 1, "caption": "Fig. 5. Counts per year.", "caption_no_index": "Counts per year.",
             "paragraph": ["As Fig. 5 shows, counts grow."], "mention": ["Fig. 5 shows counts."]},
            {"image_id": 7, "id": 2, "caption": original["0-originally-extracted"],
             "caption_no_index": original["0-originally-extracted"].split(": ", 1)[1],
             "paragraph": ["We study replay attacks."], "mention": [["Figure 2 shows the impact."], ["See Figure 2."]]},
        ],
    }
    path = tmp_path / "challenge.json"
    path.write_text(json.dumps(data))
    return path


def test_original_record(scicap, original):
    (record,) = read_scicap(scicap / f"{FIGURE}.json")
    assert record["id"] == FIGURE and record["image"] == f"{FIGURE}.png"
    assert record["figure_type"] == "Graph Plot"
    assert record["caption"] == original["0-originally-extracted"]
    assert record["caption_no_index"].startswith("Impact of the replay attack")
    assert record["ocr"] == original["Img-text"]


def test_challenge_layout_joins_on_image_id(tmp_path, original):
    records = {r["id"]: r for r in read_scicap(challenge_file(tmp_path, original))}
    assert records["7"]["mentions"] == ["Figure 2 shows the impact.", "See Figure 2."]  # per-paragraph lists, flattened
    assert records["7"]["caption"] == original["0-originally-extracted"]
    assert records["3"]["figure_type"] == "Bar Chart" and records["3"]["mentions"] == ["Fig. 5 shows counts."]


def test_challenge_layout_refuses_dangling_annotation(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.png"}], "annotations": [{"image_id": 2}]}))
    with pytest.raises(ScituneError, match="image_id 2, which is not in images"):
        read_scicap(path)
    path.write_text(json.dumps({"figures": []}))
    with pytest.raises(ScituneError, match="not a SciCap file"):
        read_scicap(path)


def test_describe_target_ctom_default(tmp_path, original):
    record = {r["id"]: r for r in read_scicap(challenge_file(tmp_path, original))}["7"]
    lines = describe_target(record).split("\n")
    assert lines[0].startswith("Graph Plot: Impact of the replay attack")
    assert "Figure" not in lines[0] and "Graph Plot. 2" not in lines[0] and "Graph Plot 2" not in lines[0]
    assert lines[1] == " ".join(original["Img-text"])
    assert lines[2] == "Figure 2 shows the impact. See Figure 2."  # mentions are kept as written
    assert len(lines) == 3  # paragraphs are not in CTOM


def test_describe_fields_and_figure_word_option(tmp_path, original):
    record = {r["id"]: r for r in read_scicap(challenge_file(tmp_path, original))}["3"]
    assert describe_target(record, ["caption", "type"]) == "Bar Chart: Counts per year."
    assert describe_target(record, ["caption", "type"], replace_figure_word=False) == "Bar Chart Fig. 5. Counts per year."
    assert describe_target(record, ["caption"]) == "Counts per year."
    assert describe_target(record, ["type", "paragraph"]) == "Bar Chart\nAs Fig. 5 shows, counts grow."
    with pytest.raises(ScituneError, match="unknown SciCap field"):
        describe_target(record, ["colour"])


def test_replace_figure_refs_whole():
    assert replace_figure_refs("Figure 3: A. See Fig. 4b and FIG. 2; Figures vary.", "Table") == (
        "Table: A. See Table and Table; Figures vary."
    )


def test_tasks_and_seeded_phrasing(tmp_path, original):
    records = read_scicap(challenge_file(tmp_path, original))
    types = build_instructions(records, task="figure-type", seed=1)
    assert [s["conversations"][1]["value"] for s in types] == ["Graph Plot", "Bar Chart"]
    captions = build_instructions(records, task="caption", seed=1)
    assert captions[1]["conversations"][1]["value"] == "Counts per year."
    assert all(s["conversations"][0]["value"].startswith("<image>\n") for s in types + captions)
    assert len({s["id"] for s in types + captions}) == 4
    # same seed: same phrasings, whatever the order; other seeds: the phrasing changes for some
    again = build_instructions(list(reversed(records)), task="figure-type", seed=1)
    assert {s["id"]: s for s in again} == {s["id"]: s for s in types}
    phrasings = {s["conversations"][0]["value"] for seed in range(20) for s in build_instructions(records, "describe", seed=seed)}
    assert len(phrasings) > 3


def test_missing_field_is_named(tmp_path):
    with pytest.raises(ScituneError, match="figure 'x': no figure type"):
        build_instructions([{"id": "x", "image": "x.png", "caption_no_index": "c", "figure_type": None}], task="figure-type")


def test_cli_scicap_builds_valid_file(tmp_path, scicap):
    out = tmp_path / "align.json"
    assert main(["data", "scicap", "--input", str(scicap / f"{FIGURE}.json"), "--images", str(scicap), "--out", str(out)]) == 0
    (sample,) = read_samples(out)
    assert sample["image"] == f"{FIGURE}.png"
    assert validate_samples([sample], scicap).ok
    folder = tmp_path / "captions"
    folder.mkdir()
    shutil.copy(scicap / f"{FIGURE}.json", folder)
    (tmp_path / "no-images").mkdir()
    assert main(["data", "scicap", "--input", str(folder), "--images", str(tmp_path / "no-images"), "--out", str(out),
                 "--task", "caption", "--overwrite"]) == 1


def test_figure_type_choice_questions(tmp_path):
    records = [{"id": str(i), "image": f"{i}.png", "figure_type": t}
               for i, t in enumerate(["Graph Plot", "Bar Chart", "Equation", "Scatterplot", "Node Diagram", "Table"] * 3)]
    samples = build_instructions(records, task="figure-type-choice", seed=1)
    assert len(samples) == len(records)
    letters = set()
    for record, sample in zip(records, samples):
        lines = sample["conversations"][0]["value"].split("\n")
        assert lines[0] == "<image>" and lines[1].endswith("?")
        options = {l[0]: l[3:] for l in lines[2:]}
        assert len(options) == 4 and len(set(options.values())) == 4 and list(options) == list("ABCD")
        letter = sample["conversations"][1]["value"]
        assert options[letter] == record["figure_type"]
        letters.add(letter)
        assert sample["image"] == record["image"]
    assert len(letters) >= 3  # the answer's position varies
    assert build_instructions(records, task="figure-type-choice", seed=1) == samples
    with pytest.raises(ScituneError, match="at least two figure types"):
        build_instructions(records[:1], task="figure-type-choice")
