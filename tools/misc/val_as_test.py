#!/usr/bin/env python
"""Lay out the images of a COCO annotation file as a test set.

Usage (from the repository root)::

    python tools/misc/val_as_test.py ANN_JSON DATA_ROOT OUT_DIR

Writes ``OUT_DIR/test_release/<name>.tif`` (symbolic links to the images,
whose ``file_name`` in ``ANN_JSON`` is relative to ``DATA_ROOT``) and
``OUT_DIR/test_image_name_to_ids.json`` with the annotation file's image ids
and sizes: ``tools/predict.py --data-root OUT_DIR`` then predicts them as it
predicts the real test set, and ``tools/eval_ap50.py ANN_JSON
OUT/test-results.json`` scores the result. ``make demo DATA=...`` uses it for
a data set without ``test_release/`` (its validation images);
``benchmarks/real_accuracy.py`` for its held-out images. ``<name>`` is the
image's folder (``train/<name>/image.tif``) or file stem.
"""
import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from mmseg_cells.data import TEST_IMAGE_DIR, TEST_LISTING  # noqa: E402
from mmseg_cells.utils import atomic_write_json  # noqa: E402

__all__ = ['val_as_test', 'main']


def _test_name(file_name: str) -> str:
    path = Path(file_name)
    stem = path.parent.name if path.stem == 'image' else path.stem
    return f'{stem}.tif'


def val_as_test(ann_file: Path, data_root: Path,
                out_dir: Path) -> List[Dict[str, object]]:
    """Write the test layout of ``ann_file``'s images into ``out_dir``
    (its ``test_release/`` is replaced); returns the listing."""
    with open(ann_file, encoding='utf-8') as f:
        images = json.load(f)['images']
    if not images:
        raise ValueError(f'{ann_file}: no images')
    test_dir = out_dir / TEST_IMAGE_DIR
    shutil.rmtree(test_dir, ignore_errors=True)
    test_dir.mkdir(parents=True)
    listing, seen = [], set()
    for im in images:
        src = (data_root / im['file_name']).resolve()
        if not src.is_file():
            raise FileNotFoundError(f'{src}: listed in {ann_file}, not found')
        name = _test_name(im['file_name'])
        if name in seen:
            raise ValueError(f'{ann_file}: two images map to {name}')
        seen.add(name)
        os.symlink(src, test_dir / name)
        listing.append(dict(file_name=name, id=im['id'],
                            height=im['height'], width=im['width']))
    atomic_write_json(out_dir / TEST_LISTING, listing)
    return listing


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description='Lay out the images of a COCO annotation file as a test '
        'set (test_release/ + test_image_name_to_ids.json).')
    parser.add_argument('ann_file', type=Path, help='COCO JSON (e.g. '
                        'annotations/val.json)')
    parser.add_argument('data_root', type=Path,
                        help='root its file_name entries are relative to')
    parser.add_argument('out_dir', type=Path)
    args = parser.parse_args(argv)
    try:
        listing = val_as_test(args.ann_file, args.data_root, args.out_dir)
    except (OSError, ValueError, KeyError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    print(f'{len(listing)} images -> {args.out_dir / TEST_IMAGE_DIR}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
