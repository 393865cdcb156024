"""Prediction outputs streamed to disk as detections arrive.

A whole slide holds hundreds of thousands of cells: its results are written
tile by tile, never gathered in memory. Every writer writes to a temporary
file next to its target and moves it into place only when closed after a
successful run (:func:`~mmseg_cells.utils.atomic_write`); an aborted run
leaves no partial file and keeps an earlier result.

- :class:`CocoResultsWriter`: COCO results entries (RLE ``counts`` str);
- :class:`GeoJSONWriter`: a GeoJSON ``FeatureCollection`` that QuPath
  imports as detection objects: one polygon per cell (level-0 pixels), the
  class as ``classification`` (name, colour), the score under
  ``measurements``;
- :class:`SlideOverlayWriter`: the cells drawn on a downsampled view of the
  whole slide (PNG).
"""
import json
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from mmseg_cells.utils import atomic_write, atomic_write_png

from .detections import Detections
from .results import coco_results, published_score

__all__ = [
    'CocoResultsWriter', 'GeoJSONWriter', 'JSONListWriter',
    'SlideOverlayWriter', 'cell_outlines', 'mask_polygon'
]

RGB = Tuple[int, int, int]


class JSONListWriter:
    """A JSON array written item by item (``prefix`` + items + ``suffix``)
    to a temporary file, moved over ``path`` by :meth:`close`;
    :meth:`abort` (or leaving a ``with`` block by an exception) removes it.
    """

    prefix = '['
    suffix = ']'

    def __init__(self, path: str) -> None:
        self.path = path
        self._cm = atomic_write(path, 'w', encoding='utf-8')
        self._f = self._cm.__enter__()
        self._f.write(self.prefix)
        self.count = 0

    def write(self, item: dict) -> None:
        """Append one item."""
        self._f.write((',\n' if self.count else '\n') +
                      json.dumps(item, separators=(',', ':')))
        self.count += 1

    def close(self) -> None:
        """Finish the file and move it into place."""
        if self._cm is None:
            return
        self._f.write('\n' + self.suffix + '\n')
        cm, self._cm = self._cm, None
        cm.__exit__(None, None, None)

    def abort(self) -> None:
        """Drop the temporary file; ``path`` is left as it was."""
        if self._cm is None:
            return
        cm, self._cm = self._cm, None
        err = RuntimeError(f'{self.path}: aborted')
        cm.__exit__(type(err), err, None)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class CocoResultsWriter(JSONListWriter):
    """COCO results entries, streamed (:func:`~mmseg_cells.apis.
    coco_results` per call of :meth:`add`)."""

    def add(self, dets: Detections, image_id: int, mask_thr: float = 0.5,
            category_ids: Optional[Sequence[int]] = None) -> int:
        """Write one image's (or slide tile's) detections; returns how many
        entries were written."""
        entries = coco_results(dets, image_id, mask_thr, category_ids)
        for e in entries:
            self.write(e)
        return len(entries)


def mask_polygon(crop: np.ndarray, x0: int, y0: int) -> Optional[list]:
    """The outline of a binary mask crop as a closed GeoJSON ring
    (``[[x, y], ...]``, first point repeated last) in image coordinates,
    through the boundary pixels' centres (``x + 0.5``); the largest
    outer contour when the mask has several parts, repaired to a valid
    polygon (shapely ``buffer(0)``). Masks of fewer than 3 boundary points
    become their pixels' bounding square. None for an empty mask."""
    from shapely.geometry import MultiPolygon, Polygon, box
    if not crop.any():
        return None
    contours, _ = cv2.findContours(crop.astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    pts = max(contours, key=cv2.contourArea).reshape(-1, 2)
    poly = None
    if len(pts) >= 3:
        poly = Polygon(pts + 0.5)
        if not poly.is_valid:
            poly = poly.buffer(0)
        if isinstance(poly, MultiPolygon):
            poly = max(poly.geoms, key=lambda g: g.area)
    if poly is None or poly.is_empty or poly.area <= 0:
        ys, xs = np.nonzero(crop)
        poly = box(xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    ring = np.asarray(poly.exterior.coords) + (x0, y0)
    return [[round(float(x), 2), round(float(y), 2)] for x, y in ring]


Outline = Tuple[int, float, list, list]


def cell_outlines(dets: Detections, mask_thr: float = 0.5) -> List[Outline]:
    """``(label, published score, [x1, y1, x2, y2], ring)`` per detection
    with a non-empty mask (:func:`mask_polygon`), in detection order: what
    the GeoJSON and the overlay need, computed once and JSON-serialisable
    (ranks of a distributed run exchange them)."""
    out = []
    for i, crop, x0, y0 in dets.iter_masks(mask_thr):
        ring = mask_polygon(crop, x0, y0)
        if ring is not None:
            out.append((int(dets.labels[i]), published_score(dets.scores[i]),
                        [float(v) for v in dets.bboxes[i]], ring))
    return out


class GeoJSONWriter(JSONListWriter):
    """A QuPath-readable GeoJSON ``FeatureCollection`` of cell polygons,
    streamed.

    Args:
        path (str): output ``.geojson`` file.
        class_names (sequence of str): name per label index.
        palette (sequence of RGB): colour per label index.
    """

    prefix = '{"type":"FeatureCollection","features":['
    suffix = ']}'

    def __init__(self, path: str, class_names: Sequence[str],
                 palette: Sequence[RGB]) -> None:
        super().__init__(path)
        self.class_names = list(class_names)
        self.palette = [[int(c) for c in rgb] for rgb in palette]

    def write_outline(self, outline: Outline) -> None:
        """Write one cell (:func:`cell_outlines`) as a feature."""
        label, score, _, ring = outline
        self.write({
            'type': 'Feature',
            'geometry': {'type': 'Polygon', 'coordinates': [ring]},
            'properties': {
                'objectType': 'detection',
                'classification': {
                    'name': self.class_names[label],
                    'color': self.palette[label % len(self.palette)]
                },
                'measurements': {'score': score}
            }
        })

    def add(self, dets: Detections, mask_thr: float = 0.5) -> int:
        """Write a polygon feature per detection with a non-empty mask;
        returns how many were written."""
        outlines = cell_outlines(dets, mask_thr)
        for o in outlines:
            self.write_outline(o)
        return len(outlines)


class SlideOverlayWriter:
    """Cells drawn on a downsampled view of a whole slide, saved as PNG.

    The view is the slide reduced to at most ``max_side`` px a side
    (:func:`~mmseg_cells.data.slide.read_thumbnail`: its
    highest-resolution readable level that small, or a smaller level
    reduced band by band). Each cell is its
    class colour: the scaled mask outline, or a dot where the cell is
    smaller than 3 view pixels.

    Args:
        path (str): output PNG.
        reader: a slide reader (:func:`~mmseg_cells.data.slide.open_slide`).
        palette (sequence of RGB): colour per label index.
        max_side (int): longer side of the view. Defaults to 2048.
        score_thr (float): cells scoring below this are not drawn (the
            results files keep them). Defaults to 0.0.
    """

    def __init__(self, path: str, reader, palette: Sequence[RGB],
                 max_side: int = 2048, score_thr: float = 0.0) -> None:
        from mmseg_cells.data.slide import read_thumbnail
        self.path = path
        view, _ = read_thumbnail(reader, max_side)
        w0, h0 = reader.dimensions
        self.view = np.ascontiguousarray(view)
        self.sx = self.view.shape[1] / w0
        self.sy = self.view.shape[0] / h0
        self.palette = [tuple(int(c) for c in rgb) for rgb in palette]
        self.score_thr = score_thr

    def draw_outline(self, outline: Outline) -> None:
        """Draw one cell (:func:`cell_outlines`) unless it scores below
        ``score_thr``."""
        label, score, (x1, y1, x2, y2), ring = outline
        if score < self.score_thr:
            return
        colour = self.palette[label % len(self.palette)]
        if (x2 - x1) * self.sx < 3 or (y2 - y1) * self.sy < 3:
            centre = (int((x1 + x2) / 2 * self.sx),
                      int((y1 + y2) / 2 * self.sy))
            cv2.circle(self.view, centre, 1, colour, -1)
            return
        pts = np.round(np.array(ring) * (self.sx, self.sy)).astype(np.int32)
        cv2.polylines(self.view, [pts], True, colour, 1)

    def add(self, dets: Detections, mask_thr: float = 0.5) -> None:
        """Draw one tile's detections (level-0 coordinates)."""
        for o in cell_outlines(dets, mask_thr):
            self.draw_outline(o)

    def close(self) -> None:
        """Write the PNG atomically."""
        atomic_write_png(self.path, self.view)
