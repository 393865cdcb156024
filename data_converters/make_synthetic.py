"""Write a synthetic data set in the hw3-data-release layout.

Usage (from the repository root, installed or not)::

    python data_converters/make_synthetic.py --out data/synth \
        [--num-train 30] [--num-test 10] [--seed 0] \
        [--min-side 96] [--max-side 256] [--max-cells 200] [--overwrite]

Writes ``train/<uuid>/image.tif`` + ``classN.tif``, ``test_release/<uuid>.tif``
and ``test_image_name_to_ids.json`` into ``--out`` (see
:mod:`mmseg_cells.data.synthetic`). Refuses with exit status 1 when ``--out``
exists and is not empty, unless ``--overwrite`` is given; ``--overwrite``
replaces only what this tool writes (``train/``, ``test_release/`` and the
JSON file) and leaves anything else in the folder alone.
"""
import argparse
import os
import os.path as osp
import shutil
import sys
import time
from pathlib import Path
from typing import List, Optional
REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
from mmseg_cells.data import synthetic  # noqa: E402
from mmseg_cells.utils.cli import int_at_least  # noqa: E402

__all__ = ['main', 'parse_args']

OUTPUTS = ('train', 'test_release', 'test_image_name_to_ids.json')


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse command-line arguments."""
    parser = argparse.ArgumentParser(
        description='Write a synthetic H&E cell data set in the '
        'hw3-data-release layout.')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--num-train', type=int_at_least(0), default=30,
                        help='training images (default 30)')
    parser.add_argument('--num-test', type=int_at_least(0), default=10,
                        help='test images (default 10)')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    parser.add_argument('--min-side', type=int_at_least(1), default=None,
                        help='smallest image side (default: real range, 93)')
    parser.add_argument('--max-side', type=int_at_least(1), default=None,
                        help='largest image side (default: real range, 2162)')
    parser.add_argument('--max-cells', type=int_at_least(1), default=None,
                        help='most annotated cells per image')
    parser.add_argument('--overwrite', action='store_true',
                        help='replace an earlier synthetic data set in --out')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    """Write the data set; returns the process exit status."""
    args = parse_args(argv)
    out = args.out
    if osp.exists(out) and not osp.isdir(out):
        print(f'error: {out} exists and is not a folder', file=sys.stderr)
        return 1
    if osp.isdir(out) and os.listdir(out):
        if not args.overwrite:
            print(f'error: {out} is not empty; pass --overwrite to replace '
                  'the synthetic data set in it', file=sys.stderr)
            return 1
        for name in OUTPUTS:
            path = osp.join(out, name)
            if osp.isdir(path) and not osp.islink(path):
                shutil.rmtree(path)
            elif osp.lexists(path):
                os.remove(path)
    start = time.perf_counter()
    try:
        summary = synthetic.make_synthetic(
            out, num_train=args.num_train, num_test=args.num_test,
            seed=args.seed, min_side=args.min_side, max_side=args.max_side,
            max_cells=args.max_cells)
    except (ValueError, FileExistsError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    for line in synthetic.format_summary(summary):
        print(line)
    print(f'done in {time.perf_counter() - start:.1f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
