"""LaTeX sources the tests write: figures, subfigures, \\input, captions with math and
citations, mentions, missing files, macros, licence."""

from __future__ import annotations

from pathlib import Path

import pytest

from scitune.data.ingest import read_paper
from scitune.data.ingest.latex import find_main, latex_to_text
from scitune.data.ingest.texparse import expand_macros, parse_macros, strip_comments
from tests.data.ingest.conftest import draw_figure, write_tree

MAIN = r"""\documentclass{article}
% SPDX-License-Identifier: CC-BY-4.0
\usepackage{graphicx,subcaption}
\newcommand{\loss}{\mathcal{L}}
\newcommand{\net}[1]{#1Net}
\begin{document}
\section{Introduction}
We train \net{Deep} on spectra~\cite{smith2020,lee2021}. As Figure~\ref{fig:curve} shows,
the energy rises. % a comment that must vanish
The right panel (\autoref{fig:right}) is noisier.

\input{sections/results}

\begin{figure}[t]
  \centering
  \includegraphics[width=\linewidth]{figs/curve}
  \caption{Energy $E = \loss(x)^2$ of \net{Deep} over time~\citep{smith2020}; see Table~\ref{tab:t} and \cite{x}.}
  \label{fig:curve}
\end{figure}

\begin{table}\caption{Numbers.}\label{tab:t}\end{table}

\begin{figure*}
  \begin{subfigure}{0.45\linewidth}\includegraphics{figs/left.png}\caption{Left.}\label{fig:left}\end{subfigure}
  \begin{subfigure}{0.45\linewidth}\includegraphics{figs/right.png}\caption{Right.}\label{fig:right}\end{subfigure}
  \caption{Two panels of bars.}
  \label{fig:panels}
\end{figure*}

\begin{figure}\includegraphics{figs/gone.png}\caption{A figure whose file is missing.}\label{fig:gone}\end{figure}

\begin{figure}\includegraphics{figs/quiet.png}\caption{A figure nobody mentions.}\label{fig:quiet}\end{figure}
\end{document}
"""
RESULTS = r"""\section{Results}\label{sec:results}
In \cref{fig:panels} we compare both settings. This sentence mentions nothing.
Fig.~\ref{fig:curve} is discussed again in Section~\ref{sec:results}.
"""


@pytest.fixture
def paper_dir(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "paper", {
        "main.tex": MAIN,
        "sections/results.tex": RESULTS,
        "figs/curve.pdf": draw_figure("line", "pdf", label="Energy"),
        "figs/left.png": draw_figure("bar", "png"),
        "figs/right.png": draw_figure("line", "png"),
        "figs/quiet.png": draw_figure("bar", "png"),
    })


def _by_label(paper):
    return {f.provenance["label"]: f for f in paper.figures}


def test_figures_captions_and_mentions(paper_dir: Path):
    paper = read_paper("latex", paper_dir, "paper")
    figures = _by_label(paper)
    assert sorted(figures) == ["fig:curve", "fig:panels", "fig:quiet"]
    curve = figures["fig:curve"]
    # math as text (with the source's macro expanded), a parenthetical citation gone, one used as
    # a noun a placeholder, \ref resolved; the LaTeX kept aside
    assert curve.caption_no_index == "Energy E = L(x)2 of DeepNet over time; see Table 1 and [citation]."
    assert curve.caption_latex.startswith(r"Energy $E = \mathcal{L}(x)^2$ of DeepNet over time")
    assert curve.caption.startswith("Figure 1: ")
    # mentions across \input: the introduction and the results section; sentence by sentence
    assert curve.mentions == [["As Figure 1 shows, the energy rises."], ["Fig. 1 is discussed again in Section 2."]]
    assert len(curve.paragraphs) == 2 and "comment" not in curve.paragraphs[0]
    # the PDF figure file's text layer is the OCR field
    assert "Energy" in curve.ocr
    assert curve.provenance["graphics"] == ["figs/curve.pdf"]
    assert paper.licence == "CC-BY-4.0"


def test_subfigures_become_one_image_and_their_refs_count(paper_dir: Path):
    from PIL import Image
    import io

    panels = _by_label(read_paper("latex", paper_dir, "paper"))["fig:panels"]
    assert panels.number == "2" and panels.caption == "Figure 2: Two panels of bars."
    assert [s["label"] for s in panels.provenance["subfigures"]] == ["fig:left", "fig:right"]
    assert [s["caption"] for s in panels.provenance["subfigures"]] == ["Left.", "Right."]
    # a \ref to a subfigure is a mention of the figure
    assert panels.mentions == [["The right panel (Figure 2b) is noisier."], ["In fig. 2 we compare both settings."]]
    image = Image.open(io.BytesIO(panels.png))
    single = Image.open(io.BytesIO(draw_figure("bar", "png")))
    assert image.width > 1.8 * single.width  # two panels side by side


def test_missing_file_and_unmentioned_figure(paper_dir: Path):
    paper = read_paper("latex", paper_dir, "paper")
    assert [u["reason"] for u in paper.unpaired] == ["missing figure file 'figs/gone.png'"]
    assert "fig:gone" in paper.unpaired[0]["where"]
    quiet = _by_label(paper)["fig:quiet"]
    assert quiet.number == "4"  # the missing figure still takes number 3, as in LaTeX
    assert quiet.mentions == [] and quiet.paragraphs == []


def test_eps_without_ghostscript_is_skipped_and_counted(tmp_path: Path, monkeypatch):
    from scitune.data.ingest import images

    monkeypatch.setattr(images, "ghostscript_available", lambda: False)
    root = write_tree(tmp_path / "eps", {
        "main.tex": "\\documentclass{article}\\begin{document}\n\\begin{figure}\\includegraphics{plot.eps}"
                    "\\caption{An EPS plot.}\\end{figure}\n\\end{document}\n",
        "plot.eps": "%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n",
    })
    counts: dict = {}
    paper = read_paper("latex", root, "eps", counts=counts)
    assert paper.figures == [] and counts["eps_skipped"] == 1
    assert "Ghostscript" in paper.unpaired[0]["reason"]


def test_main_file_is_the_one_not_input(tmp_path: Path):
    root = write_tree(tmp_path / "m", {
        "a_appendix.tex": "\\documentclass{article}\\begin{document}x\\end{document}",  # a stand-alone leftover
        "paper.tex": "\\documentclass{article}\\begin{document}\\input{body}\\end{document}",
        "body.tex": "text",
    })
    assert find_main(root).name == "paper.tex"


def test_comments_macros_and_text():
    assert strip_comments("a 50\\% b % note\n  c") == "a 50\\% b c"
    macros, rest = parse_macros(r"\newcommand{\vect}[1]{\mathbf{#1}}\def\eps{\epsilon}x")
    assert rest == "x"
    assert expand_macros(r"$\vect{v} + \eps$", macros, 100, "t") == r"$\mathbf{v} + \epsilon$"
    macros, _ = parse_macros(r"\newcommand{\loop}{\loop}")
    with pytest.raises(Exception, match="recursive"):
        expand_macros(r"\loop", macros, 50, "t")
    assert latex_to_text(r"A \emph{bold} claim~\citep[p.~3]{k} with $\alpha_1$\footnote{not this}.") == "A bold claim with α1."
