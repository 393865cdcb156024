#!/usr/bin/env python
"""Cell dataset statistics for tuning a Mask R-CNN config.

Usage (from the repository root)::

    python tools/analysis/cell_stats.py COCO_JSON [--out report.json]
        [--test-info test_image_name_to_ids.json] [--print-cfg-options]

Prints image sizes, instances per image, box sizes, the anchor recall of
candidate anchor settings and the config values derived from them (see
:mod:`mmseg_cells.analysis`; numpy and pycocotools only, no torch or mmdet).
Runs from a source checkout without installation. ``--print-cfg-options``
prints only the derived proposal and detection caps, as ``--cfg-options``
tokens for ``tools/train.py`` / ``tools/test.py`` (``make demo DATA=...``
uses them).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mmseg_cells.analysis import (DEFAULT_CAPS, DEFAULT_RATIOS,  # noqa: E402
                                  DEFAULT_SCALE_SETS, DEFAULT_STRIDES,
                                  DEFAULT_UPSCALES, caps_cfg_options,
                                  format_report,
                                  load_image_sizes, run_cell_stats,
                                  to_jsonable)

__all__ = ['parse_args', 'main']


def _parse_scale_set(text: str) -> tuple[float, ...]:
    """Parse ``"4,8"`` into ``(4.0, 8.0)``."""
    return tuple(float(v) for v in text.split(',') if v.strip())


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line (``sys.argv[1:]`` when ``argv`` is None)."""
    p = argparse.ArgumentParser(
        description='Instance / box-size / anchor-recall statistics of a '
        'COCO ground truth, for tuning a Mask R-CNN config.')
    p.add_argument('coco_json', help='COCO ground-truth JSON')
    p.add_argument('--out', help='write the full report as JSON here')
    p.add_argument('--print-cfg-options', action='store_true',
                   help='print only the derived proposal / detection caps '
                   'as --cfg-options tokens (one line)')
    p.add_argument('--test-info',
                   help='optional JSON with test image sizes (list of '
                   '{height, width} or a COCO dict) for section 0')
    p.add_argument('--scales', nargs='+', type=_parse_scale_set,
                   default=list(DEFAULT_SCALE_SETS),
                   help='anchor scale sets, e.g. 8 4 2 4,8 3,6')
    p.add_argument('--upscales', nargs='+', type=float,
                   default=list(DEFAULT_UPSCALES))
    p.add_argument('--strides', nargs='+', type=int,
                   default=list(DEFAULT_STRIDES))
    p.add_argument('--ratios', nargs='+', type=float,
                   default=list(DEFAULT_RATIOS))
    p.add_argument('--caps', nargs='+', type=int, default=list(DEFAULT_CAPS))
    p.add_argument('--dense-threshold', type=int, default=100)
    p.add_argument('--window', type=int, default=2)
    p.add_argument('--pad-size-divisor', type=int, default=32)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Print the report tables; with ``--out``, also write the report JSON."""
    args = parse_args(argv)
    test_hw = load_image_sizes(args.test_info) if args.test_info else None
    report = run_cell_stats(args.coco_json, args.scales, args.upscales,
                            args.strides, args.ratios, args.caps,
                            args.dense_threshold, args.window,
                            args.pad_size_divisor, test_hw)
    if args.print_cfg_options:
        print(' '.join(caps_cfg_options(report['recommendation'])))
    else:
        print(format_report(report))
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, 'w', encoding='utf-8') as f:
            json.dump(to_jsonable(report), f, indent=2)
        if not args.print_cfg_options:
            print(f'\nreport written to {out}')


if __name__ == '__main__':
    main()
