"""Write a synthetic whole-slide image (pyramidal tiled TIFF).

Usage (from the repository root, installed or not)::

    python data_converters/make_synthetic_slide.py --out slide.tif \
        [--height 10000] [--width 10000] [--seed 0] [--tile 512] \
        [--look he] [--tissue 0.45] [--overwrite]

Tissue regions of synthetic H&E with cells on white glass (see
:mod:`mmseg_cells.data.synthetic.slide`), level 0 written one tile at a
time plus 1/8 and 1/32 levels, for ``tools/predict.py --slides`` and
``benchmarks/slide_predict.py``. Refuses to replace an existing file
without ``--overwrite``; the file appears only when complete.
"""
import argparse
import os.path as osp
import sys
import time
from pathlib import Path
from typing import List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mmseg_cells.data.synthetic import LOOKS  # noqa: E402
from mmseg_cells.data.synthetic.slide import write_synthetic_slide  # noqa
from mmseg_cells.utils.cli import int_at_least  # noqa: E402

__all__ = ['main', 'parse_args']


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse command-line arguments."""
    p = argparse.ArgumentParser(
        description='Write a synthetic pyramidal whole-slide TIFF.')
    p.add_argument('--out', required=True, help='output .tif')
    p.add_argument('--height', type=int_at_least(64), default=10000)
    p.add_argument('--width', type=int_at_least(64), default=10000)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--tile', type=int_at_least(64), default=512,
                   help='TIFF tile side (a multiple of 16)')
    p.add_argument('--look', choices=LOOKS, default='he')
    p.add_argument('--tissue', type=float, default=0.45,
                   help='fraction of the slide covered by tissue')
    p.add_argument('--overwrite', action='store_true')
    args = p.parse_args(argv)
    if args.tile % 16:
        p.error('--tile must be a multiple of 16 (TIFF tiles)')
    if not 0 < args.tissue <= 1:
        p.error('--tissue must be in (0, 1]')
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if osp.exists(args.out) and not args.overwrite:
        print(f'error: {args.out}: exists (use --overwrite)',
              file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    info = write_synthetic_slide(args.out, args.height, args.width,
                                 args.seed, args.tile, args.look,
                                 args.tissue)
    print(f'{args.out}: {args.width}x{args.height}, {info["tiles"]} tiles '
          f'({info["tissue_tiles"]} with tissue) in '
          f'{time.perf_counter() - t0:.1f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
