"""Convert the hw3 cell data set to COCO JSON files.

Usage (from the repository root, installed or not)::

    python data_converters/hw3_to_coco.py --data-root data/hw3 \
        --out-dir data/hw3/annotations [--val-ratio 0.1] [--seed 0] \
        [--workers N]

Writes ``train.json``, ``val.json``, ``test.json`` (when
``test_image_name_to_ids.json`` exists) and ``stats.json``. On invalid input
it prints ``error: <file>: <problem>`` to stderr, exits with status 1 and
leaves the output folder untouched.
"""
import argparse
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from mmseg_cells.data import (DataFormatError, convert_hw3,  # noqa: E402
                              format_summary)
from mmseg_cells.utils.cli import int_at_least  # noqa: E402

__all__ = ['main', 'parse_args']


def _val_ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'not a number: {text!r}')
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f'must be in [0, 1), got {value}')
    return value


def parse_args(argv=None) -> argparse.Namespace:
    """Parse command-line arguments."""
    parser = argparse.ArgumentParser(
        description='Convert the hw3 cell data set to COCO JSON '
        '(train.json, val.json, test.json, stats.json).')
    parser.add_argument(
        '--data-root',
        required=True,
        help='folder containing train/ (and test_release/ + '
        'test_image_name_to_ids.json)')
    parser.add_argument(
        '--out-dir', required=True, help='output folder for the JSON files')
    parser.add_argument(
        '--val-ratio',
        type=_val_ratio,
        default=0.1,
        help='fraction of training images in val.json, in [0, 1) '
        '(default 0.1)')
    parser.add_argument(
        '--seed', type=int, default=0, help='split seed (default 0)')
    parser.add_argument(
        '--workers',
        type=int_at_least(0),
        default=None,
        help='worker processes (default: CPU count; 0 or 1 = in-process)')
    return parser.parse_args(argv)


def _format_warning(message, category, filename, lineno, line=None) -> str:
    return f'warning: {message}\n'


def main(argv=None) -> int:
    """Run the converter; returns the process exit status."""
    args = parse_args(argv)
    warnings.formatwarning = _format_warning
    try:
        stats = convert_hw3(
            args.data_root,
            args.out_dir,
            val_ratio=args.val_ratio,
            seed=args.seed,
            workers=args.workers,
            progress=sys.stderr.isatty())
    except DataFormatError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(format_summary(stats))
    return 0


if __name__ == '__main__':
    sys.exit(main())
