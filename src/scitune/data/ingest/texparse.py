"""Small LaTeX scanning helpers: comments, brace groups, optional arguments, environments,
simple macro definitions and their expansion.

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
_DEF = re.compile(r"\\(?:re)?newcommand\*?|\\providecommand\*?|\\DeclareRobustCommand\*?")
_TEXDEF = re.compile(r"\\[gex]?def\s*\\([A-Za-z@]+)((?:#\d)*)\s*\{")
# Never expanded even when a source redefines them: the scanner itself reads these.
PROTECTED = frozenset({"begin", "end", "caption", "label", "ref", "includegraphics", "input", "include",
                       "subfloat", "subfigure", "subcaptionbox", "autoref", "cref", "Cref", "eqref", "cite",
                       "section", "subsection", "subsubsection", "newcommand", "renewcommand", "def"})


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
        depth, j = 0, i
        while j < len(text):
            c = text[j]
            if c == "\\":
                j += 2
                continue
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    return text[i + 1 : j], j + 1
            j += 1
        return None  # unbalanced
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
    depth, k = 0, j + 1
    while k < len(text):
        c = text[k]
        if c == "\\":
            k += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif c == "]" and depth == 0:
            return text[j + 1 : k], k + 1
        k += 1
    return None, i


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


def parse_macros(text: str) -> tuple[dict[str, tuple[int, str | None, str]], str]:
    """Simple macro definitions (`\\newcommand`, `\\renewcommand`, `\\providecommand`, `\\def`
    with #1..#9 parameters) -> {name: (arguments, default of the first or None, body)}, and the
    text with the definitions removed."""
    macros: dict[str, tuple[int, str | None, str]] = {}
    out, i = [], 0
    while True:
        m_new, m_def = _DEF.search(text, i), _TEXDEF.search(text, i)
        match = min((m for m in (m_new, m_def) if m), key=lambda m: m.start(), default=None)
        if match is None:
            out.append(text[i:])
            break
        out.append(text[i : match.start()])
        if match is m_def:
            name, params = match.group(1), match.group(2)
            body = read_group(text, match.end() - 1)
            if body is None:
                out.append(text[match.start() : match.end()])
                i = match.end()
                continue
            if name not in PROTECTED:
                macros[name] = (len(params) // 2, None, body[0])
            i = body[1]
            continue
        head = read_group(text, match.end())
        if head is None:
            i = match.end()
            continue
        name = head[0].strip()
        j = head[1]
        count, j2 = read_optional(text, j)
        default, j3 = read_optional(text, j2)
        body = read_group(text, j3)
        if not name.startswith("\\") or body is None:
            out.append(text[match.start() : j])
            i = j
            continue
        try:
            n_args = int(count) if count is not None else 0
        except ValueError:
            n_args = 0
        bare = name[1:]
        if bare not in PROTECTED and 0 <= n_args <= 9:
            if not (match.group(0).startswith("\\providecommand") and bare in macros):
                macros[bare] = (n_args, default, body[0])
        i = body[1]
    return macros, "".join(out)


def expand_macros(text: str, macros: dict[str, tuple[int, str | None, str]], budget: int, where: str) -> str:
    """`text` with the macros expanded (repeatedly, for macros that use macros); a source whose
    macros expand more than `budget` times (a recursive definition) is refused."""
    if not macros:
        return text
    pattern = re.compile(r"\\(" + "|".join(sorted((re.escape(n) for n in macros), key=len, reverse=True)) + r")(?![A-Za-z@])")
    used = 0
    for _ in range(50):  # macros that use macros: each round expands one level
        pieces, i, changed = [], 0, False
        for match in pattern.finditer(text):
            if match.start() < i:
                continue
            n_args, default, body = macros[match.group(1)]
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
            value = re.sub(r"#(\d)", lambda m: args[int(m.group(1)) - 1] if 0 < int(m.group(1)) <= len(args) else "", body)
            # a macro ending in a letter-named command keeps a blank after it ("\foo bar")
            if re.search(r"\\[A-Za-z@]+$", value) and j < len(text) and text[j].isalpha():
                value += " "
            pieces.append(text[i : match.start()])
            pieces.append(value)
            i = j
            changed = True
            used += 1
            if used > budget:
                raise ScituneError(f"{where}: macros expand more than {budget} times (a recursive definition?); refused")
        pieces.append(text[i:])
        text = "".join(pieces)
        if not changed:
            return text
    raise ScituneError(f"{where}: macros still expand after 50 rounds (a recursive definition?); refused")
