"""Real-world LaTeX source layouts: \\graphicspath and graphics without extension, wrapfigure,
sidewaysfigure, \\subfloat, \\captionof in a minipage, \\input without .tex, \\import and
\\subimport, \\iffalse, local packages of macros, several .tex files, EPS, TikZ, bibliographies."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from scitune.data.ingest.latex import read_latex_paper
from tests.data.ingest.conftest import draw_figure, write_tree

MAIN = r"""\documentclass{article}
\usepackage{graphicx,wrapfig,rotating,subfig,capt-of,import}
\usepackage{ourmacros}
\graphicspath{{figures/}{img/}}
\begin{document}
\section{Intro}
The wrapped plot (Figure~\ref{fig:wrap}) and the sideways one (Figure~\ref{fig:side}) differ;
\subref{fig:sub-b} in Figure~\ref{fig:sub} is the bar plot, \ref{fig:mini} sits in a minipage.
\Model{} is ours.

\begin{wrapfigure}{r}{0.4\textwidth}
  \includegraphics[width=\linewidth]{wrapped}
  \caption{A wrapped figure.}\label{fig:wrap}
\end{wrapfigure}

\begin{sidewaysfigure}
  \includegraphics{side}
  \caption{A sideways figure.}\label{fig:side}
\end{sidewaysfigure}

\begin{figure}
  \subfloat[Line.\label{fig:sub-a}]{\includegraphics{a}}
  \subfloat[Bars.\label{fig:sub-b}]{\includegraphics{b}}
  \caption{Two subfloats.}\label{fig:sub}
\end{figure}

\noindent\begin{minipage}{0.45\textwidth}
  \includegraphics{mini}
  \captionof{figure}{A figure in a minipage, with \Model.}\label{fig:mini}
\end{minipage}

\begin{figure}
  \begin{minipage}{0.5\linewidth}\includegraphics{a}\caption{Left of a pair.}\label{fig:pair-l}\end{minipage}\hfill
  \begin{minipage}{0.45\linewidth}\includegraphics{b}\caption{Right of a pair.}\label{fig:pair-r}\end{minipage}
\end{figure}

\input{sections/results}
\import{chapters/}{extra}
\iffalse
\begin{figure}\includegraphics{a}\caption{Commented out.}\label{fig:hidden}\end{figure}
\fi
\bibliography{refs}
\end{document}
"""
RESULTS = r"""\section{Results}
Figure~\ref{fig:imported} comes from an imported file.
"""
EXTRA = r"""\subimport{parts/}{inner}
"""
INNER = r"""\begin{figure}\includegraphics{local}\caption{Imported, its graphic beside it.}\label{fig:imported}\end{figure}
"""


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "paper", {
        "main.tex": MAIN,
        "ourmacros.sty": r"\ProvidesPackage{ourmacros}\newcommand{\Model}{TinyNet}",
        "sections/results.tex": RESULTS,
        "chapters/extra.tex": EXTRA,
        "chapters/parts/inner.tex": INNER,
        "chapters/parts/local.png": draw_figure("bar"),
        "figures/wrapped.png": draw_figure(),
        "img/side.png": draw_figure("bar"),
        "img/a.png": draw_figure(),
        "img/b.jpg": _jpeg(),
        "figures/mini.pdf": draw_figure("line", "pdf"),
        "refs.bib": "@article{x, title={T}}",
        "old_draft.tex": "\\documentclass{article}\\begin{document}An old draft.\\end{document}",
        "drawings/tree.tex": "\\documentclass{standalone}\n\\usepackage{tikz}\n",  # no body, never input
    })


def _jpeg() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.open(io.BytesIO(draw_figure("bar"))).convert("RGB").save(buffer, format="JPEG")
    return buffer.getvalue()


def test_every_layout_finds_its_figure(layout: Path):
    paper = read_latex_paper(layout, "paper", "paper")
    figures = {f.provenance["label"]: f for f in paper.figures}
    assert list(figures) == ["fig:wrap", "fig:side", "fig:sub", "fig:mini", "fig:pair-l", "fig:pair-r", "fig:imported"]
    assert [f.number for f in paper.figures] == ["1", "2", "3", "4", "5", "6", "7"]
    # one float holding two captioned minipages is two figures, each with its own graphic
    assert [(figures[k].caption, figures[k].provenance["graphics"]) for k in ("fig:pair-l", "fig:pair-r")] == [
        ("Figure 5: Left of a pair.", ["img/a.png"]), ("Figure 6: Right of a pair.", ["img/b.jpg"])]
    assert figures["fig:wrap"].provenance["graphics"] == ["figures/wrapped.png"]  # via \graphicspath, no extension
    assert figures["fig:sub"].provenance["graphics"] == ["img/a.png", "img/b.jpg"]
    assert [s["caption"] for s in figures["fig:sub"].provenance["subfigures"]] == ["Line.", "Bars."]
    assert figures["fig:mini"].caption == "Figure 4: A figure in a minipage, with TinyNet."  # \captionof, macro from the .sty
    assert figures["fig:mini"].provenance["environment"] == "minipage"
    assert figures["fig:imported"].provenance == {**figures["fig:imported"].provenance,
                                                  "tex_file": "chapters/parts/inner.tex",
                                                  "graphics": ["chapters/parts/local.png"]}
    # mentions resolve across files and kinds of figure
    assert figures["fig:imported"].mentions == [["Figure 7 comes from an imported file."]]
    assert figures["fig:side"].mentions == [["The wrapped plot (Figure 1) and the sideways one (Figure 2) differ; "
                                             "(b) in Figure 3 is the bar plot, 4 sits in a minipage."]]
    # nothing from inside \iffalse; the other stand-alone .tex reported, not read
    assert "fig:hidden" not in figures
    assert [(u["what"], u["where"], u["reason"]) for u in paper.unpaired] == [
        ("tex file", f"paper: {name}", "has \\documentclass but is not the main file (main.tex is); not read")
        for name in ("drawings/tree.tex", "old_draft.tex")]


def test_tikz_figures_are_skipped_with_the_reason(tmp_path: Path):
    root = write_tree(tmp_path / "t", {"main.tex": "\\documentclass{article}\\usepackage{tikz}\\begin{document}\n"
                                       "\\begin{figure}\\begin{tikzpicture}\\draw (0,0) -- (1,1);\\end{tikzpicture}"
                                       "\\caption{Drawn.}\\label{fig:tikz}\\end{figure}\n"
                                       "\\begin{figure}\\input{plot.pgf}\\caption{From matplotlib.}\\end{figure}\n\\end{document}\n",
                                       "plot.pgf": "\\begin{pgfpicture}\\pgfpathmoveto{\\pgfqpoint{0in}{0in}}\\end{pgfpicture}"})
    counts: dict = {}
    paper = read_latex_paper(root, "t", "t", counts=counts)
    assert paper.figures == [] and counts["tikz_skipped"] == 2
    assert [u["reason"] for u in paper.unpaired] == ["a TikZ/PGF drawing (drawing code is not rendered)"] * 2


EPS = b"""%!PS-Adobe-3.0 EPSF-3.0
%%BoundingBox: 0 0 40 30
newpath 0 0 moveto 40 0 lineto 40 30 lineto 0 30 lineto closepath 0 0 0 setrgbcolor fill
showpage
"""


def _eps_paper(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "eps", {
        "main.tex": "\\documentclass{article}\\begin{document}\n\\begin{figure}\\includegraphics{plot}"
                    "\\caption{An EPS plot.}\\end{figure}\n\\end{document}\n",
        "plot.eps": EPS,
    })


def test_eps_without_ghostscript_is_skipped_with_the_reason(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    counts: dict = {}
    paper = read_latex_paper(_eps_paper(tmp_path), "eps", "eps", counts=counts)
    assert paper.figures == [] and counts["eps_skipped"] == 1
    assert paper.unpaired[0]["reason"] == "'plot' is EPS and Ghostscript (gs) is not installed"


# The one skip this file allows: drawing EPS needs the gs program, a system package (Debian's
# ghostscript), which pip cannot install; without it the test above covers the refusal.
@pytest.mark.skipif(shutil.which("gs") is None, reason="Ghostscript (gs) is not installed")
def test_eps_through_ghostscript(tmp_path: Path):
    from PIL import Image

    paper = read_latex_paper(_eps_paper(tmp_path), "eps", "eps", dpi=72)
    [figure] = paper.figures
    image = Image.open(io.BytesIO(figure.png))
    assert image.size == (40, 30)  # cropped to the bounding box at 72 dpi
    assert image.convert("L").getpixel((20, 15)) < 50  # the filled (black) box


def test_no_bibliography_or_an_inline_one(tmp_path: Path):
    body = "See Figure~\\ref{f}~\\cite{k}.\n\n\\begin{figure}\\includegraphics{a.png}\\caption{Cap.}\\label{f}\\end{figure}\n"
    inline = "\\begin{thebibliography}{9}\\bibitem{k} A. Author. Figure~\\ref{f} is not a mention here.\\end{thebibliography}\n"
    for name, tail in (("none", ""), ("inline", inline)):
        root = write_tree(tmp_path / name, {"main.tex": "\\documentclass{article}\\begin{document}\n" + body + tail + "\\end{document}\n",
                                            "a.png": draw_figure()})
        [figure] = read_latex_paper(root, name, name).figures
        assert figure.mentions == [["See Figure 1."]], name


def test_subfiles_are_read_for_their_body_and_not_reported(tmp_path: Path):
    root = write_tree(tmp_path / "s", {
        "main.tex": "\\documentclass{article}\\usepackage{subfiles}\\begin{document}\n\\subfile{sections/intro}\n"
                    "\\begin{figure}\\includegraphics{a.png}\\caption{After the subfile.}\\label{f}\\end{figure}\n\\end{document}\n",
        "sections/intro.tex": "\\documentclass[../main.tex]{subfiles}\n\\begin{document}\nThe intro cites Figure~\\ref{f}.\n\\end{document}\n",
        "a.png": draw_figure(),
    })
    paper = read_latex_paper(root, "s", "s")
    [figure] = paper.figures
    assert figure.mentions == [["The intro cites Figure 1."]] and paper.unpaired == []


def test_begin_document_in_an_input_file(tmp_path: Path):
    root = write_tree(tmp_path / "b", {
        "paper.tex": "\\documentclass{article}\n\\input{body}\n",
        "body.tex": "\\begin{document}\\begin{figure}\\includegraphics{a.png}\\caption{Found.}\\end{figure}\\end{document}",
        "notes.tex": "Some notes.",
        "a.png": draw_figure(),
    })
    assert [f.caption for f in read_latex_paper(root, "b", "b").figures] == ["Figure 1: Found."]


@pytest.mark.skipif(shutil.which("gs") is None, reason="Ghostscript (gs) is not installed")
def test_an_eps_that_never_ends_is_stopped(tmp_path: Path):
    from scitune.data.ingest.limits import Limits

    root = _eps_paper(tmp_path)
    (root / "plot.eps").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 40 30\n{} loop\n")
    paper = read_latex_paper(root, "eps", "eps", limits=Limits(ghostscript_seconds=1))
    assert paper.figures == [] and paper.unpaired[0]["reason"].endswith("Ghostscript ran more than 1 s; refused")


def test_ingest_report_counts_skipped_drawings_and_source_notes_apart(tmp_path: Path):
    from scitune.data.ingest import ingest

    root = write_tree(tmp_path / "papers" / "t", {
        "main.tex": "\\documentclass{article}\\usepackage{tikz}\\begin{document}\n"
                    "\\begin{figure}\\begin{tikzpicture}\\draw (0,0) -- (1,1);\\end{tikzpicture}"
                    "\\caption{Drawn.}\\end{figure}\n\\end{document}\n",
        "draft.tex": "\\documentclass{article}\\begin{document}old\\end{document}\n"})
    report = ingest([str(root)], tmp_path / "out")
    counts = report["counts"]
    assert (counts["tikz_skipped"], counts["unpaired"], counts["source_notes"]) == (1, 1, 1)
    assert sorted((u["what"], u["reason"]) for u in report["unpaired"]) == [
        ("figure", "a TikZ/PGF drawing (drawing code is not rendered)"),
        ("tex file", "has \\documentclass but is not the main file (main.tex is); not read")]
