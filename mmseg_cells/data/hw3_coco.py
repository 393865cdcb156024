"""Convert the hw3 cell data set into COCO instance-segmentation JSON files.

Input layout (see :mod:`mmseg_cells.data.io`)::

    <data_root>/train/<uuid>/image.tif
    <data_root>/train/<uuid>/class{1..4}.tif   (any subset)
    <data_root>/test_release/<file_name>       (optional)
    <data_root>/test_image_name_to_ids.json    (optional)

Outputs in ``out_dir``: ``train.json``, ``val.json``, ``test.json`` (only if
``test_image_name_to_ids.json`` exists) and ``stats.json``. ``file_name`` in
every image record is relative to ``data_root``.

Semantics:

* Every distinct non-zero id of ``classN.tif`` is one instance of category
  ``N``. The same id value in two class files is two different instances
  (reported as an *id collision*).
* Masks are stored as compressed RLE (``counts`` is a ``str``), ``area`` is
  the pixel count and ``bbox`` the tight ``[x, y, w, h]`` box in integer
  pixels (``w = x1 - x0 + 1``).
* Image ids are ``1..N`` in sorted folder-name order; annotation ids are
  ``1..M`` in (image id, category id, instance id) order, hence unique
  across ``train.json`` and ``val.json``.
* The train/val split is stratified by the rarest class each image contains
  (priority 4 > 3 > 1 > 2 > none) and depends only on the folder names, their
  content and ``seed`` - never on file-system listing order.
* ``val_ratio=0`` puts every image in ``train.json``; ``val.json`` is still
  written as a valid COCO file with no images, so that configs referring to
  it keep loading (but do not evaluate on it).
* Nothing is written unless every image converts: any bad input raises
  :class:`~mmseg_cells.data.io.DataFormatError` and earlier outputs in
  ``out_dir`` stay untouched.

This module drives the conversion (reading the training folders, in a
process pool when asked, and writing the files); instance extraction and
RLE encoding live in :mod:`mmseg_cells.data.instances`, the split in
:mod:`mmseg_cells.data.train_val_split`, the test listing in
:mod:`mmseg_cells.data.test_listing` and ``stats.json`` in
:mod:`mmseg_cells.data.conversion_stats`. It imports neither torch nor mmdet.
"""
import concurrent.futures as cf
import json
import os
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from mmseg_cells.utils.atomic import atomic_write_json
from .conversion_stats import summarize_conversion
from .instances import encode_instances, instances_from_class_maps
from .io import (CLASS_NAMES, DataFormatError, find_class_files, read_image,
                 read_instance_map)
from .test_listing import TEST_IMAGE_DIR, TEST_LISTING, read_test_listing
from .train_val_split import split_train_val

__all__ = [
    'CATEGORIES', 'HW3DataWarning', 'convert_hw3', 'convert_image_dir'
]

PathLike = Union[str, os.PathLike]

#: COCO categories of the hw3 data set.
CATEGORIES: List[Dict[str, Any]] = [{
    'id': i,
    'name': name
} for i, name in enumerate(CLASS_NAMES, start=1)]


class HW3DataWarning(UserWarning):
    """Suspicious but valid input (all-zero class file, image with no
    instances)."""


def convert_image_dir(image_dir: PathLike,
                      data_root: Optional[PathLike] = None) -> Dict[str, Any]:
    """Convert one ``train/<uuid>/`` folder.

    The image is fully decoded (so a truncated or corrupt file is detected
    here) and every class map is validated against its shape.

    Args:
        image_dir: Folder holding ``image.tif`` and ``class*.tif``.
        data_root: Root that ``file_name`` is made relative to (default: two
            levels above ``image_dir``).

    Returns:
        dict: ``name``, ``file_name``, ``height``, ``width``, ``annotations``
        (see :func:`encode_instances`), ``instances_per_class``
        (``{category_id: n}``), ``disconnected``, ``collisions``,
        ``zero_class_files`` and ``warnings``.

    Raises:
        DataFormatError: On any invalid or unreadable file.
    """
    image_dir = Path(image_dir)
    data_root = Path(data_root) if data_root is not None else \
        image_dir.parent.parent
    image_path = image_dir / 'image.tif'
    if not image_path.is_file():
        raise DataFormatError.at(image_path,
                                 'missing image.tif in training folder')
    height, width = read_image(image_path).shape[:2]
    file_name = image_path.relative_to(data_root).as_posix()

    class_maps: Dict[int, np.ndarray] = {}
    zero_files: List[str] = []
    warn_msgs: List[str] = []
    for cat_id, path in find_class_files(image_dir).items():
        ids = read_instance_map(path, expected_shape=(height, width))
        if not ids.any():
            zero_files.append(str(path))
            warn_msgs.append(f'{path}: class file contains no instances '
                             '(all zero)')
            continue
        class_maps[cat_id] = ids

    instances = instances_from_class_maps(class_maps)
    if not instances:
        warn_msgs.append(f'{image_path}: image has no instances')

    per_class = {c: 0 for c in range(1, len(CLASS_NAMES) + 1)}
    disconnected = []
    seen: Dict[int, List[int]] = {}
    for inst in instances:
        per_class[inst.category_id] += 1
        seen.setdefault(inst.instance_id, []).append(inst.category_id)
        n = inst.num_components()
        if n > 1:
            disconnected.append({
                'file_name': file_name,
                'category_id': inst.category_id,
                'instance_id': inst.instance_id,
                'components': n
            })
    collisions = [{
        'file_name': file_name,
        'instance_id': value,
        'category_ids': cats
    } for value, cats in sorted(seen.items()) if len(cats) > 1]

    return {
        'name': image_dir.name,
        'file_name': file_name,
        'height': int(height),
        'width': int(width),
        'annotations': encode_instances(instances),
        'instances_per_class': per_class,
        'disconnected': disconnected,
        'collisions': collisions,
        'zero_class_files': zero_files,
        'warnings': warn_msgs,
    }


def _test_images(data_root: Path) -> Optional[List[Dict[str, Any]]]:
    """The ``test.json`` image records from the validated test listing, or
    None (with a warning when only one of the two is present) unless both
    the listing and ``test_release/`` exist."""
    list_path = data_root / TEST_LISTING
    test_dir = data_root / TEST_IMAGE_DIR
    if not list_path.exists() or not test_dir.is_dir():
        if list_path.exists() or test_dir.is_dir():
            present, missing = ((list_path, test_dir) if list_path.exists()
                                else (test_dir, list_path))
            warnings.warn(
                f'{present}: found without {missing.name}; the test part is '
                'incomplete, test.json is not written', HW3DataWarning)
        return None
    return [{
        'id': e['id'],
        'file_name': f'{TEST_IMAGE_DIR}/{e["file_name"]}',
        'height': e['height'],
        'width': e['width']
    } for e in read_test_listing(data_root)]


def _convert_worker(image_dir: str, data_root: str) -> Dict[str, Any]:
    """:func:`convert_image_dir` with picklable arguments (process pool)."""
    return convert_image_dir(image_dir, data_root)


def _run_all(dirs: Sequence[Path], data_root: Path, workers: int,
             progress: bool) -> List[Dict[str, Any]]:
    """Convert all folders (in a process pool when ``workers > 1``)."""
    from tqdm import tqdm
    bar = tqdm(
        total=len(dirs), desc='hw3->coco', unit='img', disable=not progress)
    results: Dict[str, Dict[str, Any]] = {}
    try:
        if workers <= 1:
            for d in dirs:
                results[d.name] = convert_image_dir(d, data_root)
                bar.update(1)
        else:
            ex = cf.ProcessPoolExecutor(max_workers=workers)
            futures = {
                ex.submit(_convert_worker, str(d), str(data_root)): d.name
                for d in dirs
            }
            try:
                for fut in cf.as_completed(futures):
                    if fut.exception() is not None:
                        break
                    results[futures[fut]] = fut.result()
                    bar.update(1)
            finally:
                ex.shutdown(wait=True, cancel_futures=True)
            failed = sorted(
                (futures[f], f) for f in futures
                if f.done() and not f.cancelled()
                and f.exception() is not None)
            if failed:
                raise failed[0][1].exception()
    finally:
        bar.close()
    return [results[d.name] for d in dirs]


def _coco(images: List[Dict], annotations: List[Dict],
          split: str) -> Dict[str, Any]:
    """A COCO instance-segmentation file of the hw3 categories."""
    return {
        'info': {
            'description': f'hw3 cells ({split}), converted by mmseg_cells'
        },
        'images': images,
        'annotations': annotations,
        'categories': CATEGORIES,
    }


def convert_hw3(data_root: PathLike,
                out_dir: PathLike,
                val_ratio: float = 0.1,
                seed: int = 0,
                workers: Optional[int] = None,
                progress: bool = True) -> Dict[str, Any]:
    """Convert an hw3 data root to COCO ``train.json``/``val.json``
    (+ ``test.json``) and ``stats.json`` in ``out_dir``.

    Args:
        data_root: Folder containing ``train/`` (and optionally
            ``test_release/`` with ``test_image_name_to_ids.json``).
        out_dir: Output folder (created if needed).
        val_ratio: Fraction of training images put in ``val.json``,
            in ``[0, 1)``. 0 keeps every image in ``train.json`` and writes
            an empty (valid) ``val.json``.
        seed: Seed of the stratified split.
        workers: Worker processes; default ``os.cpu_count()``. 0 or 1 runs
            in the calling process.
        progress: Show a tqdm progress bar.

    Returns:
        dict: Statistics (also written to ``stats.json``); render with
        :func:`~mmseg_cells.data.conversion_stats.format_summary`.

    Raises:
        DataFormatError: Naming the file and problem, for any invalid input.
            No output file is written or modified in that case.
        ValueError: If ``val_ratio`` is outside ``[0, 1)``.
    """
    if not 0 <= val_ratio < 1:
        raise ValueError(f'val_ratio must be in [0, 1), got {val_ratio}')
    data_root = Path(data_root)
    out_dir = Path(out_dir)
    train_root = data_root / 'train'
    if not train_root.is_dir():
        raise DataFormatError.at(train_root,
                                 'training folder does not exist')
    dirs = sorted((p for p in train_root.iterdir()
                   if p.is_dir() and not p.name.startswith('.')),
                  key=lambda p: p.name)
    if not dirs:
        raise DataFormatError.at(train_root,
                                 'no training images (no sub-folders)')
    for d in dirs:  # cheap checks first: fail before the heavy work
        if not (d / 'image.tif').is_file():
            raise DataFormatError.at(d / 'image.tif',
                                     'missing image.tif in training folder')
    test_images = _test_images(data_root)

    if workers is None:
        workers = os.cpu_count() or 1
    workers = max(0, min(int(workers), len(dirs)))
    results = _run_all(dirs, data_root, workers, progress)

    # Ids: images in sorted name order, annotations in image order.
    ann_id = 0
    image_recs, anns_by_image = {}, {}
    for img_id, res in enumerate(results, start=1):
        image_recs[res['name']] = {
            'id': img_id,
            'file_name': res['file_name'],
            'height': res['height'],
            'width': res['width']
        }
        anns = []
        for a in res['annotations']:
            ann_id += 1
            anns.append({'id': ann_id, 'image_id': img_id, **a})
        anns_by_image[res['name']] = anns

    image_classes = {
        r['name']: {c
                    for c, n in r['instances_per_class'].items() if n}
        for r in results
    }
    train_names, val_names = split_train_val(image_classes, val_ratio, seed)

    def build(names: Sequence[str], split: str) -> Dict[str, Any]:
        return _coco([image_recs[n] for n in names],
                     [a for n in names for a in anns_by_image[n]], split)

    train_coco = build(train_names, 'train')
    val_coco = build(val_names, 'val')

    stats = summarize_conversion(results, train_names, val_names,
                                 test_images, val_ratio, seed)
    stats['out_dir'] = str(out_dir)
    # Serialise everything before touching out_dir.
    outputs = [('train.json', train_coco), ('val.json', val_coco)]
    if test_images is not None:
        outputs.append(('test.json', _coco(test_images, [], 'test')))
    outputs.append(('stats.json', stats))
    for _, obj in outputs:
        json.dumps(obj)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, obj in outputs:
        atomic_write_json(out_dir / name, obj)

    for msg in stats['warnings']:
        warnings.warn(msg, HW3DataWarning, stacklevel=2)
    return stats

