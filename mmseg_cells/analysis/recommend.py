"""Config values for a cell Mask R-CNN derived from the dataset statistics.

Turns the instance counts (:func:`~.dataset_stats.instance_count_stats`), the
anchor recall table (:func:`~.anchors.anchor_recall_table`) and the box sizes
(:func:`~.dataset_stats.box_stats`) into anchor scales, an input upscale
factor and the RPN / R-CNN test-time caps, each printed with the numbers it
was derived from.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from .anchors import DEFAULT_STRIDES, scale_label

__all__ = ['caps_cfg_options', 'recommend']


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
    default = rec.get((1.0, scale_label([8.0])))
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


def caps_cfg_options(rec: Mapping[str, Any]) -> list[str]:
    """The proposal and detection caps of :func:`recommend`'s result as
    ``--cfg-options`` tokens of ``tools/train.py`` / ``tools/test.py``:
    the RPN's pre-NMS top-k and proposals per image (training and test) and
    the detections per image. Anchors and input scale are left to the
    config (changing them changes the model, not only its caps)."""
    rpn = (f'nms_pre={rec["rpn_nms_pre"]}',
           f'max_per_img={rec["rpn_max_per_img"]}')
    return ([f'model.train_cfg.rpn_proposal.{kv}' for kv in rpn] +
            [f'model.test_cfg.rpn.{kv}' for kv in rpn] +
            [f'model.test_cfg.rcnn.max_per_img={rec["rcnn_max_per_img"]}'])
