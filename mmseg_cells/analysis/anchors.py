"""How well candidate RPN anchor settings cover the ground-truth boxes.

For each anchor setting of mmdet's ``AnchorGenerator`` (strides, ratios,
scales) and input upscale factor, the exact maximum IoU of every GT box over
all anchors of all FPN levels, reported as the fraction of GT with max IoU
>= 0.7 / 0.5 / 0.3 (the MaxIoUAssigner thresholds used by the RPN).

The anchors reproduce ``mmdet.models.task_modules.prior_generators.
AnchorGenerator`` exactly (``center_offset=0``, ``base_size=stride``,
``scale_major=True``)::

    h_ratios = sqrt(ratios); w_ratios = 1 / h_ratios
    ws = base_size * w_ratios[:, None] * scales[None, :]
    hs = base_size * h_ratios[:, None] * scales[None, :]
    anchor = [cx - ws/2, cy - hs/2, cx + ws/2, cy + hs/2],  cx = x * stride

on a grid of ``ceil(pad / stride)`` cells, where ``pad`` is the image size
padded to ``pad_size_divisor`` (this is both the FPN feature size and the
extent of mmdet's anchor ``valid_flags``). Because the IoU of an
axis-aligned anchor of fixed shape with a box is non-increasing in the
distance between their centres along each axis, the maximum over a level is
attained at the grid centre nearest to the box centre; only a window of
``+-window`` cells around it is evaluated (``window=2`` by default, which is
more than enough and robust to the grid being clipped at image borders).

Pure numpy: the generator is re-implemented rather than imported so that
this runs without torch, mmcv or mmdet.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .dataset_stats import DEFAULT_UPSCALES, SIZE_BUCKETS

__all__ = [
    'DEFAULT_STRIDES', 'DEFAULT_RATIOS', 'DEFAULT_SCALE_SETS', 'IOU_THRS',
    'mmdet_base_anchors', 'max_anchor_iou', 'scale_label', 'anchor_recall',
    'anchor_recall_table'
]

DEFAULT_STRIDES: tuple[int, ...] = (4, 8, 16, 32, 64)
DEFAULT_RATIOS: tuple[float, ...] = (0.5, 1.0, 2.0)
#: mmdet default ``scales=[8]`` first; then the octave-spaced candidates
#: and two sub-octave sets (``octave_base_scale=4`` with
#: ``scales_per_octave=2`` and ``3``). With strides doubling per level, an
#: octave-spaced set such as ``[4, 8]`` only duplicates sizes of the next
#: level; sub-octave sets fill the gaps between levels.
DEFAULT_SCALE_SETS: tuple[tuple[float, ...], ...] = (
    (8.0, ), (4.0, ), (2.0, ), (4.0, 8.0), (3.0, 6.0),
    (4.0, 4.0 * 2**(1 / 2)), (4.0, 4.0 * 2**(1 / 3), 4.0 * 2**(2 / 3)))
#: RPN MaxIoUAssigner: pos_iou_thr, a mid value, min_pos_iou (low quality).
IOU_THRS: tuple[float, ...] = (0.7, 0.5, 0.3)


def mmdet_base_anchors(base_size: float,
                       ratios: Sequence[float],
                       scales: Sequence[float],
                       center_offset: float = 0.0) -> np.ndarray:
    """Base anchors of one level, exactly as mmdet's ``AnchorGenerator``.

    ``gen_single_level_base_anchors`` with ``scale_major=True``: ratio
    ``r = h / w``; ``h_ratios = sqrt(r)``, ``w_ratios = 1 / h_ratios``;
    ``ws = base_size * w_ratios[:, None] * scales[None, :]`` (flattened),
    likewise ``hs``; centre ``center_offset * base_size``.

    Returns:
        (len(ratios) * len(scales), 4) anchors ``x1, y1, x2, y2`` for the
        grid cell at the origin.
    """
    ratios_a = np.asarray(ratios, dtype=np.float64)
    scales_a = np.asarray(scales, dtype=np.float64)
    h_ratios = np.sqrt(ratios_a)
    w_ratios = 1.0 / h_ratios
    ws = (base_size * w_ratios[:, None] * scales_a[None, :]).reshape(-1)
    hs = (base_size * h_ratios[:, None] * scales_a[None, :]).reshape(-1)
    c = center_offset * base_size
    return np.stack([c - 0.5 * ws, c - 0.5 * hs, c + 0.5 * ws, c + 0.5 * hs],
                    axis=-1)


def _feat_size(size: np.ndarray, stride: int,
               pad_size_divisor: int) -> np.ndarray:
    """Feature-map (= valid anchor grid) size of an image side."""
    if pad_size_divisor and pad_size_divisor > 0:
        size = np.ceil(size / pad_size_divisor) * pad_size_divisor
    return np.maximum(np.ceil(size / stride), 1).astype(np.int64)


def max_anchor_iou(boxes: np.ndarray,
                   img_hw: np.ndarray,
                   strides: Sequence[int] = DEFAULT_STRIDES,
                   ratios: Sequence[float] = DEFAULT_RATIOS,
                   scales: Sequence[float] = (8.0, ),
                   window: int = 2,
                   pad_size_divisor: int = 32,
                   chunk: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """Max IoU of every GT box over all anchors of all levels.

    Args:
        boxes: (N, 4) GT boxes ``x1, y1, x2, y2`` in input-image pixels.
        img_hw: (N, 2) or (2,) ``(height, width)`` of each box's input image
            (sets the anchor grid extent, ``ceil(pad / stride)`` cells).
        strides: FPN level strides; ``base_size = stride``.
        ratios: Anchor ratios (``h / w``).
        scales: Anchor scales (``octave_base_scale`` list).
        window: Grid cells evaluated on each side of the cell nearest to
            the box centre.
        pad_size_divisor: Image padding divisor of the data preprocessor
            (0 disables padding).
        chunk: Boxes processed per vectorised block.

    Returns:
        ``(max_iou, level)``: (N,) float64 max IoU and (N,) int64 index of
        the level of the best anchor (-1 when every IoU is 0).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    n = len(boxes)
    img_hw = np.broadcast_to(np.asarray(img_hw, dtype=np.float64),
                             (n, 2))
    best = np.zeros(n, dtype=np.float64)
    best_level = np.full(n, -1, dtype=np.int64)
    off = np.arange(-window, window + 1)
    for start in range(0, n, chunk):
        sl = slice(start, min(start + chunk, n))
        b = boxes[sl]
        x1, y1, x2, y2 = (b[:, i] for i in range(4))
        cx, cy = 0.5 * (x1 + x2), 0.5 * (y1 + y2)
        area_g = (x2 - x1) * (y2 - y1)
        for li, s in enumerate(strides):
            base = mmdet_base_anchors(s, ratios, scales)  # (A, 4)
            area_a = (base[:, 2] - base[:, 0]) * (base[:, 3] - base[:, 1])
            feat_h = _feat_size(img_hw[sl, 0], s, pad_size_divisor)
            feat_w = _feat_size(img_hw[sl, 1], s, pad_size_divisor)
            gx = np.clip(np.rint(cx / s).astype(np.int64)[:, None] + off, 0,
                         (feat_w - 1)[:, None]) * float(s)  # (n, W)
            gy = np.clip(np.rint(cy / s).astype(np.int64)[:, None] + off, 0,
                         (feat_h - 1)[:, None]) * float(s)
            ax1 = gx[:, :, None] + base[None, None, :, 0]  # (n, W, A)
            ax2 = gx[:, :, None] + base[None, None, :, 2]
            ay1 = gy[:, :, None] + base[None, None, :, 1]
            ay2 = gy[:, :, None] + base[None, None, :, 3]
            ix = np.clip(np.minimum(x2[:, None, None], ax2) -
                         np.maximum(x1[:, None, None], ax1), 0, None)
            iy = np.clip(np.minimum(y2[:, None, None], ay2) -
                         np.maximum(y1[:, None, None], ay1), 0, None)
            inter = ix[:, :, None, :] * iy[:, None, :, :]  # (n, W, W, A)
            union = area_g[:, None, None, None] + area_a - inter
            iou = (inter / union).reshape(len(b), -1).max(axis=1)
            better = iou > best[sl]
            best[sl] = np.where(better, iou, best[sl])
            best_level[sl] = np.where(better, li, best_level[sl])
    return best, best_level


def scale_label(scales: Sequence[float]) -> str:
    """Compact label of a scale set, such as ``[4, 8]``."""
    return '[' + ', '.join(f'{s:.4g}' for s in scales) + ']'


def anchor_recall(boxes: np.ndarray,
                  img_hw: np.ndarray,
                  scales: Sequence[float],
                  upscale: float = 1.0,
                  strides: Sequence[int] = DEFAULT_STRIDES,
                  ratios: Sequence[float] = DEFAULT_RATIOS,
                  iou_thrs: Sequence[float] = IOU_THRS,
                  image_index: np.ndarray | None = None,
                  buckets: Sequence[float] = SIZE_BUCKETS,
                  window: int = 2,
                  pad_size_divisor: int = 32) -> dict[str, Any]:
    """Anchor recall of one (scales, upscale) setting.

    The image is resized like mmdet's ``Resize(scale_factor=upscale,
    keep_ratio=True)``: new size ``int(size * upscale + 0.5)``, boxes scaled
    by ``new_size / size`` per axis.

    Args:
        boxes: (N, 4) GT boxes at native resolution.
        img_hw: (N, 2) native ``(height, width)`` of each box's image.
        scales: Anchor scales.
        upscale: Input resize factor.
        strides: FPN strides.
        ratios: Anchor ratios.
        iou_thrs: Recall thresholds.
        image_index: (N,) image of each box; enables the per-image,
            per-level counts used to size ``nms_pre``.
        buckets: Native ``sqrt(w*h)`` bucket edges for the breakdown.
        window: See :func:`max_anchor_iou`.
        pad_size_divisor: See :func:`max_anchor_iou`.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    img_hw = np.asarray(img_hw, dtype=np.float64).reshape(-1, 2)
    new_hw = np.floor(img_hw * upscale + 0.5)
    fy = new_hw[:, 0] / img_hw[:, 0]
    fx = new_hw[:, 1] / img_hw[:, 1]
    scaled = boxes * np.stack([fx, fy, fx, fy], axis=1)
    iou, level = max_anchor_iou(scaled, new_hw, strides, ratios, scales,
                                window=window,
                                pad_size_divisor=pad_size_divisor)
    n = len(boxes)
    side = np.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
    edges = list(buckets)
    by_size = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (side >= lo) & (side < hi)
        by_size.append({
            'lo': float(lo), 'hi': float(hi), 'count': int(sel.sum()),
            'recall': {float(t): float((iou[sel] >= t).mean())
                       if sel.any() else float('nan') for t in iou_thrs},
        })
    level_fraction = [float((level == li).mean()) if n else 0.0
                      for li in range(len(strides))]
    max_per_image_level = None
    if image_index is not None and n:
        image_index = np.asarray(image_index, dtype=np.int64)
        num_img = int(image_index.max()) + 1
        grid = np.zeros((num_img, len(strides)), dtype=np.int64)
        ok = level >= 0
        np.add.at(grid, (image_index[ok], level[ok]), 1)
        max_per_image_level = [int(v) for v in grid.max(axis=0)]
    return {
        'scales': [float(s) for s in scales],
        'label': scale_label(scales),
        'upscale': float(upscale),
        'anchors_per_location': len(ratios) * len(scales),
        'num_gt': n,
        'recall': {float(t): float((iou >= t).mean()) if n else float('nan')
                   for t in iou_thrs},
        'mean_max_iou': float(iou.mean()) if n else float('nan'),
        'median_max_iou': float(np.median(iou)) if n else float('nan'),
        'level_fraction': level_fraction,
        'max_gt_per_image_level': max_per_image_level,
        'by_size': by_size,
    }


def anchor_recall_table(data: Mapping[str, np.ndarray],
                        scale_sets: Sequence[Sequence[float]] = (
                            DEFAULT_SCALE_SETS),
                        upscales: Sequence[float] = DEFAULT_UPSCALES,
                        strides: Sequence[int] = DEFAULT_STRIDES,
                        ratios: Sequence[float] = DEFAULT_RATIOS,
                        iou_thrs: Sequence[float] = IOU_THRS,
                        window: int = 2,
                        pad_size_divisor: int = 32) -> list[dict[str, Any]]:
    """:func:`anchor_recall` for every (upscale, scale set) combination.

    Args:
        data: Output of :func:`~.dataset_stats.coco_boxes_xyxy`.
    """
    return [
        anchor_recall(data['boxes'], data['img_hw'], scales, upscale=f,
                      strides=strides, ratios=ratios, iou_thrs=iou_thrs,
                      image_index=data['image_index'], window=window,
                      pad_size_divisor=pad_size_divisor)
        for f in upscales for scales in scale_sets
    ]
