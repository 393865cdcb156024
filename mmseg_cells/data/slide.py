"""Whole-slide images read region by region, never whole.

:class:`TiffSlideReader` reads pyramidal TIFF / OME-TIFF / SVS files with
tifffile (no native dependency): a region of any pyramid level is decoded
from the TIFF tiles (or strips) it overlaps, each read from disk when it is
needed. :class:`OpenSlideReader` wraps openslide-python for the formats
tifffile cannot read (NDPI, MRXS, ...; ``pip install -e .[slides]``).
:func:`open_slide` picks one by file suffix.

Both are :class:`SlideReader` objects, with the same small interface:
``dimensions`` (level-0 width, height), ``level_dimensions``,
``level_downsamples``, ``read_region(x, y, width, height, level)`` (level-0
``x, y``; an ``H x W x 3`` RGB uint8 array, white outside the slide) and
``close()``. A tile that cannot be read or decoded raises
:class:`SlideError` naming the file, the level and the tile.
"""
import math
import os
from pathlib import Path
from typing import List, Sequence, Tuple, Union

import numpy as np

__all__ = [
    'OPENSLIDE_SUFFIXES', 'OpenSlideReader', 'SlideError', 'SlideReader',
    'TiffSlideReader',
    'is_slide', 'lowest_level_at_most', 'open_slide', 'read_thumbnail'
]

PathLike = Union[str, os.PathLike]

# formats only openslide reads (TIFF-based ones go through tifffile)
OPENSLIDE_SUFFIXES = ('.ndpi', '.mrxs', '.scn', '.vms', '.vmu', '.bif')
TIFF_SLIDE_SUFFIXES = ('.tif', '.tiff', '.svs', '.btf', '.tf8')
BACKGROUND = 255  # white, like glass


class SlideError(ValueError):
    """A slide (or one of its tiles) that cannot be read; the message names
    the file and, for a tile, its level and position."""


def is_slide(path: PathLike) -> bool:
    """Whether ``path`` has a whole-slide suffix (TIFF family included)."""
    name = str(path).lower()
    return name.endswith(OPENSLIDE_SUFFIXES + TIFF_SLIDE_SUFFIXES)


class SlideReader:
    """What every slide reader shares: the level geometry, whole-level
    reads and closing (also as a context manager). Subclasses set
    ``path``, ``level_dimensions`` and ``level_downsamples`` and implement
    :meth:`read_region` and :meth:`close`."""

    path: Path
    level_dimensions: List[Tuple[int, int]]
    level_downsamples: List[float]

    @property
    def dimensions(self) -> Tuple[int, int]:
        """Level-0 ``(width, height)``."""
        return self.level_dimensions[0]

    @property
    def level_count(self) -> int:
        return len(self.level_dimensions)

    def read_region(self, x: int, y: int, width: int, height: int,
                    level: int = 0) -> np.ndarray:
        """``height x width x 3`` RGB uint8 of ``level`` whose top-left
        corner is level-0 ``(x, y)``; white outside the slide."""
        raise NotImplementedError

    def read_level(self, level: int) -> np.ndarray:
        """A whole (low-resolution) level as RGB uint8."""
        w, h = self.level_dimensions[level]
        return self.read_region(0, 0, w, h, level)

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> 'SlideReader':
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class TiffSlideReader(SlideReader):
    """A pyramidal TIFF read region by region with tifffile.

    The pyramid is the first series' levels (SubIFDs, OME-TIFF levels or
    SVS reduced pages); a flat TIFF is a one-level slide. Samples must be
    uint8 RGB or RGBA (alpha dropped) in contiguous planar layout.

    Args:
        path (str | PathLike): the slide file.
    """

    def __init__(self, path: PathLike) -> None:
        import tifffile
        self.path = Path(path)
        try:
            self._tif = tifffile.TiffFile(self.path)
            levels = self._tif.series[0].levels
            self._pages = [lvl.keyframe for lvl in levels]
            first = self._tif.pages.first
            if len(self._pages) == 1 and first.subifds:
                # reduced levels as SubIFDs of a series tifffile reads flat
                self._pages += [p.keyframe if hasattr(p, 'keyframe') else p
                                for p in first.pages]
        except Exception as e:  # noqa: BLE001 - any parse error
            if hasattr(self, '_tif'):
                self._tif.close()
            raise SlideError(f'{self.path}: not a readable TIFF slide '
                             f'({type(e).__name__}: {e})') from e
        for i, page in enumerate(self._pages):
            bad = self._layout_problem(page)
            if bad:
                self._tif.close()
                raise SlideError(f'{self.path}: level {i}: {bad}')
        self.level_dimensions: List[Tuple[int, int]] = [
            (int(p.imagewidth), int(p.imagelength)) for p in self._pages]
        w0, h0 = self.level_dimensions[0]
        self.level_downsamples: List[float] = [
            (w0 / w + h0 / h) / 2 for w, h in self.level_dimensions]
        self._size = self.path.stat().st_size

    @staticmethod
    def _layout_problem(page) -> str:
        if page.dtype != np.uint8:
            return f'samples are {page.dtype}, expected uint8'
        if page.samplesperpixel not in (3, 4):
            return (f'{page.samplesperpixel} samples per pixel, expected '
                    'RGB or RGBA')
        if page.samplesperpixel > 1 and page.planarconfig != 1:
            return 'separate sample planes are not supported'
        if page.imagedepth != 1:
            return 'volumetric (tiled depth) pages are not supported'
        return ''

    def _segment(self, level: int, index: int) -> np.ndarray:
        """One decoded tile / strip as ``rows x cols x samples``."""
        page = self._pages[level]
        offset = int(page.dataoffsets[index])
        count = int(page.databytecounts[index])
        where = f'{self.path}: level {level} tile {index}'
        if count == 0:  # never written: background
            return None
        if offset + count > self._size:
            raise SlideError(f'{where}: truncated file (tile ends at byte '
                             f'{offset + count}, file has {self._size})')
        fh = self._tif.filehandle
        fh.seek(offset)
        data = fh.read(count)
        try:
            kwargs = {}
            if getattr(page, 'jpegtables', None) is not None:
                kwargs['jpegtables'] = page.jpegtables
            seg, _, _ = page.decode(data, index, **kwargs)
        except Exception as e:  # noqa: BLE001 - codec errors vary
            raise SlideError(f'{where}: cannot decode '
                             f'({type(e).__name__}: {e})') from e
        if seg is None:
            raise SlideError(f'{where}: cannot decode (no data)')
        return seg.reshape(seg.shape[-3:])

    def read_region(self, x: int, y: int, width: int, height: int,
                    level: int = 0) -> np.ndarray:
        """``height x width x 3`` RGB uint8 of ``level`` whose top-left
        corner is level-0 ``(x, y)``; white outside the slide."""
        if not 0 <= level < self.level_count:
            raise SlideError(f'{self.path}: no level {level} '
                             f'({self.level_count} levels)')
        ds = self.level_downsamples[level]
        lx, ly = int(round(x / ds)), int(round(y / ds))
        out = np.full((height, width, 3), BACKGROUND, np.uint8)
        page = self._pages[level]
        lw, lh = self.level_dimensions[level]
        if page.is_tiled:
            seg_h, seg_w = int(page.tilelength), int(page.tilewidth)
        else:
            seg_h, seg_w = int(page.rowsperstrip or lh), lw
        across = math.ceil(lw / seg_w)
        x0, y0 = max(lx, 0), max(ly, 0)
        x1, y1 = min(lx + width, lw), min(ly + height, lh)
        if x0 >= x1 or y0 >= y1:
            return out
        for row in range(y0 // seg_h, (y1 - 1) // seg_h + 1):
            for col in range(x0 // seg_w, (x1 - 1) // seg_w + 1):
                seg = self._segment(level, row * across + col)
                if seg is None:
                    continue
                sy, sx = row * seg_h, col * seg_w
                # the part of this segment inside the request
                ty0, ty1 = max(y0, sy), min(y1, sy + seg.shape[0])
                tx0, tx1 = max(x0, sx), min(x1, sx + seg.shape[1])
                if ty0 >= ty1 or tx0 >= tx1:
                    continue
                out[ty0 - ly:ty1 - ly, tx0 - lx:tx1 - lx] = \
                    seg[ty0 - sy:ty1 - sy, tx0 - sx:tx1 - sx, :3]
        return out

    def close(self) -> None:
        self._tif.close()


class OpenSlideReader(SlideReader):
    """The same interface over openslide-python (``pip install -e
    .[slides]``), for formats tifffile does not read."""

    def __init__(self, path: PathLike) -> None:
        try:
            import openslide
        except ImportError as e:
            raise SlideError(
                f'{path}: reading {Path(path).suffix} slides needs '
                'openslide: pip install -e .[slides]') from e
        self.path = Path(path)
        try:
            self._slide = openslide.OpenSlide(str(self.path))
        except Exception as e:  # noqa: BLE001
            raise SlideError(f'{self.path}: not a readable slide '
                             f'({type(e).__name__}: {e})') from e
        self.level_dimensions = [tuple(map(int, d))
                                 for d in self._slide.level_dimensions]
        self.level_downsamples = [float(d)
                                  for d in self._slide.level_downsamples]

    def read_region(self, x: int, y: int, width: int, height: int,
                    level: int = 0) -> np.ndarray:
        try:
            rgba = np.asarray(self._slide.read_region((x, y), level,
                                                      (width, height)))
        except Exception as e:  # noqa: BLE001
            raise SlideError(f'{self.path}: level {level} region at '
                             f'({x}, {y}) {width}x{height}: '
                             f'{type(e).__name__}: {e}') from e
        # transparent (outside the scanned area) -> white
        alpha = rgba[..., 3:4].astype(np.uint16)
        rgb = (rgba[..., :3] * alpha + BACKGROUND * (255 - alpha)) // 255
        return rgb.astype(np.uint8)

    def close(self) -> None:
        self._slide.close()


def open_slide(path: PathLike) -> SlideReader:
    """A reader for ``path``: openslide for the formats of
    :data:`OPENSLIDE_SUFFIXES`, tifffile otherwise."""
    if not Path(path).is_file():
        raise SlideError(f'{path}: not found')
    if str(path).lower().endswith(OPENSLIDE_SUFFIXES):
        return OpenSlideReader(path)
    return TiffSlideReader(path)


def lowest_level_at_most(reader, max_side: int) -> int:
    """The highest-resolution level whose longer side is at most
    ``max_side`` px (the lowest-resolution level if none is)."""
    sides: Sequence[int] = [max(d) for d in reader.level_dimensions]
    for i, side in enumerate(sides):
        if side <= max_side:
            return i
    return len(sides) - 1


# bytes of level pixels read at once when a thumbnail is reduced band by band
THUMBNAIL_BAND_BYTES = 64 << 20


def read_thumbnail(reader, max_side: int = 2048) -> Tuple[np.ndarray, float]:
    """``(rgb, downsample)``: a view of the whole slide whose longer side is
    at most ``max_side`` px, and the level-0 px per view px (mean of x and
    y).

    The highest-resolution level whose longer side is at most ``max_side``
    is read whole. A slide without such a level (a single-level TIFF, or a
    pyramid that stops early) has its smallest level read in bands of
    about 64 MB, each reduced by area averaging, so that memory stays
    bounded whatever the slide's size. A level with an unreadable tile
    gives way to the next smaller one. Raises :class:`SlideError` when no
    level can be read.
    """
    first = lowest_level_at_most(reader, max_side)
    errors = []
    w0, h0 = reader.dimensions
    for level in range(first, reader.level_count):
        lw, lh = reader.level_dimensions[level]
        try:
            if max(lw, lh) <= max_side:
                view = reader.read_level(level)
            else:
                view = _reduced_level(reader, level, max_side)
        except SlideError as e:
            errors.append(str(e))
            continue
        vh, vw = view.shape[:2]
        return view, (w0 / vw + h0 / vh) / 2
    raise SlideError('no readable low-resolution level: ' + '; '.join(errors))


def _reduced_level(reader, level: int, max_side: int) -> np.ndarray:
    """``level`` reduced by the integer factor that brings its longer side
    to at most ``max_side``, read ``k`` level rows per output row in bands
    of about :data:`THUMBNAIL_BAND_BYTES`."""
    import cv2
    lw, lh = reader.level_dimensions[level]
    ds = reader.level_downsamples[level]
    k = math.ceil(max(lw, lh) / max_side)
    out_w, out_h = math.ceil(lw / k), math.ceil(lh / k)
    rows = max(1, THUMBNAIL_BAND_BYTES // (k * lw * 3))  # output rows/band
    out = np.empty((out_h, out_w, 3), np.uint8)
    for r0 in range(0, out_h, rows):
        r1 = min(out_h, r0 + rows)
        y0, y1 = r0 * k, min(lh, r1 * k)
        band = reader.read_region(0, round(y0 * ds), lw, y1 - y0, level)
        out[r0:r1] = cv2.resize(band, (out_w, r1 - r0),
                                interpolation=cv2.INTER_AREA)
    return out
