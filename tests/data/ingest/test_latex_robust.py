"""What a LaTeX source must not get past: undeclared encodings, binary files named .tex, control
characters, unbalanced braces, macro bombs; and what it reports instead of dropping."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from scitune.data.ingest.latex import read_latex_paper
from scitune.data.ingest.latex_source import decode_tex
from scitune.data.ingest.limits import Limits
from scitune.data.ingest.texparse import drop_false_branches, expand_macros, parse_macros
from scitune.errors import ScituneError
from tests.data.ingest.conftest import draw_figure, write_tree

FIGURE = "\\begin{figure}\\includegraphics{a.png}\\caption{%s}\\label{f}\\end{figure}\n"


def _tex(body: str, preamble: str = "") -> str:
    return "\\documentclass{article}\n" + preamble + "\\begin{document}\n" + body + "\\end{document}\n"


def _read(tmp_path: Path, files: dict, **kwargs):
    files = {"a.png": draw_figure(), **files}
    return read_latex_paper(write_tree(tmp_path / "p", files), "p", "p", **kwargs)


def test_declared_latin1_source_is_decoded(tmp_path: Path):
    tex = _tex(FIGURE % "Café, naïve Müller.", "\\usepackage[latin1]{inputenc}\n")
    paper = _read(tmp_path, {"main.tex": tex.encode("latin-1"), "more.tex": "x"})
    assert paper.figures[0].caption_no_index == "Café, naïve Müller."


def test_an_input_file_is_read_in_the_main_files_declared_encoding(tmp_path: Path):
    main = _tex("\\input{cap}", "\\usepackage[ansinew]{inputenc}\n")
    paper = _read(tmp_path, {"main.tex": main, "cap.tex": (FIGURE % "Straße – “quoted”").encode("cp1252")})
    assert paper.figures[0].caption_no_index == "Straße – “quoted”"


def test_undeclared_non_utf8_is_detected_or_refused_never_replaced(tmp_path: Path):
    # a long French paragraph in cp1252: charset_normalizer is sure of it
    french = ("Les résultats présentés montrent que la méthode proposée améliore nettement la précision "
              "sur l'ensemble des données étudiées, même lorsque les conditions expérimentales changent. ") * 6
    text, _ = decode_tex(french.encode("cp1252"), "main.tex")
    assert text == french
    # one stray byte in ASCII: nothing says which encoding it is, and no guess is sure: refused
    with pytest.raises(ScituneError, match=r"^x\.tex: not UTF-8 .*refused$"):
        decode_tex(b"\\documentclass{article} caf\xe9 \x81\x8d\x8f\x90\x9d", "x.tex")


def test_random_bytes_named_main_tex_are_refused_in_one_line(tmp_path: Path):
    rng = random.Random(0)
    noise = bytes(rng.randrange(256) for _ in range(4000))
    with pytest.raises(ScituneError) as err:
        _read(tmp_path, {"main.tex": noise})
    assert "main.tex" in str(err.value) and "\n" not in str(err.value)
    # bytes that happen to be UTF-8 but are control characters: binary, not text
    with pytest.raises(ScituneError, match="binary data"):
        _read(tmp_path / "2", {"main.tex": bytes(range(32)) * 100})
    # text, but no \documentclass: not a LaTeX paper
    with pytest.raises(ScituneError, match=r"main\.tex: no \\documentclass"):
        _read(tmp_path / "3", {"main.tex": "Just some notes, no LaTeX.\n"})


def test_control_characters_are_removed(tmp_path: Path):
    paper = _read(tmp_path, {"main.tex": _tex(FIGURE % "Null\x00 and\x1b escape\x07 gone.")})
    assert paper.figures[0].caption_no_index == "Null and escape gone."


def test_unbalanced_braces_are_reported_with_file_and_line_and_never_cut_a_caption(tmp_path: Path):
    body = ("Text with a stray } brace.\n\n"
            + FIGURE % "Sets $\\{1, 2\\}$ and {nested {groups}} % a comment with a } brace\n"
            + "\\input{broken}\n")
    broken = "\\begin{figure}\\includegraphics{a.png}\\caption{Never {closed.}\\label{g}\\end{figure}\n"
    paper = _read(tmp_path, {"main.tex": _tex(body), "broken.tex": broken})
    [figure] = paper.figures
    assert figure.caption_no_index == "Sets {1, 2} and nested groups"
    assert [(u["where"], u["reason"]) for u in paper.unpaired] == [
        ("p: main.tex:3", "unbalanced braces: a '}' that closes no '{'"),
        ("p: broken.tex:1", "unbalanced braces: a '{' that is never closed"),
        ("p: broken.tex: figure \\label{g}", "unbalanced braces in \\caption"),
    ]


def test_macro_bombs_are_refused_in_one_line(tmp_path: Path):
    limits = Limits(macro_expansions=10_000, macro_depth=16, macro_text_bytes=1 << 20)
    for definition in (r"\def\a{\a\a}", r"\def\a{\a x}", r"\newcommand{\b}{\c\c\c\c\c\c\c\c}\newcommand{\c}{" + "y" * 200_000 + "}"):
        body = "Some \\a \\b text.\n" + FIGURE % "Cap."
        with pytest.raises(ScituneError) as err:
            _read(tmp_path / str(len(definition)), {"main.tex": _tex(body, definition + "\n")}, limits=limits)
        message = str(err.value)
        assert message.startswith("main.tex: macros ") and message.endswith("refused") and "\n" not in message


def test_expansion_is_one_pass_per_level():
    macros, _ = parse_macros(r"\newcommand{\x}{\y}\newcommand{\y}[1]{[#1]}\def\z{\x{q}}")
    assert expand_macros(r"\z \x{p} \\x", macros, 100, "t") == r"[q] [p] \\x"  # "\\x" is a line break and x


def test_conditionals():
    source = r"a\iffalse b \ifx\c\d c\else d\fi e\else f\fi g\iftrue h\else i\fi j\newif\ifdraft\ifdraft k\fi l $p \iff q$"
    assert drop_false_branches(source) == r"a f g h j\newif\ifdraft\ifdraft k\fi l $p \iff q$"


def test_a_long_source_reads_every_figure_and_mention(tmp_path: Path):
    # fifty pages of text around forty figures: correctness at size (speed is measured elsewhere)
    paragraph = ("We measure the energy $E_i$ of \\model on spectra~\\cite{k} and compare it with the baseline "
                 "in several settings, each repeated five times with different seeds. ") * 6
    parts = []
    for i in range(40):
        parts.append(paragraph + f"Figure~\\ref{{f{i}}} shows setting {i}.\n\n" + paragraph + "\n\n")
        parts.append("\\begin{figure}\\includegraphics{a.png}\\caption{Setting %d of \\model.}\\label{f%d}\\end{figure}\n" % (i, i))
    paper = _read(tmp_path, {"main.tex": _tex("".join(parts), "\\newcommand{\\model}{TinyNet}\n")})
    assert [f.caption_no_index for f in paper.figures] == [f"Setting {i} of TinyNet." for i in range(40)]
    assert [f.mentions[0][-1] for f in paper.figures] == [f"Figure {i + 1} shows setting {i}." for i in range(40)]


def test_inputs_are_bounded_in_total(tmp_path: Path):
    # one small file input many times adds up: refused before it is all in memory
    main = _tex("\\input{part}\n" * 50)
    with pytest.raises(ScituneError, match=r"^main\.tex: its inputs add up to more than 20000 bytes; refused$"):
        _read(tmp_path, {"main.tex": main, "part.tex": "x" * 1000}, limits=Limits(macro_text_bytes=20_000))
