"""WorkBounds: per-image proposal / detection caps and the mask-score rule.

Checked on a randomly initialised tiny model (scores spread over (0, 1))
against the exact path of the same predictor (``bounds=None``): the
capacity cap keeps the exact path's best proposals, the mask-score rule
keeps exactly the exact path's detections at or above the threshold.
"""
import math

import numpy as np
import pytest
import torch
from mmengine.config import Config, ConfigDict

from conftest import TINY_CONFIG
from mmseg_cells.apis import WorkBounds


@pytest.fixture(scope='module')
def predictor():
    from mmseg_cells.apis import CellPredictor
    cfg = Config.fromfile(TINY_CONFIG)
    cfg.model.test_cfg.rcnn.score_thr = 0.0
    torch.manual_seed(0)
    return CellPredictor(cfg, None, device='cpu', bounds=None)


def image(h=120, w=140, seed=0):
    rng = np.random.default_rng(seed)
    rgb = np.full((h, w, 3), (225, 170, 205), np.uint8)
    yy, xx = np.mgrid[:h, :w]
    for _ in range(25):
        cy, cx, r = rng.integers(0, h), rng.integers(0, w), \
            rng.integers(4, 20)
        rgb[(yy - cy)**2 + (xx - cx)**2 <= r * r] = (90, 40, 120)
    return rgb


def run(predictor, bounds, rgb, rpn_cfgs=None):
    """Detections and the proposals that reached the box head (the RPN
    configs used are appended to ``rpn_cfgs``)."""
    seen = []
    bbox, rpn = predictor._predict_bbox, predictor._predict_rpn

    def spy_bbox(feats, metas, proposals, cfg=None):
        seen.append(proposals[0].bboxes.clone())
        return bbox(feats, metas, proposals, cfg)

    def spy_rpn(feats, metas, cfg=None):
        if rpn_cfgs is not None:
            rpn_cfgs.append(cfg)
        return rpn(feats, metas, cfg)

    predictor.bounds = bounds
    predictor._predict_bbox, predictor._predict_rpn = spy_bbox, spy_rpn
    try:
        return predictor.predict(rgb), seen[0]
    finally:
        predictor.bounds = None
        del predictor._predict_bbox, predictor._predict_rpn


@pytest.mark.parametrize('kwargs,msg', [
    (dict(area_per_cell=0), 'area_per_cell must be > 0'),
    (dict(proposals_per_cell=-1), 'proposals_per_cell must be > 0'),
    (dict(dets_per_cell=0), 'dets_per_cell must be > 0'),
    (dict(min_mask_score=1.0), r'min_mask_score must be in \[0, 1\)'),
])
def test_bad_bounds_are_refused(kwargs, msg):
    with pytest.raises(ValueError, match=msg):
        WorkBounds(**kwargs)


def test_caps_follow_the_image_area_and_never_exceed_the_config():
    rpn = ConfigDict(nms_pre=3000, max_per_img=2000)
    rcnn = ConfigDict(score_thr=0.001, max_per_img=1000)
    b = WorkBounds(area_per_cell=10, proposals_per_cell=2, dets_per_cell=1)
    assert b.cells(33, 86) == math.ceil(33 * 86 / 10) == 284
    small = b.rpn_cfg(rpn, 33, 86)
    assert small.max_per_img == 568 and small.nms_pre == 3000
    assert b.rcnn_cfg(rcnn, 33, 86).max_per_img == 284
    assert rpn.max_per_img == 2000 and rcnn.max_per_img == 1000  # copies
    # a large image: the config's caps, the config itself
    assert b.rpn_cfg(rpn, 1000, 1000) is rpn
    assert b.rcnn_cfg(rcnn, 1000, 1000) is rcnn
    assert WorkBounds(area_per_cell=1e9).cells(2, 2) == 1


def test_capacity_keeps_the_exact_paths_best_proposals(predictor):
    rgb = image()
    exact, props = run(predictor, None, rgb)
    cap = 40
    bounds = WorkBounds(area_per_cell=rgb.shape[0] * rgb.shape[1] / cap,
                        min_mask_score=0.0)
    fast, capped = run(predictor, bounds, rgb)
    assert len(props) > cap  # the exact path had more: the cap binds
    assert len(capped) == cap
    assert torch.equal(capped, props[:cap])  # best first, bit-equal
    assert 0 < len(fast) <= cap < len(exact)


def test_mask_score_rule_drops_only_the_weak_detections(predictor):
    rgb = image(seed=1)
    exact, _ = run(predictor, None, rgb)
    thr = float(np.median(exact.scores))
    fast, _ = run(predictor,
                  WorkBounds(area_per_cell=1e-6, min_mask_score=thr), rgb)
    keep = exact.scores >= thr
    assert 0 < keep.sum() < len(exact)
    assert len(fast) == keep.sum()
    for a, b in [(fast.bboxes, exact.bboxes[keep]),
                 (fast.scores, exact.scores[keep]),
                 (fast.labels, exact.labels[keep]),
                 (fast.mask_probs, exact.mask_probs[keep])]:
        np.testing.assert_array_equal(a, b)


def test_default_bounds_only_bind_on_small_images(predictor):
    """The default caps leave a 300 x 300 image's proposals alone and cut
    a 100 x 120 one's to what it can hold (the tiny config keeps 300)."""
    b = WorkBounds()
    rpn = predictor.model.rpn_head.test_cfg
    cfgs = []
    run(predictor, b, image(300, 300, seed=2), cfgs)
    run(predictor, b, image(100, 120, seed=2), cfgs)
    assert cfgs[0] is rpn and rpn.max_per_img == 300
    assert cfgs[1].max_per_img == b.cells(100, 120) == 188
