import io
import json
import shutil

import pytest
from PIL import Image

from scitune.cli import main
from scitune.data.arxivcap import build_arxivcap_samples, export_images, read_arxivcap
from scitune.data.sample import read_samples
from scitune.data.validate import validate_samples
from scitune.data.vistext import build_vistext_samples, read_vistext
from scitune.errors import ScituneError


@pytest.fixture()
def vistext(shared_data, tmp_path):
    """The real records as the release ships them (a list), without the preview's "..." row, and
    the five real charts filed as images/<img_id>.png for the first five records' charts."""
    data = json.loads((shared_data / "vistext" / "records.json").read_text())
    records = [r for key, r in data.items() if key != "..."]
    (tmp_path / "data_train.json").write_text(json.dumps(records))
    images = tmp_path / "images"
    images.mkdir()
    img_ids = list(dict.fromkeys(r["img_id"] for r in records))[:5]
    for i, img_id in enumerate(img_ids):
        shutil.copy(shared_data / "vistext" / f"chart{i}.png", images / f"{img_id}.png")
    return tmp_path / "data_train.json", images, records


def test_vistext_levels(vistext):
    path, _, records = vistext
    read = read_vistext(path)
    assert read == records and len(read) == 10
    l1 = build_vistext_samples(read, level="L1")
    assert [s["conversations"][1]["value"] for s in l1] == [r["caption_L1"] for r in records]
    both = build_vistext_samples(read, level="both", seed=3)
    assert len(both) == 20 and both[1]["id"] == f"{records[0]['caption_id']}-L2L3"
    assert both[1]["conversations"][1]["value"] == records[0]["caption_L2L3"]
    assert both[0]["image"] == f"{records[0]['img_id']}.png"


def test_vistext_cli_and_validation(vistext, tmp_path):
    path, images, records = vistext
    out = tmp_path / "vistext.json"
    # the last records' charts are not among the five real images: the build reports them
    assert main(["data", "vistext", "--input", str(path), "--images", str(images), "--out", str(out)]) == 1
    samples = read_samples(out)
    report = validate_samples(samples, images)
    missing = {p.id for p in report.problems}
    assert all(p.reason == "image_missing" for p in report.problems)
    with_images = {f"{r['img_id']}.png" for r in records} & {p.name for p in images.iterdir()}
    assert {s["id"] for s in samples if s["image"] not in with_images} == missing
    assert len(missing) < len(samples)


def test_vistext_bad_record(tmp_path):
    path = tmp_path / "v.json"
    path.write_text(json.dumps([{"caption_id": "1_01", "img_id": "1", "caption_L1": "x"}]))
    with pytest.raises(ScituneError, match="record '1_01'.*caption_L2L3"):
        read_vistext(path)


def _png(color) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (12, 8), color).save(buf, format="PNG")
    return buf.getvalue()


PAPER = {
    "src": "arXiv_src_2112_060/2112.08947",
    "arxiv_id": "2112.08947",
    "title": "A paper",
    "abstract": "...",
    "caption_images": [
        {"caption": "Results on both datasets. (a) MNIST. (b) CIFAR.",
         "cil_pairs": [{"sub_caption": "(a) MNIST.", "image_file": "arXiv_src_2112_060/2112.08947_0.jpg"},
                       {"sub_caption": "(b) CIFAR.", "image_file": "arXiv_src_2112_060/2112.08947_1.jpg"}]},
        {"caption": "The model architecture.",
         "cil_pairs": [{"sub_caption": "", "image_file": "arXiv_src_2112_060/2112.08947_2.jpg"}]},
    ],
}


def test_arxivcap_sub_captions_and_whole_caption(tmp_path):
    path = tmp_path / "papers.jsonl"
    path.write_text(json.dumps(PAPER) + "\n")
    figures = read_arxivcap(path)
    assert [f["id"] for f in figures] == ["2112.08947-0-0", "2112.08947-0-1", "2112.08947-1-0"]
    targets = [s["conversations"][1]["value"] for s in build_arxivcap_samples(figures)]
    assert targets == ["(a) MNIST.", "(b) CIFAR.", "The model architecture."]
    whole = [s["conversations"][1]["value"] for s in build_arxivcap_samples(figures, use_sub_caption=False)]
    assert whole[:2] == [PAPER["caption_images"][0]["caption"]] * 2
    assert build_arxivcap_samples(figures)[0]["image"] == "arXiv_src_2112_060/2112.08947_0.jpg"


def test_arxivcap_parquet_with_inline_images(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    paper = json.loads(json.dumps(PAPER))
    for k, pair in enumerate(p for item in paper["caption_images"] for p in item["cil_pairs"]):
        pair["image"] = {"bytes": _png((40 * k, 0, 0)), "path": None}
    pq.write_table(pa.Table.from_pylist([paper]), tmp_path / "arXiv_src_2112_060.parquet")
    out, images = tmp_path / "arxivcap.json", tmp_path / "images"
    assert main(["data", "arxivcap", "--input", str(tmp_path / "arXiv_src_2112_060.parquet"),
                 "--images", str(images), "--out", str(out)]) == 0
    assert validate_samples(read_samples(out), images).ok


def test_arxivcap_export_refuses_escaping_paths(tmp_path):
    figures = [{"id": "p-0-0", "image": "../evil.png", "image_bytes": _png((0, 0, 0))}]
    with pytest.raises(ScituneError, match="escapes the image folder"):
        export_images(figures, tmp_path / "images")
