"""The text layer of a PDF page: characters -> lines -> reading order -> blocks -> paragraphs.

Text comes from one pass over PDFium's character list: the page's text in one `get_text_range`
call, then a few C calls per word-like run (its first and last glyphs' loose boxes and text
objects) and one per space, so the cost is linear in glyphs. pypdfium2's `get_text_bounded` per
text rectangle is not used: each call scans the whole page, which made a page of many small
labels quadratic (minutes for one t-SNE figure). Everything after that is a sort and linear passes.
"""

from __future__ import annotations

import ctypes
import re
from dataclasses import dataclass, field

from scitune.data.ingest.text import clean_text

NUMBER_ONLY = re.compile(r"^\s*\d{1,4}\s*$")  # a page number or a line number (lineno), not prose
LABEL_ONLY = re.compile(r"^\s*(?:Figure|FIGURE|Fig\.?|FIG\.?)\s*(?:(?:[A-Z]\.?)?\d+(?:\.\d+)?\s*[:.|]?\s*)?$")  # a caption's label alone
MARGIN_SHARE = 0.11  # line numbers sit in the outer 11% of the page width


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
        parts: list[str] = []  # joined once (a block of many lines stays linear)
        for line in self.lines:
            piece = line.text.strip()
            last = parts[-1] if parts else ""
            if last.endswith("-") and piece[:1].islower() and len(last) > 1 and last[-2].isalpha():
                parts[-1] = last[:-1] + piece  # a word hyphenated at the line end
            elif piece:
                parts.append(piece)
        return clean_text(" ".join(parts))


def _char_functions(handle):
    """(loose box of char i into a 4-float buffer at an address, text object of char i as an int)
    for one text page. Where pypdfium2's raw functions are the plain ctypes ones, our own
    prototypes over the same symbols skip its typed-pointer results (a cast per call); where
    something has wrapped them (a profiler), the wrapped ones are called as they are."""
    import pypdfium2.raw as raw

    loose, owner = raw.FPDFText_GetLooseCharBox, raw.FPDFText_GetTextObject
    if isinstance(loose, ctypes._CFuncPtr) and isinstance(owner, ctypes._CFuncPtr):
        address = ctypes.cast(handle, ctypes.c_void_p).value
        loose_fast = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p)(
            ctypes.cast(loose, ctypes.c_void_p).value)
        owner_fast = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int)(ctypes.cast(owner, ctypes.c_void_p).value)
        return (lambda i, rect: loose_fast(address, i, rect)), (lambda i: owner_fast(address, i))
    return ((lambda i, rect: loose(handle, i, ctypes.cast(rect, ctypes.POINTER(raw.FS_RECTF)))),
            (lambda i: ctypes.cast(owner(handle, i), ctypes.c_void_p).value))


_LINE = re.compile(r"[^\r\n]+")  # PDFium ends each line it finds with a generated CR LF
_CUT = re.compile("[ \x02\ufffe]")  # a space (generated or not) or PDFium's mark of a hyphen at a line end
_DROP = {code: None for code in [*range(32), *range(0xD800, 0xE000), 0xFFFE]}


def _runs(textpage) -> list[tuple[list[float], str]]:
    """Runs of characters: stretches of a line between the spaces PDFium generated (word gaps
    it inferred from glyph positions, where no space character was drawn). The text comes from
    one `get_text_range` call; C calls are one per space (is it generated?) and four per run (the
    text objects and loose boxes of its first and last glyphs), nothing per pair of anything."""
    import pypdfium2.raw as raw

    handle = textpage.raw
    count = textpage.count_chars()
    text = textpage.get_text_range() if count > 0 else ""
    if len(text) != count:  # the text view dropped or added characters: read them one by one
        text = "".join(chr(raw.FPDFText_GetUnicode(handle, i)) for i in range(count))
    generated = raw.FPDFText_IsGenerated
    loose_box, text_object = _char_functions(handle)
    rect = (ctypes.c_float * 4)()  # FS_RECTF: left, top, right, bottom
    rect_address = ctypes.addressof(rect)
    runs: list[tuple[list[float], str]] = []

    def add(first: int, last: int, tail: str) -> None:
        # the glyphs of one text object advance from the first to the last, so the union of those
        # two loose boxes is the run's box (rotated labels included)
        corners = []
        for i in (first, last):
            if loose_box(i, rect_address):
                corners.append(tuple(rect))
        if corners:
            xs = [c[0] for c in corners] + [c[2] for c in corners]
            ys = [c[1] for c in corners] + [c[3] for c in corners]
            runs.append(([min(xs), min(ys), max(xs), max(ys)], text[first : last + 1].translate(_DROP) + tail))

    def emit(lo: int, hi: int, tail: str = "") -> None:
        piece = text[lo:hi]
        stripped = piece.strip()
        if not stripped:
            return
        first = lo + piece.index(stripped[0])
        last = lo + piece.rindex(stripped[-1])
        if text_object(first) == text_object(last):
            add(first, last, tail)
            return
        # PDFium put no gap between two text objects (a stack of tick labels): split by object,
        # which costs one call per glyph of this run only
        start, owner = first, text_object(first)
        for i in range(first + 1, last + 1):
            obj = text_object(i) if text[i] != " " else None
            if obj is not None and obj != owner:  # None: a space, or the second letter of a ligature
                end = i - 1
                while text[end] == " ":
                    end -= 1
                add(start, end, "")
                start, owner = i, obj
        add(start, last, tail)

    for line in _LINE.finditer(text):
        lo, hi = line.span()
        start = lo
        for cut in _CUT.finditer(text, lo, hi):
            at = cut.start()
            if text[at] != " ":  # a hyphen PDFium joined across the line end: the line ends here
                emit(start, at, "-")
                start = at + 1
            elif generated(handle, at) == 1:
                emit(start, at)
                start = at + 1
        emit(start, hi)
    return runs


DECISIVE_LINES = 12  # lines of prose that tell a page's column layout
OPEN_ROWS = 64  # rows a run may join: the last few (tick labels, superscripts and rotated labels interleave)


def text_lines(textpage, page_box: tuple[float, float, float, float]) -> list[Line]:
    """The page's text lines: runs on one baseline (rows), and in a row the runs with a small
    horizontal gap merged; lines wholly off the page (`page_box`) are dropped. Sorting is the
    only superlinear step; each run is compared with the last OPEN_ROWS rows only."""
    runs = []
    for box, text in _runs(textpage):
        if box[0] < page_box[2] and box[2] > page_box[0] and box[1] < page_box[3] and box[3] > page_box[1]:
            runs.append((tuple(box), text))
    runs.sort(key=lambda r: -(r[0][1] + r[0][3]))
    # rows: runs whose vertical centres (about the baseline, for glyphs of one size) nearly agree
    # and whose heights are alike. Rows start in order of falling centres, so the rows a run may
    # join are the last few, back to the first whose centre lies a fifth of a line above it.
    rows: list[tuple[float, float, list]] = []  # (centre, height, runs)
    for run in runs:
        box = run[0]
        height = max(box[3] - box[1], 1.0)
        centre = (box[1] + box[3]) / 2
        home = None
        for row_centre, row_height, members in reversed(rows[-OPEN_ROWS:]):
            reach = 0.2 * min(height, row_height)
            if row_centre - centre >= reach:
                break
            if 0.67 < height / row_height < 1.5:
                home = members
                break
        if home is None:
            rows.append((centre, height, [run]))
        else:
            home.append(run)
    lines = _merge_rows([row for _, _, row in rows], page_box, gutter=True)
    if is_two_column(lines, page_box[2] - page_box[0], page_box[0]) is False:
        lines = _merge_rows([row for _, _, row in rows], page_box, gutter=False)
    for line in lines:
        line.text = _tidy(line.text)
    return [ln for ln in lines if ln.text]


def _merge_rows(rows: list[list], page_box, gutter: bool) -> list[Line]:
    """Each row's runs, left to right, merged into lines where the gap is a word gap. With
    `gutter`, a gap across the page's middle must be narrower (two columns' gutter is wider)."""
    margin = MARGIN_SHARE * (page_box[2] - page_box[0])
    middle = (page_box[0] + page_box[2]) / 2
    lines: list[Line] = []
    pieces: list[list[str]] = []  # each line's texts, joined once at the end (stays linear)
    for row in rows:
        last = None
        row.sort(key=lambda r: r[0][0])
        for box, text in row:
            height = max(box[3] - box[1], 1.0)
            reach = 1.2 * height
            head = "".join(pieces[-1]) if last and len(pieces[-1]) <= 4 else ""  # a label is a few runs
            if last and LABEL_ONLY.match(head):
                reach = 2.5 * height  # "Figure 4:" then a caption justified in a narrow minipage
            if gutter and last and last.box[2] <= middle + 2 and box[0] >= middle - 2:
                reach = 0.75 * height  # the gutter of two columns is wider than that
            # a line number in the page margin (lineno) sits about one em from its line: not part of it
            if last and (NUMBER_ONLY.match(head) and last.box[2] < page_box[0] + margin
                         or NUMBER_ONLY.match(text) and box[0] > page_box[2] - margin):
                reach = 0.4 * height
            if last and -0.5 * height <= box[0] - last.box[2] < reach:
                if box[0] - last.box[2] >= 0.1 * height:  # closer: a font change inside a word
                    pieces[-1].append(" ")
                pieces[-1].append(text)
                last.box = (last.box[0], min(last.box[1], box[1]), max(last.box[2], box[2]), max(last.box[3], box[3]))
            else:
                last = Line(text=text, box=box)
                lines.append(last)
                pieces.append([text])
    for line, parts in zip(lines, pieces):
        line.text = "".join(parts)
    return lines


def _tidy(text: str) -> str:
    """`clean_text` for one line, with its regular expressions run only where they can change
    something (they cost more than all the rest of the line building)."""
    text = " ".join(text.split())
    if "(" in text or "[" in text or " " in text and any(f" {p}" in text for p in ",.;:!?)]"):
        return clean_text(text)
    return text


def is_two_column(lines: list[Line], width: float, left_edge: float = 0.0, min_lines: int = DECISIVE_LINES) -> bool | None:
    """Whether the page's prose is set in two columns: several lines wholly on each side of the
    middle, and fewer that cross it; None when the page has fewer than `min_lines` lines of
    prose (a page of floats), so the caller can go by the paper's other pages."""
    middle = left_edge + width / 2
    left = sum(1 for ln in lines if ln.box[2] <= middle + 4 and ln.box[2] - ln.box[0] > 0.25 * width)
    right = sum(1 for ln in lines if ln.box[0] >= middle - 4 and ln.box[2] - ln.box[0] > 0.25 * width)
    across = sum(1 for ln in lines if ln.box[0] < middle - 4 and ln.box[2] > middle + 4)
    if left + right + across < min_lines:
        return None
    return left >= 2 and right >= 2 and across < left + right


def reading_order(lines: list[Line], width: float, two_column: bool = True) -> list[Line]:
    """Lines in reading order: on a two-column page, bands separated by full-width lines, and in
    each band the left column, then the right one; on a one-column page, top to bottom."""
    middle = width / 2
    for line in lines:
        if not two_column:
            line.column = "full"
        elif line.box[2] <= middle + 4:
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


OPEN_BLOCKS = 4  # blocks a line may continue: the last few (side-by-side captions interleave)


def blocks(lines: list[Line], page: int, starts_block) -> list[Block]:
    """Lines (in reading order) grouped into blocks. A line continues one of the last few blocks
    whose last row sits just above it, in its column, overlapping it horizontally; or it is a
    piece of that row itself (a justified narrow line, as in a minipage caption, stretches word
    gaps past what `text_lines` joins): on the same baseline, within the block's width so far, or
    just right of a caption's first line. A line for which `starts_block(text)` holds (a caption
    label) always opens a new block."""
    out: list[Block] = []
    rows: list[list[float]] = []  # per block: its last row's box
    spans: list[list[float]] = []  # per block: its horizontal extent
    order: dict[int, tuple[int, float]] = {}  # line -> (row number in its block, left edge)
    for line in lines:
        height = max(line.box[3] - line.box[1], 1.0)
        left, bottom, right, top = line.box
        home, same_row = None, False
        if not starts_block(line.text):
            for index in range(len(out) - 1, max(len(out) - 1 - OPEN_BLOCKS, -1), -1):
                row, span = rows[index], spans[index]
                if abs(row[3] - top) < 0.35 * height and abs(row[1] - bottom) < 0.35 * height:
                    if span[0] - 2 <= left and right <= span[1] + 2:
                        home, same_row = index, True
                        break
                    continue
                last = out[index].lines[-1]
                same_column = last.column == line.column or ("full" in (last.column, line.column)
                                                             and abs(row[0] - left) < 2 * height)
                gap = row[1] - top
                overlap = min(row[2], right) - max(row[0], left)
                if same_column and -height <= gap <= 0.9 * height and overlap > 0:
                    home = index
                    break
            else:  # the next words of a caption's first line, stretched wide (justified in a narrow box)
                for index in range(len(out) - 1, max(len(out) - 1 - OPEN_BLOCKS, -1), -1):
                    row, first = rows[index], out[index].lines
                    if (order[id(first[-1])][0] == 0 and starts_block(first[0].text) and 0 <= left - row[2] < 4 * height
                            and abs(row[3] - top) < 0.35 * height and abs(row[1] - bottom) < 0.35 * height):
                        home, same_row = index, True
                        break
        if home is None:
            out.append(Block(page=page))
            rows.append(list(line.box))
            spans.append([left, right])
            home = len(out) - 1
            number = 0
        elif same_row:
            row = rows[home]
            rows[home] = [min(row[0], left), min(row[1], bottom), max(row[2], right), max(row[3], top)]
            number = order[id(out[home].lines[-1])][0]
        else:
            rows[home] = list(line.box)
            number = order[id(out[home].lines[-1])][0] + 1
        spans[home] = [min(spans[home][0], left), max(spans[home][1], right)]
        order[id(line)] = (number, left)
        out[home].lines.append(line)
    for block in out:  # pieces of one row read left to right
        block.lines.sort(key=lambda ln: order[id(ln)])
    return out


def paragraphs(blocks_in_order: list[Block]) -> list[str]:
    """Body paragraphs; a block that does not end a sentence continues in the next one (a
    paragraph broken by a column or page end). Pieces are joined once per paragraph, so a long
    chain of continued blocks stays linear."""
    out: list[list[str]] = []
    carry = False
    for block in blocks_in_order:
        text = block.text
        if not text:
            continue
        if carry and out:
            last = out[-1][-1]
            if last.endswith("-") and text[:1].islower():
                out[-1][-1] = last[:-1] + text  # a word hyphenated across the break
            else:
                out[-1].append(text)
        else:
            out.append([text])
        carry = not re.search(r"[.!?:)\]\"']$", text)
    return [" ".join(parts) for parts in out]
