"""The cell statistics report: computed, rendered as text, made JSON-safe.

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
3. Anchor recall of candidate anchor settings and input upscale factors
   (:mod:`.anchors`).
4. Recommendations derived from the above (:mod:`.recommend`).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .anchors import (DEFAULT_RATIOS, DEFAULT_SCALE_SETS, DEFAULT_STRIDES,
                      anchor_recall_table)
from .dataset_stats import (DEFAULT_CAPS, DEFAULT_UPSCALES, box_stats,
                            coco_boxes_xyxy, image_size_stats, images_hw,
                            instance_count_stats, load_coco)
from .recommend import recommend

__all__ = ['run_cell_stats', 'format_table', 'format_report', 'to_jsonable']


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
        window: Grid window of :func:`~.anchors.max_anchor_iou`.
        pad_size_divisor: Padding divisor of the data preprocessor.
        test_hw: Optional (M, 2) test image sizes for section 0.
    """
    coco = load_coco(coco)
    data = coco_boxes_xyxy(coco)
    counts = np.bincount(data['image_index'], minlength=len(coco['images']))
    img_hw = images_hw(coco['images'])
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


def to_jsonable(obj: Any) -> Any:
    """Convert numpy scalars, float keys and NaN (-> ``None``) of a report
    for ``json.dump``."""
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and math.isnan(obj):
        return None
    return obj
