"""PDF pages laid out as pdflatex writes them: figures embedded from PDF files as form XObjects,
two columns, a figure* across both columns, subpanels, side-by-side figures, captions above,
figures spilling off the page, rules, line and page numbers, body text right next to a figure."""

from __future__ import annotations

import io
from pathlib import Path

from scitune.data.ingest import read_paper
from scitune.data.ingest.pdf_mentions import CAPTION, referenced_numbers
from tests.data.ingest.conftest import embed_pdf

LEFT, RIGHT, COL, MIDDLE = 54.0, 315.0, 243.0, 306.0
PAGE_W, PAGE_H = 612.0, 792.0


def plot(xlabel: str, ylabel: str = "Signal", points: int = 0, spill: bool = False, size=(3.0, 2.2)) -> bytes:
    """A matplotlib figure saved as a one-page PDF with a text layer (TrueType fonts)."""
    import matplotlib
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context({"pdf.fonttype": 42}):
        fig = Figure(figsize=size)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        ax.plot([0, 1, 2, 3], [1, 3, 2, 4])
        if points:
            xy = np.random.default_rng(0).normal(size=(points, 2))
            ax.scatter(xy[:, 0], xy[:, 1], s=1)
        if spill:
            ax.plot([-50, 50], [-50, 50])  # far outside the axes: clipped when drawn
            ax.set_xlim(-3, 3)
            ax.set_ylim(-3, 3)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="pdf")
    return buffer.getvalue()


def furniture(page, lines: int = 30) -> None:
    """What a journal page carries besides the paper: a running header, line numbers in the
    margin, a page number."""
    page.text(LEFT, 30, 504, "Journal of Reproducible Tests, Volume 7")
    for k in range(lines):
        page.text(24, 60 + 22 * k, 26, str(100 + k))
    page.text(300, 760, 20, "3")
    with page.pdf.rotation(90, 18, 500):  # arXiv's stamp, sideways in the margin
        page.pdf.text(18, 500, "arXiv:2401.00001v1 [cs.LG] 1 Jan 2024")


def figures_of(path: Path):
    paper = read_paper("pdf", path, "paper")
    return paper, {f.number: f for f in paper.figures}


def assert_inside(box, left: float, right: float) -> None:
    assert 0 <= box[0] and box[2] <= PAGE_W and 0 <= box[1] and box[3] <= PAGE_H, box
    assert left - 1 <= box[0] and box[2] <= right + 1, (box, left, right)


def test_two_column_page_with_embedded_pdf_figures(page, tmp_path: Path):
    page.new_page()
    furniture(page)
    page.text(LEFT, 60, COL, "We study two devices. The knee of the curve, as shown in Fig. 2(b), moves with "
                             "the temperature. This sentence names no figure.")
    page.text(LEFT, 280, COL, "Figure 1: Current against voltage for the first device.")
    page.text(LEFT, 320, COL, "Figures 1 and 2 agree with each other. The later plots in Figs. 2-3 repeat it. "
                              "Nothing more is said here.")
    page.pdf.set_line_width(0.5)
    page.pdf.line(LEFT, 700, LEFT + 120, 700)  # a footnote rule: not a figure
    page.text(LEFT, 704, COL, "1 A footnote under the rule.")
    # right column: a narrow figure with body text set right beside it (wrapfigure)
    page.text(RIGHT, 60, COL, "The right column starts with plain body text that cites nothing at all.")
    page.text(RIGHT + 146, 100, 97, "Text that wraps beside the second figure and stays body text.")
    page.text(RIGHT, 215, 140, "Fig. 2. Temperature over time.")
    page.text(RIGHT, 250, COL, "More text follows the second figure and closes the page.")
    path = page.save(tmp_path / "paper.pdf")
    embed_pdf(path, [(0, plot("Voltage (V)", "Current"), LEFT + 20, 110, 200, 160),
                     (0, plot("Time (s)", "Heat", size=(2.0, 1.5)), RIGHT, 100, 140, 105)])
    paper, figs = figures_of(path)
    assert sorted(figs) == ["1", "2"], paper.unpaired
    one, two = figs["1"], figs["2"]
    assert one.caption == "Figure 1: Current against voltage for the first device."
    assert two.caption_no_index == "Temperature over time."
    assert_inside(one.provenance["box"], 0, MIDDLE)
    assert_inside(two.provenance["box"], MIDDLE, PAGE_W)
    # the figure's text is its own labels, never the body text beside it or the line numbers
    assert "Voltage (V)" in one.ocr and "Current" in one.ocr
    assert "Time (s)" in two.ocr and "Heat" in two.ocr
    assert not [t for t in one.ocr + two.ocr if "wraps" in t or "beside" in t or t.isdigit() and len(t) == 3]
    # mentions by the number they name: "Fig. 2(b)" and the range "Figs. 2-3" belong to figure 2
    assert one.mentions == [["Figures 1 and 2 agree with each other."]]
    flat = [s for m in two.mentions for s in m]
    assert "The knee of the curve, as shown in Fig. 2(b), moves with the temperature." in flat
    assert "The later plots in Figs. 2-3 repeat it." in flat and "Figures 1 and 2 agree with each other." in flat
    assert not any("Figs. 2-3" in s for m in one.mentions for s in m)
    # the body keeps the wrapped text; line and page numbers do not enter it
    assert one.paragraphs == ["Figures 1 and 2 agree with each other. The later plots in Figs. 2-3 repeat it. "
                              "Nothing more is said here."]
    assert [u for u in paper.unpaired if u["what"] == "drawing"] == []  # the rule is not a figure
    assert not [p for f in paper.figures for p in f.paragraphs if "arXiv" in p]


def test_figure_across_both_columns_with_subpanels(page, tmp_path: Path):
    page.new_page()
    caption = ("Figure 3: A figure set across both columns: panel (a) shows the loss and panel (b) the accuracy of "
               "every model, and the caption runs over the full width of the page.")
    y = page.text(LEFT, 250, 504, caption)
    page.text(LEFT, y + 14, COL, "The left column cites Figure 3 once and goes on with its own business.")
    page.text(RIGHT, y + 14, COL, "The right column has its own text. It says nothing of figures.")
    path = page.save(tmp_path / "wide.pdf")
    # two panels with a 40 point gap, wider than the clustering gap: still one figure
    embed_pdf(path, [(0, plot("Epoch", "Loss"), LEFT + 10, 60, 220, 180),
                     (0, plot("Epoch", "Accuracy"), LEFT + 270, 60, 220, 180)])
    paper, figs = figures_of(path)
    assert sorted(figs) == ["3"], paper.unpaired
    three = figs["3"]
    assert three.caption == caption
    box = three.provenance["box"]
    assert_inside(box, 0, PAGE_W)
    assert box[0] < LEFT + 20 and box[2] > LEFT + 480  # both panels
    assert "Loss" in three.ocr and "Accuracy" in three.ocr
    assert three.mentions == [["The left column cites Figure 3 once and goes on with its own business."]]


def test_side_by_side_figures_and_caption_above(page, tmp_path: Path):
    page.new_page()
    # two minipages in the left column, each with its own caption
    page.text(LEFT, 60, COL, "Body text of the left column opens the page and cites Figure 5 and Figure 4.")
    page.text(LEFT, 200, 110, "Figure 4: The left panel.")
    page.text(LEFT + 130, 200, 110, "Figure 5: The right panel.")
    page.text(LEFT, 240, COL, "Body text follows both of the small figures.")
    # right column: a caption set above its figure
    page.text(RIGHT, 60, COL, "The right column opens with body text, then a figure whose caption is on top.")
    page.text(RIGHT, 100, COL, "Figure 6: A caption above its figure.")
    page.text(RIGHT, 290, COL, "Body text under the figure.")
    path = page.save(tmp_path / "side.pdf")
    embed_pdf(path, [(0, plot("Left x", size=(2, 1.6)), LEFT, 90, 110, 100),
                     (0, plot("Right x", size=(2, 1.6)), LEFT + 130, 90, 110, 100),
                     (0, plot("Below x", size=(3, 2)), RIGHT + 20, 120, 200, 160)])
    paper, figs = figures_of(path)
    assert sorted(figs) == ["4", "5", "6"], paper.unpaired
    four, five, six = figs["4"].provenance["box"], figs["5"].provenance["box"], figs["6"].provenance["box"]
    assert four[2] <= five[0]  # each caption took the panel above it, not both
    assert "Left x" in figs["4"].ocr and "Right x" not in figs["4"].ocr
    assert "Right x" in figs["5"].ocr and "Left x" not in figs["5"].ocr
    assert_inside(six, MIDDLE, PAGE_W)
    assert PAGE_H - six[3] >= 115 and "Below x" in figs["6"].ocr
    assert figs["6"].caption_no_index == "A caption above its figure."


def test_region_spilling_off_the_page_and_a_dense_scatter(page, tmp_path: Path):
    page.new_page()
    page.text(LEFT, 60, 504, "A one-column page. The scatter in Figure 7 has many points.")
    page.text(LEFT, 330, 504, "Figure 7: Five thousand points and a line that leaves the axes.")
    page.text(LEFT, 370, 504, "Closing text of the page.")
    path = page.save(tmp_path / "spill.pdf")
    # placed so that its right part lies beyond the page edge
    embed_pdf(path, [(0, plot("Component 1", "Component 2", points=5000, spill=True), 380, 90, 300, 230)])
    paper, figs = figures_of(path)
    assert sorted(figs) == ["7"], paper.unpaired
    box = figs["7"].provenance["box"]
    assert_inside(box, 370, PAGE_W)
    from PIL import Image

    image = Image.open(io.BytesIO(figs["7"].png))
    dpi = figs["7"].provenance["dpi"]
    assert abs(image.width - (box[2] - box[0]) * dpi / 72) <= 2
    assert "Component 2" in figs["7"].ocr
    assert [u for u in paper.unpaired if u["what"] == "drawing"] == []  # the points made one region


def test_caption_labels_and_references():
    assert [CAPTION.match(t).group(1) for t in ("FIG. 3. Text", "Figure S1: Text", "Fig. 3.1: Text", "Figure 12 | Text")] \
        == ["3", "S1", "3.1", "12"]
    assert CAPTION.match("Figure 3 shows the trend.") is None
    assert CAPTION.match("Fig. 4 Distribution of the errors").group(1) == "4"  # Springer: no punctuation
    assert CAPTION.sub("", "Fig. 4 Distribution of the errors") == "Distribution of the errors"
    assert referenced_numbers("unlike Supplementary Fig. 3, Fig. 4 shows it") == {"4"}
    assert referenced_numbers("as shown in Fig. 2(b), it rises") == {"2"}
    assert referenced_numbers("Figures 2 and 3 agree") == {"2", "3"}
    assert referenced_numbers("see Figs. 2-4 and Fig. 10") == {"2", "3", "4", "10"}
    assert referenced_numbers("Figs. S1\u2013S3 hold the rest") == {"S1", "S2", "S3"}
    assert referenced_numbers("Figure 1(a,b) and Fig. 5a") == {"1", "5"}
    assert referenced_numbers("the figure in Table 2 and Eq. 3") == set()
    assert referenced_numbers("as figure 5 shows, and fig. 6 too") == {"5", "6"}
    assert CAPTION.match("Figure A.1: In the appendix").group(1) == "A.1"
    assert referenced_numbers("Figures A1-A3 and Fig. B.2") == {"A1", "A2", "A3", "B.2"}
    assert referenced_numbers("the configuration 3 and prefigure 4") == set()


def test_clustering_joins_what_lies_within_the_gap():
    import numpy as np

    from scitune.data.ingest.pdf_layout import CLUSTER_GAP, cluster

    page_box = (0.0, 0.0, PAGE_W, PAGE_H)
    # a dense scatter of 20,000 one-point markers in one 200 x 150 area: one region
    rng = np.random.default_rng(0)
    xy = rng.uniform((100, 300), (300, 450), size=(20_000, 2))
    dots = np.hstack([xy, xy + 1.0])
    merged = cluster(dots, page_box)
    assert len(merged) == 1
    assert np.allclose(merged[0], [dots[:, 0].min(), dots[:, 1].min(), dots[:, 2].max(), dots[:, 3].max()])
    # two panels a bit more than the gap apart stay two; a chain of boxes each within the gap is one
    panels = np.array([[50, 50, 150, 150], [150 + CLUSTER_GAP + 3, 50, 250, 150]], dtype=float)
    assert len(cluster(panels, page_box)) == 2
    chain = np.array([[50 + 20 * k, 500, 50 + 20 * k + 16, 510] for k in range(20)], dtype=float)
    assert cluster(chain, page_box).tolist() == [[50.0, 500.0, 446.0, 510.0]]
    # groups whose boxes overlap once grown are merged again (an L of two bars and a dot in its corner)
    l_shape = np.array([[300, 600, 310, 700], [300, 600, 400, 610], [390, 690, 392, 692]], dtype=float)
    assert cluster(l_shape, page_box).tolist() == [[300.0, 600.0, 400.0, 700.0]]


def test_trimmed_graphic_is_its_clipped_part(page, tmp_path: Path):
    """`\\includegraphics[trim=..., clip]`: the graphic is larger than what shows; the region is
    what shows, and text beside it (inside the unclipped graphic) stays body text."""
    from tests.data.ingest.conftest import draw_figure

    page.new_page()
    page.text(LEFT, 60, 504, "A page with a trimmed graphic, cited as Figure 8.")
    with page.pdf.rect_clip(x=154, y=150, w=300, h=200):
        page.image(54, 100, 500, 300, draw_figure("bar", "png"))
    page.text(470, 200, 90, "Side text stays in the body.")
    page.text(154, 360, 300, "Figure 8: Only the clipped part of the graphic.")
    path = page.save(tmp_path / "trim.pdf")
    paper, figs = figures_of(path)
    assert sorted(figs) == ["8"], paper.unpaired
    box = figs["8"].provenance["box"]
    assert abs(box[0] - 154) <= 1 and abs(box[2] - 454) <= 1 and abs(PAGE_H - box[3] - 150) <= 1
    assert not [t for t in figs["8"].ocr if "Side" in t or "body" in t]


def test_floats_stacked_in_one_column(page, tmp_path: Path):
    """Two figures stacked at the top of a column, each with its caption under it: the figure
    just under the first caption belongs to the second caption, 12 points of float gap apart."""
    page.new_page()
    page.text(LEFT, 150, COL, "Figure 9: The upper figure.")
    page.text(LEFT, 302, COL, "Figure 10: The lower figure.")
    page.text(LEFT, 330, COL, "Body text under both floats cites Figure 10 and then Figure 9 in one sentence.")
    page.text(RIGHT, 60, COL, "The right column holds body text only. " * 8)
    path = page.save(tmp_path / "stacked.pdf")
    embed_pdf(path, [(0, plot("Upper x", size=(3, 1.2)), LEFT + 20, 60, 200, 80),
                     (0, plot("Lower x", size=(3, 1.5)), LEFT + 20, 175, 200, 120)])
    paper, figs = figures_of(path)
    assert sorted(figs) == ["10", "9"], paper.unpaired
    assert "Upper x" in figs["9"].ocr and "Lower x" not in figs["9"].ocr
    assert "Lower x" in figs["10"].ocr and "Upper x" not in figs["10"].ocr
    upper, lower = figs["9"].provenance["box"], figs["10"].provenance["box"]
    assert upper[1] > lower[3]  # disjoint, the upper one above
    sentence = "Body text under both floats cites Figure 10 and then Figure 9 in one sentence."
    assert figs["9"].mentions == [[sentence]] and figs["10"].mentions == [[sentence]]


def test_ruled_table_is_not_a_figure(page, tmp_path: Path):
    page.new_page()
    page.text(LEFT, 60, 504, "A page with a table and a figure; the table cites nothing and Figure 11 is drawn below it.")
    page.text(LEFT + 100, 90, 300, "Table 1: Scores of three models.")
    page.pdf.set_line_width(0.6)
    for k in range(4):  # a grid of rules around the cells
        page.pdf.line(LEFT + 100, 110 + 16 * k, LEFT + 400, 110 + 16 * k)
    for x in (LEFT + 100, LEFT + 250, LEFT + 400):
        page.pdf.line(x, 110, x, 158)
    for k, (name, score) in enumerate([("Model A", "91.2"), ("Model B", "92.5"), ("Model C", "93.1")]):
        page.text(LEFT + 105, 112 + 16 * k, 140, name)
        page.text(LEFT + 255, 112 + 16 * k, 140, score)
    page.text(LEFT, 380, 504, "Figure 11: A figure under a ruled table.")
    page.text(LEFT, 410, 504, "Closing body text of the page.")
    path = page.save(tmp_path / "table.pdf")
    embed_pdf(path, [(0, plot("Score x"), LEFT + 150, 200, 200, 170)])
    paper, figs = figures_of(path)
    assert sorted(figs) == ["11"] and paper.unpaired == []
    box = figs["11"].provenance["box"]
    assert PAGE_H - box[3] >= 195  # the figure only, not the table above it
    assert "Score x" in figs["11"].ocr and not [t for t in figs["11"].ocr if "Model" in t]


def test_panels_stacked_in_one_figure(page, tmp_path: Path):
    page.new_page()
    page.text(LEFT, 60, 504, "Body text above the figure; Figure 12 has two panels, one over the other.")
    page.text(LEFT, 370, 504, "Figure 12: Two panels stacked with a small gap.")
    page.text(LEFT, 400, 504, "Body text below the caption.")
    path = page.save(tmp_path / "panels.pdf")
    embed_pdf(path, [(0, plot("Top x", size=(3, 1.5)), LEFT + 100, 90, 250, 130),
                     (0, plot("Bottom x", size=(3, 1.5)), LEFT + 100, 225, 250, 130)])
    paper, figs = figures_of(path)
    assert sorted(figs) == ["12"] and paper.unpaired == []
    assert "Top x" in figs["12"].ocr and "Bottom x" in figs["12"].ocr


def test_caption_justified_with_wide_word_gaps(page, tmp_path: Path):
    """A narrow justified caption whose first line holds few long words: its word gaps are wider
    than line building joins, and the caption still reads whole."""
    caption = ("Figure 13: Photoluminescence of extraordinarily heterogeneous nanostructures "
               "measured over several consecutive days.")
    page.new_page()
    page.text(LEFT, 60, 504, "Body text above; Figure 13 is a narrow figure with a narrow caption.")
    page.text(LEFT + 150, 300, 180, caption)
    page.text(LEFT, 360, 504, "Body text below the caption.")
    path = page.save(tmp_path / "justified.pdf")
    embed_pdf(path, [(0, plot("Day", size=(2.5, 2)), LEFT + 150, 110, 180, 180)])
    paper, figs = figures_of(path)
    assert sorted(figs) == ["13"], paper.unpaired
    assert figs["13"].caption == caption


def test_figure_exported_with_a_page_sized_background_and_a_crop_box(page, tmp_path: Path):
    """Slides exported to PDF, or a figure cut with pdfcrop: a white rectangle as large as the
    source page, the drawing in one corner and a crop box around it. pdflatex clips the form to
    the crop box; PDFium's bounds of the form still span the whole background, which reached over
    the body text above the figure (into its OCR) and over the caption below it."""
    import matplotlib
    import pypdfium2 as pdfium
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context({"pdf.fonttype": 42}):
        fig = Figure(figsize=(6.0, 3.5))  # a white background patch covers the whole page
        FigureCanvasAgg(fig)
        ax = fig.add_axes([0.08, 0.12, 0.38, 0.33])
        ax.plot([0, 1, 2], [1, 3, 2])
        ax.set_xlabel("Time (s)")
        buffer = io.BytesIO()
        fig.savefig(buffer, format="pdf")
    source = pdfium.PdfDocument(buffer.getvalue())
    width, height = source[0].get_size()
    source[0].set_cropbox(0, 0, width / 2, height / 2)
    cropped = io.BytesIO()
    source.save(cropped)
    page.new_page()
    page.text(72, 60, 468, "Some body text before the figure. It has nothing to say about figures.")
    page.text(72, 330, 468, "Figure 1: A plot exported with a crop box smaller than its page.")
    page.text(72, 360, 468, "The body text goes on after the figure and cites Figure 1 once.")
    path = embed_pdf(page.save(tmp_path / "cropped.pdf"), [(0, cropped.getvalue(), 72, 100, 432, 216)])
    paper, figs = figures_of(path)
    assert sorted(figs) == ["1"], paper.unpaired
    box = figs["1"].provenance["box"]
    assert_inside(box, 72, 72 + 432)
    assert box[3] <= PAGE_H - 100 + 1 and box[1] >= PAGE_H - 330 - 1  # between the body text and the caption
    assert "Time (s)" in figs["1"].ocr and not [t for t in figs["1"].ocr if "body text" in t]
