"""Synthetic whole-slide images: pyramidal tiled TIFFs written tile by tile.

Tissue regions (a smooth random field above a threshold) hold the synthetic H&E
of :func:`~mmseg_cells.data.synthetic.synthesize_sample`, one crowded
``tile x tile`` sample per level-0 TIFF tile; glass (near-white, slightly
noisy) is everywhere else. Level 0 is generated and written one tile at a
time, so the memory does not grow with the slide; two reduced levels
(1/8 and 1/32) are SubIFDs, as in OME-TIFF and the files QuPath writes.
"""
import os
import tempfile
from typing import Iterator, Optional, Tuple, Union

import cv2
import numpy as np

from .sample import synthesize_sample

__all__ = ['synthetic_tissue', 'tissue_at', 'write_synthetic_slide']

PathLike = Union[str, os.PathLike]
LEVEL_FACTORS = (8, 32)
GLASS = 242


def synthetic_tissue(seed: int, height: int, width: int, cell: int = 256,
                     fraction: float = 0.45) -> Tuple[np.ndarray, float]:
    """A smooth random field with one value per ``cell`` x ``cell`` level-0
    block and its threshold: tissue is where the field (interpolated
    bilinearly between block centres, :func:`tissue_at`) exceeds it, about
    ``fraction`` of the slide."""
    rng = np.random.default_rng([seed, 1])
    gh, gw = -(-height // cell), -(-width // cell)
    noise = rng.standard_normal((gh, gw)).astype(np.float32)
    sigma = max(1.0, min(gh, gw) / 6)
    field = cv2.GaussianBlur(noise, (0, 0), sigma)
    return field, float(np.quantile(field, 1 - fraction))


def tissue_at(field: np.ndarray, thr: float, cell: int, y0: int, x0: int,
              h: int, w: int) -> np.ndarray:
    """Boolean tissue mask of the level-0 window ``h x w`` at ``y0, x0``."""
    from scipy.ndimage import map_coordinates
    yy = (y0 + np.arange(h) + 0.5) / cell - 0.5
    xx = (x0 + np.arange(w) + 0.5) / cell - 0.5
    grid = np.meshgrid(yy, xx, indexing='ij')
    return map_coordinates(field, grid, order=1, mode='nearest') > thr


def _tiles(seed: int, height: int, width: int, tile: int, field, thr,
           cell: int, look: Optional[str], reduced: np.ndarray,
           counts: dict) -> Iterator[np.ndarray]:
    f = LEVEL_FACTORS[0]
    for ty in range(0, height, tile):
        for tx in range(0, width, tile):
            rng = np.random.default_rng([seed, ty, tx])
            glass = np.clip(rng.normal(GLASS, 2.0, (tile, tile, 3)), 0,
                            255).astype(np.uint8)
            here = tissue_at(field, thr, cell, ty, tx, tile, tile)
            h, w = min(tile, height - ty), min(tile, width - tx)
            if here[:h, :w].any():
                counts['tissue_tiles'] += 1
                rgb, _ = synthesize_sample(rng, tile, tile, crowded=True,
                                           look=look)
                out = np.where(here[..., None], rgb, glass)
            else:
                out = glass
            small = cv2.resize(out[:h, :w], (max(1, w // f), max(1, h // f)),
                               interpolation=cv2.INTER_AREA)
            reduced[ty // f:ty // f + small.shape[0],
                    tx // f:tx // f + small.shape[1]] = small
            yield out


def write_synthetic_slide(path: PathLike, height: int, width: int,
                          seed: int = 0, tile: int = 512,
                          look: Optional[str] = 'he',
                          tissue_fraction: float = 0.45) -> dict:
    """Write a pyramidal tiled TIFF slide (zlib, ``tile`` px tiles; level 0
    plus 1/8 and 1/32 reduced levels as SubIFDs), atomically.

    Returns ``{'field', 'threshold', 'block'}`` (the tissue layout, see
    :func:`tissue_at`), ``'tiles'`` (level-0 TIFF tiles) and
    ``'tissue_tiles'`` (those with tissue).
    """
    cell = tile // 2
    field, thr = synthetic_tissue(seed, height, width, cell,
                                  tissue_fraction)
    f0 = LEVEL_FACTORS[0]
    reduced = np.full((height // f0, width // f0, 3), GLASS, np.uint8)
    opts = dict(photometric='rgb', compression='zlib', tile=(tile, tile),
                metadata=None)
    counts = dict(tissue_tiles=0)
    # tifffile needs a named file: a temporary one, moved into place
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix='.slide.', suffix='.tif', dir=folder)
    os.close(fd)
    try:
        _write_pyramid(tmp, seed, height, width, tile, field, thr, cell,
                       look, reduced, counts, opts)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return dict(field=field, threshold=thr, block=cell,
                tiles=-(-height // tile) * -(-width // tile), **counts)


def _write_pyramid(path, seed, height, width, tile, field, thr, cell, look,
                   reduced, counts, opts) -> None:
    import tifffile
    f1 = LEVEL_FACTORS[1]
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        tif.write(_tiles(seed, height, width, tile, field, thr, cell, look,
                         reduced, counts),
                  shape=(height, width, 3), dtype=np.uint8, subifds=2,
                  **opts)
        tif.write(reduced, subfiletype=1, **opts)
        tif.write(cv2.resize(reduced, (max(1, width // f1),
                                       max(1, height // f1)),
                             interpolation=cv2.INTER_AREA),
                  subfiletype=1, **opts)
