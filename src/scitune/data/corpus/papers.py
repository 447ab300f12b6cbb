"""The built-in corpus as small fake papers, so `scitune ingest` can be checked against known
answers: every few figures become one paper, written twice,

    DIR/papers/latex/paper-NNN/main.tex (+ sections/results.tex, figs/)  a LaTeX source
    DIR/papers/pdf/paper-NNN.pdf                                          a two-column PDF

The LaTeX source puts each figure in a `figure` environment (odd figures as PNG, even ones as a
vector PDF drawn by matplotlib with a text layer), its caption (the corpus' own, `$` escaped),
a `\\label`, and the corpus paragraph with "Figure N" written as `Figure~\\ref{...}`; the
results section is `\\input`. The PDF (fpdf2, DejaVu Sans from matplotlib's fonts) sets the same
text in two columns, each figure as an image above its "Figure k: caption" line. A paper's
figure k is the corpus figure whose paragraph said "Figure N"; `papers.json` maps them.
"""

from __future__ import annotations

import io
import json
import logging
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path

from scitune.errors import ScituneError

log = logging.getLogger(__name__)

PAGE_W, PAGE_H = 612.0, 792.0  # US letter, points
MARGIN, GUTTER = 54.0, 18.0
COLUMN_W = (PAGE_W - 2 * MARGIN - GUTTER) / 2
BODY_SIZE, LINE_H = 9.0, 11.5
FIGURE_W = 150.0  # points: a figure is drawn this wide, centred in its column


def _tex_escape(text: str) -> str:
    return re.sub(r"([%&#_$])", r"\\\1", text)


def _figure_pdf(spec: dict, image_size: int) -> bytes:
    """The figure as a one-page vector PDF with a text layer (TrueType text, no Type 3)."""
    import matplotlib

    from scitune.data.corpus.drawing import draw_figure

    with matplotlib.rc_context({"pdf.fonttype": 42}):
        fig = draw_figure(spec, image_size)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="pdf", metadata={"CreationDate": None, "Producer": None, "Creator": None})
    return buffer.getvalue()


def _paper_text(figures: list[dict]) -> list[tuple[str, str]]:
    """(paragraph with "Figure N" replaced by the marker {k}, caption) per figure of a paper."""
    out = []
    for k, fig in enumerate(figures, start=1):
        number = fig["corpus_number"]
        paragraph = " ".join(fig["paragraph"])
        out.append((re.sub(rf"\bFigure {number}\b", "\x00", paragraph), fig["caption_no_index"]))
    return out


def _write_latex(folder: Path, title: str, figures: list[dict], corpus: Path) -> None:
    (folder / "figs").mkdir(parents=True, exist_ok=True)
    (folder / "sections").mkdir(exist_ok=True)
    results, floats = [], []
    for k, (fig, (paragraph, caption)) in enumerate(zip(figures, _paper_text(figures)), start=1):
        label = f"fig:f{k}"
        results.append(_tex_escape(paragraph).replace("\x00", f"Figure~\\ref{{{label}}}"))
        if k % 2:
            shutil.copyfile(corpus / "scicap" / "images" / fig["file_name"], folder / "figs" / f"figure{k}.png")
            graphic = f"figs/figure{k}.png"
        else:
            (folder / "figs" / f"figure{k}.pdf").write_bytes(_figure_pdf(fig["spec"], 128))
            graphic = f"figs/figure{k}"  # no extension: LaTeX's own lookup (.pdf)
        floats.append("\\begin{figure}[t]\n  \\centering\n  \\includegraphics[width=0.9\\linewidth]{" + graphic
                      + "}\n  \\caption{" + _tex_escape(caption) + "}\n  \\label{" + label + "}\n\\end{figure}\n")
    # each figure environment follows the paragraph that refers to it
    body = "\n".join(f"{p}\n\n{f}" for p, f in zip(results, floats))
    (folder / "sections" / "results.tex").write_text("\\section{Results}\n" + body, encoding="utf-8")
    (folder / "main.tex").write_text(
        "\\documentclass[twocolumn]{article}\n% License: CC BY 4.0 (scitune built-in corpus)\n"
        "\\usepackage{graphicx}\n\\newcommand{\\corpus}{the scitune corpus}\n"
        f"\\title{{{_tex_escape(title)}}}\n\\begin{{document}}\n\\maketitle\n"
        "\\section{Introduction}\nThis paper is generated from \\corpus{} to test figure extraction.\n\n"
        "\\input{sections/results}\n\\end{document}\n", encoding="utf-8")


class _TwoColumn:
    """A small two-column page layout over fpdf2: paragraphs and figures flow down the left
    column, then the right, then onto a new page."""

    def __init__(self, title: str):
        import matplotlib
        from fpdf import FPDF

        self.pdf = FPDF(unit="pt", format="letter")
        self.pdf.set_auto_page_break(False)
        self.pdf.set_creation_date(datetime(2000, 1, 1, tzinfo=timezone.utc))  # same bytes every build
        font = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
        self.pdf.add_font("DejaVu", "", str(font))
        self.pdf.add_page()
        self.pdf.set_font("DejaVu", size=15)
        self.pdf.set_xy(MARGIN, MARGIN)
        self.pdf.multi_cell(PAGE_W - 2 * MARGIN, 18, title, align="C")
        self.top = self.pdf.get_y() + 14
        self.column, self.y = 0, self.top
        self.pdf.set_font("DejaVu", size=BODY_SIZE)

    def _x(self) -> float:
        return MARGIN + self.column * (COLUMN_W + GUTTER)

    def _room(self, height: float) -> None:
        if self.y + height <= PAGE_H - MARGIN:
            return
        if self.column == 0:
            self.column, self.y = 1, self.top
        else:
            self.pdf.add_page()
            self.top = MARGIN
            self.column, self.y = 0, self.top

    def paragraph(self, text: str) -> None:
        lines = self.pdf.multi_cell(COLUMN_W, LINE_H, text, dry_run=True, output="LINES")
        while lines:
            self._room(LINE_H)
            fit = max(1, int((PAGE_H - MARGIN - self.y) // LINE_H))
            chunk, lines = lines[:fit], lines[fit:]
            self.pdf.set_xy(self._x(), self.y)
            self.pdf.multi_cell(COLUMN_W, LINE_H, "\n".join(chunk))
            self.y += LINE_H * len(chunk)
        self.y += LINE_H * 0.9

    def figure(self, png: bytes, caption: str) -> None:
        lines = self.pdf.multi_cell(COLUMN_W, LINE_H, caption, dry_run=True, output="LINES")
        height = FIGURE_W + 8 + LINE_H * len(lines)
        self._room(height)
        self.pdf.image(io.BytesIO(png), x=self._x() + (COLUMN_W - FIGURE_W) / 2, y=self.y, w=FIGURE_W, h=FIGURE_W)
        self.y += FIGURE_W + 8
        self.pdf.set_xy(self._x(), self.y)
        self.pdf.multi_cell(COLUMN_W, LINE_H, caption)
        self.y += LINE_H * len(lines) + LINE_H

    def bytes(self) -> bytes:
        return bytes(self.pdf.output())


def _write_pdf(path: Path, title: str, figures: list[dict], corpus: Path) -> None:
    doc = _TwoColumn(title)
    doc.paragraph("This paper is generated from the scitune corpus to test figure extraction. "
                  "Licence: CC BY 4.0.")
    for k, (fig, (paragraph, caption)) in enumerate(zip(figures, _paper_text(figures)), start=1):
        doc.paragraph(paragraph.replace("\x00", f"Figure {k}"))
        doc.figure((corpus / "scicap" / "images" / fig["file_name"]).read_bytes(), f"Figure {k}: {caption}")
    path.write_bytes(doc.bytes())


def write_papers(corpus: str | Path, figures_per_paper: int = 4) -> dict:
    """Writes `corpus/papers/` from a built corpus and returns its index (also papers.json)."""
    try:
        import fpdf  # noqa: F401
    except ImportError:
        raise ScituneError('--papers needs the "ingest" extra: pip install -e ".[ingest]" (fpdf2 is not installed)') from None
    if figures_per_paper < 1:
        raise ScituneError(f"--figures-per-paper: must be at least 1, got {figures_per_paper}")
    corpus = Path(corpus)
    data = json.loads((corpus / "figure_data.json").read_text(encoding="utf-8"))
    annotations = {}
    for split in ("train", "val", "test"):
        layout = json.loads((corpus / "scicap" / f"{split}.json").read_text(encoding="utf-8"))
        for ann in layout["annotations"]:
            annotations[ann["image_id"]] = ann
    out = corpus / "papers"
    if out.exists():
        shutil.rmtree(out)
    (out / "latex").mkdir(parents=True)
    (out / "pdf").mkdir()
    figures = []
    for fig in data["figures"]:
        ann = annotations[fig["image_id"]]
        number = int(re.match(r"Figure (\d+):", ann["caption"]).group(1))
        figures.append({**fig, "corpus_number": number, "caption_no_index": ann["caption_no_index"],
                        "paragraph": ann["paragraph"]})
    index = []
    for p, start in enumerate(range(0, len(figures), figures_per_paper), start=1):
        group = figures[start : start + figures_per_paper]
        name = f"paper-{p:03d}"
        title = f"Corpus paper {p}: " + ", ".join(sorted({g['spec']['topic'].replace('-', ' ') for g in group}))
        _write_latex(out / "latex" / name, title, group, corpus)
        _write_pdf(out / "pdf" / f"{name}.pdf", title, group, corpus)
        index.append({"paper": name, "figures": [{"number": k, "image_id": g["image_id"], "file_name": g["file_name"],
                                                   "corpus_number": g["corpus_number"], "split": g["split"]}
                                                  for k, g in enumerate(group, start=1)]})
    (out / "papers.json").write_text(json.dumps(index, indent=1) + "\n", encoding="utf-8")
    log.info(f"wrote {len(index)} papers ({len(figures)} figures) to {out}/latex and {out}/pdf")
    return {"papers": len(index), "figures": len(figures), "index": index}
