"""Prediction of large images by overlapping tiles, merged without
duplicates.

Each tile has a *core*; the cores partition the image and a detection is
kept only by the tile whose core holds its box centre (:func:`tile_grid`,
:func:`centres_in_core`). Numpy only, except that
:func:`centres_in_core` also takes torch tensors.
"""
import math
from typing import Callable, List, Sequence, Tuple

import numpy as np

from .detections import Detections

__all__ = ['centres_in_core', 'predict_tiled', 'should_tile', 'tile_grid']

# a tile's core: ``x0, x1, y0, y1`` (half-open) in tile pixels
Core = Tuple[int, int, int, int]


def should_tile(height: int, width: int, tile_size: int,
                tile_above: int) -> bool:
    """Whether an image is predicted by tiles.

    Only when its longer side exceeds ``tile_above`` (0: never) and its
    area exceeds one ``tile_size`` square: a long thin strip (2000 x 475)
    is smaller than one tile, and tiling it would only add overlap work.
    """
    return bool(tile_above) and max(height, width) > tile_above and \
        height * width > tile_size**2


def tile_grid(length: int, tile: int,
              overlap: int) -> List[Tuple[int, int, int, int]]:
    """Split ``[0, length)`` into overlapping tiles and disjoint cores.

    Returns ``(start, end, core_start, core_end)`` per tile. The fewest
    tiles of at most ``tile`` pixels that overlap by at least ``overlap``
    are used, all of the same length (balanced: a 2000 px side becomes
    three 795 px tiles, not three of 1024 px, two of them mostly overlap);
    cores partition ``[0, length)``, each boundary midway in the overlap of
    two neighbouring tiles. A detection is kept only by the tile whose core
    holds its box centre, so a cell crossing a tile border is predicted
    once, by a tile that contains all of it as long as the cell is smaller
    than half the overlap on either side of the centre.
    """
    if length <= tile:
        return [(0, length, 0, length)]
    if overlap >= tile:
        raise ValueError('overlap must be smaller than tile')
    n = math.ceil((length - overlap) / (tile - overlap))
    size = math.ceil((length + (n - 1) * overlap) / n)  # <= tile
    starts = [i * (size - overlap) for i in range(n - 1)] + [length - size]
    spans = [(s, s + size) for s in starts]
    out = []
    for i, (s, e) in enumerate(spans):
        core_s = 0 if i == 0 else (s + spans[i - 1][1]) // 2
        core_e = length if i == len(spans) - 1 else (spans[i + 1][0] + e) // 2
        out.append((s, e, core_s, core_e))
    return out


def centres_in_core(boxes, core: Core, scale: Sequence[float] = (1.0, 1.0)):
    """Which ``x1, y1, x2, y2`` boxes have their centre in ``core``.

    ``boxes`` is an (N, 4) numpy array or torch tensor (the result is a
    boolean one of the same kind); its coordinates divided by ``scale``
    (``sx, sy``: boxes in network-input coordinates of a resized image)
    are compared with ``core`` (``x0, x1, y0, y1``, half-open, in image
    pixels).
    """
    cx = (boxes[:, 0] + boxes[:, 2]) / (2 * float(scale[0]))
    cy = (boxes[:, 1] + boxes[:, 3]) / (2 * float(scale[1]))
    x0, x1, y0, y1 = core
    return (cx >= x0) & (cx < x1) & (cy >= y0) & (cy < y1)


def predict_window(predict_fn: Callable[[np.ndarray, Core], Detections],
                   tile: np.ndarray, x0: int, y0: int,
                   core: Core) -> Detections:
    """``predict_fn(tile, core)`` for a tile whose top-left corner is
    ``(x0, y0)`` of a larger image, ``core`` (``x0, x1, y0, y1``) in that
    image's pixels: the detections shifted to image coordinates, only those
    whose box centre lies in the core (the tile-core rule of
    :func:`tile_grid`)."""
    cx0, cx1, cy0, cy1 = core
    d = predict_fn(tile, (cx0 - x0, cx1 - x0, cy0 - y0, cy1 - y0))
    d.bboxes = d.bboxes + np.array([x0, y0, x0, y0], np.float32)
    return d.select(centres_in_core(d.bboxes, core))


def predict_tiled(predict_fn: Callable[[np.ndarray, Core], Detections],
                  img: np.ndarray, tile_size: int, tile_overlap: int,
                  max_per_img: int) -> Detections:
    """Run ``predict_fn`` on overlapping tiles of ``img`` and merge.

    ``predict_fn(tile, core)`` gets the tile and its core (``x0, x1, y0,
    y1`` in tile pixels) so that it can skip the masks of boxes it will lose.
    Each tile's detections are shifted to image coordinates and kept only if
    their box centre lies in the tile's core (:func:`tile_grid`), so no cell
    is reported twice; the best ``max_per_img`` by score are returned.
    """
    h, w = img.shape[:2]
    parts = []
    for ys, ye, cys, cye in tile_grid(h, tile_size, tile_overlap):
        for xs, xe, cxs, cxe in tile_grid(w, tile_size, tile_overlap):
            parts.append(predict_window(
                predict_fn, np.ascontiguousarray(img[ys:ye, xs:xe]), xs, ys,
                (cxs, cxe, cys, cye)))
    dets = Detections.concat(parts, h, w)
    order = np.argsort(-dets.scores, kind='stable')[:max_per_img]
    return dets.select(order)
