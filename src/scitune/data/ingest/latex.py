"""A paper's LaTeX source -> its figures with caption, mentioning paragraphs and text layer.

Steps: find the main file (the one with `\\documentclass` that no other file inputs), inline
`\\input` / `\\include` (inside the source folder only), strip comments, expand the source's
simple macros, number figures, tables, sections and equations as LaTeX would (so `\\ref`s
resolve), then read each `figure` / `figure*` / `wrapfigure` environment: its `\\caption`, its
`\\label`s, its subfigures (`subfigure` environments, `\\subfloat`, `\\subcaptionbox`, the old
`\\subfigure` macro) and its `\\includegraphics` files. A paragraph mentions a figure when it
`\\ref`s, `\\autoref`s or `\\cref`s the figure's label or one of its subfigures' labels.

LaTeX -> text is pylatexenc's (math kept as written); `\\cite`s are removed, `\\ref`s become the
number LaTeX would print (unknown labels are removed).
"""

from __future__ import annotations

import re
from pathlib import Path

from scitune.data.ingest import images as imgs
from scitune.data.ingest import texparse as tp
from scitune.data.ingest.licence import find_licence
from scitune.data.ingest.limits import DEFAULT_LIMITS, Limits
from scitune.data.ingest.records import Figure, Paper
from scitune.data.ingest.text import clean_text, sentences
from scitune.errors import ScituneError

FIGURE_ENVS = ("figure", "figure*", "wrapfigure", "wrapfigure*", "SCfigure", "SCfigure*")
TABLE_ENVS = ("table", "table*", "wraptable")
SUB_ENVS = ("subfigure", "subfigure*")
DROPPED_ENVS = FIGURE_ENVS + TABLE_ENVS + ("thebibliography", "comment", "tikzpicture")
GRAPHICS_SUFFIXES = (".pdf", ".png", ".jpg", ".jpeg", ".eps")
FILE_MARK = re.compile("\ue010([^\ue011]*)\ue011")
REF_MARK = re.compile("\ue001(\\d+)\ue002")
_INPUT = re.compile(r"\\(input|include|subfile)\s*(?:\{([^}]*)\}|\s([^\s\\{}]+))")
_INCLUDEGRAPHICS = re.compile(r"\\includegraphics\*?")
_REF = re.compile(r"\\(ref|autoref|Autoref|cref|Cref|eqref|subref|pageref|nameref|vref|Vref)\*?\s*\{([^}]*)\}")
_CITE = re.compile(r"[~\s]*\\[A-Za-z]*cite[A-Za-z]*\*?(?:\s*\[[^\]]*\]){0,2}\s*\{[^}]*\}")
_DROP_WITH_ARG = ("footnote", "label", "index", "vspace", "hspace", "thanks", "marginpar", "footnotemark",
                  "bibliographystyle", "bibliography", "addcontentsline", "graphicspath", "centering", "protect")
_EVENTS = re.compile(
    r"\\(?P<sec>chapter|section|subsection|subsubsection)(?P<star>\*?)(?![A-Za-z])"
    r"|\\begin\s*\{(?P<begin>[^}]+)\}|\\end\s*\{(?P<end>[^}]+)\}"
    r"|\\(?P<cap>caption)(?:of)?(?![A-Za-z])|\\label\s*\{(?P<label>[^}]*)\}"
    r"|\\(?P<submacro>subfloat|subcaptionbox|subfigure)(?![A-Za-z])"
)
NUMBERED_MATH = ("equation", "align", "gather", "multline", "eqnarray")
KIND_NAMES = {"figure": ("Figure", "fig."), "table": ("Table", "tab."), "section": ("Section", "sec."),
              "equation": ("Equation", "eq.")}


# ----------------------------------------------------------------------------- reading the source


def find_main(root: Path) -> Path:
    """The main .tex file of a source folder."""
    texs = sorted(p for p in root.rglob("*.tex") if p.is_file())
    if not texs:
        raise ScituneError(f"{root}: no .tex file")
    if len(texs) == 1:
        return texs[0]
    heads, inputs = [], set()
    for path in texs:
        text = tp.strip_comments(path.read_text(encoding="utf-8", errors="replace")[:1_000_000])
        if re.search(r"\\documentclass", text) and re.search(r"\\begin\s*\{document\}", text):
            heads.append(path)
        for match in _INPUT.finditer(text):
            name = (match.group(2) or match.group(3) or "").strip()
            inputs.add((path.parent / name).resolve())
            inputs.add((path.parent / (name + ".tex")).resolve())
    candidates = [p for p in heads if p.resolve() not in inputs] or heads
    if not candidates:
        raise ScituneError(f"{root}: no .tex file has \\documentclass and \\begin{{document}}")
    for preferred in ("main.tex", "ms.tex", "paper.tex"):  # arXiv's own tie-break is alphabetical
        for path in candidates:
            if path.name == preferred:
                return path
    return candidates[0]


def _within(root: Path, path: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def load_source(main: Path, root: Path, limits: Limits = DEFAULT_LIMITS) -> tuple[str, list[str]]:
    """The main file with every `\\input` / `\\include` inlined and comments stripped; file
    markers record where each part came from. Returns (text, raw texts for the licence)."""
    raw_texts: list[str] = []
    count = [0]

    def read(path: Path, depth: int) -> str:
        if depth > limits.input_depth:
            raise ScituneError(f"{path}: \\input nested more than {limits.input_depth} deep; refused")
        count[0] += 1
        if count[0] > limits.tex_inputs:
            raise ScituneError(f"{main}: more than {limits.tex_inputs} \\input files; refused")
        if path.stat().st_size > limits.tex_bytes:
            raise ScituneError(f"{path}: more than {limits.tex_bytes} bytes; refused")
        raw = path.read_text(encoding="utf-8", errors="replace")
        raw_texts.append(raw)
        text = tp.strip_comments(raw)
        rel = path.relative_to(root).as_posix()

        def inline(match: re.Match) -> str:
            name = (match.group(2) or match.group(3) or "").strip()
            for candidate in (root / name, root / (name + ".tex"), path.parent / name, path.parent / (name + ".tex")):
                if candidate.is_file():
                    if not _within(root, candidate):
                        raise ScituneError(f"{path}: \\{match.group(1)}{{{name}}} leaves the source folder; refused")
                    body = read(candidate.resolve() if _within(root, candidate.resolve()) else candidate, depth + 1)
                    return f"\ue010{candidate.resolve().relative_to(root.resolve()).as_posix()}\ue011{body}\ue010{rel}\ue011"
            return ""  # a missing input is what LaTeX would stop on; we read on

        return f"\ue010{rel}\ue011" + _INPUT.sub(inline, text)

    return read(main.resolve(), 0) if _within(root, main) else read(main, 0), raw_texts


# ----------------------------------------------------------------------------- numbering


def number_labels(body: str) -> tuple[dict[str, tuple[str, str]], dict[int, str]]:
    """LaTeX's numbering: label -> (kind, printed number), and figure environment start -> number."""
    labels: dict[str, tuple[str, str]] = {}
    figure_numbers: dict[int, str] = {}
    sections = [0, 0, 0, 0]
    fig = tab = eq = 0
    current: tuple[str, str] = ("section", "")
    stack: list[tuple[str, int]] = []  # (environment, start)
    sub = 0
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
            if envs and envs[-1] in SUB_ENVS:
                continue
            figure_env = next(((n, s) for n, s in reversed(stack) if n in FIGURE_ENVS), None)
            if figure_env:
                fig += 1
                current = ("figure", str(fig))
                figure_numbers.setdefault(figure_env[1], str(fig))
            elif any(n in TABLE_ENVS for n in envs):
                tab += 1
                current = ("table", str(tab))
        elif match.group("label") is not None:
            labels.setdefault(match.group("label").strip(), current)
    return labels, figure_numbers


# ----------------------------------------------------------------------------- LaTeX -> text


def _drop_macros(text: str, names: tuple[str, ...]) -> str:
    pattern = re.compile(r"\\(" + "|".join(names) + r")\*?(?![A-Za-z])")
    out, i = [], 0
    while True:
        match = pattern.search(text, i)
        if not match:
            out.append(text[i:])
            return "".join(out)
        out.append(text[i : match.start()])
        j = match.end()
        if match.group(1) in ("centering", "protect"):
            i = j
            continue
        _, j = tp.read_optional(text, j)
        group = tp.read_group(text, j) if j < len(text) and tp.skip_space(text, j) < len(text) and text[tp.skip_space(text, j)] == "{" else None
        i = group[1] if group else j


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


_converter = None


def latex_to_text(latex: str) -> str:
    """Text of a LaTeX fragment (refs already resolved): math kept as written, citations removed."""
    global _converter
    if _converter is None:
        from pylatexenc.latex2text import LatexNodes2Text

        _converter = LatexNodes2Text(math_mode="verbatim", strict_latex_spaces=True)
    latex = _CITE.sub("", latex)
    latex = _drop_macros(latex, _DROP_WITH_ARG)
    latex = FILE_MARK.sub(" ", latex)
    try:
        text = _converter.latex_to_text(latex)
    except Exception:  # pylatexenc is tolerant; a parser bug must not lose the figure
        text = re.sub(r"\\[A-Za-z]+\*?", " ", latex).replace("{", "").replace("}", "")
    return clean_text(text)


# ----------------------------------------------------------------------------- figures


def _graphics(text: str) -> list[str]:
    files = []
    for match in _INCLUDEGRAPHICS.finditer(text):
        _, j = tp.read_optional(text, match.end())
        group = tp.read_group(text, j)
        if group:
            files.append(group[0].strip())
    return files


def _caption(text: str) -> str | None:
    """The last `\\caption{...}` (or `\\captionof{figure}{...}`) of a fragment, as LaTeX."""
    found = None
    for match in re.finditer(r"\\caption(of)?\*?(?![A-Za-z])", text):
        j = match.end()
        if match.group(1):
            kind = tp.read_group(text, j)
            if kind is None:
                continue
            j = kind[1]
        _, j = tp.read_optional(text, j)
        group = tp.read_group(text, j)
        if group:
            found = group[0]
    return found


def _labels(text: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(r"\\label\s*\{([^}]*)\}", text)]


def _subfigures(body: str) -> tuple[list[dict], str]:
    """The subfigures of a figure body (caption, labels, graphics, as LaTeX) and the body with
    them cut out (what is left holds the figure's own caption and label)."""
    spans: list[tuple[int, int, dict]] = []
    for name, start, inner, inner_end, end in tp.find_environments(body, SUB_ENVS):
        part = body[inner:inner_end]
        spans.append((start, end, {"caption": _caption(part), "labels": _labels(part), "graphics": _graphics(part)}))
    for match in re.finditer(r"\\(subfloat|subfigure|subcaptionbox)(?![A-Za-z])", body):
        if any(s <= match.start() < e for s, e, _ in spans):
            continue
        j = match.end()
        if match.group(1) == "subcaptionbox":
            _, j = tp.read_optional(text := body, j)
            cap = tp.read_group(text, j)
            if cap is None:
                continue
            caption, j = cap
            _, j = tp.read_optional(body, j)
        else:
            caption, j = tp.read_optional(body, j)
        content = tp.read_group(body, j)
        if content is None:
            continue
        part = (caption or "") + " " + content[0]
        spans.append((match.start(), content[1], {"caption": caption, "labels": _labels(part), "graphics": _graphics(content[0])}))
    spans.sort(key=lambda s: s[0])
    rest, i = [], 0
    for start, end, _ in spans:
        rest.append(body[i:start])
        i = max(i, end)
    rest.append(body[i:])
    return [s[2] for s in spans], " ".join(rest)


def _resolve_graphic(name: str, root: Path, tex_dir: Path, graphic_dirs: list[str]) -> Path | None:
    bases = [root / d for d in graphic_dirs] + [tex_dir, root]
    suffixes = ("",) if Path(name).suffix.lower() in GRAPHICS_SUFFIXES else GRAPHICS_SUFFIXES
    for base in bases:
        for suffix in suffixes:
            candidate = base / (name + suffix)
            if candidate.is_file() and _within(root, candidate):
                return candidate
    return None


def read_latex_paper(root: Path, name: str, source: str, dpi: int = 150, limits: Limits = DEFAULT_LIMITS,
                     counts: dict | None = None) -> Paper:
    """The figures of the LaTeX source in folder `root`."""
    from scitune.data.ingest.pdf import render_pdf_figure

    counts = counts if counts is not None else {}
    root = root.resolve()
    main = find_main(root)
    text, raw_texts = load_source(main, root, limits)
    paper = Paper(name=name, source=source, kind="latex")
    licence_file = next((p for p in sorted(root.iterdir()) if p.is_file() and p.stem.upper() in ("LICENSE", "LICENCE", "COPYING")), None)
    paper.licence = find_licence(raw_texts + ([licence_file.read_text(errors="replace")[:20000]] if licence_file else []))
    macros, text = tp.parse_macros(text)
    graphic_dirs = [g for m in re.finditer(r"\\graphicspath\s*\{((?:\{[^}]*\})+)\}", text) for g in re.findall(r"\{([^}]*)\}", m.group(1))]
    begin = re.search(r"\\begin\s*\{document\}", text)
    end = re.search(r"\\end\s*\{document\}", text)
    if begin:
        prefix = FILE_MARK.findall(text[: begin.start()])
        body = (f"\ue010{prefix[-1]}\ue011" if prefix else "") + text[begin.end() : end.start() if end and end.start() > begin.end() else len(text)]
    else:
        body = text
    body = tp.expand_macros(body, macros, limits.macro_expansions, str(main))
    labels, figure_numbers = number_labels(body)

    envs = [e for e in tp.find_environments(body, FIGURE_ENVS)]
    parsed = []
    figure_of_label: dict[str, int] = {}
    for index, (env, start, inner, inner_end, _) in enumerate(envs):
        subs, rest = _subfigures(body[inner:inner_end])
        own_labels = _labels(rest)
        for lab in own_labels + [lab for s in subs for lab in s["labels"]]:
            figure_of_label[lab] = index
        files = FILE_MARK.findall(body[:start])
        parsed.append((env, start, subs, rest, own_labels, files[-1] if files else main.name))
    resolve = Resolver(labels, figure_of_label)

    # paragraphs of the body text, figures and tables cut out, headings as breaks
    flow = body
    for _, start, _, _, stop in sorted(tp.find_environments(body, DROPPED_ENVS), key=lambda e: -e[1]):
        flow = flow[:start] + "\n\n" + flow[stop:]
    flow = re.sub(r"\\(?:chapter|section|subsection|subsubsection|paragraph)\*?\s*(?:\[[^\]]*\])?\s*\{[^{}]*(?:\{[^{}]*\}[^{}]*)*\}", "\n\n", flow)
    flow = re.sub(r"\\(?:par|maketitle|appendix|newpage|clearpage)(?![A-Za-z])", "\n\n", flow)
    paragraphs = []
    for chunk in re.split(r"\n[ \t]*\n", flow):
        if not chunk.strip():
            continue
        marked = latex_to_text(resolve(chunk, mark=True))
        if marked:
            paragraphs.append(marked)

    for index, (env, start, subs, rest, own_labels, tex_file) in enumerate(parsed):
        where = f"{source}: {tex_file}: {env} " + (f"\\label{{{own_labels[0]}}}" if own_labels else f"#{index + 1}")
        caption_latex = _caption(rest)
        if caption_latex is None:
            paper.skip("figure", where, "no \\caption")
            continue
        number = figure_numbers.get(start, "")
        caption_text = latex_to_text(resolve(caption_latex))
        graphics = [g for s in subs for g in s["graphics"]] + _graphics(rest)
        if not graphics:
            paper.skip("figure", where, "no \\includegraphics (TikZ/PGF or other drawing code is not rendered)")
            continue
        panels, ocr, used, problem = [], [], [], None
        tex_dir = (root / tex_file).parent
        for graphic in graphics:
            path = _resolve_graphic(graphic, root, tex_dir, graphic_dirs)
            if path is None:
                problem = f"missing figure file {graphic!r}"
                counts["missing_files"] = counts.get("missing_files", 0) + 1
                break
            suffix = path.suffix.lower()
            try:
                if suffix == ".pdf":
                    image, words = render_pdf_figure(path, dpi, limits)
                    panels.append(image)
                    ocr += words
                elif suffix == ".eps" and not imgs.ghostscript_available():
                    problem = f"{graphic!r} is EPS and Ghostscript is not installed"
                    counts["eps_skipped"] = counts.get("eps_skipped", 0) + 1
                    break
                elif suffix in imgs.RASTER_SUFFIXES + (".eps",):
                    panels.append(imgs.load_raster(path, limits))
                else:
                    problem = f"{graphic!r}: unsupported figure file type {suffix or '(none)'}"
                    break
            except ScituneError as err:
                problem = str(err)
                break
            used.append(path.relative_to(root).as_posix())
        if problem:
            paper.skip("figure", where, problem)
            continue
        mentions, mention_paragraphs = [], []
        for paragraph in paragraphs:
            if not any(int(k) == index for k in REF_MARK.findall(paragraph)):
                continue
            mention_paragraphs.append(REF_MARK.sub("", paragraph))
            mentions.append([REF_MARK.sub("", s) for s in sentences(paragraph)
                             if any(int(k) == index for k in REF_MARK.findall(s))])
        label_text = f"Figure {number}" if number else "Figure"
        paper.figures.append(Figure(
            number=number,
            caption=f"{label_text}: {caption_text}",
            caption_no_index=caption_text,
            png=imgs.png_bytes(imgs.compose_panels(panels, limits)),
            paragraphs=mention_paragraphs,
            mentions=mentions,
            ocr=ocr,
            provenance={
                "tex_file": tex_file,
                "environment": env,
                "label": own_labels[0] if own_labels else None,
                "graphics": used,
                "subfigures": [{"label": (s["labels"] or [None])[0],
                                "caption": latex_to_text(resolve(s["caption"])) if s["caption"] else None,
                                "graphics": s["graphics"]} for s in subs],
            },
        ))
    return paper
