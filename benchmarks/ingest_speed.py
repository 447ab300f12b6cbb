"""How fast `scitune ingest` reads papers, where its time goes, how well it finds figures, and
how its memory grows with the number of papers.

    python benchmarks/ingest_speed.py [--papers 16] [--figures-per-paper 6] [--dpi 150]
                                      [--workers 1,2] [--rounds 2] [--quick] [--out DIR]
                                      [--memory 100,1000,10000] [--memory-budget 900]

The script writes its own papers, each with figures like real ones (cycled in this order): a
scatter of 20,000 points with axis labels; a six-panel plot with about 2,000 text glyphs (it
spans both columns: `figure*`); a raster image (imshow, with a colour bar) inside a PDF; a
block diagram with arrows; a line plot with a legend; grouped bars with error bars. Each figure
is a one-page vector PDF from matplotlib with TrueType text (`pdf.fonttype` 42), so it has a
text layer. Every paper is written twice:

- as a LaTeX source (main.tex + figs/figK.pdf, `\\ref`s in the body), the form `scitune ingest`
  reads best;
- "compiled", as pdflatex would (no TeX is needed): fpdf2 sets the two-column text pages, with a
  "Figure K: ..." caption under each figure and body paragraphs that mention "Figure K", and each
  figure's PDF page is placed as a form XObject (pypdfium2 `page_as_xobject`), vector and text
  layer intact.

For each kind it runs ingest once in a child process with timers (below), then alternates
uninstrumented runs with 1 and 2 workers (--rounds times; speed is a ratio of runs made side by
side, not an absolute time). "2 workers" is `scitune ingest --workers 2` when the command has
that option, else two processes each ingesting half of the papers. Times exclude interpreter
start-up and imports (each child stamps the start and end of its ingest).

Shares of time (instrumented run, 1 worker; hooks are looked up by name at run time, "n/a" when
one is missing): rendering = pypdfium2 `PdfPage.render` + `PdfBitmap.to_pil`; text extraction =
pypdfium2 text-page calls (`get_textpage`, the `PdfTextPage` methods) and scitune's own text
lines (`pdf._text_lines`, which includes the raw per-character PDFium calls it makes; raw ctypes
functions are not wrapped, the code takes their addresses); encoding = `images.png_bytes`;
writing = the functions of `scitune.data.ingest.writer` and `.shards` whose names start with
"write" and their classes' `append` / `add` / `close` / `write*` methods (shards, split files).
Each second counts in one category (a nested call in another category counts for the inner
one). Recovery: a figure counts when its caption (letters and digits) matches the one written,
and "with mentions" when it also has a mentioning sentence that cites "Figure K".

--memory N1,N2,...: peak RSS (VmHWM of the child, read by itself at the end; ru_maxrss where
/proc is missing) of one ingest process over N tiny LaTeX papers (one 128x96 noise PNG figure
each, about 37 KB), to see whether memory stays flat in the number of papers. Sizes that would
not finish within --memory-budget seconds (extrapolated from the previous size) are skipped and
reported as such.

The machine is shared: the load average is recorded before and after each run.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FIGURE_KINDS = ("scatter", "panels", "raster", "diagram", "lines", "bars")
WIDE_KINDS = ("panels",)  # set across both columns (figure*)
PAGE_W, PAGE_H = 612.0, 792.0  # US letter, points
MARGIN, GUTTER = 54.0, 18.0
COLUMN_W = (PAGE_W - 2 * MARGIN - GUTTER) / 2
LINE_H, BODY_SIZE = 11.0, 9.0
TINY_PX = (128, 96)  # the figure of a tiny paper (memory run)
WORDS = ("model data figure sample energy spectrum measured value signal noise method result training "
         "accuracy baseline error rate distribution temperature pressure density field layer network "
         "experiment observed increase decrease region response parameter estimate variance scale "
         "frequency peak curve dataset projection encoder alignment instruction caption science").split()


def load_average() -> float:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else float("nan")


# ------------------------------------------------------------------------------ writing the papers


def _prose(rng, sentences: int, mention: str | None = None) -> str:
    """Plausible-looking filler sentences; `mention` (e.g. "Figure 3") is cited in the second."""
    out = []
    for i in range(sentences):
        words = [WORDS[int(k)] for k in rng.integers(0, len(WORDS), int(rng.integers(10, 18)))]
        if mention and i == 1:
            words.insert(int(rng.integers(1, len(words))), f"in {mention}")
        sentence = " ".join(words)
        out.append(sentence[0].upper() + sentence[1:] + ".")
    return " ".join(out)


def _caption(kind: str, paper: int, k: int) -> str:
    return {
        "scatter": f"Scatter of 20,000 simulated measurements of energy against time for run {paper}.{k}; "
                   "the density rises towards the origin.",
        "panels": f"Six panels of the ablation for run {paper}.{k}: each panel plots the loss of one "
                  "configuration and labels its points with their values.",
        "raster": f"Intensity map of the detector for run {paper}.{k}, shown as an image with a colour bar.",
        "diagram": f"Block diagram of the pipeline for run {paper}.{k}: encoder, projector and language model.",
        "lines": f"Training loss against step for three learning rates in run {paper}.{k}.",
        "bars": f"Accuracy by category with standard errors over five seeds in run {paper}.{k}.",
        "png": f"A small raster figure of run {paper}.{k}.",
    }[kind]


def draw_figure(kind: str, seed: int) -> tuple[bytes, int]:
    """A one-page vector PDF of a figure of `kind` (TrueType text, so it has a text layer), and
    the number of text glyphs drawn in it."""
    import matplotlib
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.text import Text

    rng = np.random.default_rng(seed)
    with matplotlib.rc_context({"pdf.fonttype": 42, "font.size": 7}):
        fig = Figure(figsize=(6.5, 3.6) if kind in WIDE_KINDS else (3.3, 2.5))
        FigureCanvasAgg(fig)
        if kind == "scatter":
            ax = fig.add_subplot()
            x = rng.gamma(2.0, 1.0, 20_000)
            ax.scatter(x, x * 0.5 + rng.normal(0, 0.6, x.size), s=1, c=rng.random(x.size), cmap="viridis")
            ax.set_xlabel("Time (s)")
            ax.set_ylabel("Energy (keV)")
            ax.set_title("Measurements")
        elif kind == "panels":
            axes = fig.subplots(2, 3)
            for p, ax in enumerate(axes.ravel()):
                xs = np.arange(50)
                ys = np.cumsum(rng.normal(0, 1, xs.size))
                ax.plot(xs, ys, lw=0.8)
                for x, y in zip(xs, ys):  # about 2,000 glyphs over the six panels
                    ax.text(x, y, f"{y:+.3f}", fontsize=2.5)
                ax.set_title(f"Configuration {p + 1}", fontsize=6)
                ax.set_xlabel("Epoch", fontsize=5)
                ax.set_ylabel("Loss", fontsize=5)
                ax.tick_params(labelsize=4)
        elif kind == "raster":
            ax = fig.add_subplot()
            yy, xx = np.mgrid[0:240, 0:320]
            field = np.sin(xx / 17.0 + seed) * np.cos(yy / 23.0) + rng.normal(0, 0.2, xx.shape)
            image = ax.imshow(field, cmap="magma", aspect="auto")
            fig.colorbar(image, ax=ax, label="Counts")
            ax.set_xlabel("Pixel x")
            ax.set_ylabel("Pixel y")
        elif kind == "diagram":
            ax = fig.add_subplot()
            ax.set_axis_off()
            ax.set_xlim(0, 10)
            ax.set_ylim(0, 4)
            names = ["Image", "Encoder", "Projector", "Language model", "Answer"]
            for i, name in enumerate(names):
                x = 0.3 + i * 2.0
                ax.add_patch(matplotlib.patches.FancyBboxPatch((x, 1.5), 1.5, 1.0, boxstyle="round,pad=0.05",
                                                               fc="#dde8f4", ec="black", lw=0.8))
                ax.text(x + 0.75, 2.0, name, ha="center", va="center", fontsize=5)
                if i:
                    ax.annotate("", xy=(x - 0.05, 2.0), xytext=(x - 0.45, 2.0), arrowprops={"arrowstyle": "->"})
            ax.text(5.0, 0.7, "frozen        trained        frozen", ha="center", fontsize=5)
        elif kind == "lines":
            ax = fig.add_subplot()
            steps = np.arange(200)
            for lr in ("1e-4", "3e-4", "1e-3"):
                ax.plot(steps, np.exp(-steps / (60 + 40 * rng.random())) + rng.normal(0, 0.02, steps.size), label=f"lr {lr}")
            ax.set_xlabel("Step")
            ax.set_ylabel("Loss")
            ax.legend()
        elif kind == "bars":
            ax = fig.add_subplot()
            cats = ["NAT", "SOC", "LAN", "TXT", "IMG", "NO"]
            for j, name in enumerate(("ours", "baseline")):
                ax.bar(np.arange(6) + 0.4 * j, rng.uniform(50, 95, 6), 0.4, yerr=rng.uniform(1, 4, 6), label=name)
            ax.set_xticks(np.arange(6) + 0.2, cats)
            ax.set_ylabel("Accuracy (%)")
            ax.legend()
        else:
            raise ValueError(kind)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="pdf")
        fig.canvas.draw()
        glyphs = sum(len(t.get_text().strip()) for t in fig.findobj(Text) if t.get_visible())
    return buffer.getvalue(), glyphs


def _tex_escape(text: str) -> str:
    return re.sub(r"([%&#_$])", r"\\\1", text)


def write_latex(folder: Path, title: str, figures: list[dict], rng) -> None:
    (folder / "figs").mkdir(parents=True, exist_ok=True)
    body = []
    for k, fig in enumerate(figures, start=1):
        (folder / "figs" / f"fig{k}.pdf").write_bytes(fig["pdf"])
        env = "figure*" if fig["kind"] in WIDE_KINDS else "figure"
        body.append(_prose(rng, 4, mention=f"Figure~\\ref{{fig:f{k}}}"))
        body.append(f"\\begin{{{env}}}[t]\n  \\centering\n  \\includegraphics[width=\\linewidth]{{figs/fig{k}.pdf}}\n"
                    f"  \\caption{{{_tex_escape(fig['caption'])}}}\n  \\label{{fig:f{k}}}\n\\end{{{env}}}")
        body.append(_prose(rng, 5))
    (folder / "main.tex").write_text(
        "\\documentclass[twocolumn]{article}\n\\usepackage{graphicx}\n% License: CC BY 4.0\n"
        f"\\title{{{title}}}\n\\begin{{document}}\n\\maketitle\n\\section{{Introduction}}\n{_prose(rng, 8)}\n\n"
        "\\section{Results}\n" + "\n\n".join(body) + "\n\\end{document}\n", encoding="utf-8")


class _Layout:
    """Two-column pages over fpdf2, the way pdflatex places floats: a column figure at the
    current place in its column (or the next column), a wide figure at the top of the next page.
    Figures are left as empty boxes here and placed afterwards (`place_figures`)."""

    def __init__(self, title: str):
        import matplotlib
        from fpdf import FPDF

        self.pdf = FPDF(unit="pt", format="letter")
        self.pdf.set_auto_page_break(False)
        self.pdf.add_font("DejaVu", "", str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"))
        self.pdf.add_page()
        self.pdf.set_font("DejaVu", size=14)
        self.pdf.set_xy(MARGIN, MARGIN)
        self.pdf.multi_cell(PAGE_W - 2 * MARGIN, 18, title, align="C")
        self.pdf.set_font("DejaVu", size=BODY_SIZE)
        self.top = self.pdf.get_y() + 12
        self.column, self.y = 0, self.top
        self.wide: list[tuple[dict, str]] = []  # wide figures waiting for the next page
        self.boxes: list[tuple[int, float, float, float, float, bytes]] = []  # page, x, y top, w, h, pdf

    def _lines(self, text: str, width: float) -> list[str]:
        return self.pdf.multi_cell(width, LINE_H, text, dry_run=True, output="LINES")

    def _new_page(self) -> None:
        self.pdf.add_page()
        self.top = MARGIN
        for fig, caption in self.wide:  # figure*: at the top of the page, across both columns
            width = 2 * COLUMN_W + GUTTER
            height = width * fig["height"] / fig["width"]
            self.boxes.append((self.pdf.page - 1, MARGIN, self.top, width, height, fig["pdf"]))
            self.top += height + 6
            self.pdf.set_xy(MARGIN, self.top)
            lines = self._lines(caption, width)
            self.pdf.multi_cell(width, LINE_H, caption)
            self.top += LINE_H * len(lines) + LINE_H
        self.wide = []
        self.column, self.y = 0, self.top

    def _room(self, height: float) -> None:
        if self.y + height <= PAGE_H - MARGIN:
            return
        if self.column == 0:
            self.column, self.y = 1, self.top
        else:
            self._new_page()

    def _x(self) -> float:
        return MARGIN + self.column * (COLUMN_W + GUTTER)

    def paragraph(self, text: str) -> None:
        lines = self._lines(text, COLUMN_W)
        while lines:
            self._room(LINE_H)
            fit = max(1, int((PAGE_H - MARGIN - self.y) // LINE_H))
            chunk, lines = lines[:fit], lines[fit:]
            self.pdf.set_xy(self._x(), self.y)
            self.pdf.multi_cell(COLUMN_W, LINE_H, "\n".join(chunk))
            self.y += LINE_H * len(chunk)
        self.y += LINE_H * 0.8

    def figure(self, fig: dict, caption: str) -> None:
        if fig["kind"] in WIDE_KINDS:
            self.wide.append((fig, caption))
            return
        height = COLUMN_W * fig["height"] / fig["width"]
        lines = self._lines(caption, COLUMN_W)
        self._room(height + 6 + LINE_H * len(lines))
        self.boxes.append((self.pdf.page - 1, self._x(), self.y, COLUMN_W, height, fig["pdf"]))
        self.y += height + 6
        self.pdf.set_xy(self._x(), self.y)
        self.pdf.multi_cell(COLUMN_W, LINE_H, caption)
        self.y += LINE_H * len(lines) + LINE_H

    def finish(self) -> bytes:
        if self.wide:
            self._new_page()
        return bytes(self.pdf.output())


def place_figures(text_pdf: bytes, boxes: list, path: Path) -> None:
    """Each figure's PDF page as a form XObject in its box on the text pages, as pdflatex
    includes a PDF figure."""
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(text_pdf)
    sources, pages = [], {}
    try:
        for page_index, x, y_top, width, height, pdf_bytes in boxes:
            src = pdfium.PdfDocument(pdf_bytes)
            sources.append(src)
            src_w, src_h = src.get_page_size(0)
            form = src.page_as_xobject(0, doc).as_pageobject()
            form.transform(pdfium.PdfMatrix().scale(width / src_w, height / src_h).translate(x, PAGE_H - y_top - height))
            if page_index not in pages:
                pages[page_index] = doc[page_index]
            pages[page_index].insert_obj(form)
        for page in pages.values():
            page.gen_content()
        doc.save(str(path))
    finally:
        doc.close()
        for src in sources:
            src.close()


def write_pdf(path: Path, title: str, figures: list[dict], rng) -> None:
    layout = _Layout(title)
    layout.paragraph("Introduction. " + _prose(rng, 8) + " License: CC BY 4.0.")
    for k, fig in enumerate(figures, start=1):
        layout.paragraph(_prose(rng, 4, mention=f"Figure {k}"))
        layout.figure(fig, f"Figure {k}: {fig['caption']}")
        layout.paragraph(_prose(rng, 5))
    text_pdf = layout.finish()
    place_figures(text_pdf, layout.boxes, path)


def figure_pool(kinds: list[str], variants: int, log) -> dict[tuple[str, int], dict]:
    """`variants` different drawings of each kind (papers reuse them in turn: drawing 20,000
    points takes longer than ingesting them)."""
    import pypdfium2 as pdfium

    pool = {}
    for kind in dict.fromkeys(kinds):
        for v in range(variants):
            pdf, glyphs = draw_figure(kind, seed=1000 * v + FIGURE_KINDS.index(kind))
            doc = pdfium.PdfDocument(pdf)
            width, height = doc.get_page_size(0)
            doc.close()
            pool[kind, v] = {"kind": kind, "pdf": pdf, "glyphs": glyphs, "width": width, "height": height}
        log(f"  drew {variants} x {kind} ({len(pool[kind, 0]['pdf']) // 1024} KiB, {pool[kind, 0]['glyphs']} glyphs)")
    return pool


def write_papers(root: Path, papers: int, figures_per_paper: int, log) -> dict:
    """root/latex/paper-NNNN/ and root/pdf/paper-NNNN.pdf; returns the expected figures."""
    import numpy as np

    kinds = [FIGURE_KINDS[k % len(FIGURE_KINDS)] for k in range(figures_per_paper)]
    pool = figure_pool(kinds, min(papers, 3), log)
    expected = {}
    for i in range(papers):
        name = f"paper-{i:04d}"
        figures = [dict(pool[kind, i % min(papers, 3)], caption=_caption(kind, i, k + 1)) for k, kind in enumerate(kinds)]
        title = f"Benchmark paper {i}: figures of science"
        write_latex(root / "latex" / name, title, figures, np.random.default_rng(i))
        (root / "pdf").mkdir(parents=True, exist_ok=True)
        write_pdf(root / "pdf" / f"{name}.pdf", title, figures, np.random.default_rng(i))
        expected[name] = [f["caption"] for f in figures]
    glyphs = {kind: pool[kind, 0]["glyphs"] for kind in dict.fromkeys(kinds)}
    return {"captions": expected, "glyphs": glyphs, "kinds": kinds}


def write_tiny_papers(root: Path, papers: int) -> None:
    """`papers` tiny LaTeX papers, one small noisy PNG figure each (TINY_PX, about 37 KB: a
    program that kept every figure in memory would grow by that much per paper)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(papers):
        folder = root / f"tiny-{i:05d}"
        folder.mkdir(parents=True)
        pixels = rng.integers(0, 256, (TINY_PX[1], TINY_PX[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / "fig.png")
        (folder / "main.tex").write_text(
            "\\documentclass{article}\n\\begin{document}\nAs Figure~\\ref{fig:a} shows, the run " f"{i} converged.\n"
            "\\begin{figure}\\includegraphics{fig.png}\\caption{" + _caption("png", i, 1) + "}\\label{fig:a}\\end{figure}\n"
            "\\end{document}\n", encoding="utf-8")


# ------------------------------------------------------------------------ the child process (timers)


class Timers:
    """Seconds spent inside hooked functions, by category, each second in one category: a call
    nested in another of the same category counts once, and time in a nested call of another
    category (encoding inside rendering, say) counts for the inner one only."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.hooks: dict[str, list[str]] = {}
        self.stack: list[str] = []  # the categories being timed, innermost last
        self.mark = 0.0  # when the innermost one last started or resumed

    def wrap(self, category: str, owner, name: str, label: str) -> bool:
        original = getattr(owner, name, None)
        if original is None or not callable(original):
            return False
        timers = self

        def timed(*args, **kwargs):
            if category in timers.stack:
                return original(*args, **kwargs)
            now = time.perf_counter()
            if timers.stack:  # pause the enclosing category
                timers.seconds[timers.stack[-1]] += now - timers.mark
            timers.stack.append(category)
            timers.mark = now
            try:
                return original(*args, **kwargs)
            finally:
                now = time.perf_counter()
                timers.seconds[category] += now - timers.mark
                timers.calls[category] = timers.calls.get(category, 0) + 1
                timers.stack.pop()
                timers.mark = now  # the enclosing category resumes

        setattr(owner, name, timed)
        self.hooks.setdefault(category, []).append(label)
        self.seconds.setdefault(category, 0.0)
        return True


def install_timers() -> Timers:
    import importlib

    import pypdfium2 as pdfium

    timers = Timers()
    for cls, name in ((pdfium.PdfPage, "render"), (pdfium.PdfBitmap, "to_pil")):
        timers.wrap("render", cls, name, f"pypdfium2.{cls.__name__}.{name}")
    timers.wrap("text", pdfium.PdfPage, "get_textpage", "pypdfium2.PdfPage.get_textpage")
    for name in dir(pdfium.PdfTextPage):
        if not name.startswith("_") and name not in ("parent", "close") and callable(getattr(pdfium.PdfTextPage, name)):
            timers.wrap("text", pdfium.PdfTextPage, name, f"pypdfium2.PdfTextPage.{name}")

    def module(name):
        try:
            return importlib.import_module(name)
        except ImportError:
            return None

    pdf_module = module("scitune.data.ingest.pdf")
    if pdf_module is not None:  # scitune's line building over the text page (it calls PDFium itself)
        timers.wrap("text", pdf_module, "_text_lines", "scitune pdf._text_lines")
    images = module("scitune.data.ingest.images")
    if images is not None:
        timers.wrap("encode", images, "png_bytes", "scitune images.png_bytes")
    package = module("scitune.data.ingest")
    for name in ("scitune.data.ingest.writer", "scitune.data.ingest.shards"):
        mod = module(name)
        if mod is None:
            continue
        short = name.rsplit(".", 1)[1]
        for attr, value in sorted(vars(mod).items()):
            if getattr(value, "__module__", "") != mod.__name__:
                continue
            if attr.startswith("write") and callable(value) and not isinstance(value, type):
                timers.wrap("write", mod, attr, f"scitune {short}.{attr}")
                # the package may hold its own reference (`from .writer import write_layout`)
                if package is not None and getattr(package, attr, None) is value:
                    setattr(package, attr, getattr(mod, attr))
            elif isinstance(value, type):
                for method in sorted(vars(value)):
                    if method in ("append", "add", "close") or method.startswith("write"):
                        timers.wrap("write", value, method, f"scitune {short}.{attr}.{method}")
    return timers


def _vm_hwm_kib() -> int | None:
    """This process's peak resident set (Linux VmHWM). Unlike ru_maxrss it starts afresh at
    exec: Linux carries the parent's resident set at fork into a child's ru_maxrss, so a parent
    that drew figures would raise every child's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def child(spec_path: str) -> int:
    """Runs one ingest as the spec says and writes its result JSON (`--child SPEC.json`)."""
    import resource

    from scitune.io.atomic import write_json

    spec = json.loads(Path(spec_path).read_text())
    from scitune import threads

    threads.configure(spec.get("threads"))
    import scitune.data.ingest as ingest_pkg

    timers = install_timers() if spec["instrument"] else None
    per_paper: list[tuple[float, float]] = []
    per_paper_hook = next((n for n in ("read_task", "read_paper") if callable(getattr(ingest_pkg, n, None))), None)
    if spec["instrument"] and per_paper_hook:
        original = getattr(ingest_pkg, per_paper_hook)

        def read_paper(*args, **kwargs):
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                per_paper.append((time.perf_counter() - wall, time.process_time() - cpu))

        setattr(ingest_pkg, per_paper_hook, read_paper)
    import importlib
    import inspect

    for name in ("PIL.Image", "pypdfium2", "pylatexenc.latex2text", "scitune.data.ingest.latex",
                 "scitune.data.ingest.pdf", "scitune.cli"):  # imports are not part of the time
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    options = {}
    if "workers" in inspect.signature(ingest_pkg.ingest).parameters:
        options["workers"] = 1  # the API's own pool would hide the timers in other processes
    start, cpu = time.time(), time.process_time()
    if spec.get("cli_workers"):
        from scitune.cli import main

        code = main(["ingest", *spec["paths"], "--out", spec["out"], "--dpi", str(spec["dpi"]),
                     "--workers", str(spec["cli_workers"])])
        if code:
            raise SystemExit(f"scitune ingest exited {code}")
    else:
        ingest_pkg.ingest(spec["paths"], spec["out"], seed=0, dpi=spec["dpi"], **options)
    end = time.time()
    result = {"start": start, "end": end, "cpu": time.process_time() - cpu, "vm_hwm_kib": _vm_hwm_kib(),
              "children_cpu": resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime,
              "max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "per_paper": per_paper}
    if timers is not None:
        result["timers"] = {"seconds": timers.seconds, "calls": timers.calls, "hooks": timers.hooks}
    write_json(spec["result"], result)
    return 0


# ---------------------------------------------------------------------------------- the parent


def cli_has_workers() -> bool:
    out = subprocess.run([sys.executable, "-m", "scitune", "ingest", "--help"], capture_output=True, text=True, cwd=ROOT)
    return "--workers" in out.stdout


def launch(spec: dict, workdir: Path, name: str, threads: int) -> subprocess.Popen:
    from scitune import threads as thread_policy

    spec = dict(spec, result=str(workdir / f"{name}.result.json"), threads=threads)
    spec_path = workdir / f"{name}.spec.json"
    spec_path.write_text(json.dumps(spec))
    env = dict(os.environ, **thread_policy.child_env(threads))
    log = (workdir / f"{name}.log").open("w")
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--child", str(spec_path)],
                            stdout=log, stderr=subprocess.STDOUT, cwd=str(ROOT), env=env)
    proc.name, proc.log, proc.result = name, workdir / f"{name}.log", Path(spec["result"])  # type: ignore[attr-defined]
    log.close()
    return proc


def wait(proc) -> tuple[dict, float]:
    """The child's result JSON and its ru_maxrss in MiB (os.wait4: this child, not the others;
    on Linux it includes the parent's resident set when the child was forked)."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        print(proc.log.read_text()[-3000:], file=sys.stderr)
        raise SystemExit(f"{proc.name}: the ingest run failed (exit {proc.returncode}); log above")
    return json.loads(proc.result.read_text()), usage.ru_maxrss / 1024


def run_ingest(paths: list[str], folder: Path, workdir: Path, name: str, workers: int, dpi: int,
               instrument: bool, cli_workers: bool) -> dict:
    """One ingest of `paths` with `workers` workers; wall seconds from the first start to the
    last end, summed timers, the outputs written."""
    from scitune import threads as thread_policy

    load = load_average()
    if cli_workers and not instrument:
        shares = [[str(folder)]]
        specs = [{"paths": [str(folder)], "out": str(workdir / f"{name}.out"), "dpi": dpi, "instrument": False,
                  "cli_workers": workers}]
        threads = thread_policy.budget()
    else:
        shares = [paths[i::workers] for i in range(workers)]
        specs = [{"paths": share, "out": str(workdir / f"{name}.out{i}"), "dpi": dpi, "instrument": instrument}
                 for i, share in enumerate(shares) if share]
        threads = thread_policy.share(len(specs))
    procs = [launch(spec, workdir, f"{name}.{i}", threads) for i, spec in enumerate(specs)]
    results = [wait(p) for p in procs]
    wall = max(r["end"] for r, _ in results) - min(r["start"] for r, _ in results)
    timers: dict[str, float] = {}
    calls: dict[str, int] = {}
    hooks: dict[str, list[str]] = {}
    for r, _ in results:
        for key, value in r.get("timers", {}).get("seconds", {}).items():
            timers[key] = timers.get(key, 0.0) + value
        for key, value in r.get("timers", {}).get("calls", {}).items():
            calls[key] = calls.get(key, 0) + value
        hooks.update(r.get("timers", {}).get("hooks", {}))
    return {"wall": wall, "cpu": sum(r["cpu"] + r["children_cpu"] for r, _ in results), "timers": timers, "calls": calls,
            "hooks": hooks, "per_paper": [p for r, _ in results for p in r["per_paper"]],
            "peak_rss_mib": max((r["vm_hwm_kib"] / 1024 if r.get("vm_hwm_kib") else m) for r, m in results),
            "ru_maxrss_mib": max(m for _, m in results), "outs": [Path(s["out"]) for s in specs],
            "load": [load, load_average()], "mode": "scitune ingest --workers" if cli_workers and not instrument
            else f"{len(specs)} process(es), papers split between them"}


def _norm(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", text.lower())


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [s for item in value for s in _strings(item)] if isinstance(value, list) else []


def recovery(outs: list[Path], captions: dict[str, list[str]]) -> dict:
    """Figures found with the caption written, and of those, with a mentioning sentence."""
    found: dict[tuple[str, str], dict] = {}
    for out in outs:
        for path in sorted(out.rglob("*.json")):
            try:
                data = json.loads(path.read_text())
            except (ValueError, OSError):
                continue
            if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
                continue
            for ann in data["annotations"]:
                match = re.match(r"^(paper-\d+)-fig(\d+)$", str(ann.get("image_id", "")))
                if match:
                    found[match.group(1), match.group(2)] = ann
    expected = sum(len(c) for c in captions.values())
    with_caption = with_mentions = 0
    for paper, caps in captions.items():
        for k, caption in enumerate(caps, start=1):
            ann = found.get((paper, str(k)))
            if ann and _norm(ann.get("caption_no_index", "")) == _norm(caption):
                with_caption += 1
                cites = re.compile(rf"\bFigure\W{{0,2}}{k}\b")
                with_mentions += any(cites.search(s) for s in _strings(ann.get("mention")))
    return {"expected": expected, "found": len(found), "with_caption": with_caption, "with_caption_and_mentions": with_mentions}


def speed_table(args, workdir: Path, log) -> dict:
    papers_dir = workdir / "papers"
    log(f"writing {args.papers} papers x {args.figures_per_paper} figures (LaTeX sources and compiled PDFs) ...")
    made = write_papers(papers_dir, args.papers, args.figures_per_paper, log)
    cli_workers = cli_has_workers()
    log(f"`scitune ingest --workers`: {'yes' if cli_workers else 'not yet; 2 workers = 2 processes, half the papers each'}")
    kinds = {"latex": ("LaTeX sources", sorted(str(p) for p in (papers_dir / "latex").iterdir())),
             "pdf": ("compiled PDFs", sorted(str(p) for p in (papers_dir / "pdf").iterdir()))}
    rows, shares = [], {}
    for kind, (label, paths) in kinds.items():
        folder = papers_dir / kind
        log(f"{label}: instrumented run (1 worker) ...")
        inst = run_ingest(paths, folder, workdir, f"{kind}-timers", 1, args.dpi, True, cli_workers)
        rec = recovery(inst["outs"], made["captions"])
        per = inst["per_paper"]
        t = inst["timers"]
        hooks_found = {c: inst["hooks"].get(c) for c in ("render", "text", "encode", "write")}
        shares[kind] = {
            "ingest_seconds": round(inst["wall"], 3),
            "share": {c: (round(t[c] / inst["wall"], 4) if hooks_found[c] else None) for c in hooks_found},
            "seconds": {c: (round(t[c], 3) if hooks_found[c] else None) for c in hooks_found},
            "outermost_calls": {c: inst["calls"].get(c, 0) for c in hooks_found},
            "text_over_render": round(t["text"] / t["render"], 4) if hooks_found["text"] and hooks_found["render"] and t["render"] else None,
            "hooks": hooks_found,
            "median_wall_s_per_paper": round(statistics.median(p[0] for p in per), 3) if per else None,
            "median_cpu_s_per_paper": round(statistics.median(p[1] for p in per), 3) if per else None,
            "recovery": rec, "load": inst["load"],
        }
        walls: dict[int, list[float]] = {w: [] for w in args.workers}
        cpus: dict[int, list[float]] = {w: [] for w in args.workers}
        modes = {}
        for r in range(args.rounds):
            for w in args.workers:
                run = run_ingest(paths, folder, workdir, f"{kind}-w{w}-r{r}", w, args.dpi, False, cli_workers)
                walls[w].append(run["wall"])
                cpus[w].append(run["cpu"])
                modes[w] = run["mode"]
                w_rec = recovery(run["outs"], made["captions"])
                for out in run["outs"]:
                    shutil.rmtree(out, ignore_errors=True)
                log(f"  round {r + 1}, {w} worker(s): {run['wall']:.2f} s ({modes[w]}); load {run['load'][0]:.2f}")
        for w in args.workers:
            wall = statistics.median(walls[w])
            rows.append({"kind": kind, "label": label, "workers": w, "mode": modes[w], "walls": [round(x, 3) for x in walls[w]],
                         "papers_per_s": round(args.papers / wall, 3),
                         "figures_per_s": round(rec["found"] / wall, 3),
                         "s_per_paper_per_core": round(wall * w / args.papers, 3),
                         "cpu_s_per_paper": round(statistics.median(cpus[w]) / args.papers, 3),
                         "recovery": w_rec if w != 1 else rec})
        base = args.workers[0]
        for w in args.workers[1:]:
            ratios = [a / b for a, b in zip(walls[base], walls[w])]
            shares[kind][f"speedup_{w}_over_{base}"] = {"per_round": [round(x, 3) for x in ratios],
                                                       "median": round(statistics.median(ratios), 3)}
    return {"rows": rows, "details": shares, "glyphs": made["glyphs"], "kinds": made["kinds"],
            "cli_workers": cli_workers}


def memory_table(sizes: list[int], budget: float, workdir: Path, log) -> list[dict]:
    rows = []
    rate = None  # seconds per paper at the previous size
    for n in sizes:
        if rate is not None and rate * n > budget:
            rows.append({"papers": n, "measured": False,
                         "reason": f"would take about {rate * n:.0f} s (> --memory-budget {budget:.0f} s)"})
            log(f"memory: {n} papers skipped (about {rate * n:.0f} s)")
            continue
        folder = workdir / f"tiny{n}"
        start = time.perf_counter()
        write_tiny_papers(folder, n)
        written = time.perf_counter() - start
        run = run_ingest([str(folder)], folder, workdir, f"mem{n}", 1, 150, False, False)
        rate = run["wall"] / n
        figures = sum(1 for out in run["outs"] for _ in out.rglob("*.png"))
        rows.append({"papers": n, "measured": True, "figures_written": figures, "ingest_seconds": round(run["wall"], 2),
                     "writing_papers_seconds": round(written, 2), "peak_rss_mib": round(run["peak_rss_mib"], 1),
                     "ru_maxrss_mib": round(run["ru_maxrss_mib"], 1),  # includes the parent's RSS at fork
                     "load": run["load"]})
        log(f"memory: {n} papers ({figures} figures written): peak RSS {run['peak_rss_mib']:.0f} MiB, {run['wall']:.1f} s")
        for out in run["outs"]:
            shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)
    return rows


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def print_tables(result: dict) -> None:
    speed = result.get("speed")
    if speed:
        d = speed["details"]
        print(f"\n{result['papers']} papers x {result['figures_per_paper']} figures ({', '.join(speed['kinds'])}), "
              f"{result['dpi']} dpi; {result['cpus']} CPUs; load average {result['load'][0]:.2f} -> {result['load'][1]:.2f} "
              "(a shared machine: numbers are noisy)")
        head = (f"{'papers':<14} {'wk':>2} {'papers/s':>8} {'figs/s':>7} {'med s/p':>7} {'s/p/core':>8} {'cpu s/p':>7} "
                f"{'render':>6} {'text':>5} {'encode':>6} {'write':>5} {'caption':>9} {'+mention':>9}")
        print(head)
        for row in speed["rows"]:
            det = d[row["kind"]]
            rec = row["recovery"]
            med = det["median_wall_s_per_paper"] if row["workers"] == 1 else None
            sh = det["share"] if row["workers"] == 1 else {}
            print(f"{row['label']:<14} {row['workers']:>2} {row['papers_per_s']:>8.2f} {row['figures_per_s']:>7.2f} "
                  f"{'' if med is None else f'{med:.2f}':>7} {row['s_per_paper_per_core']:>8.2f} {row['cpu_s_per_paper']:>7.2f} "
                  f"{_pct(sh.get('render')) if sh else '':>6} {_pct(sh.get('text')) if sh else '':>5} "
                  f"{_pct(sh.get('encode')) if sh else '':>6} {_pct(sh.get('write')) if sh else '':>5} "
                  f"{rec['with_caption']:>4}/{rec['expected']:<4} {rec['with_caption_and_mentions']:>4}/{rec['expected']:<4}")
        print("med s/p: median seconds per paper (1 worker, instrumented run); s/p/core: wall x workers / papers; "
              "cpu s/p: CPU seconds per paper; shares: of the 1-worker ingest time")
        for kind, det in d.items():
            speedups = {k: v for k, v in det.items() if k.startswith("speedup_")}
            parts = [f"text extraction / rendering = {_pct(det['text_over_render'])}"]
            parts += [f"{k.replace('speedup_', '').replace('_over_', ' vs ')} workers: {v['median']:.2f}x "
                      f"(rounds {v['per_round']})" for k, v in speedups.items()]
            parts.append(f"median CPU s/paper {det['median_cpu_s_per_paper']}")
            print(f"{kind}: " + "; ".join(parts))
        goals = result.get("goals", {})
        for name, goal in goals.items():
            print(f"goal {name}: {goal['value']} -> {'met' if goal['met'] else 'NOT met' if goal['met'] is False else 'n/a'}")
    for row in result.get("memory") or []:
        if row["measured"]:
            print(f"memory: {row['papers']:>6} tiny papers: peak RSS {row['peak_rss_mib']:.0f} MiB, ingest {row['ingest_seconds']} s, "
                  f"{row['figures_written']} figures written (load {row['load'][0]:.2f})")
        else:
            print(f"memory: {row['papers']:>6} tiny papers: not measured, {row['reason']}")


def goals(speed: dict) -> dict:
    out = {}
    d = speed["details"]
    lat = d.get("latex", {})
    med = lat.get("median_cpu_s_per_paper")
    out["median <= 2 s per paper per core (LaTeX; CPU s, wall s in the timed run)"] = {
        "value": [med, lat.get("median_wall_s_per_paper")], "met": None if med is None else med <= 2.0}
    for kind in ("latex", "pdf"):
        ratio = d.get(kind, {}).get("text_over_render")
        out[f"text extraction <= 25% of rendering ({kind})"] = {"value": ratio, "met": None if ratio is None else ratio <= 0.25}
        sp = d.get(kind, {}).get("speedup_2_over_1")
        out[f"2 workers >= 1.7x one ({kind})"] = {"value": sp and sp["median"], "met": None if not sp else sp["median"] >= 1.7}
    rec = d.get("pdf", {}).get("recovery")
    if rec:
        share = rec["with_caption"] / rec["expected"]
        out["compiled PDFs: figures with captions >= 90%"] = {"value": round(share, 3), "met": share >= 0.9}
    return out


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2
        self.exit(2, f"ingest_speed.py: error: {message}\n")


def _counts(value: str) -> list[int]:
    try:
        items = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, got {value!r}") from None
    if not items or min(items) < 1:
        raise argparse.ArgumentTypeError(f"expected numbers >= 1, got {value!r}")
    return items


def main(argv=None) -> int:
    parser = _Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--papers", type=int, default=16, help="papers written (each as LaTeX and as PDF; default 16)")
    parser.add_argument("--figures-per-paper", type=int, default=6, help="figures per paper (default 6)")
    parser.add_argument("--dpi", type=int, default=150, help="resolution of rendered figures (default 150)")
    parser.add_argument("--workers", type=_counts, default=[1, 2], help="worker counts, e.g. 1,2 (default)")
    parser.add_argument("--rounds", type=int, default=2, help="alternated timing rounds per worker count (default 2)")
    parser.add_argument("--quick", action="store_true", help="3 papers, 1 round, no memory run unless asked")
    parser.add_argument("--memory", type=_counts, default=None, metavar="N1,N2,...",
                        help="peak RSS over this many tiny papers (e.g. 100,1000,10000); default: skip")
    parser.add_argument("--memory-budget", type=float, default=900.0, help="seconds a memory size may take (default 900)")
    parser.add_argument("--skip-speed", action="store_true", help="only the memory run")
    parser.add_argument("--out", help="folder for the result JSON and the work files (default: a temporary folder)")
    parser.add_argument("--note", default="", help="a note kept in the result JSON (e.g. which copy of the code was measured)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child)
    if args.quick:
        args.papers, args.rounds = min(args.papers, 3), 1
    if args.papers < 1 or args.figures_per_paper < 1 or args.rounds < 1:
        parser.error("--papers, --figures-per-paper and --rounds must be >= 1")
    if args.figures_per_paper > 50:
        parser.error("--figures-per-paper must be <= 50")
    if not 30 <= args.dpi <= 600:
        parser.error(f"--dpi must be 30..600, got {args.dpi}")
    if args.memory_budget <= 0:
        parser.error("--memory-budget must be > 0")
    try:
        import fpdf  # noqa: F401
        import pypdfium2  # noqa: F401
    except ImportError as err:
        parser.error(f"needs the ingest extra (pip install -e '.[ingest]'): {err.name} is missing")

    from scitune.io.atomic import write_json

    def log(message: str) -> None:
        print(message, flush=True)

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="scitune-ingest-speed-"))
    out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="work-", dir=out))
    import scitune

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "src"], capture_output=True, text=True, cwd=ROOT).stdout.strip())
    result = {"benchmark": "ingest_speed", "commit": commit, "src_dirty": dirty, "scitune_from": str(Path(scitune.__file__).parent),
              "papers": args.papers, "figures_per_paper": args.figures_per_paper, "dpi": args.dpi, "workers": args.workers,
              "rounds": args.rounds, "cpus": os.cpu_count(), "machine": platform.processor() or platform.machine(),
              "python": platform.python_version(), "load": [load_average(), None], "note": args.note}
    if not Path(scitune.__file__).resolve().is_relative_to(ROOT / "src"):
        result["commit"], result["src_dirty"] = None, None  # measuring another copy of the code
    log(f"scitune from {result['scitune_from']} (commit {result['commit']}{', src modified' if dirty else ''}); "
        f"load average {result['load'][0]}; work files in {workdir}")
    try:
        if not args.skip_speed:
            result["speed"] = speed_table(args, workdir, log)
            result["goals"] = goals(result["speed"])
        if args.memory:
            result["memory"] = memory_table(args.memory, args.memory_budget, workdir, log)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result["load"][1] = load_average()
    print_tables(result)
    path = out / "ingest_speed.json"
    write_json(path, result)  # atomic
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
