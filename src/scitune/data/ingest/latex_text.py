"""LaTeX fragments -> text as SciCap writes captions and mentions: what a reader of the PDF sees.

- Math becomes text through pylatexenc's latex2text: `$\\alpha$` -> α, `$\\mathrm{AUROC}$` -> AUROC,
  `\\frac{a}{b}` -> a/b; sub- and superscripts lose their `_`/`^` as they do in a PDF's text
  (`log$_2$(1 + x)` -> log2(1 + x)); styled math letters (`\\mathbf{v}` -> 𝐯) become plain ones.
- `~` and LaTeX's spacing commands (`\\,` `\\;` `\\ ` `\\quad` ...) become one space; `\\xspace`
  adds a blank unless punctuation follows, as the package does.
- Citations (we have no bibliography to print them from): a citation that the sentence uses as a
  noun ("the observation from \\cite{x} that", "\\citet{x} show", "see \\cite{x}") becomes
  "[citation]" so the sentence still reads; a parenthetical one ("spectra~\\cite{x}",
  `\\citep`, "(\\cite{x})") is dropped, as the sentence reads without it. Decided by the command
  (`\\citet`/`\\textcite` are nouns, `\\citep`/`\\parencite` are parenthetical) and, for a plain
  `\\cite`, by the word before it.
- Footnotes, labels, index entries and spacing commands with arguments are removed.
"""

from __future__ import annotations

import re
import unicodedata

from scitune.data.ingest import texparse as tp
from scitune.data.ingest.latex_source import FILE_MARK
from scitune.data.ingest.text import clean_text

CITATION = "[citation]"
_CITE = re.compile(r"\\(?P<cmd>[A-Za-z]*cite[A-Za-z]*)\*?(?![A-Za-z])(?:\s*\[[^\]]*\]){0,2}\s*\{[^}]*\}")
NOUN_CITES = frozenset({"citet", "Citet", "citealt", "Citealt", "textcite", "Textcite", "citeauthor",
                        "Citeauthor", "citeyear", "citetitle", "fullcite", "citenum"})
PARENTHETICAL_CITES = frozenset({"citep", "Citep", "citealp", "Citealp", "parencite", "Parencite", "autocite",
                                 "Autocite", "footcite", "supercite", "nocite", "citeyearpar", "smartcite"})
# words after which a plain \cite is the object of the sentence, not an aside ("prior work~\cite{x}
# showed" reads whole without it, "the observation from \cite{x} that" does not)
NOUN_CONTEXT = frozenset({"from", "in", "by", "of", "see", "and", "or", "to", "with", "following", "cf", "cf.",
                          "e.g.", "i.e.", "as", "than", "like", "use", "uses", "used", "using", "via", "after",
                          "unlike", "follow", "follows", "extend", "extends", "on", "for", "per", "against",
                          "between", "versus", "vs", "vs.", "also"})
_WORD_BEFORE = re.compile(r"([A-Za-z][A-Za-z.]*)[\s~]*$")
DROP_WITH_ARG = ("footnote", "label", "index", "vspace", "hspace", "thanks", "marginpar", "footnotemark",
                 "bibliographystyle", "bibliography", "addcontentsline", "graphicspath", "centering", "protect",
                 "glsadd", "todo", "phantom", "hphantom", "vphantom")
_DROP = re.compile(r"\\(" + "|".join(DROP_WITH_ARG) + r")\*?(?![A-Za-z])")
_MATH = re.compile(r"(?<!\\)(\$\$?|\\\(|\\\)|\\\[|\\\])|\\(begin|end)\s*\{(equation|align|gather|multline|eqnarray|math|displaymath)\*?\}")
_SCRIPT = re.compile(r"(?<!\\)[_^]")
# a backslash before a newline or tab is a control space ("vs.\\<newline>"), unless it ends a `\\\\`
_CONTROL_SPACE = re.compile(r"(?<!\\)((?:\\\\)*)\\(?=[\n\t])")
# where Unicode keeps its styled letters: Letterlike Symbols, Mathematical Alphanumeric Symbols
_STYLED = re.compile("[\u2100-\u214f\U0001d400-\U0001d7ff]")
_XSPACE = re.compile(r"\\xspace(?![A-Za-z@])(?:\s*\{\})?")
# after \xspace no blank is added before these (the package's own list, roughly)
_XSPACE_NO_BLANK = set(".,;:!?'\")]}/-~\\ \t\n") | {"\u00a0"}


def _citation(text: str, match: re.Match) -> str:
    command = match.group("cmd")
    if command in NOUN_CITES:
        return CITATION
    if command in PARENTHETICAL_CITES:
        return ""
    stripped = text[max(0, match.start() - 40) : match.start()].rstrip(" \t\n~")
    if not stripped or stripped.endswith((".", "!", "?", ":")):
        return CITATION  # it starts a sentence (an abbreviation such as "e.g." is a noun context too)
    word = _WORD_BEFORE.search(stripped)
    return CITATION if word and word.group(1).lower() in NOUN_CONTEXT else ""


def replace_citations(text: str) -> str:
    """Citations as described in the module's doc; one pass."""
    return _CITE.sub(lambda m: _citation(text, m), text)


def _drop_macros(text: str) -> str:
    out, i = [], 0
    for match in _DROP.finditer(text):
        if match.start() < i:
            continue
        out.append(text[i : match.start()])
        i = match.end()
        if match.group(1) in ("centering", "protect"):
            continue
        _, j = tp.read_optional(text, i)
        k = tp.skip_space(text, j)
        group = tp.read_group(text, k) if k < len(text) and text[k] == "{" else None
        i = group[1] if group else j
    out.append(text[i:])
    return "".join(out)


def _flatten_scripts(text: str) -> str:
    """`_` and `^` removed inside math (`$x_{i}$` -> `$x{i}$`, so the text reads xi, as a PDF's does)."""
    out, i, in_math = [], 0, False
    for match in _MATH.finditer(text):
        piece = text[i : match.start()]
        out.append(_SCRIPT.sub("", piece) if in_math else piece)
        out.append(match.group(0))
        delimiter = match.group(1)
        if delimiter in ("$", "$$"):
            in_math = not in_math
        else:
            in_math = delimiter in ("\\(", "\\[") or match.group(2) == "begin"
        i = match.end()
    out.append(_SCRIPT.sub("", text[i:]) if in_math else text[i:])
    return "".join(out)


def _xspace(text: str) -> str:
    def blank(match: re.Match) -> str:
        after = text[match.end() : match.end() + 1]
        return "" if not after or after in _XSPACE_NO_BLANK else " "

    return _XSPACE.sub(blank, text)


def _plain_letters(text: str) -> str:
    """Styled math letters (𝐯, ℒ, ℝ, 𝑒: Unicode's <font> variants) as plain letters."""
    return _STYLED.sub(lambda m: unicodedata.normalize("NFKC", m.group(0))
                       if unicodedata.decomposition(m.group(0)).startswith("<font>") else m.group(0), text)


# (name, pylatexenc argument spec, text) for the macros pylatexenc 2.x drops or prints wrongly:
# boxes and typewriter/sans text lose their content there (`\\texttt{erratum}` -> ""), a colour or
# box size is printed as if it were text, a URL gets angle brackets.
_MACROS = [
    *((name, "{", "%(1)s") for name in ("mbox", "hbox", "fbox", "textnormal", "texttt", "textsf", "textup", "textmd",
                                        "url", "nolinkurl")),
    ("makebox", "[[{", "%(3)s"), ("framebox", "[[{", "%(3)s"), ("texorpdfstring", "{{", "%(1)s"),
    ("textcolor", "[{{", "%(3)s"), ("colorbox", "[{{", "%(3)s"), ("fcolorbox", "[{{{", "%(4)s"),
    ("href", "[{{", "%(3)s"), ("scalebox", "{[{", "%(3)s"), ("resizebox", "*{{{", "%(4)s"),
    ("raisebox", "{[[{", "%(4)s"), ("enspace", "", " "), ("enskip", "", " "), ("xspace", "", " "),
]
_converter = None
_parse_context = None


def _pylatexenc():
    """pylatexenc's converter, taught the macros of `_MACROS`."""
    global _converter, _parse_context
    if _converter is None:
        from pylatexenc import latex2text, latexwalker, macrospec

        walker_db = latexwalker.get_default_latex_context_db()
        walker_db.add_context_category("scitune", prepend=True,
                                       macros=[macrospec.MacroSpec(name, args) for name, args, _ in _MACROS])
        text_db = latex2text.get_default_latex_context_db()
        text_db.add_context_category("scitune", prepend=True,
                                     macros=[latex2text.MacroTextSpec(name, text) for name, _, text in _MACROS])
        _converter = latex2text.LatexNodes2Text(latex_context=text_db, math_mode="text", strict_latex_spaces=True)
        _parse_context = walker_db
    return _converter, _parse_context


def latex_to_text(latex: str) -> str:
    """Text of a LaTeX fragment (refs already resolved, macros expanded), as the module's doc says."""
    converter, context = _pylatexenc()
    latex = FILE_MARK.sub(" ", latex)
    latex = replace_citations(latex)
    latex = _drop_macros(latex)
    latex = _xspace(_CONTROL_SPACE.sub(r"\1 ", latex))
    latex = _flatten_scripts(latex)
    try:
        text = converter.latex_to_text(latex, latex_context=context, tolerant_parsing=True)
    except Exception:  # pylatexenc is tolerant; a parser bug must not lose the figure, nor leave markup
        text = re.sub(r"\\[A-Za-z]+\*?", " ", latex)
        text = re.sub(r"[{}$]", "", text).replace("~", " ")
    return clean_text(_plain_letters(text))
