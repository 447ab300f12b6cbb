"""PDFs, read with pypdfium2 (PDFium): figure files rendered to PNG with their text layer, and
whole papers -> figures found by their captions.

A paper page is read as text lines (PDFium's text rectangles, grouped by baseline) and drawing
objects (embedded images and vector paths, clustered into regions). Lines inside a drawing region
are the figure's own text (SciCap's OCR field, from the text layer instead of OCR); the other
lines are ordered for reading (full-width lines, then the left column, then the right one, band
by band, so two-column pages read in order) and grouped into blocks. A block that starts with
"Figure N:" / "Fig. N." is a caption; its figure is the nearest free drawing region above it in
its column (else below it, else beside it) with no body text in between. Mentions are the body
sentences that cite "Figure N" / "Fig. N". What cannot be paired is reported, never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from scitune.data.ingest import images as imgs
from scitune.data.ingest.licence import find_licence
from scitune.data.ingest.limits import DEFAULT_LIMITS, Limits
from scitune.data.ingest.records import Figure, Paper
from scitune.data.ingest.text import clean_text, sentences
from scitune.errors import ScituneError
from scitune.io.read import check_file

CAPTION = re.compile(r"^\s*(?:Figure|FIGURE|Fig\.|FIG\.|Fig|FIG)\s*(S?\d+)\s*[:.|\u2013\u2014-]\s*")
FIGURE_REF = re.compile(r"\b(?:Figures?|FIGURES?|Figs?\.?|FIGS?\.?)\s*((?:S?\d+[a-z]?(?:\s*(?:,|and|&|\u2013|-)\s*)?)+)")
MIN_REGION_POINTS = 24.0  # a drawing smaller than this on both sides is a rule or a bullet, not a figure
CLUSTER_GAP = 6.0  # drawing objects closer than this (points) belong to one figure
TEXT_MARGIN = 10.0  # tick labels and axis titles may sit this far outside the drawn frame


@dataclass
class Line:
    text: str
    box: tuple[float, float, float, float]  # left, bottom, right, top (points, y up)
    column: str = "full"  # "left", "right" or "full"


@dataclass
class Block:
    lines: list[Line] = field(default_factory=list)
    page: int = 0

    @property
    def box(self) -> tuple[float, float, float, float]:
        return (min(ln.box[0] for ln in self.lines), min(ln.box[1] for ln in self.lines),
                max(ln.box[2] for ln in self.lines), max(ln.box[3] for ln in self.lines))

    @property
    def text(self) -> str:
        out = ""
        for line in self.lines:
            piece = line.text.strip()
            if out.endswith("-") and piece[:1].islower() and len(out) > 1 and out[-2].isalpha():
                out = out[:-1] + piece  # a word hyphenated at the line end
            else:
                out = f"{out} {piece}" if out else piece
        return clean_text(out)


def open_pdf(path: Path, limits: Limits = DEFAULT_LIMITS, max_pages: int | None = None):
    """A pypdfium2 document, after the size and page-count bounds (the PDF-bomb guard)."""
    import pypdfium2 as pdfium

    check_file(path, limits.pdf_bytes, "PDF")
    try:
        pdf = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as err:
        raise ScituneError(f"{path}: not a readable PDF ({err})") from None
    pages = len(pdf)
    limit = max_pages or limits.pdf_pages
    if pages > limits.pdf_pages:
        pdf.close()
        raise ScituneError(f"{path}: {pages} pages, more than the limit of {limits.pdf_pages}; refused")
    if pages == 0:
        pdf.close()
        raise ScituneError(f"{path}: the PDF has no pages")
    for index in range(min(pages, limit)):
        width, height = pdf.get_page_size(index)
        if width > limits.page_points or height > limits.page_points:
            pdf.close()
            raise ScituneError(f"{path}: page {index + 1} is {width:.0f}x{height:.0f} points, more than "
                               f"{limits.page_points:.0f}; refused")
    return pdf


def _render(page, box: tuple[float, float, float, float], dpi: int, limits: Limits, where: str):
    """The page region `box` (left, bottom, right, top) as an RGB PIL image at `dpi` (lowered
    so the image stays within the pixel limit)."""
    width, height = page.get_size()
    left, bottom, right, top = max(0.0, box[0]), max(0.0, box[1]), min(width, box[2]), min(height, box[3])
    if right - left < 1 or top - bottom < 1:
        raise ScituneError(f"{where}: empty region")
    scale = dpi / 72.0
    pixels = (right - left) * (top - bottom) * scale * scale
    if pixels > limits.render_pixels:
        scale *= (limits.render_pixels / pixels) ** 0.5
    bitmap = page.render(scale=scale, crop=(left, bottom, width - right, height - top))
    return bitmap.to_pil().convert("RGB")


def _text_lines(page, textpage) -> list[Line]:
    """PDFium's text rectangles, merged into lines (same baseline, small horizontal gap)."""
    rects = []
    for i in range(textpage.count_rects()):
        box = textpage.get_rect(i)
        text = textpage.get_text_bounded(*box).replace("\r", " ").replace("\n", " ").replace("\x02", "")
        if text.strip():
            rects.append((box, text))
    rects.sort(key=lambda r: (-round(r[0][3], 0), r[0][0]))
    lines: list[Line] = []
    for box, text in rects:
        height = max(box[3] - box[1], 1.0)
        last = lines[-1] if lines else None
        if (last and abs(last.box[3] - box[3]) < 0.5 * height and abs(last.box[1] - box[1]) < 0.5 * height
                and 0 <= box[0] - last.box[2] < 1.2 * height):
            last.text = f"{last.text.rstrip()} {text.strip()}"
            last.box = (last.box[0], min(last.box[1], box[1]), box[2], max(last.box[3], box[3]))
        else:
            lines.append(Line(text=text.strip(), box=box))
    return lines


def _drawings(page, limits: Limits, where: str) -> list[tuple[float, float, float, float]]:
    """Boxes of the page's images and vector paths, clustered into figure regions."""
    import pypdfium2.raw as raw

    width, height = page.get_size()
    boxes = []
    kinds = [raw.FPDF_PAGEOBJ_IMAGE, raw.FPDF_PAGEOBJ_PATH, raw.FPDF_PAGEOBJ_SHADING]
    for count, obj in enumerate(page.get_objects(filter=kinds)):
        if count >= limits.page_objects:
            raise ScituneError(f"{where}: more than {limits.page_objects} drawing objects; refused")
        left, bottom, right, top = obj.get_bounds()
        if right - left >= 0.97 * width and top - bottom >= 0.97 * height:
            continue  # a page background
        boxes.append([left, bottom, right, top])
    merged = True
    while merged:  # union boxes that touch or nearly touch
        merged = False
        out: list[list[float]] = []
        for box in boxes:
            for other in out:
                if (box[0] <= other[2] + CLUSTER_GAP and other[0] <= box[2] + CLUSTER_GAP
                        and box[1] <= other[3] + CLUSTER_GAP and other[1] <= box[3] + CLUSTER_GAP):
                    other[:] = [min(box[0], other[0]), min(box[1], other[1]), max(box[2], other[2]), max(box[3], other[3])]
                    merged = True
                    break
            else:
                out.append(list(box))
        boxes = out
    return [tuple(b) for b in boxes if b[2] - b[0] >= MIN_REGION_POINTS or b[3] - b[1] >= MIN_REGION_POINTS]


def _looks_like_label(text: str) -> bool:
    """A tick label or a short axis title ("0.5", "10^3", "Time (s)"), not a line of prose."""
    text = text.strip()
    return len(text) <= 16 and len(text.split()) <= 3 and not text.endswith(".") and not CAPTION.match(text)


def _inside(line: Line, region, margin: float) -> bool:
    cx, cy = (line.box[0] + line.box[2]) / 2, (line.box[1] + line.box[3]) / 2
    return region[0] - margin <= cx <= region[2] + margin and region[1] - margin <= cy <= region[3] + margin


def _columns(lines: list[Line], width: float) -> list[Line]:
    """Lines in reading order: bands separated by full-width lines; in each band the left column,
    then the right one."""
    middle = width / 2
    for line in lines:
        if line.box[2] <= middle + 4:
            line.column = "left"
        elif line.box[0] >= middle - 4:
            line.column = "right"
        else:
            line.column = "full"
    lines = sorted(lines, key=lambda ln: -ln.box[3])
    ordered: list[Line] = []
    band: list[Line] = []
    for line in lines + [None]:  # type: ignore[list-item]
        if line is None or line.column == "full":
            ordered += [ln for ln in band if ln.column == "left"] + [ln for ln in band if ln.column == "right"]
            band = []
            if line is not None:
                ordered.append(line)
        else:
            band.append(line)
    return ordered


def _blocks(lines: list[Line], page: int) -> list[Block]:
    blocks: list[Block] = []
    for line in lines:
        last = blocks[-1].lines[-1] if blocks else None
        height = max(line.box[3] - line.box[1], 1.0)
        same_column = last is not None and (last.column == line.column or "full" in (last.column, line.column)
                                            and abs(last.box[0] - line.box[0]) < 2 * height)
        gap = last.box[1] - line.box[3] if last is not None else 0
        if last is None or not same_column or gap > 0.9 * height or gap < -height or CAPTION.match(line.text):
            blocks.append(Block(page=page))
        blocks[-1].lines.append(line)
    return blocks


def _pick_region(caption: Block, regions: list, used: set, body: list[Block], width: float):
    """Index of the drawing region that belongs to `caption`: above it in its column, else
    below, else beside; never across body text."""
    cl, cb, cr, ct = caption.box
    column = caption.lines[0].column
    x_lo, x_hi = {"left": (0, width / 2), "right": (width / 2, width)}.get(column, (0, width))

    def blocked(y_lo: float, y_hi: float, xl: float, xr: float) -> bool:
        return any(b is not caption and b.box[0] < xr and b.box[2] > xl and b.box[1] < y_hi and b.box[3] > y_lo
                   for b in body)

    def free(i):
        return i not in used

    above = [(r[1] - ct, i) for i, r in enumerate(regions) if free(i) and r[0] < x_hi and r[2] > x_lo
             and r[1] >= ct - 4 and not blocked(ct, r[1], max(r[0], x_lo), min(r[2], x_hi))]
    if above:
        return min(above)[1]
    below = [(cb - r[3], i) for i, r in enumerate(regions) if free(i) and r[0] < x_hi and r[2] > x_lo
             and r[3] <= cb + 4 and not blocked(r[3], cb, max(r[0], x_lo), min(r[2], x_hi))]
    if below:
        return min(below)[1]
    beside = [(abs((r[1] + r[3]) / 2 - (cb + ct) / 2), i) for i, r in enumerate(regions)
              if free(i) and r[1] < ct and r[3] > cb and (r[2] <= cl + 4 or r[0] >= cr - 4)]
    if beside:
        return min(beside)[1]
    return None


def _referenced_numbers(sentence: str) -> set[str]:
    numbers = set()
    for match in FIGURE_REF.finditer(sentence):
        numbers.update(re.findall(r"S?\d+", match.group(1)))
    return numbers


def read_pdf_paper(path: Path, name: str, source: str, dpi: int = 150, limits: Limits = DEFAULT_LIMITS) -> Paper:
    """The captioned figures of a PDF paper, with mentions from its body text."""
    pdf = open_pdf(path, limits)
    paper = Paper(name=name, source=source, kind="pdf")
    try:
        all_body: list[Block] = []
        found: list[tuple[str, Block, object, int, tuple, list[str]]] = []
        first_page_text = ""
        for index in range(len(pdf)):
            page = pdf[index]
            where = f"{source}: page {index + 1}"
            width, _ = page.get_size()
            textpage = page.get_textpage()
            lines = _text_lines(page, textpage)
            if index == 0:
                first_page_text = " ".join(ln.text for ln in lines)
            regions = _drawings(page, limits, where)
            figure_text: dict[int, list[str]] = {i: [] for i in range(len(regions))}
            body_lines = []
            for line in lines:
                hit = next((i for i, r in enumerate(regions) if _inside(line, r, 2.0)), None)
                if hit is None:
                    # tick labels and axis titles just outside a drawing, when they do not read as body text
                    hit = next((i for i, r in enumerate(regions) if _inside(line, r, TEXT_MARGIN)
                                and _looks_like_label(line.text)), None)
                if hit is None:
                    body_lines.append(line)
                else:
                    figure_text[hit].append(line.text)
                    regions[hit] = (min(regions[hit][0], line.box[0]), min(regions[hit][1], line.box[1]),
                                    max(regions[hit][2], line.box[2]), max(regions[hit][3], line.box[3]))
            blocks = _blocks(_columns(body_lines, width), index + 1)
            captions = [b for b in blocks if CAPTION.match(b.text)]
            body = [b for b in blocks if b not in captions]
            used: set[int] = set()
            for caption in captions:
                number = CAPTION.match(caption.text).group(1)
                pick = _pick_region(caption, regions, used, body, width)
                if pick is None:
                    paper.skip("caption", f"{where}: Figure {number}", "no drawing or image found above, below or beside the caption")
                    continue
                used.add(pick)
                image = _render(page, regions[pick], dpi, limits, f"{where}: Figure {number}")
                found.append((number, caption, image, index, regions[pick], figure_text[pick]))
            for i, region in enumerate(regions):
                if i not in used and region[2] - region[0] >= 2 * MIN_REGION_POINTS and region[3] - region[1] >= 2 * MIN_REGION_POINTS:
                    paper.skip("drawing", f"{where}: region {tuple(round(v) for v in region)}", "no caption found for it")
            all_body += body
        paper.licence = find_licence([first_page_text])
    finally:
        pdf.close()

    paragraphs = _paragraphs(all_body)
    seen: set[str] = set()
    for number, caption, image, page_index, region, ocr in found:
        if number in seen:
            paper.skip("caption", f"{source}: page {page_index + 1}: Figure {number}", "a second caption with this number")
            continue
        seen.add(number)
        text = caption.text
        no_index = CAPTION.sub("", text, count=1).strip()
        mention_paragraphs, mentions = [], []
        for paragraph in paragraphs:
            hits = [s for s in sentences(paragraph) if number in _referenced_numbers(s)]
            if hits:
                mention_paragraphs.append(paragraph)
                mentions.append(hits)
        paper.figures.append(Figure(
            number=number, caption=text, caption_no_index=no_index, png=imgs.png_bytes(image),
            paragraphs=mention_paragraphs, mentions=mentions, ocr=[clean_text(t) for t in ocr if clean_text(t)],
            provenance={"page": page_index + 1, "box": [round(v, 1) for v in region], "dpi": dpi},
        ))
    return paper


def _paragraphs(blocks: list[Block]) -> list[str]:
    """Body paragraphs; a block that does not end a sentence continues in the next one (a
    paragraph broken by a column or page end)."""
    out: list[str] = []
    carry = False
    for block in blocks:
        text = block.text
        if not text:
            continue
        if carry and out:
            out[-1] = out[-1][:-1] + text if out[-1].endswith("-") and text[:1].islower() else f"{out[-1]} {text}"
        else:
            out.append(text)
        carry = not re.search(r"[.!?:)\]\"']$", text)
    return out


def render_pdf_figure(path: Path, dpi: int = 150, limits: Limits = DEFAULT_LIMITS):
    """A figure given as a PDF file: its first page as an RGB PIL image, and its text layer
    (one string per text line), SciCap's OCR field without OCR."""
    pdf = open_pdf(path, limits, max_pages=limits.figure_pdf_pages)
    try:
        page = pdf[0]
        width, height = page.get_size()
        image = _render(page, (0, 0, width, height), dpi, limits, str(path))
        textpage = page.get_textpage()
        words = [clean_text(line.text) for line in sorted(_text_lines(page, textpage), key=lambda ln: (-ln.box[3], ln.box[0]))]
    finally:
        pdf.close()
    return image, [w for w in words if w]
