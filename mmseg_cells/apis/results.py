"""Detections as written outputs: COCO results entries and per-class
instance label maps, both ordered by the score as published.

Numpy only (RLE by :mod:`mmseg_cells.mask_codec`).
"""
from typing import Dict, List, Optional, Sequence

import numpy as np

from mmseg_cells.mask_codec import encode_crop_rle

from .detections import Detections

__all__ = [
    'SCORE_DECIMALS', 'coco_results', 'instance_label_maps',
    'published_score'
]

SCORE_DECIMALS = 5


def published_score(score: float) -> float:
    """A detection's score as written to ``test-results.json`` (5
    decimals); label maps order overlaps by this value."""
    return round(float(score), SCORE_DECIMALS)


def coco_results(dets: Detections, image_id: int, mask_thr: float = 0.5,
                 category_ids: Optional[Sequence[int]] = None) -> List[dict]:
    """COCO results entries (RLE ``counts`` as str) for one image.

    Masks are binarised at ``mask_thr``; detections whose binary mask is
    empty are dropped (an empty mask can only be a false positive).
    ``category_ids`` maps label index to category id (default
    ``label + 1``, i.e. class1..class4 -> 1..4).
    """
    out = []
    for i, crop, x0, y0 in dets.iter_masks(mask_thr):
        if not crop.any():
            continue
        x1, y1, x2, y2 = (float(v) for v in dets.bboxes[i])
        label = int(dets.labels[i])
        out.append(
            dict(
                image_id=int(image_id),
                category_id=int(category_ids[label]
                                if category_ids else label + 1),
                score=published_score(dets.scores[i]),
                bbox=[round(x1, 2), round(y1, 2),
                      round(x2 - x1, 2), round(y2 - y1, 2)],
                segmentation=encode_crop_rle(crop, x0, y0, dets.height,
                                             dets.width)))
    return out


def instance_label_maps(dets: Detections,
                        mask_thr: float = 0.5) -> Dict[int, np.ndarray]:
    """Instance-id maps per class (training layout), overlaps by score.

    Masks are binarised at ``mask_thr``. Every pixel belongs to at most one
    instance: detections are painted in ascending order of the score
    written to the results file (:func:`published_score`), so the
    highest-scoring one wins, across classes too; between equal written
    scores the later detection (the later results entry) wins. Ordering by
    the written score, not the float32 one, makes the maps reproducible
    from ``test-results.json`` alone: two detections whose scores differ
    below its 5 decimals would otherwise be ordered by digits no reader
    can see. Instance ids are renumbered 1..K per class (float64 maps);
    classes without an instance are absent from the returned dict (keys
    are 0-based label indices).
    """
    owner = np.full((dets.height, dets.width), -1, np.int32)
    crops = {}
    for i, crop, x0, y0 in dets.iter_masks(mask_thr):
        crops[i] = (crop, x0, y0)
    written = np.array([published_score(v) for v in dets.scores])
    for i in np.argsort(written, kind='stable'):
        if i not in crops:
            continue
        crop, x0, y0 = crops[i]
        ch, cw = crop.shape
        region = owner[y0:y0 + ch, x0:x0 + cw]
        region[crop] = i
    maps = {}
    present = np.unique(owner[owner >= 0])
    for label in np.unique(dets.labels[present]) if len(present) else []:
        idx = present[dets.labels[present] == label]
        lut = np.zeros(len(dets) + 1, np.float64)
        lut[idx + 1] = np.arange(1, len(idx) + 1)
        maps[int(label)] = lut[owner + 1]
    return maps
