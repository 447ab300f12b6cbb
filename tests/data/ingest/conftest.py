"""Inputs the ingest tests write themselves: matplotlib figures (PNG and PDF), LaTeX sources,
and whole-page PDFs drawn with fpdf2."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

pytest.importorskip("pypdfium2", reason="the ingest extra is not installed")
pytest.importorskip("pylatexenc", reason="the ingest extra is not installed")
pytest.importorskip("fpdf", reason="the ingest extra is not installed")


def draw_figure(kind: str = "line", fmt: str = "png", label: str = "Energy") -> bytes:
    """A small matplotlib figure as PNG or PDF bytes (PDF text as TrueType, so it has a text layer)."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context({"pdf.fonttype": 42}):
        fig = Figure(figsize=(2.0, 1.6), dpi=60)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        if kind == "line":
            ax.plot([1, 2, 3, 4], [1, 4, 2, 5])
        else:
            ax.bar(["a", "b", "c"], [3, 1, 2], color="tab:orange")
        ax.set_ylabel(label)
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt)
    return buffer.getvalue()


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return root


class Page:
    """Whole-page PDF writing for tests: text lines at positions, images, vector drawings."""

    def __init__(self):
        import matplotlib
        from fpdf import FPDF

        self.pdf = FPDF(unit="pt", format="letter")
        self.pdf.set_auto_page_break(False)
        self.pdf.add_font("DejaVu", "", str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"))
        self.pdf.set_font("DejaVu", size=9)

    def new_page(self) -> "Page":
        self.pdf.add_page()
        return self

    def text(self, x: float, y: float, width: float, text: str) -> float:
        """A paragraph at (x, y) (top-left, y down) wrapped to `width`; returns the y below it."""
        self.pdf.set_xy(x, y)
        self.pdf.multi_cell(width, 11, text)
        return self.pdf.get_y()

    def image(self, x: float, y: float, width: float, height: float, png: bytes) -> None:
        self.pdf.image(io.BytesIO(png), x=x, y=y, w=width, h=height)

    def drawing(self, x: float, y: float, width: float, height: float) -> None:
        """A vector figure: a frame, a polyline and two bars, no image."""
        self.pdf.set_line_width(1)
        self.pdf.rect(x, y, width, height)
        self.pdf.line(x + 5, y + height - 5, x + width / 2, y + 10)
        self.pdf.line(x + width / 2, y + 10, x + width - 5, y + height / 2)
        self.pdf.rect(x + 10, y + height - 30, 12, 25, style="F")
        self.pdf.rect(x + 30, y + height - 45, 12, 40, style="F")

    def save(self, path: Path) -> Path:
        path.write_bytes(bytes(self.pdf.output()))
        return path


@pytest.fixture
def page():
    return Page()


def embed_pdf(path: Path, placements: list[tuple[int, bytes, float, float, float, float]]) -> Path:
    """Places the first page of each PDF (`(page index, pdf bytes, x, y, width, height)`, y from
    the top as in `Page`) on a page of the PDF at `path` as a form XObject, the way pdflatex's
    \\includegraphics of a PDF file does, and saves the PDF in place."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(str(path))
    sources = []
    try:
        for index, data, x, y, width, height in placements:
            source = pdfium.PdfDocument(data)
            sources.append(source)
            source_width, source_height = source.get_page_size(0)
            obj = source.page_as_xobject(0, doc).as_pageobject()
            page = doc[index]
            obj.transform(pdfium.PdfMatrix().scale(width / source_width, height / source_height)
                          .translate(x, page.get_height() - y - height))
            page.insert_obj(obj)
            page.gen_content()
        buffer = io.BytesIO()
        doc.save(buffer)
    finally:
        doc.close()
        for source in sources:
            source.close()
    path.write_bytes(buffer.getvalue())
    return path
