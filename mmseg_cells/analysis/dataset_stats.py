"""Ground-truth statistics of a COCO cell dataset.

Answers "what does the data look like": image sizes (and the scale factor
mmdet's default ``Resize(scale=(1333, 800), keep_ratio=True)`` would apply to
them), instances per image with the best recall reachable under a
detections-per-image cap, and box sizes overall and per class.

Pure numpy (+ pycocotools only when a COCO annotation lacks a ``bbox``);
nothing here imports torch, mmcv or mmdet, so it runs anywhere.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    'DEFAULT_UPSCALES', 'DEFAULT_CAPS', 'PERCENTILES', 'SIZE_BUCKETS',
    'MMDET_DEFAULT_SCALE', 'load_coco', 'load_image_sizes', 'images_hw',
    'coco_boxes_xyxy', 'instances_per_image', 'capped_recall',
    'instance_count_stats', 'image_size_stats', 'box_stats'
]

#: Candidate input upscale factors (``Resize(scale_factor=f)``).
DEFAULT_UPSCALES: tuple[float, ...] = (1.0, 1.5, 2.0)
#: Candidate detections-per-image caps K for the capped recall.
DEFAULT_CAPS: tuple[int, ...] = (100, 300, 500, 1000, 1500)
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


def images_hw(images: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """(M, 2) float64 ``(height, width)`` of a list of COCO image records."""
    return np.array([[img['height'], img['width']] for img in images],
                    dtype=np.float64).reshape(-1, 2)


def load_image_sizes(path: str | Path) -> np.ndarray:
    """(M, 2) image sizes from a JSON list of ``{height, width}`` records
    (e.g. ``test_image_name_to_ids.json``) or from a COCO dict."""
    with open(path, encoding='utf-8') as f:
        obj = json.load(f)
    return images_hw(obj['images'] if isinstance(obj, Mapping) else obj)


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
    hw = images_hw(images)
    index = np.asarray(image_index, dtype=np.int64)
    return {
        'boxes': np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
        'image_index': index,
        'category_id': np.asarray(cats, dtype=np.int64),
        'area': np.asarray(areas, dtype=np.float64),
        'img_hw': hw[index] if len(index) else np.zeros((0, 2)),
    }


# --------------------------------------------------------------------------
# Instances per image
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
# Image sizes
# --------------------------------------------------------------------------
def _mmdet_keep_ratio_factor(h: np.ndarray, w: np.ndarray,
                             scale: tuple[int, int] = MMDET_DEFAULT_SCALE
                             ) -> np.ndarray:
    """Scale factor of ``mmcv.rescale_size(keep_ratio=True)`` for ``scale``."""
    long_edge, short_edge = max(scale), min(scale)
    return np.minimum(long_edge / np.maximum(h, w),
                      short_edge / np.minimum(h, w))


def _summary(x: np.ndarray) -> dict[str, float]:
    """min / median / mean / max of a 1-D array."""
    return {
        'min': float(np.min(x)),
        'median': float(np.median(x)),
        'mean': float(np.mean(x)),
        'max': float(np.max(x)),
    }


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


# --------------------------------------------------------------------------
# Box sizes
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
