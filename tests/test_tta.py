"""Flip TTA merge rules with a stand-in detector whose views disagree in
known ways."""
import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

from mmseg_cells.apis.tta import VIEWS, fuse_views, predict_flip_tta

H, W = 60, 80
NMS = dict(type='nms', iou_threshold=0.5)


def _flip(box, direction):
    x1, y1, x2, y2 = box
    if direction == 'horizontal':
        return [W - x2, y1, W - x1, y2]
    if direction == 'vertical':
        return [x1, H - y2, x2, H - y1]
    return box


def stand_in(per_view):
    """``forward``/``mask_probs`` of a detector that reports, in view ``d``,
    the boxes ``per_view[d]`` (given in original-image coordinates, as
    ``(box, score, label)``) mirrored into that view. Masks: all ones in the
    unflipped view, a left/top half in the flipped ones (so the merged mask
    is their mean)."""

    def forward(bgr):
        d = next(v for v in VIEWS if np.array_equal(
            bgr, _view_image(v)))
        items = per_view[d]
        inst = InstanceData()
        inst.bboxes = torch.tensor([_flip(b, d) for b, _, _ in items],
                                   dtype=torch.float32).reshape(-1, 4)
        inst.scores = torch.tensor([s for _, s, _ in items])
        inst.labels = torch.tensor([c for *_, c in items], dtype=torch.long)
        return d, np.ones(4, np.float32), inst

    def mask_probs(d, boxes, labels):
        p = torch.ones(len(boxes), 28, 28)
        if d == 'horizontal':
            p[..., 14:] = 0  # flipped back: the right half
        elif d == 'vertical':
            p[..., 14:, :] = 0
        return p

    return forward, mask_probs


_IMG = np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8)


def _view_image(d):
    if d == 'horizontal':
        return np.ascontiguousarray(_IMG[:, ::-1])
    if d == 'vertical':
        return np.ascontiguousarray(_IMG[::-1])
    return _IMG


CELL = [10., 10., 30., 26.]
# the cell, found by every view with a 1-2 px jitter and different scores;
# a false positive only the unflipped view reports; a second class's cell
VIEWS_DISAGREE = {
    None: [(CELL, 0.9, 0), ([50., 30., 62., 44.], 0.8, 0),
           ([40., 5., 52., 15.], 0.6, 1)],
    'horizontal': [([11., 10., 31., 27.], 0.7, 0),
                   ([40., 5., 52., 15.], 0.6, 1)],
    'vertical': [([9., 11., 29., 26.], 0.5, 0),
                 ([40., 5., 52., 15.], 0.3, 1)],
}


def _run(merge):
    forward, mask_probs = stand_in(VIEWS_DISAGREE)
    return predict_flip_tta(_IMG, forward, mask_probs, NMS, 100,
                            merge=merge)


def test_cluster_merge_averages_views_and_demotes_single_view_boxes():
    dets = _run('cluster')
    assert len(dets) == 3

    def at(box):
        """(score, label) of the detection at ``box`` (within 1e-4 px)."""
        d = np.abs(dets.bboxes - np.asarray(box)).max(1)
        assert d.min() < 1e-4, (box, dets.bboxes)
        i = int(d.argmin())
        return float(dets.scores[i]), int(dets.labels[i])

    # the cell: score-weighted mean box, mean score over the three views
    w = np.array([0.9, 0.7, 0.5])
    boxes = np.array([CELL, [11., 10., 31., 27.], [9., 11., 29., 26.]])
    cell = (w[:, None] * boxes).sum(0) / w.sum()
    assert at(cell) == (pytest.approx(0.7, abs=1e-6), 0)
    # the single-view box keeps a third of its score and drops below it
    assert at([50., 30., 62., 44.]) == (pytest.approx(0.8 / 3), 0)
    assert at([40., 5., 52., 15.]) == (pytest.approx(0.5), 1)
    assert list(dets.scores) == sorted(dets.scores, reverse=True)
    # masks: the mean of the views' probabilities (1, 1/2 or 2/3 ... > 0.5
    # only where at least two views agree)
    assert dets.mask_probs.max() == pytest.approx(1.0)
    assert dets.mask_probs.min() == pytest.approx(1 / 3)


def test_nms_merge_keeps_the_best_box_and_passes_single_view_boxes_on():
    dets = _run('nms')
    assert len(dets) == 3
    order = np.argsort(-dets.scores)
    assert np.allclose(dets.bboxes[order[0]], CELL)
    assert dets.scores[order[0]] == pytest.approx(0.9)
    assert dets.scores[order[1]] == pytest.approx(0.8)  # the false positive


def test_fuse_views_joins_only_same_class_overlaps():
    boxes = torch.tensor([[0., 0., 10., 10.], [0., 0., 10., 11.],
                          [0., 0., 10., 10.], [20., 20., 30., 30.]])
    scores = torch.tensor([0.9, 0.6, 0.8, 0.4])
    labels = torch.tensor([0, 0, 1, 0])
    views = torch.tensor([0, 1, 1, 2])
    b, s, c = fuse_views(boxes, scores, labels, views, 3, NMS)
    assert c.tolist() == [1, 0, 0] or c.tolist() == [0, 1, 0]
    got = {(round(float(x), 4), int(y)) for x, y in zip(s, c)}
    assert got == {(round(1.5 / 3, 4), 0), (round(0.8 / 3, 4), 1),
                   (round(0.4 / 3, 4), 0)}
    empty = fuse_views(boxes[:0], scores[:0], labels[:0], views[:0], 3, NMS)
    assert all(len(t) == 0 for t in empty)


def test_unknown_merge_rule_is_refused():
    forward, mask_probs = stand_in(VIEWS_DISAGREE)
    with pytest.raises(ValueError, match='merge'):
        predict_flip_tta(_IMG, forward, mask_probs, NMS, 100, merge='wbf')
