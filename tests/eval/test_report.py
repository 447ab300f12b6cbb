"""The demo's HTML report, rendered from a small synthetic summary: every section is there with
its numbers, HTML in a prompt or an answer is shown as text, and the images are inlined."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser

import pytest
from PIL import Image

from scitune.errors import ScituneError
from scitune.eval.report import CATEGORIES, render_report, write_report


def _metrics(avg: float, fig_acc: float, bleu: float, correct: int) -> dict:
    return {
        "scienceqa": {"official": {**{c: avg + i for i, c in enumerate(CATEGORIES)}, "Avg": avg}},
        "figure_type": {"accuracy": fig_acc, "macro_f1": 0.4567},
        "captions": {"metrics": {"BLEU-4": bleu, "ROUGE-L": 0.3333}},
        "scienceqa_by_question_kind": {
            "2 options": {"count": 6, "chance": 50.0, "accuracy": 66.6667},
            "4 options": {"count": 4, "chance": 25.0, "accuracy": 25.0},
        },
        "scienceqa_vs_chance": {"correct": correct, "count": 10, "p_value": 0.01234},
    }


@pytest.fixture
def inputs(tmp_path):
    image = tmp_path / "fig.png"
    Image.new("RGB", (8, 6), (200, 30, 30)).save(image)
    summary = {
        "preset": "tiny", "seed": 3, "quick": True, "size": {"figures": 40},
        "with_align": _metrics(61.25, 80.0, 0.0421, 7),
        "without_align": _metrics(55.5, 70.0, 0.0305, 5),
        "timings_s": {"1/7 corpus": 12.34, "total": 99.0},
        "counts": {"align": 321, "instruct": 654},
    }
    confusion = {"matrix": [[3, 1], [0, 2]], "predictions": ["Bar Chart", "Graph Plot"], "references": ["Bar Chart", "Graph Plot"]}
    example = {
        "image": str(image),
        "prompt": "<image>\nIs <b>x</b> & y bigger?",
        "answer": "<script>alert(1)</script>",
        "reference": "A <i>ref</i>",
    }
    results = {"with_align": {"confusion": confusion, "examples": [example]},
               "without_align": {"confusion": confusion, "examples": []}}
    curves = {"LM pretrain": [3.0, 2.0, 1.5], "align": [2.0, 1.0], "empty": []}
    return summary, results, curves, image


class _Collect(HTMLParser):
    """Headings, table cells and image sources of the page, as a browser would read them."""

    def __init__(self):
        super().__init__()
        self.headings, self.cells, self.images, self._tag = [], [], [], None

    def handle_starttag(self, tag, attrs):
        self._tag = tag
        if tag == "img":
            self.images.append(dict(attrs)["src"])

    def handle_data(self, data):
        if self._tag in ("h1", "h2", "h3"):
            self.headings.append(data.strip())
        elif self._tag in ("td", "th"):
            self.cells.append(data.strip())

    def handle_endtag(self, tag):
        self._tag = None


def test_report_sections_escaping_and_images(inputs, tmp_path):
    summary, results, curves, image = inputs
    path = write_report(tmp_path / "out" / "report.html", summary, results, curves)
    page = path.read_text(encoding="utf-8")
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]  # written atomically, no temp left

    parsed = _Collect()
    parsed.feed(page)
    assert parsed.headings == [
        "scitune demo",
        "The ablation: does stage 1 (concept alignment) help?",
        "ScienceQA-style accuracy by category (official definitions)",
        "By question kind, with chance",
        "Loss curves",
        "Figure type: confusion matrices (test split)",
        "Test figures and the model's answers (stage 1 + stage 2)",
        "Timings (seconds)",
        "Data",
    ]
    # ablation row values, category table, per-kind chance, timings and data counts
    for cell in ("stage 1 + stage 2 (SciTune)", "stage 2 only (ablation)", "61.25", "55.50", "80.00", "0.457",
                 "0.0421", "0.0305", "0.3333", "G7-12", "68.25", "65.25", "2 options", "50.00", "66.67", "12.3", "99.0",
                 "321", "654"):
        assert cell in parsed.cells, cell
    assert "ScienceQA accuracy higher with stage 1 (61.25 vs 55.50)" in page  # the verdict
    assert "Chance (mean over the test questions): 40.00" in page  # (6 x 50 + 4 x 25) / 10
    assert "7/10 right, P(as many by guessing) = 0.012" in page and "5/10 right" in page
    assert "Preset <b>tiny</b>, seed 3, quick size: figures=40." in page

    # what the model wrote is text, never markup
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Is &lt;b&gt;x&lt;/b&gt; &amp; y bigger?" in page and "&lt;image&gt;" not in page
    assert "A &lt;i&gt;ref&lt;/i&gt;" in page

    # loss curves (one image), two confusion matrices, the example figure with its exact bytes
    assert len(parsed.images) == 4 and all(src.startswith("data:image/png;base64,") for src in parsed.images)
    assert parsed.images[-1] == "data:image/png;base64," + base64.b64encode(image.read_bytes()).decode()
    for src in parsed.images[:3]:
        assert base64.b64decode(src.split(",", 1)[1]).startswith(b"\x89PNG")


def test_report_without_losses_or_examples(inputs):
    summary, results, _, _ = inputs
    results["with_align"]["examples"] = []
    page = render_report(summary, results, {"align": []})
    assert "No losses were recorded." in page
    assert len(re.findall(r"data:image/png;base64,", page)) == 2  # the two confusion matrices


def test_report_refuses_a_non_image_example(inputs, tmp_path):
    summary, results, curves, _ = inputs
    results["with_align"]["examples"][0]["image"] = str(tmp_path / "notes.txt")
    with pytest.raises(ScituneError, match="notes.txt: not an image"):
        render_report(summary, results, curves)
