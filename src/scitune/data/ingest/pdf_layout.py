"""Figure regions on a PDF page: drawing objects -> clustered regions -> the region of each caption.

Drawing objects are the page's top-level images, vector paths, shadings and form XObjects
(scitune.data.ingest.pdf_drawings).

Clustering paints every box, widened by half the cluster gap, on a coarse grid (a difference
array, so each box costs O(1)) and labels the grid's connected parts (scipy.ndimage), then repeats
on the parts' bounding boxes until they stop merging: linear in objects plus the grid, where a
scatter of 20,000 markers once took a quadratic merge loop.

A caption's figure is the set of free regions between the caption and the nearest body text (or
other caption) above it, in the caption's column, else below it, else beside it; the pairs are made
on the page's usual side first (captions under figures, unless the page shows otherwise), nearest
first, so a figure goes to the caption right next to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scitune.data.ingest.limits import Limits
from scitune.data.ingest.pdf_drawings import TEXT_MARGIN, Box, drawing_boxes
from scitune.data.ingest.pdf_text import Block, Line

MIN_REGION_POINTS = 24.0  # a figure is at least this long on its longer side
MIN_REGION_THICKNESS = 8.0  # and this thick on its shorter one: thinner is a rule or an underline
CLUSTER_GAP = 6.0  # drawing objects closer than this (points) belong to one figure
GRID_CELLS = 1024  # the clustering grid's longer side in cells (one point on a letter page)
MERGE_ROUNDS = 8  # bounding boxes of clusters re-merged at most this often (bounds the loop)
MAX_CAPTIONS = 50  # captions paired on one page (pairing is captions x (regions + blocks))
STACK_GAP = 8.0  # empty space between stacked panels of one figure is at most this (floats: 10-14)
SIDE_BY_SIDE_GAP = 36.0  # captions this close vertically and apart horizontally sit side by side

@dataclass
class Grid:
    """A raster over the page for region look-ups: cells of `cell` points from the page corner."""

    origin: tuple[float, float]
    cell: float
    shape: tuple[int, int]  # rows (y), columns (x)

    @classmethod
    def over(cls, page_box: Box) -> "Grid":
        cell = max(1.0, max(page_box[2] - page_box[0], page_box[3] - page_box[1]) / GRID_CELLS)
        shape = (int((page_box[3] - page_box[1]) / cell) + 2, int((page_box[2] - page_box[0]) / cell) + 2)
        return cls((page_box[0], page_box[1]), cell, shape)

    def spans(self, boxes: np.ndarray, pad: float) -> tuple[np.ndarray, ...]:
        """Cell ranges [x0, x1) x [y0, y1) of the boxes widened by `pad` on every side."""
        ny, nx = self.shape
        x0 = np.clip(np.floor((boxes[:, 0] - pad - self.origin[0]) / self.cell), 0, nx - 1).astype(np.int64)
        y0 = np.clip(np.floor((boxes[:, 1] - pad - self.origin[1]) / self.cell), 0, ny - 1).astype(np.int64)
        x1 = np.clip(np.floor((boxes[:, 2] + pad - self.origin[0]) / self.cell) + 1, 1, nx).astype(np.int64)
        y1 = np.clip(np.floor((boxes[:, 3] + pad - self.origin[1]) / self.cell) + 1, 1, ny).astype(np.int64)
        return x0, y0, np.maximum(x1, x0 + 1), np.maximum(y1, y0 + 1)

    def cell_of(self, x: float, y: float) -> tuple[int, int] | None:
        col, row = int((x - self.origin[0]) // self.cell), int((y - self.origin[1]) // self.cell)
        if 0 <= row < self.shape[0] and 0 <= col < self.shape[1]:
            return row, col
        return None


def cluster(boxes: np.ndarray, page_box: Box, gap: float = CLUSTER_GAP) -> np.ndarray:
    """Bounding boxes of the groups of `boxes` that lie within `gap` of each other (transitively,
    and again for the groups' own boxes): O(objects + grid cells) per round, MERGE_ROUNDS at most."""
    from scipy import ndimage

    if len(boxes) == 0:
        return boxes
    grid = Grid.over(page_box)
    structure = np.ones((3, 3), dtype=bool)
    for _ in range(MERGE_ROUNDS):
        x0, y0, x1, y1 = grid.spans(boxes, gap / 2)
        diff = np.zeros((grid.shape[0] + 1, grid.shape[1] + 1), dtype=np.int32)
        for rows, cols, sign in ((y0, x0, 1), (y0, x1, -1), (y1, x0, -1), (y1, x1, 1)):
            np.add.at(diff, (rows, cols), sign)
        painted = diff.cumsum(0).cumsum(1)[: grid.shape[0], : grid.shape[1]] > 0
        labels, count = ndimage.label(painted, structure=structure)
        group = labels[y0, x0] - 1  # every box paints its own corner cell
        merged = np.empty((count, 4))
        merged[:, :2], merged[:, 2:] = np.inf, -np.inf
        np.minimum.at(merged[:, 0], group, boxes[:, 0])
        np.minimum.at(merged[:, 1], group, boxes[:, 1])
        np.maximum.at(merged[:, 2], group, boxes[:, 2])
        np.maximum.at(merged[:, 3], group, boxes[:, 3])
        merged = merged[np.isfinite(merged[:, 0])]
        if len(merged) == len(boxes):
            return merged
        boxes = merged
    return boxes


def regions(page, page_box: Box, limits: Limits, where: str, lines: list[Line] | None = None) -> np.ndarray:
    """The page's candidate figure regions (n x 4): clustered drawings, rules and dots dropped."""
    text = None if lines is None else np.array([((ln.box[0] + ln.box[2]) / 2, (ln.box[1] + ln.box[3]) / 2)
                                                for ln in lines], dtype=float).reshape(-1, 2)
    merged = cluster(drawing_boxes(page, page_box, limits, where, text), page_box)
    if len(merged) == 0:
        return merged
    width, height = merged[:, 2] - merged[:, 0], merged[:, 3] - merged[:, 1]
    keep = (np.maximum(width, height) >= MIN_REGION_POINTS) & (np.minimum(width, height) >= MIN_REGION_THICKNESS)
    return merged[keep]


def _paint_ids(grid: Grid, boxes: np.ndarray, pad: float) -> np.ndarray:
    """A grid holding, per cell, the index of a box covering it (or -1). The regions are disjoint
    after clustering, so the painting costs about one grid."""
    ids = np.full(grid.shape, -1, dtype=np.int32)
    if len(boxes):
        x0, y0, x1, y1 = grid.spans(boxes, pad)
        for i in range(len(boxes) - 1, -1, -1):  # the first region wins where widened ones overlap
            ids[y0[i] : y1[i], x0[i] : x1[i]] = i
    return ids


def assign_lines(lines: list[Line], boxes: np.ndarray, page_box: Box, is_label, keep_out) -> list[int]:
    """For each line, the region it is drawn in (its centre inside, or a short label just outside
    the frame), or -1: one grid look-up per line, not lines x regions. Lines for which
    `keep_out(text)` holds (caption labels) stay out of every region."""
    if len(boxes) == 0:
        return [-1] * len(lines)
    grid = Grid.over(page_box)
    inside, near = _paint_ids(grid, boxes, 2.0), _paint_ids(grid, boxes, TEXT_MARGIN)
    owners = []
    for line in lines:
        cell = grid.cell_of((line.box[0] + line.box[2]) / 2, (line.box[1] + line.box[3]) / 2)
        owner = -1
        if cell is not None and not keep_out(line.text):
            owner = int(inside[cell])
            if owner < 0 and is_label(line.text):
                owner = int(near[cell])
        owners.append(owner)
    return owners


def caption_windows(captions: list[Block], page_box: Box, two_column: bool) -> list[tuple[float, float]]:
    """The horizontal span each caption's figure may occupy: its column on a two-column page (the
    page for a caption across both columns), split between captions set side by side."""
    middle = (page_box[0] + page_box[2]) / 2
    windows = []
    for caption in captions:
        left, _, right, _ = caption.box
        if two_column and right <= middle + 4:
            windows.append([page_box[0], middle])
        elif two_column and left >= middle - 4:
            windows.append([middle, page_box[2]])
        else:
            windows.append([page_box[0], page_box[2]])
    columns = [tuple(w) for w in windows]
    for i, one in enumerate(captions):  # captions <= MAX_CAPTIONS, so pairs of them are cheap
        for j, other in enumerate(captions):
            a, b = one.box, other.box
            # side by side: same column, apart horizontally, near vertically (minipages centre
            # their contents, so captions of different lengths need not share a line)
            if i == j or columns[i] != columns[j] or a[1] - b[3] >= SIDE_BY_SIDE_GAP or b[1] - a[3] >= SIDE_BY_SIDE_GAP:
                continue
            if b[0] >= a[2]:  # `other` sits to the right of `one` on the same height
                windows[i][1] = min(windows[i][1], (a[2] + b[0]) / 2)
            elif b[2] <= a[0]:
                windows[i][0] = max(windows[i][0], (b[2] + a[0]) / 2)
    return [tuple(w) for w in windows]


def _stack(members: np.ndarray, boxes: np.ndarray, spacers: np.ndarray, upward: bool) -> np.ndarray:
    """Of the regions on one side of a caption, those that make one figure with the nearest: each
    next one (going away from the caption) overlaps the figure so far vertically, or lies within
    STACK_GAP of it, or has text (subcaptions, `spacers`: sorted centres) in between. A wider
    empty gap is the space between two floats (one with its caption above it). Cost: members
    log(spacers)."""
    if len(members) < 2:
        return members
    near = boxes[members, 1] if upward else -boxes[members, 3]
    members = members[np.argsort(near, kind="stable")]
    low, high = boxes[members[0], 1], boxes[members[0], 3]
    kept = [members[0]]
    for i in members[1:]:
        gap = (boxes[i, 1] - high) if upward else (low - boxes[i, 3])
        a, b = (high, boxes[i, 1]) if upward else (boxes[i, 3], low)
        spaced = np.searchsorted(spacers, b) > np.searchsorted(spacers, a, side="right")
        if gap > STACK_GAP and not spaced:
            break
        kept.append(i)
        low, high = min(low, boxes[i, 1]), max(high, boxes[i, 3])
    return np.array(kept)


def pair_captions(captions: list[Block], blocks: list[Block], boxes: np.ndarray, page_box: Box,
                  two_column: bool, other_captions: list[Block] = ()) -> list[tuple[Box, list[int]] | None]:
    """For each caption, its figure's box (clipped to its window and the page) and the regions
    that make it, or None. Every caption, and each of `other_captions` (tables'), stops the
    figure of another. Cost: captions x (regions + blocks), captions bounded by MAX_CAPTIONS."""
    windows = caption_windows(captions, page_box, two_column)
    if blocks:
        block_boxes = np.array([b.box for b in blocks])
        block_lines = np.array([len(b.lines) for b in blocks])
        labelled = {id(c) for c in [*captions, *other_captions]}
        is_caption = np.array([id(b) in labelled for b in blocks])
    else:
        block_boxes, block_lines, is_caption = np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=bool)
    options = []  # (distance, caption index, region indices)
    for k, caption in enumerate(captions):
        if len(boxes) == 0:
            break
        cl, cb, cr, ct = caption.box
        wl, wr = windows[k]
        own = np.array([b is caption for b in blocks], dtype=bool) if blocks else np.zeros(0, dtype=bool)
        # body text (wide or several lines) or another caption over the caption's own span stops the figure
        overlap = np.minimum(block_boxes[:, 2], cr) - np.maximum(block_boxes[:, 0], cl)
        wide = (block_boxes[:, 2] - block_boxes[:, 0] >= 0.5 * (wr - wl)) | (block_lines >= 3) | is_caption
        stops = (overlap > 2) & wide & ~own
        ceiling = block_boxes[stops & (block_boxes[:, 1] >= ct - 2), 1].min(initial=page_box[3])
        floor = block_boxes[stops & (block_boxes[:, 3] <= cb + 2), 3].max(initial=page_box[1])
        width = boxes[:, 2] - boxes[:, 0]
        in_window = np.minimum(boxes[:, 2], wr) - np.maximum(boxes[:, 0], wl) >= 0.5 * width
        middle = (boxes[:, 1] + boxes[:, 3]) / 2
        above = np.flatnonzero(in_window & (boxes[:, 1] >= ct - 6) & (middle < ceiling))
        below = np.flatnonzero(in_window & (boxes[:, 3] <= cb + 6) & (middle > floor))
        beside = np.flatnonzero(in_window & (boxes[:, 1] < ct) & (boxes[:, 3] > cb)
                                & ((boxes[:, 2] <= cl + 4) | (boxes[:, 0] >= cr - 4)))
        # text that does not stop a figure (a subcaption) but lies in the column may hold
        # a figure's stacked panels apart
        spacers = np.sort(((block_boxes[:, 1] + block_boxes[:, 3]) / 2)[
            ~stops & ~own & (np.minimum(block_boxes[:, 2], wr) - np.maximum(block_boxes[:, 0], wl) > 0)])
        above = _stack(above, boxes, spacers, upward=True)
        below = _stack(below, boxes, spacers, upward=False)
        if len(above):
            options.append(("above", boxes[above, 1].min() - ct, k, above))
        if len(below):
            options.append(("below", cb - boxes[below, 3].max(), k, below))
        if len(beside):
            gaps = np.maximum(boxes[beside, 0] - cr, cl - boxes[beside, 2])
            options.append(("beside", gaps.min(), k, beside))
    # A region between two captions stacked in one column belongs to the one below it when
    # captions sit under their figures (LaTeX's custom), to the one above it otherwise; distances
    # cannot tell (\abovecaptionskip and \floatsep are both about 10 points). The page says which:
    # captions with a figure on one side only. Captions under figures win a tie.
    sides = {(o[2], o[0]) for o in options}
    under = sum(1 for k in range(len(captions)) if (k, "above") in sides and (k, "below") not in sides)
    over = sum(1 for k in range(len(captions)) if (k, "below") in sides and (k, "above") not in sides)
    order = {"above": 0, "below": 1, "beside": 2} if under >= over else {"below": 0, "above": 1, "beside": 2}
    options = [(order[side], distance, k, members) for side, distance, k, members in options]
    options.sort(key=lambda o: (o[0], o[1], o[2]))
    used = np.zeros(len(boxes), dtype=bool)
    out: list[tuple[Box, list[int]] | None] = [None] * len(captions)
    for _, _, k, members in options:  # the page's usual side first, nearest pairs first
        if out[k] is not None:
            continue
        members = members[~used[members]]
        if len(members) == 0:
            continue
        used[members] = True
        wl, wr = windows[k]
        chosen = boxes[members]
        box = (max(chosen[:, 0].min(), wl, page_box[0]), max(chosen[:, 1].min(), page_box[1]),
               min(chosen[:, 2].max(), wr, page_box[2]), min(chosen[:, 3].max(), page_box[3]))
        out[k] = (box, [int(m) for m in members])
    return out
