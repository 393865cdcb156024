"""Random rotations by multiples of 90 degrees (label-safe for microscopy)."""
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS
from mmdet.structures.mask import BitmapMasks

from mmseg_cells.structures.crop_masks import CropBitmapMasks

__all__ = ['RandomRot90']


def _rot90_matrix(k: int, height: int, width: int) -> np.ndarray:
    """Homography of ``np.rot90(img, k)`` on an ``height x width`` image
    (pixel-edge coordinates: ``(x, y) -> (y, W - x)`` per quarter turn)."""
    mat = np.eye(3, dtype=np.float32)
    for _ in range(k % 4):
        step = np.array([[0, 1, 0], [-1, 0, width], [0, 0, 1]], np.float32)
        mat = step @ mat
        height, width = width, height
    return mat


@TRANSFORMS.register_module()
class RandomRot90(BaseTransform):
    """Rotate the image, boxes and instance masks by ``k`` x 90 degrees
    counter-clockwise, with ``k`` drawn uniformly from ``{1, 2, 3}`` with
    probability ``prob`` (else unchanged).

    Tissue on a slide has no up or down, and cells keep their class under
    any rotation, so the four right-angle rotations (with flips: the eight
    symmetries of the square) are exact, interpolation-free augmentations.
    mmdet's ``RandomFlip`` (``diagonal`` = 180 degrees) covers two of the
    rotations; 90 and 270 degrees also swap the image's height and width.

    Boxes are rotated exactly (``[x1, y1, x2, y2] -> [y1, W - x2, y2, W -
    x1]`` per quarter turn), masks with ``np.rot90`` (``BitmapMasks``) or
    crop by crop (:meth:`CropBitmapMasks.rot90`), a semantic map with
    ``np.rot90``; ``img_shape`` and ``homography_matrix`` follow.

    Required keys: ``img``. Modified keys: ``img``, ``img_shape``,
    ``gt_bboxes``, ``gt_masks``, ``gt_seg_map``, ``homography_matrix``.
    Added keys: ``rot90_k``.

    Args:
        prob (float): Probability of rotating at all. Defaults to 0.75 (so
            that each of the four orientations has probability 1/4).
        k (int, optional): Always rotate by this many quarter turns
            (tests, visualisation); overrides ``prob``.
    """

    def __init__(self, prob: float = 0.75, k: Optional[int] = None) -> None:
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        self.prob = prob
        self.k = k

    def _draw_k(self) -> int:
        if self.k is not None:
            return int(self.k) % 4
        if np.random.rand() >= self.prob:
            return 0
        return int(np.random.randint(1, 4))

    def transform(self, results: dict) -> dict:
        k = self._draw_k()
        results['rot90_k'] = k
        if k == 0:
            return results
        img = results['img']
        height, width = img.shape[:2]
        results['img'] = np.ascontiguousarray(np.rot90(img, k))
        results['img_shape'] = results['img'].shape[:2]
        boxes = results.get('gt_bboxes')
        if boxes is not None and len(boxes) > 0:
            t = boxes.tensor
            h, w = height, width
            for _ in range(k):
                t = t[:, [1, 2, 3, 0]].clone()
                t[:, 1] = w - t[:, 1]
                t[:, 3] = w - t[:, 3]
                h, w = w, h
            boxes.tensor = t
        masks = results.get('gt_masks')
        if masks is not None:
            if isinstance(masks, CropBitmapMasks):
                results['gt_masks'] = masks.rot90(k)
            elif isinstance(masks, BitmapMasks):
                out_h, out_w = (height, width) if k % 2 == 0 else (width,
                                                                   height)
                results['gt_masks'] = BitmapMasks(
                    np.ascontiguousarray(np.rot90(masks.masks, k,
                                                  axes=(1, 2))), out_h, out_w)
            else:
                raise TypeError(f'RandomRot90: unsupported gt_masks type '
                                f'{type(masks).__name__}')
        if results.get('gt_seg_map') is not None:
            results['gt_seg_map'] = np.ascontiguousarray(
                np.rot90(results['gt_seg_map'], k))
        mat = _rot90_matrix(k, height, width)
        prev = results.get('homography_matrix')
        results['homography_matrix'] = mat if prev is None else mat @ prev
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(prob={self.prob}, k={self.k})'
