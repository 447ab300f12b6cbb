"""Captions and mentions as SciCap writes them: math as text, the source's own macros expanded,
LaTeX spacing as blanks, citations that keep the sentence whole, the raw LaTeX kept aside."""

from __future__ import annotations

from pathlib import Path

from scitune.data.ingest.latex import read_latex_paper
from scitune.data.ingest.latex_text import latex_to_text
from tests.data.ingest.conftest import draw_figure, write_tree


def _paper(tmp_path: Path, preamble: str, body: str, figures: tuple[str, ...] = ("a.png",)):
    tex = "\\documentclass{article}\n\\usepackage{graphicx}\n" + preamble + "\n\\begin{document}\n" + body + "\n\\end{document}\n"
    files: dict = {"main.tex": tex}
    files.update({name: draw_figure() for name in figures})
    return read_latex_paper(write_tree(tmp_path / "p", files), "p", "p")


def test_caption_math_and_a_text_macro_read_as_printed(tmp_path: Path):
    # typewriter text in a macro: pylatexenc alone drops \texttt, which lost this name before
    paper = _paper(tmp_path, r"\newcommand{\strongholdtwo}{\texttt{Stronghold-2}\xspace}",
                   "\\begin{figure}\\includegraphics{a.png}\n"
                   r"\caption{Test $\mathrm{AUROC}$ on (the unseen) \strongholdtwo{} split: log$_2$(1 + x) for $\alpha$.}"
                   "\\label{f}\\end{figure}")
    [figure] = paper.figures
    assert figure.caption_no_index == "Test AUROC on (the unseen) Stronghold-2 split: log2(1 + x) for α."
    assert figure.caption == "Figure 1: " + figure.caption_no_index
    # the LaTeX stays in its own field (the source's macro expanded, the math as written)
    assert figure.caption_latex == r"Test $\mathrm{AUROC}$ on (the unseen) \texttt{Stronghold-2}\xspace{} split: log$_2$(1 + x) for $\alpha$."


def test_user_macros_with_arguments_defaults_def_operators_and_xspace(tmp_path: Path):
    preamble = "\n".join([
        r"\usepackage{xspace}",
        r"\def\method{SciTune}",
        r"\newcommand{\vect}[1]{\mathbf{#1}}",
        r"\newcommand{\pair}[2][base]{#1/#2}",
        r"\DeclareMathOperator*{\argmax}{arg\,max}",
        r"\newcommand{\ours}{Ours\xspace}",
        r"\NewDocumentCommand{\score}{O{F} m}{#1-#2}",
    ])
    paper = _paper(tmp_path, preamble,
                   "\\begin{figure}\\includegraphics{a.png}\n"
                   r"\caption{\method\ scores $\vect{v}$ by \pair{x} and \pair[y]{z}; $\argmax f$ is \ours and \ours, \score{1} \score[G]{2}.}"
                   "\\end{figure}")
    assert paper.figures[0].caption_no_index == "SciTune scores v by base/x and y/z; arg max f is Ours and Ours, F-1 G-2."


def test_spacing_commands_and_ties_become_blanks_in_captions_and_mentions(tmp_path: Path):
    paper = _paper(tmp_path, "",
                   "As shown in Fig.~\\ref{f}, the gap\\,is\\;small\\ and\\quad stable at $n~=~5$, $10\\,\\mathrm{ms}$.\n\n"
                   "\\begin{figure}\\includegraphics{a.png}\\caption{Loss~over\\,time\\;and\\ steps\\qquad here.}\\label{f}\\end{figure}")
    [figure] = paper.figures
    assert figure.caption_no_index == "Loss over time and steps here."
    assert figure.mentions == [["As shown in Fig. 1, the gap is small and stable at n = 5, 10 ms."]]
    assert "~" not in figure.paragraphs[0]


def test_citations_keep_the_sentence_whole(tmp_path: Path):
    # a citation used as a noun becomes "[citation]"; a parenthetical one is dropped
    paper = _paper(tmp_path, "",
                   "\\begin{figure}\\includegraphics{a.png}\\caption{Following the observation from \\cite{x} that "
                   "spectra~\\cite{a,b} drift (\\cite{c}), \\citet{d} fit a line~\\citep[p.~3]{e}. \\cite{f} did not.}\\end{figure}")
    assert paper.figures[0].caption_no_index == ("Following the observation from [citation] that spectra drift, "
                                                 "[citation] fit a line. [citation] did not.")


def test_text_fragments():
    assert latex_to_text(r"$x^2 + y_{i,j}$ and $\mathcal{L}$ in $\mathbb{R}^n$") == "x2 + yi,j and L in Rn"
    assert latex_to_text("a\x00b\x1b c\x7f") == "ab c"  # control characters never reach the text
    assert latex_to_text(r"\mbox{kept} \makebox[2cm]{box} my\_name 50\%") == "kept box my_name 50%"
    # what pylatexenc alone drops or misprints: typewriter text, coloured text, links, scaled boxes
    assert latex_to_text(r"the \texttt{field+erratum} and \textsf{sans} \textcolor{red}{hot} \href{http://x}{site} "
                         r"\scalebox{0.8}{small} \url{http://y.z}") == "the field+erratum and sans hot site small http://y.z"
    assert latex_to_text("full vs.\\\ntransplant, a\\\\\nb") == "full vs. transplant, a b"  # a control space at a line end
