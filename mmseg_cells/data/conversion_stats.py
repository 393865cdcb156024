"""Statistics of an hw3 -> COCO conversion (``stats.json``) and their text
summary."""
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from .io import CLASS_NAMES

__all__ = ['format_summary', 'summarize_conversion']

_PERCENTILES = (0, 5, 25, 50, 75, 95, 100)


def _percentiles(values: Sequence[float]) -> Optional[Dict[str, float]]:
    """min / p5 / p25 / p50 / p75 / p95 / max rounded to 2 decimals, or
    None for no values."""
    if len(values) == 0:
        return None
    p = np.percentile(np.asarray(values, dtype=np.float64), _PERCENTILES)
    keys = ['min', 'p5', 'p25', 'p50', 'p75', 'p95', 'max']
    return {k: round(float(v), 2) for k, v in zip(keys, p)}


def summarize_conversion(results: List[Dict[str, Any]],
                         train_names: List[str], val_names: List[str],
                         test_images: Optional[List[Dict[str, Any]]],
                         val_ratio: float, seed: int) -> Dict[str, Any]:
    """The statistics written to ``stats.json``.

    Args:
        results: Per-image results of
            :func:`~mmseg_cells.data.hw3_coco.convert_image_dir`.
        train_names: Image (folder) names in ``train.json``.
        val_names: Image names in ``val.json``.
        test_images: Image records of ``test.json``, None without one.
        val_ratio: The split's validation fraction.
        seed: The split's seed.

    Returns:
        dict: Image, instance and per-class counts, percentiles of sizes,
        the reported anomalies and warnings, and the split.
    """
    by_name = {r['name']: r for r in results}

    def per_class(names: Sequence[str]) -> Dict[str, int]:
        return {
            cname: sum(by_name[n]['instances_per_class'][c] for n in names)
            for c, cname in enumerate(CLASS_NAMES, start=1)
        }

    def images_with(names: Sequence[str]) -> Dict[str, int]:
        return {
            cname:
            sum(1 for n in names if by_name[n]['instances_per_class'][c])
            for c, cname in enumerate(CLASS_NAMES, start=1)
        }

    all_names = [r['name'] for r in results]
    widths = [a['bbox'][2] for r in results for a in r['annotations']]
    heights = [a['bbox'][3] for r in results for a in r['annotations']]
    areas = [a['area'] for r in results for a in r['annotations']]
    per_image = [len(r['annotations']) for r in results]
    disconnected = [d for r in results for d in r['disconnected']]
    collisions = [c for r in results for c in r['collisions']]
    return {
        'num_images': len(results),
        'num_train_images': len(train_names),
        'num_val_images': len(val_names),
        'num_test_images':
        None if test_images is None else len(test_images),
        'num_instances': len(areas),
        'instances_per_class': per_class(all_names),
        'train_instances_per_class': per_class(train_names),
        'val_instances_per_class': per_class(val_names),
        'images_per_class': images_with(all_names),
        'train_images_per_class': images_with(train_names),
        'val_images_per_class': images_with(val_names),
        'instances_per_image': _percentiles(per_image),
        'image_height': _percentiles([r['height'] for r in results]),
        'image_width': _percentiles([r['width'] for r in results]),
        'box_width': _percentiles(widths),
        'box_height': _percentiles(heights),
        'box_max_side': _percentiles(
            [max(w, h) for w, h in zip(widths, heights)]),
        'area': _percentiles(areas),
        'num_disconnected_instances': len(disconnected),
        'disconnected_instances': disconnected,
        'num_id_collisions': len(collisions),
        'id_collisions': collisions,
        'all_zero_class_files':
        [p for r in results for p in r['zero_class_files']],
        'images_without_instances':
        [r['file_name'] for r in results if not r['annotations']],
        'warnings': [m for r in results for m in r['warnings']],
        'val_ratio': val_ratio,
        'seed': seed,
        'split': {
            'train': list(train_names),
            'val': list(val_names)
        },
    }


def format_summary(stats: Mapping[str, Any]) -> str:
    """Render the statistics returned by
    :func:`~mmseg_cells.data.hw3_coco.convert_hw3` as text."""

    def fmt_pct(p: Optional[Mapping[str, float]]) -> str:
        if not p:
            return 'n/a'
        return ('min {min:g} / p5 {p5:g} / p25 {p25:g} / median {p50:g} / '
                'p75 {p75:g} / p95 {p95:g} / max {max:g}').format(**p)

    test = stats.get('num_test_images')
    lines = [
        f"images: {stats['num_images']} (train {stats['num_train_images']},"
        f" val {stats['num_val_images']}"
        + (f', test {test})' if test is not None else ')'),
        f"instances: {stats['num_instances']}",
        '  class      total  train    val  images(val)',
    ]
    for cname in CLASS_NAMES:
        lines.append(
            f"  {cname:<8} {stats['instances_per_class'][cname]:>7} "
            f"{stats['train_instances_per_class'][cname]:>6} "
            f"{stats['val_instances_per_class'][cname]:>6}  "
            f"{stats['images_per_class'][cname]}"
            f"({stats['val_images_per_class'][cname]})")
    lines += [
        f"instances/image: {fmt_pct(stats['instances_per_image'])}",
        f"image height: {fmt_pct(stats['image_height'])}",
        f"image width: {fmt_pct(stats['image_width'])}",
        f"box width: {fmt_pct(stats['box_width'])}",
        f"box height: {fmt_pct(stats['box_height'])}",
        f"box max side: {fmt_pct(stats['box_max_side'])}",
        'disconnected instances (8-connectivity): '
        f"{stats['num_disconnected_instances']}",
        'id collisions across class files: '
        f"{stats['num_id_collisions']}",
        f"warnings: {len(stats['warnings'])}",
    ]
    lines += [f'  {m}' for m in stats['warnings'][:20]]
    if len(stats['warnings']) > 20:
        lines.append(f"  ... {len(stats['warnings']) - 20} more in "
                     'stats.json')
    if stats.get('out_dir'):
        lines.append(f"written to: {stats['out_dir']}")
    return '\n'.join(lines)
