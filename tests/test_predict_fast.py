"""The predictor's faster inference paths give mmdet's results.

``CellPredictor`` runs the RoI heads by ``mmseg_cells.apis.fast_roi``:
RoI features through ``extract_roi_feats`` (no zero-fill + copy when all
RoIs pool from one level, no ``0 * feats.sum()`` for empty levels; on CPU
RoIAlign by ``roi_align_nhwc``), the box head through ``predict_bbox`` and
the mask head's deconv + logits tail as a matrix product for each RoI's own
class (``mask_probs``). Compared here with mmdet's own modules (and mmcv's
RoIAlign) on a randomly initialised model (no training needed), without and
with the inference rewrite of ``CellPredictor.optimize`` (BN folding,
channels-last).
"""
import numpy as np
import pytest
import torch

from conftest import TINY_CONFIG
from mmseg_cells.apis.fast_roi import MASK_CHUNK, has_fast_mask_tail


@pytest.fixture(scope='module')
def predictor():
    from mmengine.config import Config
    from mmseg_cells.apis import CellPredictor
    cfg = Config.fromfile(TINY_CONFIG)
    cfg.model.test_cfg.rcnn.score_thr = 0.0
    cfg.model.test_cfg.rcnn.max_per_img = 150
    torch.manual_seed(0)
    p = CellPredictor(cfg, None, device='cpu', optimize=False,
                      bounds=None)
    with torch.no_grad():  # a "trained" mask head: non-trivial weights
        for prm in p.model.roi_head.mask_head.parameters():
            prm.normal_(0, 0.1)
    return p


def image(seed=0, h=150, w=170):
    rng = np.random.default_rng(seed)
    rgb = np.full((h, w, 3), (225, 170, 205), np.uint8)
    yy, xx = np.mgrid[:h, :w]
    for _ in range(30):
        cy, cx, r = rng.integers(5, h - 5), rng.integers(5, w - 5), \
            rng.integers(4, 30)
        rgb[(yy - cy)**2 + (xx - cx)**2 <= r * r] = (90, 40, 120)
    return np.ascontiguousarray(rgb[..., ::-1])


def features(predictor, bgr):
    data = predictor.pipeline(dict(img=bgr, img_id=0,
                                   img_shape=bgr.shape[:2],
                                   ori_shape=bgr.shape[:2]))
    data = predictor.model.data_preprocessor(
        dict(inputs=[data['inputs']], data_samples=[data['data_samples']]),
        False)
    with torch.no_grad():
        feats = predictor.model.extract_feat(data['inputs'])
        rpn = predictor.model.rpn_head.predict(feats, data['data_samples'],
                                               rescale=False)
    return feats, [s.metainfo for s in data['data_samples']], rpn


def rows(p):
    """Proposals as a set of (score, box) rows: equal scores may come in
    either order (mmdet's CPU sort is not stable)."""
    r = torch.cat([p.scores[:, None], p.bboxes], 1)
    return r[np.lexsort(r.numpy().T[::-1])]


def random_rois(n, size, seed=0):
    """RoIs from 2 to ~size px: every pyramid level gets some."""
    g = torch.Generator().manual_seed(seed)
    wh = torch.exp(torch.rand(n, 2, generator=g) * np.log(size / 2)) + 2
    xy = torch.rand(n, 2, generator=g) * (size - wh)
    boxes = torch.cat([xy, xy + wh], 1)
    return torch.cat([torch.zeros(n, 1), boxes], 1)


def close(got, ref):
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('n', [0, 1, 7, 300])
def test_extract_roi_feats_equals_mmdet(predictor, n):
    from mmseg_cells.apis import extract_roi_feats
    feats, _, _ = features(predictor, image(1, 300, 280))
    assert all(f.is_contiguous() for f in feats)
    feats_cl = [f.contiguous(memory_format=torch.channels_last)
                for f in feats]
    head = predictor.model.roi_head
    rois = random_rois(n, 1000)
    for ex in (head.bbox_roi_extractor, head.mask_roi_extractor):
        with torch.no_grad():
            ref = ex(feats[:ex.num_inputs], rois)
            got = extract_roi_feats(ex, feats, rois)
            got_cl = extract_roi_feats(ex, feats_cl, rois)
        assert got.shape == ref.shape == got_cl.shape
        close(got, ref)
        close(got_cl, ref)
    if n == 300:  # the multi-level path was exercised
        lv = head.bbox_roi_extractor.map_roi_levels(rois, 4)
        assert len(torch.unique(lv)) >= 3
    # all on one level (small RoIs): returned directly, still equal
    small = random_rois(50, 20, seed=3)
    ex = head.mask_roi_extractor
    assert len(torch.unique(ex.map_roi_levels(small, 4))) == 1
    with torch.no_grad():
        close(extract_roi_feats(ex, feats, small), ex(feats[:4], small))


def test_predict_bbox_equals_mmdet(predictor):
    feats, metas, rpn = features(predictor, image(2))
    head = predictor.model.roi_head
    with torch.no_grad():
        ref = head.predict_bbox(feats, metas, rpn, head.test_cfg,
                                rescale=False)[0]
        got = predictor._predict_bbox(feats, metas, rpn)
    assert len(got) == len(ref) > 0
    assert torch.equal(got.labels, ref.labels)
    torch.testing.assert_close(got.bboxes, ref.bboxes, rtol=1e-5, atol=1e-3)
    close(got.scores, ref.scores)


def test_fast_mask_tail_matches_mmdet_head(predictor):
    from mmdet.structures.bbox import bbox2roi
    head = predictor.model.roi_head
    assert has_fast_mask_tail(head)
    feats, metas, rpn = features(predictor, image(3))
    with torch.no_grad():
        dets = predictor._predict_bbox(feats, metas, rpn)
        rois = bbox2roi([dets.bboxes])
        preds = head._mask_forward(feats, rois)['mask_preds']
        ref = preds[torch.arange(len(dets)), dets.labels].sigmoid()
        got = predictor._mask_probs(feats, dets.bboxes, dets.labels)
    assert got.shape == ref.shape and len(got) > MASK_CHUNK
    assert (got - ref).abs().max() < 1e-5
    flips = ((got >= 0.5) != (ref >= 0.5)).float().mean()
    assert flips < 1e-4


def test_fast_mask_tail_class_agnostic(predictor):
    """One logits channel (class-agnostic head): every RoI uses it."""
    import copy
    from mmdet.structures.bbox import bbox2roi
    feats, metas, rpn = features(predictor, image(4))
    head = predictor.model.roi_head
    mh = copy.deepcopy(head.mask_head)
    lg = mh.conv_logits
    one = torch.nn.Conv2d(lg.in_channels, 1, 1)
    with torch.no_grad():
        one.weight.copy_(lg.weight[:1])
        one.bias.copy_(lg.bias[:1])
    mh.conv_logits = one
    orig = head.mask_head
    head.mask_head = mh
    try:
        with torch.no_grad():
            dets = predictor._predict_bbox(feats, metas, rpn)
            ref = head._mask_forward(feats, bbox2roi([dets.bboxes]))[
                'mask_preds'][:, 0].sigmoid()
            got = predictor._mask_probs(feats, dets.bboxes, dets.labels)
        assert has_fast_mask_tail(head)
        assert (got - ref).abs().max() < 1e-5
    finally:
        head.mask_head = orig


def test_unknown_mask_head_falls_back(predictor):
    head = predictor.model.roi_head
    head.mask_head.upsample_method = 'bilinear'
    try:
        assert not has_fast_mask_tail(head)
    finally:
        head.mask_head.upsample_method = 'deconv'


def test_optimize_keeps_predictions(predictor):
    """BN folded into the convs and channels-last convs: same detections
    and masks as the model as built (non-trivial BN statistics)."""
    import copy
    from torch.nn.modules.batchnorm import _BatchNorm
    base = copy.deepcopy(predictor)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in base.model.modules():
            if isinstance(m, _BatchNorm):
                m.running_mean.copy_(torch.randn(m.num_features,
                                                 generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features,
                                               generator=g) + 0.5)
    fast = copy.deepcopy(base)
    assert fast.optimize() and fast.channels_last
    assert not any(isinstance(m, _BatchNorm) for m in fast.model.modules())
    assert fast.model.backbone.conv1.weight.is_contiguous(
        memory_format=torch.channels_last)
    rgb = image(5, 220, 260)[..., ::-1]
    ref, got = base.predict(rgb), fast.predict(rgb)
    assert len(got) == len(ref) > 100
    # a random model scores many boxes almost equally: float rounding may
    # swap neighbours in the score order, so pair detections by box + label
    dist = np.abs(got.bboxes[:, None] - ref.bboxes[None]).max(2)
    dist[got.labels[:, None] != ref.labels[None]] = np.inf
    pair = dist.argmin(1)
    assert np.all(dist[np.arange(len(got)), pair] < 1e-3)
    assert len(np.unique(pair)) == len(got)  # one-to-one
    np.testing.assert_allclose(got.scores, ref.scores[pair], rtol=1e-4,
                               atol=1e-6)
    probs = ref.mask_probs[pair]
    assert np.abs(got.mask_probs - probs).max() < 1e-4
    assert ((got.mask_probs >= 0.5) != (probs >= 0.5)).mean() < 1e-4


def test_optimize_rejected_when_an_op_needs_nchw():
    """mmcv's deformable conv refuses channels-last input: the probe
    catches it, the model stays as built (BN included), with a warning."""
    from mmengine.config import Config
    from torch.nn.modules.batchnorm import _BatchNorm
    from mmseg_cells.apis import CellPredictor
    cfg = Config.fromfile(TINY_CONFIG)
    cfg.model.backbone.dcn = dict(type='DCN', deform_groups=1,
                                  fallback_on_stride=False)
    cfg.model.backbone.stage_with_dcn = (False, False, False, True)
    with pytest.warns(UserWarning, match='inference rewrite.*failed'):
        p = CellPredictor(cfg, None, device='cpu')
    assert not p.channels_last
    assert any(isinstance(m, _BatchNorm) for m in p.model.modules())
    assert not p.model.backbone.conv1.weight.is_contiguous(
        memory_format=torch.channels_last)
    dets = p.predict(image(6, 96, 120)[..., ::-1])
    assert dets.mask_probs.shape[1:] == (28, 28)


def test_rpn_nms_level_by_level_gives_the_same_proposals(predictor):
    """The main config runs the RPN's NMS one FPN level at a time
    (``split_thr=0``): the same proposals as mmcv's all-levels-at-once
    path with offset boxes (``split_thr`` 10000, mmcv's default)."""
    from mmengine.config import Config
    assert Config.fromfile('configs/cbam_mask_rcnn.py') \
        .model.test_cfg.rpn.nms.split_thr == 0
    head = predictor.model.rpn_head
    assert head.test_cfg.nms.split_thr == 0  # inherited by the tiny config
    feats, metas, _ = features(predictor, image(8))
    offset = head.test_cfg.copy()
    offset.nms = dict(offset.nms, split_thr=10000)
    with torch.no_grad():
        levels = predictor._predict_rpn(feats, metas)[0]
        once = predictor._predict_rpn(feats, metas, offset)[0]
    assert len(levels) == len(once) > 100

    assert torch.equal(rows(levels), rows(once))
    torch.testing.assert_close(levels.scores, once.scores, rtol=0, atol=0)


@pytest.mark.parametrize('nms_pre', [500, 60])
def test_rpn_topk_proposals_equal_mmdets_sorted_ones(predictor, nms_pre):
    """The bounded path's RPN (``fast_rpn.predict_proposals``: ``topk``
    per level) gives mmdet's ``RPNHead.predict_by_feat`` proposals (a full
    sort per level), bit-equal, whether ``nms_pre`` binds on every level
    (60) or only on the first ones (500), up to the order of equal
    scores: a random RPN's sigmoid scores tie (24k anchors, a few hundred
    equal values), and mmdet's unstable sort orders ties arbitrarily too."""
    from mmseg_cells.apis.fast_rpn import predict_proposals
    head = predictor.model.rpn_head
    feats, metas, _ = features(predictor, image(9))
    cfg = head.test_cfg.copy()
    cfg.nms_pre = nms_pre
    anchors = [s[-2] * s[-1] * head.num_base_priors
               for s in (f.shape for f in feats)]
    assert anchors[0] > nms_pre  # topk picks on the first level at least
    assert (anchors[-1] > nms_pre) == (nms_pre == 60)
    with torch.no_grad():
        ref = head.predict_by_feat(*head(feats), batch_img_metas=metas,
                                   cfg=cfg, rescale=False)[0]
        got = predict_proposals(head, feats, metas, cfg)[0]
    assert len(got) == len(ref) > 50
    assert torch.equal(got.scores, ref.scores)  # best first, both
    assert torch.equal(rows(got), rows(ref))
    assert torch.equal(got.labels, ref.labels)


def test_bounded_predictor_uses_topk_rpn(predictor, monkeypatch):
    """``CellPredictor._predict_rpn`` takes the topk path only with
    ``bounds`` (the exact path runs mmdet's)."""
    from mmseg_cells.apis import WorkBounds, fast_rpn, predictor as mod
    calls = []

    def spy(*a, **k):
        calls.append(1)
        return fast_rpn.predict_proposals(*a, **k)
    monkeypatch.setattr(mod, 'predict_proposals', spy)
    feats, metas, _ = features(predictor, image(10))
    with torch.no_grad():
        exact = predictor._predict_rpn(feats, metas)[0]
        assert calls == []
        predictor.bounds = WorkBounds()
        try:
            fast = predictor._predict_rpn(feats, metas)[0]
        finally:
            predictor.bounds = None
    assert calls == [1]
    assert torch.equal(rows(fast), rows(exact))


def test_rcnn_nms_class_by_class_gives_the_same_detections(predictor):
    """The main config runs the box head's multi-class NMS one class at a
    time (``split_thr=0``): the same detections as mmcv's all-classes-at-
    once path with offset boxes (mmcv's default ``split_thr`` 10000),
    here on 300 proposals x 4 classes of a model whose scores all pass."""
    from mmengine.config import Config
    assert Config.fromfile('configs/cbam_mask_rcnn.py') \
        .model.test_cfg.rcnn.nms.split_thr == 0
    rcnn = predictor.model.roi_head.test_cfg
    assert rcnn.nms.split_thr == 0 and rcnn.score_thr == 0
    feats, metas, rpn = features(predictor, image(11))
    offset = rcnn.copy()
    offset.nms = dict(offset.nms, split_thr=10000)
    offset.max_per_img = rcnn.max_per_img = 10000  # compare all of them
    try:
        with torch.no_grad():
            split = predictor._predict_bbox(feats, metas, rpn, rcnn)
            once = predictor._predict_bbox(feats, metas, rpn, offset)
    finally:
        rcnn.max_per_img = 150
    assert len(split) == len(once) > 4 * 100
    assert len(set(split.labels.tolist())) == 4

    def rows(d):
        r = torch.cat([d.scores[:, None], d.labels[:, None].float(),
                       d.bboxes], 1)
        return r[np.lexsort(r.numpy().T[::-1])]
    assert torch.equal(rows(split), rows(once))
