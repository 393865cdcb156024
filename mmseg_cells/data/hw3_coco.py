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

This module imports neither torch nor mmdet.
"""
import concurrent.futures as cf
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import (Any, Collection, Dict, List, Mapping, Optional, Sequence,
                    Tuple, Union)

import numpy as np
from scipy import ndimage

from mmseg_cells.mask_codec import encode_crop_rle
from mmseg_cells.utils.atomic import atomic_write_json
from .io import (CLASS_NAMES, DataFormatError, find_class_files, read_image,
                 read_image_size, read_instance_map)

__all__ = [
    'CATEGORIES', 'HW3DataWarning', 'Instance', 'convert_hw3',
    'convert_image_dir', 'encode_instances', 'format_summary',
    'instances_from_class_maps', 'split_train_val'
]

PathLike = Union[str, os.PathLike]

#: COCO categories of the hw3 data set.
CATEGORIES: List[Dict[str, Any]] = [{
    'id': i,
    'name': name
} for i, name in enumerate(CLASS_NAMES, start=1)]

#: Stratum priority of the split: rarest class first; 0 = no instances.
_STRATUM_ORDER: Tuple[int, ...] = (4, 3, 1, 2, 0)

#: Ids larger than this are compacted before ``ndimage.find_objects`` (whose
#: output has one entry per id value up to the maximum).
_MAX_DIRECT_LABEL = 1 << 20

_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)

_PERCENTILES = (0, 5, 25, 50, 75, 95, 100)


class HW3DataWarning(UserWarning):
    """Suspicious but valid input (all-zero class file, image with no
    instances)."""


@dataclass(frozen=True, eq=False)
class Instance:
    """One object instance, stored as a tight boolean crop.

    Attributes:
        category_id: COCO category id (``N`` of ``classN.tif``).
        instance_id: The id value in the class map.
        y0: Top row of the crop in the image.
        x0: Left column of the crop in the image.
        mask: ``h x w`` bool crop; its bounding box is tight.
        image_shape: ``(H, W)`` of the full image.
    """
    category_id: int
    instance_id: int
    y0: int
    x0: int
    mask: np.ndarray
    image_shape: Tuple[int, int]

    @property
    def bbox(self) -> List[int]:
        """Tight ``[x, y, w, h]`` box in integer pixels."""
        h, w = self.mask.shape
        return [self.x0, self.y0, w, h]

    @property
    def area(self) -> int:
        """Number of mask pixels."""
        return int(np.count_nonzero(self.mask))

    def full_mask(self) -> np.ndarray:
        """Return the ``H x W`` bool mask."""
        out = np.zeros(self.image_shape, dtype=bool)
        h, w = self.mask.shape
        out[self.y0:self.y0 + h, self.x0:self.x0 + w] = self.mask
        return out

    def num_components(self) -> int:
        """Number of 8-connected components of the mask."""
        return int(ndimage.label(self.mask, structure=_EIGHT_CONNECTED)[1])


def instances_from_class_maps(
        class_maps: Mapping[int, np.ndarray]) -> List[Instance]:
    """Split per-class instance-id maps into instances.

    Args:
        class_maps: ``{category_id: H x W integer id map}``; 0 is background.
            All maps must have the same shape.

    Returns:
        list[Instance]: One entry per distinct non-zero id of every map,
        ordered by category id, then id value. The same id in two maps gives
        two instances.
    """
    instances: List[Instance] = []
    shapes = {tuple(m.shape) for m in class_maps.values()}
    if len(shapes) > 1:
        raise ValueError(f'class maps have different shapes: {shapes}')
    for cat_id in sorted(class_maps):
        ids = np.asarray(class_maps[cat_id])
        if ids.ndim != 2:
            raise ValueError(f'class map {cat_id} is not 2-D: {ids.shape}')
        if not np.issubdtype(ids.dtype, np.integer):
            ids = ids.astype(np.int64)
        image_shape = (int(ids.shape[0]), int(ids.shape[1]))
        max_id = int(ids.max()) if ids.size else 0
        if max_id == 0:
            continue
        if max_id > _MAX_DIRECT_LABEL:
            values, labels = np.unique(ids, return_inverse=True)
            labels = labels.reshape(ids.shape)
            # values[0] is 0 (background) unless the map has no background.
            offset = 0 if values[0] == 0 else 1
            labels = labels + offset
            values = np.concatenate([[0], values]) if offset else values
        else:
            labels, values = ids, None
        for idx, sl in enumerate(ndimage.find_objects(labels), start=1):
            if sl is None:
                continue
            crop = labels[sl] == idx
            value = idx if values is None else int(values[idx])
            instances.append(
                Instance(
                    category_id=int(cat_id),
                    instance_id=int(value),
                    y0=int(sl[0].start),
                    x0=int(sl[1].start),
                    mask=crop,
                    image_shape=image_shape))
    return instances


def encode_instances(instances: Sequence[Instance]) -> List[Dict[str, Any]]:
    """COCO annotation fields (without ``id``/``image_id``) for instances:
    ``category_id``, ``segmentation`` (compressed RLE, ``counts`` str),
    ``area``, ``bbox`` and ``iscrowd``."""
    if not instances:
        return []
    height, width = instances[0].image_shape
    return [{
        'category_id': inst.category_id,
        'segmentation': encode_crop_rle(inst.mask, inst.x0, inst.y0, height,
                                        width),
        'area': inst.area,
        'bbox': inst.bbox,
        'iscrowd': 0,
    } for inst in instances]


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


def _stratum(classes: Collection[int]) -> int:
    for c in _STRATUM_ORDER[:-1]:
        if c in classes:
            return c
    return 0


def split_train_val(image_classes: Mapping[str, Collection[int]],
                    val_ratio: float,
                    seed: int = 0) -> Tuple[List[str], List[str]]:
    """Deterministic stratified train/val split.

    Each image is keyed by the rarest class it contains (4 > 3 > 1 > 2 >
    none); every stratum's sorted names are shuffled with
    ``numpy.random.default_rng(seed)`` and ``round(val_ratio * n)`` of them go
    to val. With ``val_ratio > 0`` and at least two images, val and train
    each get at least one image.

    Args:
        image_classes: ``{image name: category ids present}``.
        val_ratio: Fraction in ``[0, 1)``.
        seed: Random seed.

    Returns:
        tuple[list[str], list[str]]: Sorted train and val names.
    """
    if not 0 <= val_ratio < 1:
        raise ValueError(f'val_ratio must be in [0, 1), got {val_ratio}')
    rng = np.random.default_rng(seed)
    strata: Dict[int, List[str]] = {s: [] for s in _STRATUM_ORDER}
    for name in sorted(image_classes):
        strata[_stratum(set(image_classes[name]))].append(name)
    val: List[str] = []
    rest: Dict[int, List[str]] = {}  # shuffled names left in train
    for s in _STRATUM_ORDER:
        names = strata[s]
        order = [names[i] for i in rng.permutation(len(names))]
        k = int(np.floor(val_ratio * len(names) + 0.5)) if val_ratio else 0
        val.extend(order[:k])
        rest[s] = order[k:]
    n = len(image_classes)
    if val_ratio > 0 and n >= 2:
        # Largest stratum first; ties by stratum priority.
        by_size = sorted(
            _STRATUM_ORDER,
            key=lambda s: (-len(strata[s]), _STRATUM_ORDER.index(s)))
        if not val:
            s = next(s for s in by_size if rest[s])
            val.append(rest[s].pop(0))
        if len(val) == n:
            for s in by_size:
                if any(x in val for x in strata[s]):
                    moved = next(x for x in reversed(val) if x in strata[s])
                    val.remove(moved)
                    break
    val_set = set(val)
    train = sorted(x for x in image_classes if x not in val_set)
    return train, sorted(val_set)


def _load_test_list(data_root: Path) -> Optional[List[Dict[str, Any]]]:
    """Read and validate ``test_image_name_to_ids.json`` (None if absent)."""
    list_path = data_root / 'test_image_name_to_ids.json'
    test_dir = data_root / 'test_release'
    if not list_path.exists() or not test_dir.is_dir():
        if list_path.exists() or test_dir.is_dir():
            present, missing = ((list_path, test_dir) if list_path.exists()
                                else (test_dir, list_path))
            warnings.warn(
                f'{present}: found without {missing.name}; the test part is '
                'incomplete, test.json is not written', HW3DataWarning)
        return None
    try:
        with open(list_path, encoding='utf-8') as f:
            entries = json.load(f)
    except (OSError, ValueError) as e:
        raise DataFormatError.at(list_path, f'cannot read JSON ({e})') from e
    if not isinstance(entries, list):
        raise DataFormatError.at(list_path, 'expected a JSON list')
    images = []
    seen_ids = set()
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not all(
                k in entry for k in ('file_name', 'id', 'height', 'width')):
            raise DataFormatError.at(
                list_path, f'entry {i} must have file_name, id, height and '
                'width')
        fname, img_id = entry['file_name'], entry['id']
        h, w = entry['height'], entry['width']
        if not isinstance(fname, str) or not fname:
            raise DataFormatError.at(list_path,
                                     f'entry {i}: bad file_name {fname!r}')
        for key, val in (('id', img_id), ('height', h), ('width', w)):
            if isinstance(val, bool) or not isinstance(val, int) or (
                    key != 'id' and val <= 0):
                raise DataFormatError.at(
                    list_path, f'entry {i} ({fname}): bad {key} {val!r}')
        if img_id in seen_ids:
            raise DataFormatError.at(list_path,
                                     f'duplicate image id {img_id}')
        seen_ids.add(img_id)
        path = data_root / 'test_release' / fname
        if not path.is_file():
            raise DataFormatError.at(
                path, f'test image listed in {list_path.name} does not '
                'exist')
        actual = read_image_size(path)
        if actual != (h, w):
            raise DataFormatError.at(
                path, f'image size (h, w) = {actual} != {(h, w)} listed in '
                f'{list_path.name}')
        images.append({
            'id': img_id,
            'file_name': f'test_release/{fname}',
            'height': h,
            'width': w
        })
    return images


def _convert_worker(image_dir: str, data_root: str) -> Dict[str, Any]:
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


def _percentiles(values: Sequence[float]) -> Optional[Dict[str, float]]:
    if len(values) == 0:
        return None
    p = np.percentile(np.asarray(values, dtype=np.float64), _PERCENTILES)
    keys = ['min', 'p5', 'p25', 'p50', 'p75', 'p95', 'max']
    return {k: round(float(v), 2) for k, v in zip(keys, p)}


def _coco(images: List[Dict], annotations: List[Dict],
          split: str) -> Dict[str, Any]:
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
        :func:`format_summary`.

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
    test_images = _load_test_list(data_root)

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

    stats = _make_stats(results, train_names, val_names, test_images,
                        val_ratio, seed)
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


def _make_stats(results: List[Dict[str, Any]], train_names: List[str],
                val_names: List[str],
                test_images: Optional[List[Dict[str, Any]]], val_ratio: float,
                seed: int) -> Dict[str, Any]:
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
    """Render the statistics returned by :func:`convert_hw3` as text."""

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
