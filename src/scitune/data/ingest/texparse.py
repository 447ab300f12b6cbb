"""Small LaTeX scanning helpers: comments, brace groups, optional arguments, environments,
macro definitions and their bounded expansion, `\\iffalse` blocks, brace balance.

Why our own scanner: pylatexenc (used for LaTeX -> text in `latex.py`) parses a document into
nodes but does not follow `\\input`, expand `\\newcommand`s, or tell figure captions from
sub-captions; those need only brace matching, which these few functions do with the source's
own offsets (so a figure's position maps back to its file).
"""

from __future__ import annotations

import re

from scitune.errors import ScituneError

# A `%` not escaped by an odd number of backslashes, to the end of the line; LaTeX also eats the
# newline and the next line's leading blanks, so "a%\n  b" reads "ab" (and a comment line never
# makes a paragraph break).
_COMMENT = re.compile(r"(?<!\\)((?:\\\\)*)%[^\n]*\n?[ \t]*")
_NAME = re.compile(r"\\([A-Za-z@]+)")
# One pattern for every kind of definition, so the source is scanned once (two patterns searched
# alternately would re-scan the text after each definition).
_DEF = re.compile(
    r"\\(?P<new>(?:re)?newcommand|providecommand|DeclareRobustCommand)\*?(?![A-Za-z@])"
    r"|\\(?P<op>DeclareMathOperator)\*?(?![A-Za-z@])"
    r"|\\(?P<doc>(?:New|Renew|Provide|Declare)DocumentCommand)(?![A-Za-z@])"
    r"|\\let\s*\\(?P<let>[A-Za-z@]+)\s*=?\s*\\(?P<to>[A-Za-z@]+|.)"
    r"|\\[gex]?def\s*\\(?P<def>[A-Za-z@]+)(?P<params>(?:#\d)*)\s*(?=\{)"
)
_CONTROL = re.compile(r"\\([A-Za-z@]+)|\\.", re.S)
# Never expanded even when a source (or a conference style file shipped with it) redefines them:
# the scanner and the text conversion read these themselves.
PROTECTED = frozenset({
    "begin", "end", "caption", "captionof", "label", "includegraphics", "graphicspath", "input", "include",
    "import", "subimport", "subfloat", "subfigure", "subcaptionbox", "ref", "autoref", "Autoref", "cref", "Cref",
    "eqref", "subref", "pageref", "nameref", "vref", "Vref", "cite", "citep", "citet", "Citep", "Citet",
    "citealp", "citealt", "citeauthor", "citeyear", "parencite", "textcite", "autocite", "nocite", "footnote",
    "footnotemark", "footnotetext", "thanks", "index", "xspace", "chapter", "section", "subsection",
    "subsubsection", "paragraph", "par", "maketitle", "appendix", "newpage", "clearpage", "newcommand",
    "renewcommand", "def", "iffalse", "iftrue", "fi", "else"})


def strip_comments(text: str) -> str:
    return _COMMENT.sub(lambda m: m.group(1), text)


def skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\n\r":
        i += 1
    return i


def read_group(text: str, i: int) -> tuple[str, int] | None:
    """The content of the brace group at `i` (after blanks) and the index after it; a bare
    token (`\\name` or one character) when there is no brace; None at the end of the text."""
    i = skip_space(text, i)
    if i >= len(text):
        return None
    if text[i] == "{":
        j = _closing(text, i, "}")
        return None if j is None else (text[i + 1 : j], j + 1)  # None: unbalanced
    if text[i] == "\\":
        match = _NAME.match(text, i)
        end = match.end() if match else i + 2
        return text[i:end], end
    return text[i], i + 1


def read_optional(text: str, i: int) -> tuple[str | None, int]:
    """The content of an optional `[...]` argument at `i` (brace-aware), or None."""
    j = skip_space(text, i)
    if j >= len(text) or text[j] != "[":
        return None, i
    k = _closing(text, j, "]")
    return (None, i) if k is None else (text[j + 1 : k], k + 1)


def _closing(text: str, start: int, closer: str) -> int | None:
    """The index of the `closer` ("}" or "]") that ends the group opened at `start`, outside any
    brace group within it and skipping escaped characters (`\\}`); None when there is none."""
    depth, k = 0, start + 1
    while k < len(text):
        c = text[k]
        if c == "\\":
            k += 2
            continue
        if c == closer and depth == 0:
            return k
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        k += 1
    return None


def find_environments(text: str, names: tuple[str, ...]) -> list[tuple[str, int, int, int, int]]:
    """Top-level `\\begin{name}...\\end{name}` spans of the given names, nested ones of the same
    name matched: (name, begin start, body start, body end, end end)."""
    pattern = re.compile(r"\\(begin|end)\s*\{(" + "|".join(re.escape(n) for n in names) + r")\}")
    spans, stack = [], []
    for match in pattern.finditer(text):
        kind, name = match.groups()
        if kind == "begin":
            stack.append((name, match.start(), match.end()))
        elif stack and stack[-1][0] == name:
            _, start, body = stack.pop()
            if not stack:
                spans.append((name, start, body, match.start(), match.end()))
    return spans


Macro = tuple[int, "str | None", str]  # (arguments, default of the first or None, body)


def _document_command_args(spec: str) -> tuple[int, str | None]:
    """Arguments of an xparse spec ("m m", "O{default} m", "s o m") as (count, default of the first):
    `m`, `o` and `O{...}` are arguments, `s` (a star) and `t` tokens are skipped."""
    count, default, i = 0, None, 0
    while i < len(spec):
        c = spec[i]
        if c in "mo":
            if c == "o" and count == 0:
                default = ""
            count += 1
        elif c == "O":
            group = read_group(spec, i + 1)
            if count == 0:
                default = group[0] if group else ""
            count += 1
            i = group[1] - 1 if group else i
        i += 1
    return count, default


def parse_macros(text: str) -> tuple[dict[str, Macro], str]:
    """Macro definitions (`\\newcommand`, `\\renewcommand`, `\\providecommand`,
    `\\DeclareRobustCommand`, `\\DeclareMathOperator`, xparse's `\\NewDocumentCommand`, `\\let`,
    `\\def` with #1..#9 parameters) -> {name: (arguments, default of the first or None, body)},
    and the text with the definitions removed. Names the scanner reads are never redefined."""
    macros: dict[str, Macro] = {}
    out, i = [], 0
    for match in _DEF.finditer(text):
        if match.start() < i:
            continue
        out.append(text[i : match.start()])
        i = match.end()
        if match.group("let"):
            name, target = match.group("let"), match.group("to")
            if name not in PROTECTED:
                macros[name] = macros.get(target, (0, None, "\\" + target + (" " if target.isalpha() else "")))
            continue
        if match.group("def"):
            body = read_group(text, match.end())
            if body is None:
                out.append(match.group(0))
                continue
            if match.group("def") not in PROTECTED:
                macros[match.group("def")] = (len(match.group("params")) // 2, None, body[0])
            i = body[1]
            continue
        head = read_group(text, match.end())
        if head is None or not head[0].strip().startswith("\\"):
            out.append(match.group(0))
            continue
        name, j = head[0].strip()[1:], head[1]
        if match.group("op"):
            body = read_group(text, j)
            n_args, default = 0, None
            value = None if body is None else "\\operatorname{" + body[0] + "}"
        elif match.group("doc"):
            spec = read_group(text, j)
            body = read_group(text, spec[1]) if spec else None
            n_args, default = _document_command_args(spec[0]) if spec else (0, None)
            value = None if body is None else body[0]
        else:
            count, j2 = read_optional(text, j)
            default, j3 = read_optional(text, j2)
            body = read_group(text, j3)
            try:
                n_args = int(count) if count is not None else 0
            except ValueError:
                n_args = 0
            value = None if body is None else body[0]
        if body is None or not 0 <= n_args <= 9:
            out.append(text[match.start() : j])
            i = j
            continue
        i = body[1]
        if name in PROTECTED or not re.fullmatch(r"[A-Za-z@]+|.", name):
            continue
        if match.group("new") == "providecommand" and name in macros:
            continue
        macros[name] = (n_args, default, value)
    out.append(text[i:])
    return macros, "".join(out)


_PARAM = re.compile(r"#(\d)")


def expand_macros(text: str, macros: dict[str, Macro], budget: int, where: str, *, depth: int = 32,
                  max_chars: int = 64 << 20) -> str:
    """`text` with the macros expanded. Each round expands every macro call once, left to right,
    with its arguments read from the text; macros that use macros need one more round per level.
    Bounded three ways, each refusal one line: more than `budget` expansions, more than `depth`
    rounds (a recursive definition such as `\\def\\a{\\a x}`), or more than `max_chars` of
    text (a definition that doubles, `\\def\\a{\\a\\a}`). Each round is one linear scan."""
    if not macros:
        return text
    used = 0
    for _ in range(depth):
        pieces: list[str] = []
        size, i, changed = 0, 0, False
        for match in _CONTROL.finditer(text):
            name = match.group(1)
            if match.start() < i or name is None or name not in macros:
                continue
            n_args, default, body = macros[name]
            j = match.end()
            args: list[str] = []
            if default is not None:
                opt, j = read_optional(text, j)
                args.append(default if opt is None else opt)
            while len(args) < n_args:
                group = read_group(text, j)
                if group is None:
                    break
                args.append(group[0])
                j = group[1]
            if len(args) < n_args:
                continue
            value = _PARAM.sub(lambda m: args[int(m.group(1)) - 1] if 0 < int(m.group(1)) <= len(args) else "", body) if n_args else body
            # a macro whose expansion ends in a command word keeps the blank LaTeX ate after the
            # call ("\foo bar" with \foo -> \alpha: "\alpha bar", not "\alphabar")
            if value and j < len(text) and text[j].isalpha() and re.search(r"\\[A-Za-z@]+$", value):
                value += " "
            pieces.append(text[i : match.start()])
            pieces.append(value)
            size += match.start() - i + len(value)
            i = j
            changed = True
            used += 1
            if used > budget:
                raise ScituneError(f"{where}: macros expand more than {budget} times (a recursive definition?); refused")
            if size > max_chars:
                raise ScituneError(f"{where}: macros expand to more than {max_chars} characters (a macro bomb?); refused")
        if not changed:
            return text
        pieces.append(text[i:])
        text = "".join(pieces)
    raise ScituneError(f"{where}: macros still expand after {depth} rounds (a recursive definition?); refused")


# ----------------------------------------------------------------------------- conditionals, braces

_CONDITIONAL = re.compile(r"\\newif\s*\\if[A-Za-z@]*|\\(if(?!f(?![A-Za-z@])|thenelse)[A-Za-z@]*|else|fi)(?![A-Za-z@])")


def drop_false_branches(text: str) -> str:
    """`\\iffalse ... \\fi` removed (and the `\\else` half of `\\iftrue`), nesting followed:
    other conditionals (`\\ifx`, a user's `\\newif` flag) are kept as written, both branches, but
    counted so that a `\\fi` closes the right one. A `\\newif\\iffoo` is a definition, not a test."""
    out, i = [], 0
    stack: list[bool | None] = []  # per open conditional: None (kept as written) or whether this branch is kept
    hidden = 0  # open \iffalse/\iftrue branches that are not kept
    for match in _CONDITIONAL.finditer(text):
        word = match.group(1)
        if word is None:  # \newif\ifname
            continue
        if not hidden:
            out.append(text[i : match.start()])
        i = match.end()
        if word in ("iffalse", "iftrue"):
            kept = word == "iftrue"
            stack.append(kept)
            hidden += not kept
        elif word == "else":
            if stack and stack[-1] is not None:
                hidden += 1 if stack[-1] else -1
                stack[-1] = not stack[-1]
            elif not hidden:
                out.append(match.group(0))
        elif word == "fi":
            top = stack.pop() if stack else None
            if top is None:
                if not hidden:
                    out.append(match.group(0))
            elif top is False:
                hidden -= 1
        else:
            stack.append(None)
            if not hidden:
                out.append(match.group(0))
    if not hidden:
        out.append(text[i:])
    return "".join(out)


def unbalanced_brace(text: str) -> tuple[int, str] | None:
    """The first brace problem of a file's text (comments stripped) as (line, what), or None: a
    `}` that closes nothing, or a `{` still open at the end. Escaped `\\{` `\\}` do not count."""
    depth, opened = 0, []
    line = 1
    for match in re.finditer(r"\\.|[{}\n]", text, re.S):
        c = match.group(0)
        if c == "\n":
            line += 1
        elif c == "{":
            opened.append(line)
            depth += 1
        elif c == "}":
            if not opened:
                return line, "a '}' that closes no '{'"
            opened.pop()
        elif c == "\\\n":
            line += 1
    if opened:
        return opened[-1], "a '{' that is never closed"
    return None
