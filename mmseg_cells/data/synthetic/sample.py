"""One synthetic image and its per-class instance maps."""
from typing import Dict, Optional, Tuple

import numpy as np

from .fields import tissue_map
from .placement import place_cells
from .render import LOOKS, render, stain_vectors
from .scene import CLASS_SPECS, sample_crowded, scene_params

__all__ = ['synthesize_sample']


def synthesize_sample(
    rng: np.random.Generator,
    height: int,
    width: int,
    max_cells: Optional[int] = None,
    look: Optional[str] = None,
    crowded: Optional[bool] = None,
) -> Tuple[np.ndarray, Dict[int, np.ndarray]]:
    """Generate one image and its per-class instance maps.

    Args:
        rng: the random generator (consumed).
        height, width: image size in px.
        max_cells: upper bound on annotated instances.
        look: one of :data:`LOOKS` (``'sample'``: like the released
            sample; ``'he'``: pink / purple H&E, ``'he_dark'`` or
            ``'he_pale'`` for its two ends) or ``None`` (random mix).
        crowded: the crowded (``True``) or sparse (``False``) regime;
            ``None`` draws it like the real data (:func:`sample_crowded`).

    Returns:
        ``(rgb, masks)``: ``HxWx3`` uint8 image and ``{class_id: HxW float64
        map}`` only for the classes present. Instance ids are unique within
        the image, ``1..K`` over all classes (class1's first, then class2's,
        ...), like the released ``classN.tif`` files.
    """
    if look is not None and look not in LOOKS:
        raise ValueError(f'look must be one of {LOOKS} or None, got {look!r}')
    h, w = int(height), int(width)
    if h < 1 or w < 1:
        raise ValueError(f'invalid image size {h}x{w}')
    if crowded is None:
        crowded = sample_crowded(rng)
    scene = scene_params(rng, h, w, max_cells, crowded)
    tissue = tissue_map(rng, h, w)
    cells, _ = place_cells(rng, h, w, scene, tissue)
    stains = stain_vectors(rng, look)
    rgb = render(rng, h, w, cells, tissue, stains)
    # ids are unique within the image (as in the released data): class1's
    # instances first, then class2's, ... each in placement order
    masks: Dict[int, np.ndarray] = {}
    next_id = 1
    for cls in sorted(CLASS_SPECS):
        for c in cells:
            if c.cls != cls:
                continue
            if cls not in masks:
                masks[cls] = np.zeros((h, w), np.float64)
            ch, cw = c.mask.shape
            crop = masks[cls][c.y0:c.y0 + ch, c.x0:c.x0 + cw]
            crop[c.mask] = next_id
            next_id += 1
    return rgb, masks
