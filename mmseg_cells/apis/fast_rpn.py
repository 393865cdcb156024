"""Inference-only fast path of mmdet's ``RPNHead`` proposals on CPU.

mmdet's ``RPNHead._predict_by_feat_single`` ranks every anchor score of a
pyramid level with a full ``sort`` and keeps the first ``nms_pre`` ("sort
is faster than topk", true on GPUs). On CPU ``topk`` of 2000 out of the
49k anchors of a 512 px image's first level takes a sixth of the sort's
time, and the sort was 4 % of a trained demo model's prediction time on
real images. :func:`predict_proposals` is mmdet's code with ``topk``: the
same scores in the same order, the same proposals up to the order of
equal scores (float32 sigmoid scores do tie, and mmdet's CPU sort is not
stable: it orders ties arbitrarily too). Where equal scores straddle
``nms_pre``, the two may keep different ones of them. It is used on the
bounded path (:class:`~mmseg_cells.apis.WorkBounds`); the exact path runs
mmdet's.
"""
from typing import List, Sequence

import torch
from mmengine.structures import InstanceData

__all__ = ['predict_proposals']


def predict_proposals(rpn_head: torch.nn.Module, feats: Sequence[torch.Tensor],
                      metas: List[dict], cfg=None) -> List[InstanceData]:
    """RPN proposals of one image (network-input coordinates, best first)
    under the test config ``cfg`` (default: the head's), as
    ``rpn_head.predict_by_feat(*rpn_head(feats), metas, cfg,
    rescale=False)``.

    mmdet's ``RPNHead`` with sigmoid scores on CPU runs mmdet's steps with
    a ``topk`` per level instead of a full sort; other heads, batches of
    more than one image and GPUs (where mmdet found the sort faster) run
    mmdet's code.
    """
    from mmdet.models.dense_heads import RPNHead
    cls_scores, bbox_preds = rpn_head(feats)
    if type(rpn_head) is not RPNHead or not rpn_head.use_sigmoid_cls \
            or len(metas) != 1 or rpn_head.cls_out_channels != 1 \
            or cls_scores[0].device.type != 'cpu':
        return rpn_head.predict_by_feat(cls_scores, bbox_preds,
                                        batch_img_metas=metas, cfg=cfg,
                                        rescale=False)
    cfg = rpn_head.test_cfg if cfg is None else cfg
    nms_pre = cfg.get('nms_pre', -1)
    reg_dim = rpn_head.bbox_coder.encode_size
    priors = rpn_head.prior_generator.grid_priors(
        [c.shape[-2:] for c in cls_scores], dtype=cls_scores[0].dtype,
        device=cls_scores[0].device)
    deltas, anchors, scores, level_ids = [], [], [], []
    for level, (cls, reg, pri) in enumerate(zip(cls_scores, bbox_preds,
                                                priors)):
        reg = reg[0].permute(1, 2, 0).reshape(-1, reg_dim)
        score = cls[0].permute(1, 2, 0).reshape(-1).sigmoid()
        if 0 < nms_pre < score.shape[0]:
            score, inds = score.topk(nms_pre)
            reg, pri = reg[inds], pri[inds]
        deltas.append(reg)
        anchors.append(pri)
        scores.append(score)
        level_ids.append(score.new_full((score.shape[0], ), level,
                                        dtype=torch.long))
    results = InstanceData()
    results.bboxes = rpn_head.bbox_coder.decode(
        torch.cat(anchors), torch.cat(deltas),
        max_shape=metas[0]['img_shape'])
    results.scores = torch.cat(scores)
    results.level_ids = torch.cat(level_ids)
    return [rpn_head._bbox_post_process(results=results, cfg=cfg,
                                        rescale=False, img_meta=metas[0])]
