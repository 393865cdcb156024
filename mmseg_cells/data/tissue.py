"""Tissue detection on a low-resolution slide level.

Stained tissue is coloured, glass is white or grey: Otsu's threshold on the
HSV saturation of a thumbnail separates them (the usual first step of
whole-slide pipelines). :func:`tissue_mask` returns that mask;
:func:`window_has_tissue` asks it whether a level-0 window holds tissue.
"""
from typing import Tuple

import cv2
import numpy as np

__all__ = ['tissue_mask', 'window_has_tissue']


def tissue_mask(rgb: np.ndarray, min_saturation: int = 20,
                smooth: int = 3) -> np.ndarray:
    """Boolean tissue mask of an RGB uint8 thumbnail.

    A pixel is tissue when its saturation exceeds Otsu's threshold of the
    thumbnail's saturations, and at least ``min_saturation`` (0-255; a
    slide of bare glass has no Otsu split worth taking). A ``smooth`` px
    closing then opening fills nuclei holes and drops dust.

    Args:
        rgb (np.ndarray): ``H x W x 3`` uint8 thumbnail.
        min_saturation (int): lowest threshold. Defaults to 20.
        smooth (int): morphology kernel side, 0 for none. Defaults to 3.
    """
    sat = np.ascontiguousarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)[..., 1])
    otsu, _ = cv2.threshold(sat, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    mask = (sat > max(float(otsu), float(min_saturation))).astype(np.uint8)
    if smooth > 1:
        kernel = np.ones((smooth, smooth), np.uint8)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel)
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, kernel)
    return mask.astype(bool)


def window_has_tissue(mask: np.ndarray, downsample: float,
                      window: Tuple[int, int, int, int]) -> bool:
    """Whether level-0 ``window`` (``x0, x1, y0, y1``, half-open) covers
    any tissue pixel of ``mask`` (a level ``downsample`` times smaller).
    The window is widened to whole mask pixels, so a cell on a tissue edge
    is not lost to rounding."""
    x0, x1, y0, y1 = window
    mx0, my0 = int(x0 // downsample), int(y0 // downsample)
    mx1 = int(np.ceil(x1 / downsample)) + 1
    my1 = int(np.ceil(y1 / downsample)) + 1
    return bool(mask[max(my0 - 1, 0):my1, max(mx0 - 1, 0):mx1].any())
