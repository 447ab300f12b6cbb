"""Where a paper's figures are and what LaTeX numbers them: figure units (figure-like
environments, and a `minipage` or other environment holding `\\captionof{figure}`), figure /
table / section / equation numbers and the `\\ref`s that print them. One linear scan each.
"""

from __future__ import annotations

import bisect
import re

from scitune.data.ingest import texparse as tp

FIGURE_ENVS = ("figure", "figure*", "wrapfigure", "wrapfigure*", "SCfigure", "SCfigure*", "sidewaysfigure",
               "sidewaysfigure*")
TABLE_ENVS = ("table", "table*", "wraptable", "sidewaystable", "sidewaystable*")
SUB_ENVS = ("subfigure", "subfigure*")
NUMBERED_MATH = ("equation", "align", "gather", "multline", "eqnarray")
KIND_NAMES = {"figure": ("Figure", "fig."), "table": ("Table", "tab."), "section": ("Section", "sec."),
              "equation": ("Equation", "eq.")}
REF_MARK = re.compile("\ue001(\\d+)\ue002")
_REF = re.compile(r"\\(ref|autoref|Autoref|cref|Cref|eqref|subref|pageref|nameref|vref|Vref)\*?\s*\{([^}]*)\}")
_EVENTS = re.compile(
    r"\\(?P<sec>chapter|section|subsection|subsubsection)(?P<star>\*?)(?![A-Za-z])"
    r"|\\begin\s*\{(?P<begin>[^}]+)\}|\\end\s*\{(?P<end>[^}]+)\}"
    r"|\\(?P<cap>caption)(?P<of>of)?\*?(?![A-Za-z])(?(of)\s*\{\s*(?P<capkind>[^}]*?)\s*\})"
    r"|\\label\s*\{(?P<label>[^}]*)\}"
    r"|\\(?P<submacro>subfloat|subcaptionbox|subfigure)(?![A-Za-z])"
)
_ANY_ENV = re.compile(r"\\(begin|end)\s*\{([^}]+)\}")
_CAPTIONOF_FIGURE = re.compile(r"\\captionof\*?\s*\{\s*figure\s*\}")
_CAPTION = re.compile(r"\\caption\*?(?![A-Za-z])")
_SUBFIGURE = re.compile(r"\\begin\s*\{subfigure\*?\}|\\(?:subfloat|subcaptionbox|subfigure)(?![A-Za-z])")

Unit = tuple[str, int, int, int, int]  # (environment, start, body start, body end, end)


def _inside(spans: list[Unit], starts: list[int], pos: int) -> bool:
    k = bisect.bisect_right(starts, pos) - 1
    return k >= 0 and spans[k][1] <= pos < spans[k][4]


def _split_minipages(body: str, env: Unit) -> list[Unit]:
    """A figure environment that holds several figures side by side, each in its own `minipage`
    with its own `\\caption` (one float, two numbers), as those minipages; else the environment."""
    name, start, inner, inner_end, end = env
    captions = [m.start() for m in _CAPTION.finditer(body, inner, inner_end)]
    if len(captions) < 2 or _SUBFIGURE.search(body, inner, inner_end):
        return [env]
    pages = [(n, s + inner, i + inner, ie + inner, e + inner)
             for n, s, i, ie, e in tp.find_environments(body[inner:inner_end], ("minipage",))]
    holding = [p for p in pages if any(p[1] <= c < p[4] for c in captions)]
    if len(holding) < 2 or any(not any(p[1] <= c < p[4] for p in holding) for c in captions):
        return [env]
    return holding


def figure_units(body: str) -> list[Unit]:
    """The figures of a body, in order: top-level figure environments, and for each
    `\\captionof{figure}` outside them the innermost environment around it (a `minipage`, a
    `center`), or its paragraph when it stands in none."""
    envs = [unit for env in tp.find_environments(body, FIGURE_ENVS) for unit in _split_minipages(body, env)]
    starts = [e[1] for e in envs]
    positions = [m.start() for m in _CAPTIONOF_FIGURE.finditer(body) if not _inside(envs, starts, m.start())]
    if not positions:
        return envs
    holders: dict[int, list] = {}  # position -> the open environment around it: [name, start, body, body end, end]
    stack: list[list] = []
    k = 0
    for match in _ANY_ENV.finditer(body):
        while k < len(positions) and positions[k] < match.start():
            holders[positions[k]] = next((e for e in reversed(stack) if e[0] != "document"), None)
            k += 1
        kind, name = match.groups()
        if kind == "begin":
            stack.append([name, match.start(), match.end(), None, None])
        elif stack and stack[-1][0] == name:
            entry = stack.pop()
            entry[3], entry[4] = match.start(), match.end()
    units: dict[int, Unit] = {}
    for pos in positions:
        entry = holders.get(pos)
        if entry is not None and entry[4] is not None:
            units[entry[1]] = tuple(entry)
        else:  # no environment around it: its paragraph
            start = body.rfind("\n\n", 0, pos)
            start = 0 if start < 0 else start + 2
            end = body.find("\n\n", pos)
            end = len(body) if end < 0 else end
            units[start] = ("paragraph", start, start, end, end)
    merged: list[Unit] = []
    for unit in sorted(list(units.values()) + envs, key=lambda u: u[1]):
        if merged and unit[1] < merged[-1][4]:
            continue  # inside the one before (a minipage inside a minipage)
        merged.append(unit)
    return merged


def number_labels(body: str, units: list[Unit]) -> tuple[dict[str, tuple[str, str]], dict[int, str]]:
    """LaTeX's numbering: label -> (kind, printed number), and figure unit start -> number."""
    labels: dict[str, tuple[str, str]] = {}
    figure_numbers: dict[int, str] = {}
    sections = [0, 0, 0, 0]
    fig = tab = eq = 0
    current: tuple[str, str] = ("section", "")
    stack: list[tuple[str, int]] = []  # (environment, start)
    sub = 0
    starts = [u[1] for u in units]
    for match in _EVENTS.finditer(body):
        if match.group("sec"):
            if match.group("star"):
                continue
            level = ("chapter", "section", "subsection", "subsubsection").index(match.group("sec"))
            sections[level] += 1
            for k in range(level + 1, 4):
                sections[k] = 0
            shown = [str(n) for n in sections[: level + 1]]
            while len(shown) > 1 and shown[0] == "0":
                shown.pop(0)
            current = ("section", ".".join(shown))
        elif match.group("begin"):
            name = match.group("begin")
            stack.append((name, match.start()))
            if name in FIGURE_ENVS:
                sub = 0
            elif name in SUB_ENVS:
                sub += 1
                current = ("subfigure", f"{fig + 1}{chr(ord('a') + (sub - 1) % 26)}")
            elif name in NUMBERED_MATH:
                eq += 1
                current = ("equation", str(eq))
        elif match.group("end"):
            if stack and stack[-1][0] == match.group("end"):
                stack.pop()
        elif match.group("submacro"):
            if any(name in FIGURE_ENVS for name, _ in stack):
                sub += 1
                current = ("subfigure", f"{fig + 1}{chr(ord('a') + (sub - 1) % 26)}")
        elif match.group("cap"):
            envs = [name for name, _ in stack]
            kind = match.group("capkind")
            if kind is None and envs and envs[-1] in SUB_ENVS:
                continue
            in_figure = any(n in FIGURE_ENVS for n in envs)
            if kind == "figure" or (kind is None and in_figure):
                fig += 1
                current = ("figure", str(fig))
                k = bisect.bisect_right(starts, match.start()) - 1
                if k >= 0 and units[k][1] <= match.start() < units[k][4]:
                    figure_numbers.setdefault(units[k][1], str(fig))
            elif kind == "table" or (kind is None and any(n in TABLE_ENVS for n in envs)):
                tab += 1
                current = ("table", str(tab))
        elif match.group("label") is not None:
            labels.setdefault(match.group("label").strip(), current)
    return labels, figure_numbers


class Resolver:
    """Turns `\\ref`-family commands into printed text, with an invisible marker for each
    figure they point at (so mentions are found after LaTeX -> text)."""

    def __init__(self, labels: dict[str, tuple[str, str]], figure_of_label: dict[str, int]):
        self.labels = labels
        self.figure_of_label = figure_of_label

    def one(self, command: str, label: str, mark: bool) -> str:
        kind, number = self.labels.get(label, ("", ""))
        if not number or command in ("pageref", "nameref"):
            return ""
        base = "figure" if kind == "subfigure" else kind
        long_name, short = KIND_NAMES.get(base, ("", ""))
        if command == "eqref":
            text = f"({number})"
        elif command == "subref":
            text = f"({number.lstrip('0123456789')})" if kind == "subfigure" else number
        elif command in ("autoref", "Autoref", "Cref", "Vref") and long_name:
            text = f"{long_name} {number}"
        elif command in ("cref", "vref") and short:
            text = f"{short} ({number})" if base == "equation" else f"{short} {number}"
        else:
            text = number
        if mark and label in self.figure_of_label:
            text += f"\ue001{self.figure_of_label[label]}\ue002"
        return text

    def __call__(self, text: str, mark: bool = False) -> str:
        def replace(match: re.Match) -> str:
            parts = [self.one(match.group(1), lab.strip(), mark) for lab in match.group(2).split(",")]
            parts = [p for p in parts if p]
            if len(parts) <= 1:
                return "".join(parts)
            return ", ".join(parts[:-1]) + " and " + parts[-1]

        return _REF.sub(replace, text)
