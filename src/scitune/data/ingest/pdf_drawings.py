"""The drawing objects of a PDF page and their boxes (the input of scitune.data.ingest.pdf_layout's
clustering): top-level images, vector paths, shadings and form XObjects, clipped to the page.

A form is what pdflatex makes of `\\includegraphics{plot.pdf}`: it is one drawing, with PDFium's
bounds in page space (its children's bounds are in the form's own space, so descending into it
would put the figure at the wrong place). Only a form that wraps the whole page is opened.
"""

from __future__ import annotations

import ctypes

import numpy as np

from scitune.data.ingest.limits import Limits
from scitune.errors import ScituneError

Box = tuple[float, float, float, float]  # left, bottom, right, top (points, y up)
TEXT_MARGIN = 10.0  # tick labels and axis titles may sit this far outside the drawn frame
WRAPPER_SHARE = 0.9  # a form covering this much of the page both ways wraps the page's content


def _bounds(obj) -> Box | None:
    import pypdfium2.raw as raw

    left, bottom, right, top = (ctypes.c_float() for _ in range(4))
    if not raw.FPDFPageObj_GetBounds(obj, left, bottom, right, top):
        return None
    return left.value, bottom.value, right.value, top.value


def _clip(obj, budget: int) -> tuple[int, Box | None]:
    """The box an object's clip path keeps (the intersection of its paths' boxes), or None, and
    how many path points that took to read (at most `budget`). pdflatex clips a graphic with
    `trim=..., clip` this way; PDFium's bounds of the object ignore the clip."""
    import pypdfium2.raw as raw

    clip = raw.FPDFPageObj_GetClipPath(obj)
    if not clip:
        return 0, None
    x, y = ctypes.c_float(), ctypes.c_float()
    read, box = 0, None
    for path in range(raw.FPDFClipPath_CountPaths(clip)):
        xs, ys = [], []
        for index in range(raw.FPDFClipPath_CountPathSegments(clip, path)):
            read += 1
            if read > budget:
                return read, box
            if raw.FPDFPathSegment_GetPoint(raw.FPDFClipPath_GetPathSegment(clip, path, index), x, y):
                xs.append(x.value)
                ys.append(y.value)
        if xs:
            one = (min(xs), min(ys), max(xs), max(ys))
            box = one if box is None else (max(box[0], one[0]), max(box[1], one[1]), min(box[2], one[2]), min(box[3], one[3]))
    return read, box


def _matrix(obj) -> np.ndarray:
    import pypdfium2.raw as raw

    m = raw.FS_MATRIX()
    if not raw.FPDFPageObj_GetMatrix(obj, m):
        return np.eye(3)
    return np.array([[m.a, m.b, 0.0], [m.c, m.d, 0.0], [m.e, m.f, 1.0]])


def _transform(box: Box, matrix: np.ndarray) -> Box:
    corners = np.array([[box[0], box[1], 1], [box[0], box[3], 1], [box[2], box[1], 1], [box[2], box[3], 1]]) @ matrix
    return corners[:, 0].min(), corners[:, 1].min(), corners[:, 0].max(), corners[:, 1].max()


def drawing_boxes(page, page_box: Box, limits: Limits, where: str, text: np.ndarray | None = None) -> np.ndarray:
    """Boxes (n x 4, page space, clipped to `page_box`) of the page's drawing objects. Every object
    visited counts against `limits.page_objects`, so the work is bounded by that limit. `text`:
    the centres (n x 2) of the page's text lines, which a form's background may not swallow."""
    import pypdfium2.raw as raw

    kinds = {raw.FPDF_PAGEOBJ_IMAGE, raw.FPDF_PAGEOBJ_PATH, raw.FPDF_PAGEOBJ_SHADING, raw.FPDF_PAGEOBJ_FORM}
    width, height = page_box[2] - page_box[0], page_box[3] - page_box[1]
    boxes: list[Box] = []
    visited = checks = 0
    # (count, get) pairs of object lists to walk, with the matrix from their space to the page's
    pending = [(raw.FPDFPage_CountObjects(page), lambda i: raw.FPDFPage_GetObject(page, i), None)]
    while pending:
        count, get, matrix = pending.pop()
        for i in range(count):
            visited += 1
            if visited > limits.page_objects:
                raise ScituneError(f"{where}: more than {limits.page_objects} page objects; refused")
            obj = get(i)
            kind = raw.FPDFPageObj_GetType(obj)
            if kind not in kinds:
                continue
            box = _bounds(obj)
            if box is None:
                continue
            if kind in (raw.FPDF_PAGEOBJ_FORM, raw.FPDF_PAGEOBJ_IMAGE):  # a graphic, maybe trimmed
                read, kept = _clip(obj, limits.page_objects - visited)
                visited += read
                if kept is not None:
                    box = (max(box[0], kept[0]), max(box[1], kept[1]), min(box[2], kept[2]), min(box[3], kept[3]))
                    if box[2] <= box[0] or box[3] <= box[1]:
                        continue  # clipped away entirely
            if matrix is not None:
                box = _transform(box, matrix)
            if kind == raw.FPDF_PAGEOBJ_FORM:
                children = raw.FPDFFormObj_CountObjects(obj)
                if box[2] - box[0] >= WRAPPER_SHARE * width and box[3] - box[1] >= WRAPPER_SHARE * height:
                    inner = _matrix(obj) if matrix is None else _matrix(obj) @ matrix
                    pending.append((children, lambda j, form=obj: raw.FPDFFormObj_GetObject(form, j), inner))
                    continue
                looked, draws = _draws(obj, children, limits.page_objects - visited)
                visited += looked
                if not draws:
                    continue  # a form that holds only text is text, not a figure
                inner = _matrix(obj) if matrix is None else _matrix(obj) @ matrix
                looked, content = _without_background(obj, children, box, inner, limits.page_objects - visited)
                visited += looked
                checks += content is not None
                if content is not None and _background_spills(box, content, page_box, text if checks <= MAX_BACKGROUNDS else None):
                    box = (max(box[0], content[0]), max(box[1], content[1]), min(box[2], content[2]), min(box[3], content[3]))
            elif box[2] - box[0] >= 0.97 * width and box[3] - box[1] >= 0.97 * height:
                continue  # a page background
            left, bottom = max(box[0], page_box[0]), max(box[1], page_box[1])
            right, top = min(box[2], page_box[2]), min(box[3], page_box[3])
            if right > left and top > bottom:
                boxes.append((left, bottom, right, top))
    return np.array(boxes, dtype=float).reshape(-1, 4)


def _draws(form, children: int, budget: int) -> tuple[int, bool]:
    """Whether a form holds anything but text, and how many of its children that took to see
    (it stops at the first such child, and after `budget` children)."""
    import pypdfium2.raw as raw

    for j in range(min(children, max(budget, 0))):
        if raw.FPDFPageObj_GetType(raw.FPDFFormObj_GetObject(form, j)) != raw.FPDF_PAGEOBJ_TEXT:
            return j + 1, True
    return min(children, max(budget, 0)), False


def _background_spills(box: Box, content: Box, page_box: Box, text: np.ndarray | None) -> bool:
    """Whether a form's background reaches past what the form can show: off the page, or over
    text lines set outside its drawing (a caption, the body). A figure saved with a white
    background of its own size (matplotlib's) keeps its box, margins included, as it is placed."""
    if box[0] < page_box[0] - 2 or box[1] < page_box[1] - 2 or box[2] > page_box[2] + 2 or box[3] > page_box[3] + 2:
        return True
    if text is None or len(text) == 0:
        return False
    x, y = text[:, 0], text[:, 1]
    in_box = (x >= box[0]) & (x <= box[2]) & (y >= box[1]) & (y <= box[3])
    m = TEXT_MARGIN
    in_content = (x >= content[0] - m) & (x <= content[2] + m) & (y >= content[1] - m) & (y <= content[3] + m)
    return bool(np.any(in_box & ~in_content))


MAX_BACKGROUNDS = 64  # forms with a background checked against the page's text lines (lines x forms)
BACKGROUND_LOOK = 4  # a form's background, when it has one, is among its first few children


def _without_background(form, children: int, box: Box, matrix: np.ndarray, budget: int) -> tuple[int, Box | None]:
    """The page box of what a form draws without its background, or None when it has none (and
    how many children that took to read, at most `budget`). PDFium's bounds of a form are those of
    its content, not of the /BBox that clips it: a figure exported from slides or cropped with
    pdfcrop keeps a page-sized white rectangle outside its crop box, and its bounds then reach
    over the caption and the body text around it. Only a form that starts with a path covering
    all of its bounds is read whole."""
    import pypdfium2.raw as raw

    def page_box(j: int) -> tuple[Box | None, bool]:
        child = raw.FPDFFormObj_GetObject(form, j)
        found = _bounds(child)
        return (None if found is None else _transform(found, matrix)), raw.FPDFPageObj_GetType(child) == raw.FPDF_PAGEOBJ_PATH

    def covers(found: Box | None, path: bool) -> bool:
        return path and found is not None and all(abs(a - b) <= 1.0 for a, b in zip(found, box))

    head = min(children, BACKGROUND_LOOK, max(budget, 0))
    if not any(covers(*page_box(j)) for j in range(head)):
        return head, None
    if children > budget:
        return head, None  # too many children to read within the page's bound: keep PDFium's box
    rest = [found for found, path in map(page_box, range(children)) if found is not None and not covers(found, path)]
    if not rest:
        return head + children, None
    array = np.array(rest, dtype=float)
    return head + children, (*array[:, :2].min(axis=0), *array[:, 2:].max(axis=0))
