"""Class-coloured instance maps drawn on an RGB image.

Numpy only, so the data tools draw with it without the training stack.
"""
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

__all__ = ['OUTLINES', 'draw_instance_overlay', 'instance_outline']

RGB = Tuple[int, int, int]

# outline rule -> (neighbour offsets (dy, dx) compared with each pixel, how
# the image border is extended for them: numpy.pad's mode)
OUTLINES = {
    # a pixel whose upper or left neighbour has another id: one 1-px line
    # between touching instances, and the top and left side of an
    # instance on background; the first row / column is compared with the
    # last (cyclic)
    'thin': (((-1, 0), (0, -1)), 'wrap'),
    # a pixel with any of its 8 neighbours inside the image of another id:
    # the instance's whole inner boundary
    'inner': (tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                    if dy or dx), 'edge'),
}


def instance_outline(ids: np.ndarray, outline: str = 'thin') -> np.ndarray:
    """Boolean map of the outline pixels of an instance-id map (0 is
    background) by the rule ``outline`` of :data:`OUTLINES`; only instance
    pixels are outline pixels."""
    offsets, border = OUTLINES[outline]
    padded = np.pad(ids, 1, mode=border)
    h, w = ids.shape
    edge = np.zeros((h, w), bool)
    for dy, dx in offsets:
        edge |= padded[1 + dy:1 + dy + h, 1 + dx:1 + dx + w] != ids
    return edge & (ids > 0)


def draw_instance_overlay(rgb: np.ndarray,
                          maps: Dict[int, np.ndarray],
                          palette: Sequence[RGB],
                          fill_alpha: float = 0.45,
                          outline_colour: Optional[RGB] = (255, 255, 255),
                          outline: str = 'thin') -> np.ndarray:
    """Instances of ``maps`` drawn on ``rgb``; returns a new uint8 RGB image.

    Args:
        rgb (np.ndarray): (H, W, 3) image.
        maps (dict): ``{label: (H, W) instance-id map}``, 0 = background;
            ``label`` picks the class colour ``palette[label % len]``.
        palette (sequence): RGB colour per class.
        fill_alpha (float): instance pixels are blended with their class
            colour, ``(1 - fill_alpha) * image + fill_alpha * colour``;
            0 draws outlines only. Defaults to 0.45.
        outline_colour (tuple, optional): colour of every outline; None
            draws each class's outlines in its class colour (later classes
            over earlier ones). Defaults to white.
        outline (str): outline rule, a key of :data:`OUTLINES`.
            Defaults to ``'thin'``.
    """
    vis = rgb.astype(np.float32)
    colours = {label: np.array(palette[label % len(palette)], np.float32)
               for label in maps}
    if fill_alpha:
        for label, ids in maps.items():
            fg = ids > 0
            vis[fg] = (1 - fill_alpha) * vis[fg] + \
                fill_alpha * colours[label]
    for label, ids in maps.items():
        vis[instance_outline(ids, outline)] = colours[label] \
            if outline_colour is None else outline_colour
    return vis.astype(np.uint8)
