"""Inference-only fast paths of mmdet's RoI heads: same values, less work.

* :func:`extract_roi_feats`: RoI features of ``SingleRoIExtractor`` without
  the zero-fill + copy and the training-time ``0 * feats.sum()`` terms, by
  :func:`roi_pool` (on CPU :func:`~mmseg_cells.ops.roi_align_nhwc`, which
  reads channels-last maps without a copy);
* :func:`predict_bbox`: ``StandardRoIHead.predict_bbox`` on those features;
* :func:`mask_probs`: the mask head in chunks, its deconv + logits tail as
  matrix products for each RoI's own class (:func:`mask_logits_fast`) when
  :func:`has_fast_mask_tail` recognises the head.

Other heads and extractors run mmdet's own code on contiguous (NCHW) maps.
"""
from typing import List, Sequence, Tuple

import torch
from torch import nn

__all__ = [
    'MASK_CHUNK', 'extract_roi_feats', 'has_fast_mask_tail',
    'mask_logits_fast', 'mask_probs', 'predict_bbox', 'roi_pool', 'to_nchw'
]

# RoIs per mask-head call: its upsampled 256 x 28 x 28 maps take 0.8 MB per
# RoI, 0.8 GB for 1000 detections at once
MASK_CHUNK = 128


def to_nchw(feats: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
    """Contiguous (NCHW) copies of channels-last maps, for mmdet/mmcv code
    that needs them (mmcv's RoIAlign ignores strides)."""
    return tuple(f.contiguous() for f in feats)


def roi_pool(layer: nn.Module, feat: torch.Tensor,
             rois: torch.Tensor) -> torch.Tensor:
    """``layer(feat, rois)``; mmcv's average-mode ``RoIAlign`` on CPU runs
    as :func:`~mmseg_cells.ops.roi_align_nhwc` (same values up to float32
    rounding, ~4x faster on 2 cores, reads channels-last maps without a
    copy). Other layers and devices call ``layer`` (which needs a
    contiguous NCHW ``feat``)."""
    from mmcv.ops import RoIAlign
    if type(layer) is RoIAlign and layer.pool_mode == 'avg' and \
            not layer.use_torchvision and feat.device.type == 'cpu':
        from mmseg_cells.ops import roi_align_nhwc
        return roi_align_nhwc(feat, rois, layer.output_size,
                              layer.spatial_scale, layer.sampling_ratio,
                              layer.aligned)
    return layer(feat.contiguous(), rois)


def extract_roi_feats(extractor: nn.Module, feats: Sequence[torch.Tensor],
                      rois: torch.Tensor) -> torch.Tensor:
    """``extractor(feats[:num_inputs], rois)`` for inference.

    For mmdet's ``SingleRoIExtractor`` the same values with less work: the
    RoIs of each pyramid level go through that level's RoIAlign as there
    (by :func:`roi_pool`), but when they all map to one level (typical for
    cells, which all pool from P2) its output is returned as is instead of
    being copied into a zero-filled tensor, and levels without RoIs are
    skipped instead of adding ``0 * feats[i].sum()`` (a training-time trick
    that keeps every level in the autograd graph for DDP) to every output.
    Other extractors get contiguous (NCHW) maps.
    """
    from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
    feats = feats[:extractor.num_inputs]
    if type(extractor) is not SingleRoIExtractor or len(rois) == 0:
        return extractor(to_nchw(feats), rois)
    rois = rois.type_as(feats[0])
    if len(feats) == 1:
        return roi_pool(extractor.roi_layers[0], feats[0], rois)
    levels = extractor.map_roi_levels(rois, len(feats))
    out = None
    for i in range(len(feats)):
        inds = (levels == i).nonzero(as_tuple=False).squeeze(1)
        if inds.numel() == 0:
            continue
        if inds.numel() == len(rois):  # all RoIs on this level, in order
            return roi_pool(extractor.roi_layers[i], feats[i], rois)
        part = roi_pool(extractor.roi_layers[i], feats[i], rois[inds])
        if out is None:
            # every RoI maps to exactly one level: all rows get written
            out = part.new_empty((len(rois), ) + part.shape[1:])
        out[inds] = part
    return out


def predict_bbox(roi_head: nn.Module, feats: Sequence[torch.Tensor],
                 metas: List[dict], rpn: list, cfg=None):
    """``roi_head.predict_bbox`` (``rescale=False``) for one image: its
    ``InstanceData`` of boxes in network-input coordinates, under the test
    config ``cfg`` (default: the head's own).

    For mmdet's ``StandardRoIHead`` the box head gets its RoI features from
    :func:`extract_roi_feats` (same values, less work); other heads, and
    batches other than one image with proposals, run mmdet's code.
    """
    from mmdet.models.roi_heads import StandardRoIHead
    from mmdet.structures.bbox import bbox2roi
    cfg = roi_head.test_cfg if cfg is None else cfg
    if type(roi_head) is not StandardRoIHead or roi_head.with_shared_head \
            or len(rpn) != 1 or len(rpn[0]) == 0:
        return roi_head.predict_bbox(to_nchw(feats), metas, rpn, cfg,
                                     rescale=False)[0]
    rois = bbox2roi([rpn[0].bboxes])
    cls_score, bbox_pred = roi_head.bbox_head(
        extract_roi_feats(roi_head.bbox_roi_extractor, feats, rois))
    return roi_head.bbox_head.predict_by_feat(
        rois=(rois, ), cls_scores=(cls_score, ), bbox_preds=(bbox_pred, ),
        batch_img_metas=metas, rcnn_test_cfg=cfg, rescale=False)[0]


def has_fast_mask_tail(roi_head: nn.Module) -> bool:
    """Whether the mask head is mmdet's FCNMaskHead (or a subclass that
    keeps its ``forward``, like :class:`CropFCNMaskHead`) with the standard
    tail (2x2 stride-2 deconv + ReLU, 1x1 logits conv), which
    :func:`mask_logits_fast` computes."""
    from mmcv.cnn.bricks import wrappers
    from mmdet.models.roi_heads.mask_heads import FCNMaskHead
    deconvs = (nn.ConvTranspose2d, wrappers.ConvTranspose2d)
    convs = (nn.Conv2d, wrappers.Conv2d)
    mh = roi_head.mask_head
    up, lg = getattr(mh, 'upsample', None), mh.conv_logits
    return bool(
        isinstance(mh, FCNMaskHead)
        and type(mh).forward is FCNMaskHead.forward
        and not roi_head.with_shared_head
        and mh.upsample_method == 'deconv'
        and type(up) in deconvs
        and up.kernel_size == (2, 2) and up.stride == (2, 2)
        and up.padding == (0, 0) and up.output_padding == (0, 0)
        and up.dilation == (1, 1) and up.groups == 1
        and up.bias is not None and type(lg) in convs
        and lg.kernel_size == (1, 1) and lg.stride == (1, 1)
        and lg.padding == (0, 0) and lg.groups == 1
        and lg.bias is not None)


def mask_logits_fast(roi_head: nn.Module, feats: Sequence[torch.Tensor],
                     rois: torch.Tensor,
                     labels: torch.Tensor) -> torch.Tensor:
    """(N, 2S, 2S) mask logits of each RoI's own class.

    The same function as ``FCNMaskHead.forward`` followed by picking the
    label's channel, with the tail restructured: a 2x2 stride-2 deconv
    maps every input pixel to its own 2x2 output block, so it is one
    matrix product ``(N*S*S, C) @ (C, 4*C')``; after the ReLU only the
    label's row of the 1x1 logits conv is applied (a batched
    matrix-vector product) instead of all classes' rows to all RoIs.
    This skips the deconv's layout conversion of its (N, C', 2S, 2S)
    output and 3/4 of the logits conv. Probabilities equal mmdet's up
    to float32 summation order (~1e-6). Needs :func:`has_fast_mask_tail`.
    """
    mh = roi_head.mask_head
    x = extract_roi_feats(roi_head.mask_roi_extractor, feats, rois)
    for conv in mh.convs:
        x = conv(x)
    n, c, h, w = x.shape
    up, lg = mh.upsample, mh.conv_logits
    o = up.out_channels
    # deconv weight (C, C', 2, 2) -> (C, 4 * C'), column (a*2+b)*C'+o'
    wd = up.weight.permute(0, 2, 3, 1).reshape(c, 4 * o)
    y = torch.addmm(up.bias.repeat(4), x.permute(0, 2, 3, 1).reshape(
        n * h * w, c), wd).relu_()  # (N*S*S, 4*C'), rows (n, y, x)
    wl = lg.weight.view(lg.out_channels, o)
    cls = labels if lg.out_channels > 1 else torch.zeros_like(labels)
    logits = torch.bmm(y.view(n, h * w * 4, o), wl[cls].unsqueeze(2))
    logits = logits.view(n, h, w, 2, 2) + lg.bias[cls].view(n, 1, 1, 1, 1)
    # (n, y, x, a, b) -> (n, 2y+a, 2x+b)
    return logits.permute(0, 1, 3, 2, 4).reshape(n, 2 * h, 2 * w)


@torch.no_grad()
def mask_probs(roi_head: nn.Module, feats: Sequence[torch.Tensor],
               boxes: torch.Tensor, labels: torch.Tensor,
               chunk: int = MASK_CHUNK) -> torch.Tensor:
    """(N, M, M) mask probabilities of each box's own class (class-agnostic
    heads: their one channel), for boxes in network-input coordinates.

    The mask head runs on ``chunk`` RoIs at a time (bounded memory); by
    :func:`mask_logits_fast` when :func:`has_fast_mask_tail`, else by
    mmdet's ``_mask_forward`` on NCHW maps.
    """
    from mmdet.structures.bbox import bbox2roi
    if boxes.shape[0] == 0:  # no roi: nothing to run (empty probs)
        return boxes.new_zeros((0, 1, 1))
    out = []
    fast = has_fast_mask_tail(roi_head)
    if not fast:  # mmdet's head with mmcv's RoIAlign: NCHW maps
        feats = to_nchw(feats)
    for i in range(0, len(boxes), chunk):
        rois = bbox2roi([boxes[i:i + chunk]])
        lab = labels[i:i + chunk]
        if fast:
            preds = mask_logits_fast(roi_head, feats, rois, lab)
        else:
            preds = roi_head._mask_forward(feats, rois)['mask_preds']
            if preds.shape[1] > 1:  # class-specific masks
                preds = preds[torch.arange(len(lab)), lab]
            else:
                preds = preds[:, 0]
        out.append(preds.sigmoid())
    return torch.cat(out)
