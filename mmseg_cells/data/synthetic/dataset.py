"""Writer of a synthetic data set in the exact hw3-data-release layout::

    out_dir/
        train/<uuid>/image.tif          uint8 RGBA (alpha 255), LZW
        train/<uuid>/class{1..4}.tif    float64 HxW instance-id maps, only for
                                        the classes present in the image; ids
                                        are unique within the image (1..K
                                        over all its class files)
        test_release/<uuid>.tif         uint8 RGBA (alpha 255), LZW
        test_image_name_to_ids.json     [{"file_name", "id", "height",
                                          "width"}, ...]

The files are written with the hw3 writers of :mod:`mmseg_cells.data.io`.

Everything is deterministic: each image draws from its own
``numpy.random.SeedSequence(seed, spawn_key=(split, index))`` stream, so the
same arguments give byte-identical files and the first ``n`` images do not
depend on how many are requested.
"""
import json
import os
import os.path as osp
import uuid
from typing import Dict, List, Optional, Tuple, Union

import numpy as np

from ..io import CLASS_NAMES, write_image_tif, write_instance_map
from .sample import synthesize_sample
from .scene import sample_crowded, sample_image_size

__all__ = ['format_summary', 'make_synthetic']

PathLike = Union[str, os.PathLike]

# Stream key of each split in the per-image seed sequence.
_SPLIT_KEYS = {'train': 0, 'test': 1}


def _draw_image(
    seed: int, split: str, index: int, min_side: Optional[int],
    max_side: Optional[int], max_cells: Optional[int]
) -> Tuple[str, np.ndarray, Dict[int, np.ndarray]]:
    """``(uuid name, rgb, instance maps)`` of image ``index`` of ``split``,
    drawn from the image's own random stream."""
    ss = np.random.SeedSequence(int(seed), spawn_key=(_SPLIT_KEYS[split],
                                                      int(index)))
    rng = np.random.default_rng(ss)
    name = str(uuid.UUID(bytes=rng.bytes(16), version=4))
    crowded = sample_crowded(rng)
    h, w = sample_image_size(rng, min_side, max_side, crowded)
    rgb, masks = synthesize_sample(rng, h, w, max_cells, crowded=crowded)
    return name, rgb, masks


def _nonempty(path: str) -> bool:
    """Whether ``path`` is a non-empty folder or any other existing entry."""
    if osp.isdir(path):
        return bool(os.listdir(path))
    return osp.exists(path)


def make_synthetic(out_dir: PathLike,
                   num_train: int = 30,
                   num_test: int = 10,
                   seed: int = 0,
                   min_side: Optional[int] = None,
                   max_side: Optional[int] = None,
                   max_cells: Optional[int] = None) -> dict:
    """Write a synthetic data set in the hw3-data-release layout.

    Args:
        out_dir: output root; ``train/``, ``test_release/`` and
            ``test_image_name_to_ids.json`` are created inside it. Raises
            ``FileExistsError`` if any of them already exists (non-empty).
        num_train: number of training images (with masks).
        num_test: number of test images (without masks).
        seed: random seed; the same arguments give byte-identical files.
        min_side, max_side: clamp the image sides (default: the real range
            93-2162 px, log-normal like the real sizes). With small images
            the number of cells scales with the area.
        max_cells: upper bound on annotated instances per image.

    Returns:
        dict with ``out_dir``, ``num_train``, ``num_test``,
        ``instances_per_class`` (``{'class1': n, ...}`` over the training
        images), ``instances_per_image`` (list, training images) and
        ``image_sizes`` (list of ``(h, w)``, train then test).
    """
    if num_train < 0 or num_test < 0:
        raise ValueError('num_train and num_test must be >= 0')
    if min_side is not None and min_side < 8:
        raise ValueError(f'min_side must be >= 8, got {min_side}')
    if max_side is not None and max_side < 8:
        raise ValueError(f'max_side must be >= 8, got {max_side}')
    if (min_side is not None and max_side is not None
            and min_side > max_side):
        raise ValueError(f'min_side ({min_side}) > max_side ({max_side})')
    if max_cells is not None and max_cells < 1:
        raise ValueError(f'max_cells must be >= 1, got {max_cells}')
    out_dir = os.fspath(out_dir)
    train_dir = osp.join(out_dir, 'train')
    test_dir = osp.join(out_dir, 'test_release')
    json_path = osp.join(out_dir, 'test_image_name_to_ids.json')
    for p in (train_dir, test_dir, json_path):
        if _nonempty(p):
            raise FileExistsError(f'{p} already exists; refusing to mix '
                                  'data sets (remove it first)')
    os.makedirs(train_dir, exist_ok=True)
    os.makedirs(test_dir, exist_ok=True)

    per_class = {name: 0 for name in CLASS_NAMES}
    per_image: List[int] = []
    sizes: List[Tuple[int, int]] = []
    for i in range(num_train):
        name, rgb, masks = _draw_image(seed, 'train', i, min_side, max_side,
                                       max_cells)
        h, w = rgb.shape[:2]
        d = osp.join(train_dir, name)
        os.makedirs(d, exist_ok=True)
        write_image_tif(osp.join(d, 'image.tif'), rgb)
        n = 0
        for cls in sorted(masks):
            write_instance_map(osp.join(d, f'class{cls}.tif'), masks[cls])
            k = int(np.count_nonzero(np.unique(masks[cls])))
            per_class[f'class{cls}'] += k
            n += k
        per_image.append(n)
        sizes.append((h, w))

    entries = []
    for i in range(num_test):
        name, rgb, _ = _draw_image(seed, 'test', i, min_side, max_side,
                                   max_cells)
        h, w = rgb.shape[:2]
        write_image_tif(osp.join(test_dir, f'{name}.tif'), rgb)
        entries.append(
            dict(file_name=f'{name}.tif', id=i + 1, height=h, width=w))
        sizes.append((h, w))
    with open(json_path, 'w', encoding='utf-8') as f:
        json.dump(entries, f, indent=4)

    return dict(
        out_dir=out_dir,
        num_train=num_train,
        num_test=num_test,
        instances_per_class=per_class,
        instances_per_image=per_image,
        image_sizes=sizes)


def format_summary(summary: dict) -> List[str]:
    """Human-readable lines for the dict returned by :func:`make_synthetic`."""
    counts = summary['instances_per_image']
    lines = [
        f"wrote {summary['num_train']} train + {summary['num_test']} test "
        f"images to {summary['out_dir']}",
        'instances per class: ' + ', '.join(
            f'{k}={v}' for k, v in summary['instances_per_class'].items()),
    ]
    if counts:
        lines.append(f'instances per image: median {np.median(counts):g}, '
                     f'min {min(counts)}, max {max(counts)}')
    return lines
