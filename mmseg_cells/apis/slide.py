"""Whole-slide prediction: level-0 tiles read as needed, results streamed.

:func:`slide_windows` lays the overlapping tile grid of
:func:`~mmseg_cells.apis.tile_grid` over a slide (the same grid a large
image gets in memory); :func:`predict_slide` skips the tiles without tissue
(:func:`~mmseg_cells.data.tissue.tissue_mask` on a low-resolution level),
reads each other tile from disk, predicts it and yields its detections in
level-0 coordinates, keeping only the cells whose box centre lies in the
tile's core, so a cell crossing a tile border is reported once. Nothing
of the slide is held beyond one tile and the tissue thumbnail.
"""
import warnings
from dataclasses import dataclass
from typing import Iterator, List, Optional, Tuple, Union

import numpy as np

from .detections import Detections
from .tiling import predict_window, tile_grid

__all__ = [
    'SLIDE_FORMATS', 'SlideTile', 'predict_slide', 'predict_slide_to_files',
    'slide_tiles', 'slide_windows', 'tissue_tiles'
]


@dataclass(frozen=True)
class SlideTile:
    """One tile of a slide's grid, in level-0 pixels (half-open ranges).

    Attributes:
        index (int): row-major position in the grid.
        x0, x1, y0, y1 (int): the tile.
        core (tuple): ``x0, x1, y0, y1`` of its core: the cells whose box
            centre lies there are this tile's.
    """
    index: int
    x0: int
    x1: int
    y0: int
    y1: int
    core: Tuple[int, int, int, int]


def slide_windows(width: int, height: int, tile_size: int,
                  overlap: int) -> List[SlideTile]:
    """The overlapping tile grid of a ``width x height`` slide."""
    out = []
    for ys, ye, cys, cye in tile_grid(height, tile_size, overlap):
        for xs, xe, cxs, cxe in tile_grid(width, tile_size, overlap):
            out.append(SlideTile(len(out), xs, xe, ys, ye,
                                 (cxs, cxe, cys, cye)))
    return out


def tissue_tiles(reader, tiles: List[SlideTile],
                 max_side: int = 2048) -> List[SlideTile]:
    """The tiles that cover tissue, by :func:`~mmseg_cells.data.tissue.
    tissue_mask` of a view of the slide whose longer side is at most
    ``max_side`` px (:func:`~mmseg_cells.data.slide.read_thumbnail`)."""
    from mmseg_cells.data.slide import read_thumbnail
    from mmseg_cells.data.tissue import tissue_mask, window_has_tissue
    thumb, ds = read_thumbnail(reader, max_side)
    mask = tissue_mask(thumb)
    return [t for t in tiles
            if window_has_tissue(mask, ds, (t.x0, t.x1, t.y0, t.y1))]


def slide_tiles(reader, tile_size: int, overlap: int, tissue: bool = True,
                warn: bool = True) -> List[SlideTile]:
    """The grid of a slide (:func:`slide_windows`), with ``tissue`` only
    its tiles on tissue (:func:`tissue_tiles`; a warning when there are
    none, unless ``warn`` is False)."""
    tiles = slide_windows(*reader.dimensions, tile_size, overlap)
    if tissue:
        tiles = tissue_tiles(reader, tiles)
        if not tiles and warn:
            warnings.warn(f'{reader.path}: no tissue found, nothing to '
                          'predict')
    return tiles


def predict_slide(
    predictor,
    reader,
    tile_size: int = 1024,
    overlap: int = 192,
    tissue: bool = True,
    tiles: Optional[List[SlideTile]] = None
) -> Iterator[Tuple[SlideTile, Union[Detections, Exception]]]:
    """Predict a slide tile by tile.

    Yields ``(tile, detections)`` per predicted tile, detections in
    level-0 coordinates (``height, width``: the slide's) restricted to the
    tile's core; a tile that cannot be read yields ``(tile, error)`` (a
    :class:`~mmseg_cells.data.slide.SlideError` naming the file and tile)
    and the others go on.

    Args:
        predictor (CellPredictor): the model.
        reader: a slide reader (:func:`~mmseg_cells.data.slide.open_slide`).
        tile_size (int): tile side in level-0 px. Defaults to 1024.
        overlap (int): tile overlap; must exceed the largest cell.
            Defaults to 192.
        tissue (bool): skip tiles without tissue. Defaults to True.
        tiles (list, optional): predict only these (e.g. one rank's share);
            default: :func:`slide_tiles`.
    """
    from mmseg_cells.data.slide import SlideError
    w, h = reader.dimensions
    if tiles is None:
        tiles = slide_tiles(reader, tile_size, overlap, tissue)
    for t in tiles:
        try:
            rgb = reader.read_region(t.x0, t.y0, t.x1 - t.x0, t.y1 - t.y0)
        except SlideError as e:
            yield t, e
            continue
        d = predict_window(predictor._predict_array,
                           np.ascontiguousarray(rgb[..., ::-1]), t.x0, t.y0,
                           t.core)
        d.height, d.width = h, w
        yield t, d


SLIDE_FORMATS = ('coco', 'geojson', 'overlays')


def _tile_payload(dets, formats, mask_thr: float) -> dict:
    """What the outputs need of one tile, JSON-serialisable."""
    from .results import coco_results
    from .writers import cell_outlines
    out = {}
    if 'coco' in formats:
        out['coco'] = coco_results(dets, 1, mask_thr)
    if {'geojson', 'overlays'} & set(formats):
        out['outlines'] = cell_outlines(dets, mask_thr)
    return out


def _write_payload(writers: dict, payload: dict) -> None:
    for entry in payload.get('coco', ()):
        writers['coco'].write(entry)
    for outline in payload.get('outlines', ()):
        if 'geojson' in writers:
            writers['geojson'].write_outline(outline)
        if 'overlays' in writers:
            writers['overlays'].draw_outline(outline)


def predict_slide_to_files(predictor, path: str, out_dir: str,
                           formats: Tuple[str, ...] = ('geojson', ),
                           tile_size: int = 1024, overlap: int = 192,
                           tissue: bool = True, shard=None,
                           log=None, show_score_thr: float = 0.0) -> dict:
    """Predict one slide and stream its results into ``out_dir``:
    ``<stem>.coco.json`` (COCO results, ``image_id`` 1, level-0
    coordinates), ``<stem>.geojson`` (QuPath detections) and
    ``<stem>.overlay.png`` (cells scoring at least ``show_score_thr`` on a
    downsampled slide), per ``formats``.

    With a :class:`~mmseg_cells.apis.shards.Shard` of several ranks, each
    rank predicts every N-th tile and streams it to a part file; rank 0
    then writes the outputs from the parts in tile order, the same files a
    single process writes. Tiles that cannot be read are reported through
    ``log`` (default: :func:`warnings.warn`; on rank 0 for every rank) and
    skipped; the other tiles' results are still written. Returns
    ``{'tiles': predicted, 'cells': written, 'errors': [messages]}``
    (rank 0: of the whole slide). A slide that cannot be opened raises
    :class:`~mmseg_cells.data.slide.SlideError` before anything is written.
    """
    import os
    import os.path as osp

    from mmseg_cells.data.slide import open_slide

    from .shards import PartWriter, Shard, merged_parts
    from .writers import CocoResultsWriter, GeoJSONWriter, SlideOverlayWriter
    bad = set(formats) - set(SLIDE_FORMATS)
    if bad:
        raise ValueError(f'{path}: slide outputs are {SLIDE_FORMATS}, not '
                         f'{sorted(bad)}')
    shard = shard or Shard()
    log = log or (lambda msg: warnings.warn(msg))
    stem = osp.splitext(osp.basename(path))[0]
    base = osp.join(out_dir, stem)
    os.makedirs(out_dir, exist_ok=True)
    with open_slide(path) as reader:
        mine = [t for _, t in shard.mine(slide_tiles(
            reader, tile_size, overlap, tissue, warn=shard.is_main))]
        writers, part = {}, None
        try:
            if shard.world > 1:
                part = PartWriter(out_dir, stem, shard.rank)
            if shard.is_main:
                if 'coco' in formats:
                    writers['coco'] = CocoResultsWriter(base + '.coco.json')
                if 'geojson' in formats:
                    writers['geojson'] = GeoJSONWriter(
                        base + '.geojson', predictor.class_names,
                        predictor.palette)
                if 'overlays' in formats:
                    writers['overlays'] = SlideOverlayWriter(
                        base + '.overlay.png', reader, predictor.palette,
                        score_thr=show_score_thr)
            done, errors = 0, []
            for tile, dets in predict_slide(predictor, reader, tile_size,
                                            overlap, tissue, mine):
                if isinstance(dets, Exception):
                    payload = {'error': str(dets)}
                    errors.append(str(dets))
                    if shard.world == 1:
                        log(str(dets))
                else:
                    done += 1
                    payload = _tile_payload(dets, formats,
                                            predictor.mask_thr)
                if part is not None:
                    part.put(tile.index, payload)
                elif 'error' not in payload:
                    _write_payload(writers, payload)
            if part is not None:
                part.close()
                shard.barrier()
                if shard.is_main:
                    done, errors = 0, []
                    for _, payload in merged_parts(out_dir, stem,
                                                   shard.world):
                        if 'error' in payload:
                            errors.append(payload['error'])
                            log(payload['error'])
                        else:
                            done += 1
                            _write_payload(writers, payload)
        except BaseException:
            for w in writers.values():
                if hasattr(w, 'abort'):
                    w.abort()
            raise
        for w in writers.values():
            w.close()
    cells = next((writers[k].count for k in ('geojson', 'coco')
                  if k in writers), None)
    return dict(tiles=done, cells=cells, errors=errors)
