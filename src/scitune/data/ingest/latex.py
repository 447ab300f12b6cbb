"""A paper's LaTeX source -> its figures with caption, mentioning paragraphs and text layer.

Steps: read the source (`latex_source`: main file, inputs, encodings, comments, `\\iffalse`),
expand the source's own macros (`texparse`), find the figure units and number figures, tables,
sections and equations as LaTeX would, so `\\ref`s resolve (`latex_numbers`), then read each
figure: its `\\caption` (or `\\captionof{figure}`), its `\\label`s, its subfigures (`subfigure`
environments, `\\subfloat`, `\\subcaptionbox`, the old `\\subfigure` macro) and its
`\\includegraphics` files (found through `\\graphicspath`, with or without an extension). A
paragraph mentions a figure when it `\\ref`s, `\\autoref`s or `\\cref`s the figure's label or one
of its subfigures' labels. LaTeX -> text is `latex_text`'s (math as text, citations decided there).

Every step is linear in the size of the source: positions are looked up by bisection, cut-outs
joined once, and only paragraphs that mention a figure are converted to text.
"""

from __future__ import annotations

import bisect
import re
from pathlib import Path

from scitune.data.ingest import images as imgs
from scitune.data.ingest import texparse as tp
from scitune.data.ingest.latex_numbers import (FIGURE_ENVS, REF_MARK, SUB_ENVS, TABLE_ENVS, Resolver,
                                               figure_units, number_labels)
from scitune.data.ingest.latex_source import FILE_MARK, Source, find_main, find_main_files, load_source
from scitune.data.ingest.latex_text import latex_to_text
from scitune.data.ingest.licence import find_licence
from scitune.data.ingest.limits import DEFAULT_LIMITS, Limits
from scitune.data.ingest.records import Figure, Paper
from scitune.data.ingest.text import figure_text, sentences
from scitune.errors import ScituneError

__all__ = ["FIGURE_ENVS", "find_main", "latex_to_text", "load_source", "read_latex_paper"]

DROPPED_ENVS = TABLE_ENVS + ("thebibliography", "tikzpicture")
GRAPHICS_SUFFIXES = (".pdf", ".png", ".jpg", ".jpeg", ".eps")
_INCLUDEGRAPHICS = re.compile(r"\\includegraphics\*?(?![A-Za-z])")
_CAPTION = re.compile(r"\\caption(of)?\*?(?![A-Za-z])")
_LABEL = re.compile(r"\\label\s*\{([^}]*)\}")
_SUBMACRO = re.compile(r"\\(subfloat|subfigure|subcaptionbox)(?![A-Za-z])")
_GRAPHICSPATH = re.compile(r"\\graphicspath\s*\{((?:\s*\{[^{}]*\})+)\s*\}")
_DRAWING = re.compile(r"\\begin\s*\{(?:tikzpicture|pgfpicture|pspicture|circuitikz)\}"
                      r"|\\(?:tikz|includestandalone|includetikz|pgfimage|tikzsetnextfilename)(?![A-Za-z])")
_HEADING = re.compile(r"\\(?:chapter|section|subsection|subsubsection|paragraph)\*?\s*(?:\[[^\]]*\])?\s*\{[^{}]*(?:\{[^{}]*\}[^{}]*)*\}"
                      r"|\\(?:par|maketitle|appendix|newpage|clearpage)(?![A-Za-z])")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")


def _graphics(text: str) -> list[str]:
    files = []
    for match in _INCLUDEGRAPHICS.finditer(text):
        _, j = tp.read_optional(text, match.end())
        group = tp.read_group(text, j)
        if group:
            files.append(group[0].strip().strip('"'))
    return files


def _caption(text: str) -> tuple[bool, str | None]:
    """(whether the fragment has a caption command, the last `\\caption{...}` or
    `\\captionof{figure}{...}` as LaTeX). A caption whose braces never close is None: it is
    reported, never cut at a brace that is not its own."""
    found, seen = None, False
    for match in _CAPTION.finditer(text):
        j = match.end()
        if match.group(1):
            kind = tp.read_group(text, j)
            if kind is None or kind[0].strip() != "figure":
                continue
            j = kind[1]
        seen = True
        _, j = tp.read_optional(text, j)
        k = tp.skip_space(text, j)
        group = tp.read_group(text, k) if k < len(text) and text[k] == "{" else None
        found = group[0] if group else None
    return seen, found


def _labels(text: str) -> list[str]:
    return [m.group(1).strip() for m in _LABEL.finditer(text)]


def _subfigures(body: str) -> tuple[list[dict], str]:
    """The subfigures of a figure body (caption, labels, graphics, as LaTeX) and the body with
    them cut out (what is left holds the figure's own caption and label)."""
    spans: list[tuple[int, int, dict]] = []
    for _, start, inner, inner_end, end in tp.find_environments(body, SUB_ENVS):
        part = body[inner:inner_end]
        spans.append((start, end, {"caption": _caption(part)[1], "labels": _labels(part), "graphics": _graphics(part)}))
    env_starts = [s[0] for s in spans]
    env_spans = list(spans)
    for match in _SUBMACRO.finditer(body):
        k = bisect.bisect_right(env_starts, match.start()) - 1
        if k >= 0 and env_spans[k][0] <= match.start() < env_spans[k][1]:
            continue
        j = match.end()
        if match.group(1) == "subcaptionbox":
            _, j = tp.read_optional(body, j)
            cap = tp.read_group(body, j)
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


def _resolve_graphic(name: str, root: Path, bases: list[Path]) -> Path | None:
    suffixes = ("",) if Path(name).suffix.lower() in GRAPHICS_SUFFIXES else GRAPHICS_SUFFIXES + ("",)
    for base in bases:
        for suffix in suffixes:
            candidate = base / (name + suffix)
            if candidate.is_file() and _within(root, candidate):
                return candidate
    return None


def _within(root: Path, path: Path) -> bool:
    try:
        path.resolve().relative_to(root)
        return True
    except ValueError:
        return False


def _paragraphs(body: str, units: list, resolve: Resolver) -> dict[int, list[str]]:
    """Figure index -> the paragraphs (as text, markers kept) that mention it. The body is cut
    at figure units, tables and headings; a paragraph is converted only when it mentions one."""
    cuts = sorted([(u[1], u[4]) for u in units] + [(e[1], e[4]) for e in tp.find_environments(body, DROPPED_ENVS)])
    pieces, i = [], 0
    for start, end in cuts:
        if start >= i:
            pieces.append(body[i:start])
            pieces.append("\n\n")
        i = max(i, end)
    pieces.append(body[i:])
    flow = _HEADING.sub("\n\n", "".join(pieces))
    mentioned: dict[int, list[str]] = {}
    for chunk in _PARAGRAPH_BREAK.split(flow):
        marked = resolve(chunk, mark=True)
        if "\ue001" not in marked:
            continue
        text = latex_to_text(marked)
        for index in {int(k) for k in REF_MARK.findall(text)}:
            mentioned.setdefault(index, []).append(text)
    return mentioned


def _read_graphics(graphics: list[str], root: Path, bases: list[Path], dpi: int, limits: Limits,
                   counts: dict) -> tuple[list, list[str], list[str], str | None]:
    """(panels, text layer words, files used, problem) of a figure's graphics files."""
    from scitune.data.ingest.pdf import render_pdf_figure

    panels, ocr, used = [], [], []
    for graphic in graphics:
        path = _resolve_graphic(graphic, root, bases)
        if path is None:
            counts["missing_files"] = counts.get("missing_files", 0) + 1
            return panels, ocr, used, f"missing figure file {graphic!r}"
        suffix = path.suffix.lower()
        try:
            if suffix == ".pdf":
                image, words = render_pdf_figure(path, dpi, limits)
                panels.append(image)
                ocr += words
            elif suffix == ".eps":
                if not imgs.ghostscript_available():
                    counts["eps_skipped"] = counts.get("eps_skipped", 0) + 1
                    return panels, ocr, used, f"{graphic!r} is EPS and Ghostscript (gs) is not installed"
                panels.append(imgs.render_eps(path, dpi, limits))
            elif suffix in imgs.RASTER_SUFFIXES:
                panels.append(imgs.load_raster(path, limits))
            else:
                return panels, ocr, used, f"{graphic!r}: unsupported figure file type {suffix or '(none)'}"
        except ScituneError as err:
            return panels, ocr, used, str(err)
        used.append(path.relative_to(root).as_posix())
    return panels, ocr, used, None


def read_latex_paper(root: Path, name: str, source: str, dpi: int = 150, limits: Limits = DEFAULT_LIMITS,
                     counts: dict | None = None) -> Paper:
    """The figures of the LaTeX source in folder `root`; what is not taken is in `paper.unpaired`."""
    counts = counts if counts is not None else {}
    root = root.resolve()
    main, others = find_main_files(root)
    loaded: Source = load_source(main, root, limits)
    main_rel = loaded.main.relative_to(root).as_posix()
    paper = Paper(name=name, source=source, kind="latex")
    for other in (p for p in others if p.resolve() not in loaded.files):  # a \subfile is read, not reported
        paper.skip("tex file", f"{source}: {other.relative_to(root).as_posix()}",
                   f"has \\documentclass but is not the main file ({main_rel} is); not read")
    for where, reason in loaded.problems:
        paper.skip("tex file", f"{source}: {where}", reason)
    licence_file = next((p for p in sorted(root.iterdir()) if p.is_file() and p.stem.upper() in ("LICENSE", "LICENCE", "COPYING")), None)
    paper.licence = find_licence(loaded.raw_texts + ([licence_file.read_text(errors="replace")[:20000]] if licence_file else []))
    macros, text = tp.parse_macros(loaded.text)
    main_dir = loaded.main.parent
    graphic_dirs = [main_dir / g for m in _GRAPHICSPATH.finditer(text) for g in re.findall(r"\{([^{}]*)\}", m.group(1))]
    begin = re.search(r"\\begin\s*\{document\}", text)
    end = re.search(r"\\end\s*\{document\}", text)
    if begin:
        prefix = FILE_MARK.findall(text[: begin.start()])
        body = (f"\ue010{prefix[-1]}\ue011" if prefix else "") + text[begin.end() : end.start() if end and end.start() > begin.end() else len(text)]
    else:
        body = text
    body = tp.expand_macros(body, macros, limits.macro_expansions, main_rel, depth=limits.macro_depth,
                            max_chars=limits.macro_text_bytes)
    units = figure_units(body)
    labels, figure_numbers = number_labels(body, units)
    marks = [(m.start(), m.group(1)) for m in FILE_MARK.finditer(body)]
    mark_starts = [p for p, _ in marks]

    parsed = []
    figure_of_label: dict[str, int] = {}
    for index, (env, start, inner, inner_end, _) in enumerate(units):
        subs, rest = _subfigures(body[inner:inner_end])
        own_labels = _labels(rest)
        for lab in own_labels + [lab for s in subs for lab in s["labels"]]:
            figure_of_label[lab] = index
        k = bisect.bisect_right(mark_starts, start) - 1
        parsed.append((env, start, subs, rest, own_labels, marks[k][1] if k >= 0 else main_rel))
    resolve = Resolver(labels, figure_of_label)
    mentioned = _paragraphs(body, units, resolve)

    for index, (env, start, subs, rest, own_labels, tex_file) in enumerate(parsed):
        where = f"{source}: {tex_file}: {env} " + (f"\\label{{{own_labels[0]}}}" if own_labels else f"#{index + 1}")
        has_caption, caption_latex = _caption(rest)
        if caption_latex is None:
            paper.skip("figure", where, "unbalanced braces in \\caption" if has_caption else "no \\caption")
            continue
        number = figure_numbers.get(start, "")
        caption_text = latex_to_text(resolve(caption_latex))
        graphics = [g for s in subs for g in s["graphics"]] + _graphics(rest)
        if not graphics:
            if _DRAWING.search(body, units[index][2], units[index][3]):
                counts["tikz_skipped"] = counts.get("tikz_skipped", 0) + 1
                paper.skip("figure", where, "a TikZ/PGF drawing (drawing code is not rendered)")
            else:
                paper.skip("figure", where, "no \\includegraphics")
            continue
        bases = graphic_dirs + [(root / tex_file).parent, main_dir, root]
        panels, ocr, used, problem = _read_graphics(graphics, root, bases, dpi, limits, counts)
        if problem:
            paper.skip("figure", where, problem)
            continue
        mention_paragraphs, mentions = [], []
        for paragraph in mentioned.get(index, []):
            mention_paragraphs.append(REF_MARK.sub("", paragraph))
            mentions.append([REF_MARK.sub("", s) for s in sentences(paragraph)
                             if any(int(k) == index for k in REF_MARK.findall(s))])
        label_text = f"Figure {number}" if number else "Figure"
        paper.figures.append(Figure(
            number=number,
            caption=f"{label_text}: {caption_text}",
            caption_no_index=caption_text,
            caption_latex=caption_latex.strip(),
            png=imgs.png_bytes(imgs.compose_panels(panels, limits)),
            paragraphs=mention_paragraphs,
            mentions=mentions,
            ocr=figure_text(ocr, limits.ocr_lines),
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
