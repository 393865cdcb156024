"""Flip test-time augmentation that merges boxes and masks."""
from typing import Callable, Optional, Tuple

import numpy as np
import torch

from .detections import Detections
from .tiling import Core, centres_in_core

__all__ = [
    'MERGE_RULES', 'check_merge_rule', 'fuse_views', 'predict_flip_tta'
]

# ``forward(bgr) -> (feats, scale, dets)``: pyramid features, the resize
# factors ``w, h, w, h`` and the box head's InstanceData (network-input
# coordinates) of one BGR image
Forward = Callable[[np.ndarray], Tuple[tuple, np.ndarray, object]]
# ``mask_probs(feats, boxes, labels) -> (N, M, M)`` probabilities
MaskProbs = Callable[[tuple, torch.Tensor, torch.Tensor], torch.Tensor]

VIEWS = (None, 'horizontal', 'vertical')
#: How the views' boxes are merged (see :func:`predict_flip_tta`).
MERGE_RULES = ('nms', 'cluster')


def check_merge_rule(merge: str) -> str:
    """``merge`` if it is one of :data:`MERGE_RULES`, else ValueError."""
    if merge not in MERGE_RULES:
        raise ValueError(f'TTA merge must be one of {MERGE_RULES}, got '
                         f'{merge!r}')
    return merge


def _flip_image(bgr: np.ndarray, direction: Optional[str]) -> np.ndarray:
    if direction is None:
        return bgr
    return np.ascontiguousarray(
        bgr[:, ::-1] if direction == 'horizontal' else bgr[::-1])


def _flip_boxes(boxes: torch.Tensor, direction: Optional[str], width: float,
                height: float) -> torch.Tensor:
    """``x1, y1, x2, y2`` boxes mirrored in a ``width x height`` image."""
    boxes = boxes.clone()
    if direction == 'horizontal':
        boxes[:, [0, 2]] = width - boxes[:, [2, 0]]
    elif direction == 'vertical':
        boxes[:, [1, 3]] = height - boxes[:, [3, 1]]
    return boxes


def _flip_masks(probs: torch.Tensor,
                direction: Optional[str]) -> torch.Tensor:
    if direction == 'horizontal':
        return probs.flip(-1)
    if direction == 'vertical':
        return probs.flip(-2)
    return probs


def fuse_views(boxes: torch.Tensor, scores: torch.Tensor,
               labels: torch.Tensor, view_ids: torch.Tensor, num_views: int,
               nms_cfg: dict) -> Tuple[torch.Tensor, torch.Tensor,
                                       torch.Tensor]:
    """Cluster the boxes of all views and average each cluster.

    The class-wise NMS survivors (``nms_cfg``) are the cluster centres;
    every box joins the centre of its class it overlaps most, if at IoU >=
    ``nms_cfg['iou_threshold']``. A cluster's box is the score-weighted mean
    of its members' boxes, its score the sum over views of each view's best
    member score divided by ``num_views``: a cell found in every view keeps
    its score, a box that only one view produces (a flip-dependent false
    positive) keeps a third of it, instead of NMS passing it on untouched.
    Returns ``(boxes, scores, labels)`` sorted by the new scores.
    """
    from mmcv.ops import batched_nms
    from mmdet.structures.bbox import bbox_overlaps
    if len(boxes) == 0:
        return boxes, scores, labels
    _, centres = batched_nms(boxes, scores, labels, nms_cfg)
    iou = bbox_overlaps(boxes[centres], boxes)  # (K, N)
    iou[labels[centres][:, None] != labels[None]] = -1
    best, member = iou.max(0)
    ok = best >= float(nms_cfg.get('iou_threshold', 0.5))
    member, b, s, v = member[ok], boxes[ok], scores[ok], view_ids[ok]
    k = len(centres)
    weight = torch.zeros(k, dtype=s.dtype).index_add_(0, member, s)
    fused = torch.zeros(k, 4, dtype=b.dtype).index_add_(
        0, member, b * s[:, None]) / weight.clamp_min(1e-12)[:, None]
    per_view = torch.zeros(k * num_views, dtype=s.dtype).scatter_reduce(
        0, member * num_views + v, s, reduce='amax')
    fused_scores = per_view.view(k, num_views).sum(1) / num_views
    order = fused_scores.argsort(descending=True, stable=True)
    return fused[order], fused_scores[order], labels[centres][order]


def predict_flip_tta(bgr: np.ndarray, forward: Forward,
                     mask_probs: MaskProbs, nms_cfg: dict,
                     max_per_img: int,
                     core: Optional[Core] = None,
                     merge: str = 'nms') -> Detections:
    """Detections of one BGR image merged over three views: as is,
    flipped horizontally and flipped vertically.

    The boxes of all views, mapped back to the original, are merged by
    class-wise NMS (``merge='nms'``; ``nms_cfg``, e.g. the RoI head's
    ``test_cfg.nms``) or clustered and averaged (``merge='cluster'``, see
    :func:`fuse_views`), and the best ``max_per_img`` kept; with ``core`` (a tile's core, see
    :func:`~mmseg_cells.apis.tiling.predict_tiled`) those whose centre lies
    outside it are dropped. Each kept box's mask is the mean of the mask
    head's probabilities for that box in all three views (the box mapped
    into each view, the masks flipped back), so masks are merged, not just
    boxes.
    """
    from mmcv.ops import batched_nms
    check_merge_rule(merge)
    h, w = bgr.shape[:2]
    views = [(d, ) + tuple(forward(_flip_image(bgr, d))) for d in VIEWS]
    scale = views[0][2]
    iw, ih = w * scale[0], h * scale[1]  # network-input size

    boxes = torch.cat(
        [_flip_boxes(dets.bboxes, d, iw, ih) for d, _, _, dets in views])
    scores = torch.cat([dets.scores for *_, dets in views])
    labels = torch.cat([dets.labels for *_, dets in views])
    if merge == 'cluster':
        view_ids = torch.cat([
            torch.full((len(dets), ), i, dtype=torch.long)
            for i, (*_, dets) in enumerate(views)
        ])
        boxes, scores, labels = fuse_views(boxes, scores, labels, view_ids,
                                           len(views), nms_cfg)
        keep = torch.arange(len(boxes))
    else:
        _, keep = batched_nms(boxes, scores, labels, nms_cfg)
    keep = keep[:max_per_img]
    if core is not None:
        keep = keep[centres_in_core(boxes[keep], core, scale)]
    boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    probs = 0
    for d, feats, _, _ in views:
        p = mask_probs(feats, _flip_boxes(boxes, d, iw, ih), labels)
        probs = probs + _flip_masks(p, d)
    probs = probs / len(views)
    return Detections.from_network(boxes, scores, labels, probs, scale, h,
                                   w)
