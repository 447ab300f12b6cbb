"""Whole-page PDFs the tests write with fpdf2: two columns, an embedded image and a vector
drawing, a caption with no figure, mentions across columns, and the PDF-bomb guard."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from scitune.data.ingest import read_paper
from scitune.data.ingest.limits import Limits
from scitune.data.ingest.pdf import render_pdf_figure
from scitune.errors import ScituneError
from tests.data.ingest.conftest import draw_figure

LEFT, RIGHT, COL = 54.0, 315.0, 243.0


def two_column_paper(page, path: Path) -> Path:
    page.new_page()
    page.text(LEFT, 40, 504, "A Two Column Paper About Energy")
    # left column: body, then a vector drawing with its caption, then more body
    y = page.text(LEFT, 70, COL, "We measured the energy of the device over four days. The trend in Figure 1 "
                                 "is clear and it rises. Nothing else is said in this sentence.")
    page.drawing(LEFT + 40, y + 10, 160, 110)
    y = page.text(LEFT, y + 130, COL, "Figure 1: Energy over four days, drawn as vectors.")
    page.text(LEFT, y + 20, COL, "The second part of the study compares the bars of Fig. 2 with the line. "
                                 "This paragraph ends the left column")
    # right column: continues the paragraph, then an image figure with a caption below
    y = page.text(RIGHT, 70, COL, "without a full stop, and the reader follows it here. Figures 1 and 2 agree.")
    page.image(RIGHT + 40, y + 10, 160, 120, draw_figure("bar", "png"))
    y = page.text(RIGHT, y + 140, COL, "Fig. 2. Bars of three groups from the embedded image.")
    page.text(RIGHT, y + 20, COL, "Figure 3: A caption whose figure was lost in typesetting.")
    return page.save(path)


def test_two_column_pdf(page, tmp_path: Path):
    paper = read_paper("pdf", two_column_paper(page, tmp_path / "paper.pdf"), "paper")
    figures = {f.number: f for f in paper.figures}
    assert sorted(figures) == ["1", "2"]
    one, two = figures["1"], figures["2"]
    assert one.caption == "Figure 1: Energy over four days, drawn as vectors."
    assert one.caption_no_index == "Energy over four days, drawn as vectors."
    assert two.caption_no_index == "Bars of three groups from the embedded image."
    # mentions: from both columns; the paragraph broken across the columns is read as one
    assert one.mentions[0] == ["The trend in Figure 1 is clear and it rises."]
    assert ["Figures 1 and 2 agree."] in [m[-1:] for m in one.mentions]
    continued = [p for p in two.paragraphs if "left column without a full stop" in p]
    assert continued and "Fig. 2" in continued[0]
    # regions: the vector drawing (left column, page 1) and the image (right column)
    assert one.provenance["page"] == 1 and one.provenance["box"][2] < 306
    assert two.provenance["box"][0] > 306
    from PIL import Image

    image = Image.open(io.BytesIO(two.png))
    assert abs(image.width / image.height - 160 / 120) < 0.1
    # what could not be paired is reported, not guessed
    assert [u["where"].split(": ")[-1] for u in paper.unpaired] == ["Figure 3"]


def test_pdf_figure_file_has_a_text_layer(tmp_path: Path):
    path = tmp_path / "fig.pdf"
    path.write_bytes(draw_figure("line", "pdf", label="Voltage"))
    image, words = render_pdf_figure(path, dpi=72)
    assert image.size == (144, 115) or abs(image.width - 144) <= 1
    assert "Voltage" in words


def test_pdf_bomb_guard(page, tmp_path: Path):
    for _ in range(3):
        page.new_page()
        page.text(LEFT, 60, COL, "Filler page.")
    path = page.save(tmp_path / "long.pdf")
    with pytest.raises(ScituneError, match="3 pages, more than the limit of 2"):
        read_paper("pdf", path, "long", limits=Limits(pdf_pages=2))
    with pytest.raises(ScituneError, match="long.pdf: PDF is .*, over the limit of 100 bytes"):
        read_paper("pdf", path, "long", limits=Limits(pdf_bytes=100))
    from fpdf import FPDF

    huge = FPDF(unit="pt", format=(20_000, 600))
    huge.add_page()
    (tmp_path / "huge.pdf").write_bytes(bytes(huge.output()))
    with pytest.raises(ScituneError, match="points, more than"):
        read_paper("pdf", tmp_path / "huge.pdf", "huge")
    (tmp_path / "junk.pdf").write_bytes(b"%PDF-1.4 not really")
    with pytest.raises(ScituneError, match="not a readable PDF"):
        read_paper("pdf", tmp_path / "junk.pdf", "junk")


def test_render_pixels_are_bounded(tmp_path: Path):
    path = tmp_path / "fig.pdf"
    path.write_bytes(draw_figure("line", "pdf"))
    image, _ = render_pdf_figure(path, dpi=600, limits=Limits(render_pixels=20_000))
    assert image.width * image.height <= 20_500


def test_glyph_markers_are_not_figure_text(tmp_path: Path):
    """A scatter drawn with a font's bullet as its marker (as R does) has one text run per point;
    only the lines with a letter or a digit are the figure's text, and their number is bounded."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context({"pdf.fonttype": 42}):
        fig = Figure(figsize=(3, 3))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        for k in range(300):
            ax.text((k * 37 % 100) / 100, (k * 61 % 100) / 100, "\u25cf", fontsize=4)
        ax.set_xlabel("tSNE_1")
        ax.set_ylabel("tSNE_2")
        buffer = io.BytesIO()
        fig.savefig(buffer, format="pdf")
    path = tmp_path / "scatter.pdf"
    path.write_bytes(buffer.getvalue())
    _, words = render_pdf_figure(path, dpi=50)
    assert "tSNE_1" in words and "tSNE_2" in words
    assert all(any(c.isalnum() for c in w) for w in words) and len(words) < 30
    _, few = render_pdf_figure(path, dpi=50, limits=Limits(ocr_lines=3))
    assert few == words[:3]
