"""PDFs, read with pypdfium2 (PDFium): figure files rendered to PNG with their text layer, and
whole papers -> figures found by their captions.

A paper page is read as text lines (pdf_text: one pass over PDFium's characters) and figure
regions (pdf_layout: images, vector paths and form XObjects, clustered, clipped to the page). Lines
drawn inside a region are figure text; the others are ordered for reading (two-column pages read
left column, then right) and grouped into blocks. A block that starts with "Figure N:" / "Fig. N."
is a caption (pdf_mentions); its figure is the set of free regions between it and the nearest body
text above it in its column (else below, else beside), pairs made nearest first. The figure's box
is clipped to the page and to the caption's column, and its text (SciCap's OCR field, from the
text layer instead of OCR) is only the lines inside that box. Mentions are the body sentences that
cite the figure's number. What cannot be paired is reported, never guessed.
"""

from __future__ import annotations

from pathlib import Path

from scitune.data.ingest import images as imgs
from scitune.data.ingest.licence import find_licence
from scitune.data.ingest.limits import DEFAULT_LIMITS, Limits
from scitune.data.ingest.pdf_layout import MAX_CAPTIONS, MIN_REGION_POINTS, assign_lines, pair_captions, regions
from scitune.data.ingest.pdf_mentions import CAPTION, TABLE_CAPTION, mentions_by_number
from scitune.data.ingest.pdf_text import (NUMBER_ONLY, Block, Line, blocks, is_two_column, paragraphs,
                                          reading_order, text_lines)
from scitune.data.ingest.records import Figure, Paper
from scitune.data.ingest.text import figure_text
from scitune.errors import ScituneError
from scitune.io.read import check_file


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


def _page_box(page) -> tuple[float, float, float, float]:
    """The visible page (crop box within the media box) in page space."""
    left, bottom, right, top = page.get_bbox()
    return float(left), float(bottom), float(right), float(top)


def _render(page, box: tuple[float, float, float, float], dpi: int, limits: Limits, where: str):
    """The page region `box` (left, bottom, right, top) as an RGB PIL image at `dpi` (lowered
    so the image stays within the pixel limit)."""
    x0, y0, x1, y1 = _page_box(page)
    left, bottom, right, top = max(x0, box[0]), max(y0, box[1]), min(x1, box[2]), min(y1, box[3])
    if right - left < 1 or top - bottom < 1:
        raise ScituneError(f"{where}: empty region")
    scale = dpi / 72.0
    pixels = (right - left) * (top - bottom) * scale * scale
    if pixels > limits.render_pixels:
        scale *= (limits.render_pixels / pixels) ** 0.5
    bitmap = page.render(scale=scale, crop=(left - x0, bottom - y0, x1 - right, y1 - top))
    return bitmap.to_pil().convert("RGB")


def _text_lines(page, textpage) -> list[Line]:
    """The page's text lines (one pass over its characters; the benchmark times this name)."""
    return text_lines(textpage, _page_box(page))


def _looks_like_label(text: str) -> bool:
    """A tick label or a short axis title ("0.5", "10^3", "Time (s)"), not a line of prose."""
    text = text.strip()
    return len(text) <= 16 and len(text.split()) <= 3 and not text.endswith(".") and not CAPTION.match(text)


def _inside(line: Line, box) -> bool:
    cx, cy = (line.box[0] + line.box[2]) / 2, (line.box[1] + line.box[3]) / 2
    return box[0] <= cx <= box[2] and box[1] <= cy <= box[3]


def _prose(line: Line) -> bool:
    """Whether a line not drawn in a figure can be body text: not a page or line number, not
    set sideways (arXiv's stamp in the margin, a rotated table)."""
    width, height = line.box[2] - line.box[0], line.box[3] - line.box[1]
    return not NUMBER_ONLY.match(line.text) and not (height > 2 * width and len(line.text) > 3)


def _starts_caption(text: str) -> bool:
    return CAPTION.match(text) is not None


def _read_page(page, index: int, source: str, dpi: int, limits: Limits, paper: Paper, layout: list[int]):
    """One page: its body blocks (for mentions), its text, and its captioned figures as (number,
    caption block, PNG bytes, box, figure text lines). `layout` counts the pages so far
    set in one and in two columns; a page of floats goes by the majority."""
    where = f"{source}: page {index + 1}"
    page_box = _page_box(page)
    width = page_box[2] - page_box[0]
    lines = _text_lines(page, page.get_textpage())
    boxes = regions(page, page_box, limits, where, lines)
    owners = assign_lines(lines, boxes, page_box, _looks_like_label, _starts_caption)
    for line, owner in zip(lines, owners):  # a region grows to take in its tick labels
        if owner >= 0:
            box = boxes[owner]
            boxes[owner] = (min(box[0], line.box[0]), min(box[1], line.box[1]), max(box[2], line.box[2]), max(box[3], line.box[3]))
    free = [ln for ln, owner in zip(lines, owners) if owner < 0 and _prose(ln)]
    two_column = is_two_column(free, width, page_box[0])
    if two_column is not None:
        layout[int(two_column)] += 1
    elif any(layout):
        two_column = layout[1] > layout[0]
    else:  # nothing to go by yet: the page's own few lines
        two_column = bool(is_two_column(free, width, page_box[0], min_lines=0))
    page_blocks = blocks(reading_order(free, width, two_column), index + 1, _starts_caption)
    captions = [b for b in page_blocks if CAPTION.match(b.text)]
    for extra in captions[MAX_CAPTIONS:]:
        paper.skip("caption", f"{where}: {extra.text[:20]}", f"more than {MAX_CAPTIONS} captions on one page")
    captions = captions[:MAX_CAPTIONS]
    tables = [b for b in page_blocks if TABLE_CAPTION.match(b.text)][:MAX_CAPTIONS]
    pairs = pair_captions(captions, page_blocks, boxes, page_box, two_column, tables)
    found, taken, figure_boxes = [], set(), []
    for caption, pair in zip(captions, pairs):
        number = CAPTION.match(caption.text).group(1)
        if pair is None:
            paper.skip("caption", f"{where}: Figure {number}", "no drawing or image found above, below or beside the caption")
            continue
        box, members = pair
        taken.update(members)
        figure_boxes.append(box)
        image = _render(page, box, dpi, limits, f"{where}: Figure {number}")
        found.append((number, caption, imgs.png_bytes(image), box))  # PNG now: a paper's pixels are not all held
    # a table ruled with lines is a drawing too: the regions a table caption claims are no figure
    # (nor body text: their cells stay out of the paragraphs)
    spare = [i for i in range(len(boxes)) if i not in taken]
    if tables and spare:
        table_pairs = pair_captions(tables, page_blocks, boxes[spare], page_box, two_column, captions)
        taken.update(spare[m] for pair in table_pairs if pair is not None for m in pair[1])
    for i, region in enumerate(boxes):
        if i not in taken and region[2] - region[0] >= 2 * MIN_REGION_POINTS and region[3] - region[1] >= 2 * MIN_REGION_POINTS:
            paper.skip("drawing", f"{where}: region {tuple(round(float(v)) for v in region)}", "no caption found for it")
    # figure text: the lines inside the figure's own box; body: every other line that is not a
    # caption, a page or line number, or a label of a figure (lines of unpaired regions go back)
    caption_lines = {id(ln) for c in captions for ln in c.lines}
    figure_text: list[list[Line]] = [[] for _ in found]
    body_lines = []
    for line, owner in zip(lines, owners):
        if id(line) in caption_lines:
            continue
        hit = next((k for k, box in enumerate(figure_boxes) if _inside(line, box)), None)  # figures per page <= MAX_CAPTIONS
        if hit is not None:
            figure_text[hit].append(line)
        elif (owner < 0 or owner not in taken) and _prose(line):
            body_lines.append(line)
    body = [b for b in blocks(reading_order(body_lines, width, two_column), index + 1, _starts_caption)
            if not CAPTION.match(b.text)]
    figures = [(number, caption, png, box, [ln.text for ln in sorted(text, key=lambda ln: (-ln.box[3], ln.box[0]))])
               for (number, caption, png, box), text in zip(found, figure_text)]
    return body, " ".join(ln.text for ln in lines), figures


def read_pdf_paper(path: Path, name: str, source: str, dpi: int = 150, limits: Limits = DEFAULT_LIMITS) -> Paper:
    """The captioned figures of a PDF paper, with mentions from its body text."""
    pdf = open_pdf(path, limits)
    paper = Paper(name=name, source=source, kind="pdf")
    try:
        all_body: list[Block] = []
        found = []
        first_page_text = ""
        layout = [0, 0]  # pages set in one column, in two
        for index in range(len(pdf)):
            body, text, figures = _read_page(pdf[index], index, source, dpi, limits, paper, layout)
            if index == 0:
                first_page_text = text
            all_body += body
            found += [(number, caption, png, index, box, ocr) for number, caption, png, box, ocr in figures]
        paper.licence = find_licence([first_page_text])
    finally:
        pdf.close()

    texts = paragraphs(all_body)
    cited = mentions_by_number(texts)
    seen: set[str] = set()
    for number, caption, png, page_index, region, ocr in found:
        if number in seen:
            paper.skip("caption", f"{source}: page {page_index + 1}: Figure {number}", "a second caption with this number")
            continue
        seen.add(number)
        hits = cited.get(number, [])
        paper.figures.append(Figure(
            number=number, caption=caption.text, caption_no_index=CAPTION.sub("", caption.text, count=1).strip(),
            png=png, paragraphs=[texts[i] for i, _ in hits], mentions=[s for _, s in hits], ocr=figure_text(ocr, limits.ocr_lines),
            provenance={"page": page_index + 1, "box": [round(float(v), 1) for v in region], "dpi": dpi},
        ))
    return paper


def render_pdf_figure(path: Path, dpi: int = 150, limits: Limits = DEFAULT_LIMITS):
    """A figure given as a PDF file: its first page as an RGB PIL image, and its text layer
    (one string per text line), SciCap's OCR field without OCR."""
    pdf = open_pdf(path, limits, max_pages=limits.figure_pdf_pages)
    try:
        page = pdf[0]
        image = _render(page, _page_box(page), dpi, limits, str(path))
        lines = sorted(_text_lines(page, page.get_textpage()), key=lambda ln: (-ln.box[3], ln.box[0]))
    finally:
        pdf.close()
    return image, figure_text((ln.text for ln in lines), limits.ocr_lines)
