#!/usr/bin/env python
"""Score a COCO results file by mask AP50, the way the leaderboard does.

Usage::

    python tools/eval_ap50.py GT_JSON RESULTS_JSON [--verbose]

Prints segm AP50 with pycocotools' default COCOeval parameters (maxDets
100, the leaderboard number), the same metric with maxDets 1000, and a
per-class AP50 table. Exits 1 with ``error: ...`` on bad input (missing
file, invalid JSON, wrong structure). Runs from a source checkout without
installation.
"""
import argparse
import sys
import warnings
from pathlib import Path
from typing import Callable, List, Optional


REPO_ROOT = Path(__file__).resolve().parents[1]


def _import_evaluate_ap50() -> Callable:
    """``evaluate_ap50``, from this checkout if the package is not installed."""
    sys.path.insert(0, str(REPO_ROOT))
    from mmseg_cells.evaluation.ap50 import evaluate_ap50
    return evaluate_ap50


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Mask AP50 of a COCO results file (pycocotools '
        'COCOeval, as on the leaderboard).')
    parser.add_argument('gt', metavar='GT_JSON', help='COCO ground truth')
    parser.add_argument(
        'results',
        metavar='RESULTS_JSON',
        help='COCO results: a list of {image_id, category_id, score, '
        'segmentation (RLE)}')
    parser.add_argument(
        '--verbose',
        action='store_true',
        help='show pycocotools output, including the full summary tables')
    return parser.parse_args(argv)


def _fmt(value: float) -> str:
    return '   n/a' if value < 0 else f'{value:.4f}'


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    evaluate_ap50 = _import_evaluate_ap50()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')  # reported from the dict below
            metrics = evaluate_ap50(
                args.gt, args.results, max_dets=(100, 1000),
                verbose=args.verbose)
    except (OSError, ValueError, TypeError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    for msg in metrics['warnings']:
        print(f'warning: {msg}', file=sys.stderr)

    print(f'images: {metrics["num_images"]}  '
          f'detections: {metrics["num_dets"]}  '
          f'ground truth: {sum(metrics["num_gt"].values())}')
    print(f'segm AP50 (COCOeval defaults, maxDets=100): '
          f'{metrics["ap50@100"]:.4f}')
    print(f'segm AP50 (maxDets=1000):                  '
          f'{metrics["ap50@1000"]:.4f}')
    names = list(metrics['per_class@1000'])
    width = max([len('class')] + [len(n) for n in names])
    print()
    print(f'{"class":<{width}}  {"#gt":>6}  {"AP50@100":>8}  '
          f'{"AP50@1000":>9}')
    for name in names:
        print(f'{name:<{width}}  {metrics["num_gt"][name]:>6d}  '
              f'{_fmt(metrics["per_class@100"][name]):>8}  '
              f'{_fmt(metrics["per_class@1000"][name]):>9}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
