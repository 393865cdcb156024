"""Dataset statistics that a Mask R-CNN config for cells must be tuned on.

Pure numpy (+ pycocotools only when a COCO annotation lacks a ``bbox``);
nothing here imports torch, mmcv or mmdet, so it runs anywhere.

Sections of the report (see :func:`run_cell_stats` / :func:`format_report`):

0. Image sizes (GT images and, optionally, the test images) and the scale
   factor that mmdet's default ``Resize(scale=(1333, 800), keep_ratio=True)``
   would imply for them.
1. Instances per image: median / mean / p90 / max, the fraction of all GT
   instances that sit in "dense" images (> ``dense_threshold`` instances) and
   the best achievable recall when detections per image are capped at ``K``
   (``sum_i min(n_i, K) / sum_i n_i``).
2. Box sizes: percentiles of ``sqrt(w*h)``, min side, max side and aspect
   ``h/w``; a size histogram and per-class counts / median areas.
3. Anchor recall: for each candidate anchor setting of mmdet's
   ``AnchorGenerator`` (strides, ratios, scales) and input upscale factor,
   the exact maximum IoU of every GT box over all anchors of all FPN levels,
   reported as the fraction of GT with max IoU >= 0.7 / 0.5 / 0.3 (the
   MaxIoUAssigner thresholds used by the RPN).
4. Recommendations derived from the above.

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
"""
from __future__ import annotations

import argparse
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    'DEFAULT_STRIDES', 'DEFAULT_RATIOS', 'DEFAULT_SCALE_SETS',
    'DEFAULT_UPSCALES', 'DEFAULT_CAPS', 'IOU_THRS', 'PERCENTILES',
    'SIZE_BUCKETS', 'load_coco', 'coco_boxes_xyxy', 'instances_per_image',
    'capped_recall', 'instance_count_stats', 'image_size_stats',
    'box_stats', 'mmdet_base_anchors', 'max_anchor_iou', 'anchor_recall',
    'anchor_recall_table', 'recommend', 'run_cell_stats', 'format_table',
    'format_report', 'build_arg_parser', 'main'
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
DEFAULT_UPSCALES: tuple[float, ...] = (1.0, 1.5, 2.0)
DEFAULT_CAPS: tuple[int, ...] = (100, 300, 500, 1000, 1500)
#: RPN MaxIoUAssigner: pos_iou_thr, a mid value, min_pos_iou (low quality).
IOU_THRS: tuple[float, ...] = (0.7, 0.5, 0.3)
PERCENTILES: tuple[int, ...] = (1, 5, 25, 50, 75, 95, 99)
#: Bucket edges (pixels, on sqrt(w*h) at native resolution).
SIZE_BUCKETS: tuple[float, ...] = (0.0, 8.0, 16.0, 24.0, 32.0, 64.0,
                                   math.inf)
#: mmdet's default ``Resize(scale=(1333, 800), keep_ratio=True)``.
MMDET_DEFAULT_SCALE: tuple[int, int] = (1333, 800)


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------
def load_coco(src: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """Return a COCO-style dict from a path to a JSON file or a mapping."""
    if isinstance(src, Mapping):
        return dict(src)
    with open(src, encoding='utf-8') as f:
        return json.load(f)


def _bbox_from_segmentation(ann: Mapping[str, Any], height: int,
                            width: int) -> list[float]:
    """Compute ``[x, y, w, h]`` from an annotation's segmentation."""
    from pycocotools import mask as mask_utils  # lazy: only if needed

    seg = ann['segmentation']
    if isinstance(seg, list):  # polygons
        rles = mask_utils.frPyObjects(seg, height, width)
        rle = mask_utils.merge(rles)
    elif isinstance(seg.get('counts'), list):  # uncompressed RLE
        rle = mask_utils.frPyObjects(seg, height, width)
    else:
        rle = dict(seg)
        if isinstance(rle['counts'], str):
            rle['counts'] = rle['counts'].encode('ascii')
    return [float(v) for v in mask_utils.toBbox(rle)]


def coco_boxes_xyxy(coco: Mapping[str, Any],
                    include_crowd: bool = False) -> dict[str, np.ndarray]:
    """Flatten the annotations of a COCO dict into numpy arrays.

    Args:
        coco: COCO dict with ``images``, ``annotations``
            (and optionally ``categories``).
        include_crowd: Keep ``iscrowd=1`` annotations (mmdet ignores them
            as training targets, so they are dropped by default).

    Returns:
        dict with ``boxes`` (N, 4) ``x1, y1, x2, y2`` float64 (COCO
        ``[x, y, w, h]`` -> ``[x, y, x + w, y + h]``, mmdet 3.x convention),
        ``image_index`` (N,) index into ``coco['images']``,
        ``category_id`` (N,), ``area`` (N,) mask area (the COCO ``area``
        field, box area if missing) and ``img_hw`` (N, 2) the height/width
        of each box's image.
    """
    images = coco['images']
    id_to_idx = {img['id']: i for i, img in enumerate(images)}
    boxes: list[list[float]] = []
    image_index: list[int] = []
    cats: list[int] = []
    areas: list[float] = []
    for ann in coco.get('annotations', []):
        if ann.get('iscrowd', 0) and not include_crowd:
            continue
        try:
            idx = id_to_idx[ann['image_id']]
        except KeyError as exc:
            raise KeyError(f"annotation {ann.get('id')} refers to unknown "
                           f"image_id {ann['image_id']!r}") from exc
        img = images[idx]
        bbox = ann.get('bbox')
        if bbox is None:
            bbox = _bbox_from_segmentation(ann, int(img['height']),
                                           int(img['width']))
        x, y, w, h = (float(v) for v in bbox)
        boxes.append([x, y, x + w, y + h])
        image_index.append(idx)
        cats.append(int(ann.get('category_id', 0)))
        areas.append(float(ann['area']) if 'area' in ann else w * h)
    hw = np.array([[img['height'], img['width']] for img in images],
                  dtype=np.float64).reshape(-1, 2)
    index = np.asarray(image_index, dtype=np.int64)
    return {
        'boxes': np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
        'image_index': index,
        'category_id': np.asarray(cats, dtype=np.int64),
        'area': np.asarray(areas, dtype=np.float64),
        'img_hw': hw[index] if len(index) else np.zeros((0, 2)),
    }


# --------------------------------------------------------------------------
# 1. Instances per image
# --------------------------------------------------------------------------
def instances_per_image(coco: Mapping[str, Any],
                        include_crowd: bool = False) -> np.ndarray:
    """Number of (non-crowd) instances of every image, in ``images`` order.

    Images without annotations are included with a count of 0.
    """
    data = coco_boxes_xyxy(coco, include_crowd=include_crowd)
    return np.bincount(data['image_index'], minlength=len(coco['images']))


def capped_recall(counts: Sequence[int] | np.ndarray, k: int) -> float:
    """Best achievable recall when at most ``k`` detections per image are kept.

    ``sum_i min(n_i, k) / sum_i n_i``; NaN when there are no instances.
    """
    n = np.asarray(counts, dtype=np.int64)
    total = int(n.sum())
    if total == 0:
        return float('nan')
    return float(np.minimum(n, int(k)).sum() / total)


def instance_count_stats(counts: Sequence[int] | np.ndarray,
                         caps: Sequence[int] = DEFAULT_CAPS,
                         dense_threshold: int = 100) -> dict[str, Any]:
    """Distribution of instances per image and capped recalls.

    Args:
        counts: Instances per image.
        caps: Values of K (detections kept per image) to evaluate.
        dense_threshold: Images with more than this many instances are
            "dense" (mmdet's default ``max_per_img=100``).
    """
    n = np.asarray(counts, dtype=np.int64)
    total = int(n.sum())
    dense = n > dense_threshold
    return {
        'num_images': int(n.size),
        'num_instances': total,
        'min': int(n.min()) if n.size else 0,
        'median': float(np.median(n)) if n.size else 0.0,
        'mean': float(n.mean()) if n.size else 0.0,
        'p90': float(np.percentile(n, 90)) if n.size else 0.0,
        'max': int(n.max()) if n.size else 0,
        'dense_threshold': int(dense_threshold),
        'dense_images': int(dense.sum()),
        'dense_instance_fraction':
        float(n[dense].sum() / total) if total else float('nan'),
        'capped_recall': {int(k): capped_recall(n, k)
                          for k in caps},
    }


# --------------------------------------------------------------------------
# 0. Image sizes
# --------------------------------------------------------------------------
def _mmdet_keep_ratio_factor(h: np.ndarray, w: np.ndarray,
                             scale: tuple[int, int] = MMDET_DEFAULT_SCALE
                             ) -> np.ndarray:
    """Scale factor of ``mmcv.rescale_size(keep_ratio=True)`` for ``scale``."""
    long_edge, short_edge = max(scale), min(scale)
    return np.minimum(long_edge / np.maximum(h, w),
                      short_edge / np.minimum(h, w))


def image_size_stats(hw: np.ndarray,
                     upscales: Sequence[float] = DEFAULT_UPSCALES
                     ) -> dict[str, Any]:
    """Height/width distribution of a set of images.

    Args:
        hw: (M, 2) array of ``(height, width)``.
        upscales: Factors for which the largest resized image is reported.
    """
    hw = np.asarray(hw, dtype=np.float64).reshape(-1, 2)
    if not len(hw):
        return {'num_images': 0}
    h, w = hw[:, 0], hw[:, 1]
    pix = h * w
    factor = _mmdet_keep_ratio_factor(h, w)
    big = int(np.argmax(pix))
    return {
        'num_images': int(len(hw)),
        'height': _summary(h),
        'width': _summary(w),
        'megapixels': _summary(pix / 1e6),
        'mmdet_1333x800_factor': _summary(factor),
        'largest_hw': [int(h[big]), int(w[big])],
        'largest_upscaled_hw': {
            float(f): [int(h[big] * f + 0.5), int(w[big] * f + 0.5)]
            for f in upscales
        },
    }


def _summary(x: np.ndarray) -> dict[str, float]:
    """min / median / mean / max of a 1-D array."""
    return {
        'min': float(np.min(x)),
        'median': float(np.median(x)),
        'mean': float(np.mean(x)),
        'max': float(np.max(x)),
    }


# --------------------------------------------------------------------------
# 2. Box sizes
# --------------------------------------------------------------------------
def box_stats(boxes: np.ndarray,
              category_id: np.ndarray | None = None,
              area: np.ndarray | None = None,
              categories: Sequence[Mapping[str, Any]] | None = None,
              percentiles: Sequence[float] = PERCENTILES,
              buckets: Sequence[float] = SIZE_BUCKETS) -> dict[str, Any]:
    """Size distribution of ``x1, y1, x2, y2`` boxes.

    Args:
        boxes: (N, 4) boxes.
        category_id: (N,) class ids for the per-class table.
        area: (N,) mask areas (box areas when ``None``).
        categories: COCO ``categories`` (for names and empty classes).
        percentiles: Percentiles to report.
        buckets: Edges of the ``sqrt(w*h)`` histogram.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    box_area = w * h
    side = np.sqrt(box_area)
    mask_area = box_area if area is None else np.asarray(area, np.float64)
    with np.errstate(divide='ignore', invalid='ignore'):
        aspect = np.where(w > 0, h / np.where(w > 0, w, 1), np.nan)
    metrics = {
        'sqrt(w*h)': side,
        'min side': np.minimum(w, h),
        'max side': np.maximum(w, h),
        'aspect h/w': aspect,
    }
    pct = {
        name: {float(p): float(np.nanpercentile(v, p)) if len(v) else
               float('nan') for p in percentiles}
        for name, v in metrics.items()
    }
    edges = list(buckets)
    hist = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = (side >= lo) & (side < hi)
        hist.append({'lo': float(lo), 'hi': float(hi),
                     'count': int(sel.sum()),
                     'fraction': float(sel.mean()) if len(side) else 0.0})
    per_class = []
    if category_id is not None:
        category_id = np.asarray(category_id)
        names = {int(c['id']): str(c.get('name', c['id']))
                 for c in (categories or [])}
        ids = sorted(set(names) | {int(c) for c in np.unique(category_id)})
        for cid in ids:
            sel = category_id == cid
            k = int(sel.sum())
            per_class.append({
                'id': cid,
                'name': names.get(cid, str(cid)),
                'count': k,
                'fraction': float(k / len(side)) if len(side) else 0.0,
                'median_mask_area':
                float(np.median(mask_area[sel])) if k else float('nan'),
                'median_box_area':
                float(np.median(box_area[sel])) if k else float('nan'),
                'median_sqrt_wh':
                float(np.median(side[sel])) if k else float('nan'),
                'p5_sqrt_wh':
                float(np.percentile(side[sel], 5)) if k else float('nan'),
                'p95_sqrt_wh':
                float(np.percentile(side[sel], 95)) if k else float('nan'),
            })
    return {
        'num_boxes': int(len(boxes)),
        'degenerate': int(((w <= 0) | (h <= 0)).sum()),
        'percentiles': pct,
        'size_histogram': hist,
        'per_class': per_class,
    }


# --------------------------------------------------------------------------
# 3. Anchors
# --------------------------------------------------------------------------
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


def _scale_label(scales: Sequence[float]) -> str:
    """Compact label such as ``[4, 8]``."""
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
        'label': _scale_label(scales),
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
        data: Output of :func:`coco_boxes_xyxy`.
    """
    return [
        anchor_recall(data['boxes'], data['img_hw'], scales, upscale=f,
                      strides=strides, ratios=ratios, iou_thrs=iou_thrs,
                      image_index=data['image_index'], window=window,
                      pad_size_divisor=pad_size_divisor)
        for f in upscales for scales in scale_sets
    ]


# --------------------------------------------------------------------------
# 4. Recommendations
# --------------------------------------------------------------------------
def _round_up(x: float, step: int) -> int:
    """Round ``x`` up to a multiple of ``step``."""
    return int(math.ceil(x / step) * step)


def _rank_key(r: Mapping[str, Any], thr: float) -> tuple:
    """Sort key: recall@thr, then recall at the other thresholds (high to
    low), then fewer anchors per location, then smaller upscale."""
    rec = r['recall']
    return (rec[thr], *[rec[t] for t in sorted(rec, reverse=True)
                        if t != thr], -r['anchors_per_location'],
            -r['upscale'])


def recommend(counts: Mapping[str, Any],
              anchors: Sequence[Mapping[str, Any]],
              boxes: Mapping[str, Any] | None = None,
              strides: Sequence[int] = DEFAULT_STRIDES,
              thr: float = 0.7,
              max_simple_anchors: int = 6,
              upscale_tol: float = 0.01,
              proposal_factor: float = 2.5,
              nms_pre_factor: float = 5.0) -> dict[str, Any]:
    """Derive config values from the statistics.

    Rules (all printed with their numbers so they can be second-guessed):

    * anchors: "simple" settings have at most ``max_simple_anchors``
      anchors per location. The recommended (scales, upscale) pair is the
      simple pair with the best recall@``thr``, except that a smaller upscale
      is preferred when it is within ``upscale_tol`` of it. The best setting
      regardless of size is printed too.
    * ``test_cfg.rcnn.max_per_img``: the smallest cap ``K`` with capped
      recall 1.0 (at least the max instances per image).
    * ``test_cfg.rpn.max_per_img``: ``proposal_factor`` x max instances,
      rounded up to 500.
    * ``test_cfg.rpn.nms_pre`` (applied per level in mmdet 3.x):
      ``nms_pre_factor`` x the largest number of GT of one image whose
      best anchor is on one level (several anchors per object survive
      into the pre-NMS top-k), at least ``rpn.max_per_img``, rounded up to
      1000.
    """
    lines: list[str] = []
    out: dict[str, Any] = {}
    rec = {(r['upscale'], r['label']): r['recall'][thr] for r in anchors}
    upscales = sorted({r['upscale'] for r in anchors})
    for f in upscales:
        rows = [r for r in anchors if r['upscale'] == f]
        best = max(rows, key=lambda r: _rank_key(r, thr))
        simple = [r for r in rows
                  if r['anchors_per_location'] <= max_simple_anchors]
        msg = (f'x{f:g}: best recall@{thr:g} {best["label"]} '
               f'{best["recall"][thr]:.3f} ({best["anchors_per_location"]} '
               f'anchors/loc)')
        if simple:
            sb = max(simple, key=lambda r: _rank_key(r, thr))
            msg += (f'; best with <= {max_simple_anchors} anchors/loc '
                    f'{sb["label"]} {sb["recall"][thr]:.3f}')
        lines.append(msg)
    labels = list(dict.fromkeys(r['label'] for r in anchors))
    robust = max(labels, key=lambda lb: min(rec[(f, lb)] for f in upscales
                                            if (f, lb) in rec))
    lines.append(
        f'most robust scale set across upscales: {robust} (recall@{thr:g} ' +
        ', '.join(f'x{f:g} {rec[(f, robust)]:.3f}' for f in upscales
                  if (f, robust) in rec) + ')')

    pool = [r for r in anchors
            if r['anchors_per_location'] <= max_simple_anchors] or list(
                anchors)
    top = max(pool, key=lambda r: _rank_key(r, thr))
    near = [r for r in pool if r['label'] == top['label']
            and r['recall'][thr] >= top['recall'][thr] - upscale_tol]
    chosen = min(near, key=lambda r: r['upscale'])
    up = chosen['upscale']
    out['anchor_scales'] = chosen['scales']
    out['upscale'] = up
    out['anchor_recall'] = chosen['recall']
    default = rec.get((1.0, _scale_label([8.0])))
    lines.append(
        f'=> anchor scales={chosen["label"]} with input upscale x{up:g}: '
        f'recall@0.7 {chosen["recall"][thr]:.3f}, @0.5 '
        f'{chosen["recall"].get(0.5, float("nan")):.3f}, @0.3 '
        f'{chosen["recall"].get(0.3, float("nan")):.3f}' +
        (f' (mmdet default [8] at x1: {default:.3f})'
         if default is not None else ''))
    if boxes is not None:
        p = boxes['percentiles']['sqrt(w*h)']
        p5, p50 = p.get(5.0, float('nan')), p.get(50.0, float('nan'))
        lines.append(
            f'   RoIAlign resolution (all RoIs < 112 px map to P2, stride '
            f'{strides[0]}): p5 / median box side = ' +
            ', '.join(f'x{f:g} {p5 * f / strides[0]:.1f} / '
                      f'{p50 * f / strides[0]:.1f} cells'
                      for f in upscales))

    caps = counts['capped_recall']
    max_n = counts['max']
    full = [k for k in sorted(caps) if caps[k] >= 1.0 - 1e-12]
    rcnn_max = max(full[0] if full else _round_up(max_n, 100), max_n)
    out['rcnn_max_per_img'] = rcnn_max
    lines.append(
        f'=> test_cfg.rcnn.max_per_img={rcnn_max} (max {max_n} GT/image; '
        f'capped recall ' + ', '.join(f'K={k}: {caps[k]:.3f}'
                                      for k in sorted(caps)) + ')')
    rpn_max = _round_up(proposal_factor * max_n, 500)
    per_level = chosen.get('max_gt_per_image_level') or [max_n]
    nms_pre = max(_round_up(nms_pre_factor * max(per_level), 1000), rpn_max)
    out['rpn_max_per_img'] = rpn_max
    out['rpn_nms_pre'] = nms_pre
    lines.append(
        f'=> test_cfg.rpn: nms_pre={nms_pre} (per level; max GT of one image '
        f'best-matched on one level = {max(per_level)}, x{nms_pre_factor:g}),'
        f' max_per_img={rpn_max} (~{proposal_factor:g}x max {max_n} GT/image)'
        f', nms iou_threshold=0.7')
    lines.append(
        f'   train_cfg.rpn_proposal: nms_pre={nms_pre}, max_per_img={rpn_max};'
        f' {counts["dense_instance_fraction"]:.1%} of GT are in images with '
        f'>{counts["dense_threshold"]} instances')
    out['lines'] = lines
    return out


# --------------------------------------------------------------------------
# Driver and formatting
# --------------------------------------------------------------------------
def run_cell_stats(coco: str | Path | Mapping[str, Any],
                   scale_sets: Sequence[Sequence[float]] = DEFAULT_SCALE_SETS,
                   upscales: Sequence[float] = DEFAULT_UPSCALES,
                   strides: Sequence[int] = DEFAULT_STRIDES,
                   ratios: Sequence[float] = DEFAULT_RATIOS,
                   caps: Sequence[int] = DEFAULT_CAPS,
                   dense_threshold: int = 100,
                   window: int = 2,
                   pad_size_divisor: int = 32,
                   test_hw: np.ndarray | None = None) -> dict[str, Any]:
    """Compute every section of the report.

    Args:
        coco: COCO JSON path or dict.
        scale_sets: Candidate anchor scale lists.
        upscales: Candidate input upscale factors.
        strides: FPN strides.
        ratios: Anchor ratios.
        caps: Detection caps K for the capped recall.
        dense_threshold: "Dense image" threshold.
        window: Grid window of :func:`max_anchor_iou`.
        pad_size_divisor: Padding divisor of the data preprocessor.
        test_hw: Optional (M, 2) test image sizes for section 0.
    """
    coco = load_coco(coco)
    data = coco_boxes_xyxy(coco)
    counts = np.bincount(data['image_index'], minlength=len(coco['images']))
    img_hw = np.array([[i['height'], i['width']] for i in coco['images']],
                      dtype=np.float64).reshape(-1, 2)
    report: dict[str, Any] = {
        'config': {
            'strides': list(strides), 'ratios': list(ratios),
            'scale_sets': [list(s) for s in scale_sets],
            'upscales': list(upscales), 'window': window,
            'pad_size_divisor': pad_size_divisor,
        },
        'images': {'gt': image_size_stats(img_hw, upscales)},
        'instances': instance_count_stats(counts, caps, dense_threshold),
        'boxes': box_stats(data['boxes'], data['category_id'], data['area'],
                           coco.get('categories')),
    }
    if test_hw is not None:
        report['images']['test'] = image_size_stats(test_hw, upscales)
    report['anchors'] = anchor_recall_table(
        data, scale_sets, upscales, strides, ratios, window=window,
        pad_size_divisor=pad_size_divisor)
    report['recommendation'] = recommend(report['instances'],
                                         report['anchors'], report['boxes'],
                                         strides=strides)
    return report


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]],
                 floatfmt: str = '.3f') -> str:
    """Plain-text table with right-aligned columns (first one left)."""
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return 'nan' if math.isnan(v) else format(v, floatfmt)
        return str(v)

    cells = [[fmt(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells])
              for i, h in enumerate(headers)]

    def line(vals: Sequence[str]) -> str:
        return '  '.join(v.ljust(widths[i]) if i == 0 else v.rjust(widths[i])
                         for i, v in enumerate(vals)).rstrip()

    sep = '  '.join('-' * w for w in widths)
    return '\n'.join([line(headers), sep] + [line(r) for r in cells])


def format_report(report: Mapping[str, Any]) -> str:
    """Render the report of :func:`run_cell_stats` as text tables."""
    out: list[str] = []
    cfg = report['config']

    out.append('== 0. Image sizes ==')
    rows = []
    for name, st in report['images'].items():
        if not st.get('num_images'):
            continue
        for key in ('height', 'width', 'megapixels',
                    'mmdet_1333x800_factor'):
            s = st[key]
            rows.append([f'{name}: {key}', st['num_images'], s['min'],
                         s['median'], s['mean'], s['max']])
    out.append(format_table(['images', 'n', 'min', 'median', 'mean', 'max'],
                            rows, '.2f'))
    for name, st in report['images'].items():
        if st.get('num_images'):
            ups = ', '.join(f'x{f:g}: {hw[0]}x{hw[1]}'
                            for f, hw in st['largest_upscaled_hw'].items())
            out.append(f'{name}: largest image (HxW) '
                       f'{st["largest_hw"][0]}x{st["largest_hw"][1]} -> {ups}')

    c = report['instances']
    out.append('')
    out.append('== 1. Instances per image ==')
    out.append(format_table(
        ['images', 'instances', 'min', 'median', 'mean', 'p90', 'max'],
        [[c['num_images'], c['num_instances'], c['min'], c['median'],
          c['mean'], c['p90'], c['max']]], '.1f'))
    out.append(f'images with >{c["dense_threshold"]} instances: '
               f'{c["dense_images"]} / {c["num_images"]}, holding '
               f'{c["dense_instance_fraction"]:.1%} of all GT instances')
    out.append(format_table(
        ['detections/image cap K', 'best achievable recall'],
        [[k, v] for k, v in c['capped_recall'].items()], '.4f'))

    b = report['boxes']
    out.append('')
    out.append(f'== 2. Box sizes (native px; {b["num_boxes"]} boxes, '
               f'{b["degenerate"]} degenerate) ==')
    pcts = list(next(iter(b['percentiles'].values())).keys())
    out.append(format_table(
        ['metric'] + [f'p{p:g}' for p in pcts],
        [[name] + list(v.values()) for name, v in b['percentiles'].items()],
        '.2f'))
    out.append(format_table(
        ['sqrt(w*h) bucket', 'count', 'fraction'],
        [[f'[{h["lo"]:g}, {h["hi"]:g})', h['count'], h['fraction']]
         for h in b['size_histogram']]))
    if b['per_class']:
        out.append(format_table(
            ['class', 'count', 'fraction', 'med mask area', 'med box area',
             'med sqrt(wh)', 'p5 sqrt(wh)', 'p95 sqrt(wh)'],
            [[f'{p["id"]} {p["name"]}', p['count'], f'{p["fraction"]:.3f}',
              p['median_mask_area'], p['median_box_area'],
              p['median_sqrt_wh'], p['p5_sqrt_wh'], p['p95_sqrt_wh']]
             for p in b['per_class']], '.1f'))

    anchors = report['anchors']
    out.append('')
    out.append(f'== 3. Anchor recall (strides {cfg["strides"]}, ratios '
               f'{cfg["ratios"]}, grid window +-{cfg["window"]}, pad '
               f'{cfg["pad_size_divisor"]}) ==')
    thrs = list(anchors[0]['recall']) if anchors else []
    levels = [f'P{int(math.log2(s))}' for s in cfg['strides']]
    out.append(format_table(
        ['upscale', 'scales', 'A/loc'] + [f'IoU>={t:g}' for t in thrs] +
        ['mean IoU', 'median IoU'],
        [[f'x{r["upscale"]:g}', r['label'], r['anchors_per_location']] +
         [r['recall'][t] for t in thrs] +
         [r['mean_max_iou'], r['median_max_iou']] for r in anchors]))
    out.append('')
    out.append('recall@0.7 by native sqrt(w*h) bucket (n = GT count):')
    buckets = anchors[0]['by_size'] if anchors else []
    out.append(format_table(
        ['upscale', 'scales'] +
        [f'[{bk["lo"]:g},{bk["hi"]:g}) n={bk["count"]}' for bk in buckets],
        [[f'x{r["upscale"]:g}', r['label']] +
         [bk['recall'].get(0.7, float('nan')) for bk in r['by_size']]
         for r in anchors]))
    out.append('')
    out.append('level of the best anchor (fraction of GT) and max GT of one '
               'image best-matched on that level:')
    out.append(format_table(
        ['upscale', 'scales'] + levels + [f'max/img {lv}' for lv in levels],
        [[f'x{r["upscale"]:g}', r['label']] + r['level_fraction'] +
         (r['max_gt_per_image_level'] or ['-'] * len(levels))
         for r in anchors]))

    out.append('')
    out.append('== 4. Recommendations ==')
    out.extend(report['recommendation']['lines'])
    return '\n'.join(out)


def _parse_scale_set(text: str) -> tuple[float, ...]:
    """Parse ``"4,8"`` into ``(4.0, 8.0)``."""
    return tuple(float(v) for v in text.split(',') if v.strip())


def _load_test_hw(path: str | Path) -> np.ndarray:
    """(M, 2) sizes from a list of ``{height, width}`` or a COCO dict."""
    with open(path, encoding='utf-8') as f:
        obj = json.load(f)
    items = obj['images'] if isinstance(obj, Mapping) else obj
    return np.array([[i['height'], i['width']] for i in items],
                    dtype=np.float64).reshape(-1, 2)


def _jsonable(obj: Any) -> Any:
    """Convert numpy scalars and float keys for ``json.dump``."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and math.isnan(obj):
        return None
    return obj


def build_arg_parser() -> argparse.ArgumentParser:
    """Command-line interface of ``tools/analysis/cell_stats.py``."""
    p = argparse.ArgumentParser(
        description='Instance / box-size / anchor-recall statistics of a '
        'COCO ground truth, for tuning a Mask R-CNN config.')
    p.add_argument('coco_json', help='COCO ground-truth JSON')
    p.add_argument('--out', help='write the full report as JSON here')
    p.add_argument('--test-info',
                   help='optional JSON with test image sizes (list of '
                   '{height, width} or a COCO dict) for section 0')
    p.add_argument('--scales', nargs='+', type=_parse_scale_set,
                   default=list(DEFAULT_SCALE_SETS),
                   help='anchor scale sets, e.g. 8 4 2 4,8 3,6')
    p.add_argument('--upscales', nargs='+', type=float,
                   default=list(DEFAULT_UPSCALES))
    p.add_argument('--strides', nargs='+', type=int,
                   default=list(DEFAULT_STRIDES))
    p.add_argument('--ratios', nargs='+', type=float,
                   default=list(DEFAULT_RATIOS))
    p.add_argument('--caps', nargs='+', type=int, default=list(DEFAULT_CAPS))
    p.add_argument('--dense-threshold', type=int, default=100)
    p.add_argument('--window', type=int, default=2)
    p.add_argument('--pad-size-divisor', type=int, default=32)
    return p


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the CLI; prints the tables and returns the report dict."""
    args = build_arg_parser().parse_args(argv)
    test_hw = _load_test_hw(args.test_info) if args.test_info else None
    report = run_cell_stats(args.coco_json, args.scales, args.upscales,
                            args.strides, args.ratios, args.caps,
                            args.dense_threshold, args.window,
                            args.pad_size_divisor, test_hw)
    print(format_report(report))
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, 'w', encoding='utf-8') as f:
            json.dump(_jsonable(report), f, indent=2)
        print(f'\nreport written to {out}')
    return report
