"""Mask AP50 exactly as a pycocotools-based leaderboard computes it.

The leaderboard scores a results file with ``pycocotools`` at its default
parameters::

    E = COCOeval(coco_gt, coco_gt.loadRes(results), 'segm')
    E.evaluate(); E.accumulate(); E.summarize()
    score = E.stats[1]          # AP @ IoU=0.50, area=all, maxDets=100

:func:`evaluate_ap50` reproduces that number (``'ap50@100'``) and the same
metric with up to 1000 detections (``'ap50@1000'``, ``params.maxDets =
[1, 10, 1000]`` so that ``stats[1]`` is AP50 at 1000 detections), plus
per-class AP50. Two facts worth knowing when reading the numbers:

* COCO's ``maxDets`` caps the detections per image **and category** (the
  per-(image, category) lists are truncated to the top-scoring ``maxDets``).
  An (image, class) pair with more than 100 ground-truth cells can therefore
  not reach full recall at ``maxDets=100``.
* pycocotools records a match by storing the matched ground-truth id and
  later tests it for truth, so a match with a ground-truth annotation whose
  ``id`` is 0 counts as a miss. A leaderboard running pycocotools inherits
  this, so :func:`evaluate_ap50` reproduces it too but reports it in
  ``'warnings'`` (ground-truth ids should start at 1).

By default the evaluation runs ``faster_coco_eval.COCOeval_faster``
(faster-coco-eval: pycocotools' matching and accumulation in C++; the
pure-Python ``COCOeval.evaluateImg`` loop takes minutes for thousands of
cells per image) on the same pycocotools ``COCO`` objects; ``fast=False``
runs stock ``COCOeval``. Both give the same AP values to 1e-12 (see
:func:`_evaluator` for the measured agreement, speed and memory). Nothing
here imports torch or mmdet.
"""
import contextlib
import copy
import io
import json
import math
import numbers
import os
import warnings
from collections import Counter
from typing import (Any, Callable, Dict, Iterator, List, Optional, Sequence,
                    Union)

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

__all__ = ['evaluate_ap50', 'leaderboard_ap50', 'load_coco_gt',
           'load_results', 'validate_results']

PathLike = Union[str, os.PathLike]
_RESULTS_LIST = '<results list>'
_GT_OBJECT = '<ground truth>'


@contextlib.contextmanager
def _quiet(verbose: bool) -> Iterator[None]:
    """Swallow pycocotools' prints unless ``verbose``."""
    if verbose:
        yield
    else:
        with contextlib.redirect_stdout(io.StringIO()):
            yield


def _is_int(value: Any) -> bool:
    return isinstance(value, (numbers.Integral, np.integer)) and \
        not isinstance(value, (bool, np.bool_))


def _is_real(value: Any) -> bool:
    return isinstance(value, (numbers.Real, np.floating, np.integer)) and \
        not isinstance(value, (bool, np.bool_))


def _read_json(path: PathLike, what: str) -> Any:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{what} file not found: {path}')
    try:
        with open(path, 'r', encoding='utf-8') as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f'{path}: not a valid JSON file ({e})') from None


def load_coco_gt(gt: Union[PathLike, dict, COCO],
                 verbose: bool = False) -> COCO:
    """Build a :class:`COCO` ground-truth object.

    Args:
        gt (str | PathLike | dict | COCO): A COCO json file, its parsed
            content, or a ready ``COCO`` object (returned as is).
        verbose (bool): Let pycocotools print. Defaults to False.

    Returns:
        COCO: The indexed ground truth. A dict is shallow-copied down to the
        annotation dicts, which pycocotools modifies during evaluation.

    Raises:
        FileNotFoundError: ``gt`` is a path that does not exist.
        ValueError: Invalid JSON or not a COCO instance-annotation structure;
            the message names the file.
    """
    if isinstance(gt, COCO):
        return gt
    if isinstance(gt, (str, os.PathLike)):
        source = os.fspath(gt)
        data = _read_json(source, 'ground-truth')
    elif isinstance(gt, dict):
        source, data = _GT_OBJECT, gt
    else:
        raise TypeError(f'gt must be a path, a dict or a COCO object, '
                        f'got {type(gt).__name__}')
    if not isinstance(data, dict):
        raise ValueError(f'{source}: ground truth must be a JSON object with '
                         f'"images", "annotations" and "categories"')
    for key in ('images', 'annotations', 'categories'):
        if not isinstance(data.get(key), list):
            raise ValueError(f'{source}: ground truth has no "{key}" list')
    for i, img in enumerate(data['images']):
        if not isinstance(img, dict) or not _is_int(img.get('id')):
            raise ValueError(f'{source}: images[{i}] has no integer "id"')
    for i, cat in enumerate(data['categories']):
        if not isinstance(cat, dict) or not _is_int(cat.get('id')):
            raise ValueError(f'{source}: categories[{i}] has no integer "id"')
    required = ('id', 'image_id', 'category_id', 'area', 'iscrowd')
    for i, ann in enumerate(data['annotations']):
        missing = [k for k in required
                   if not isinstance(ann, dict) or k not in ann]
        if missing:
            raise ValueError(f'{source}: annotations[{i}] lacks '
                             f'{", ".join(missing)}')
    dataset = dict(data)
    dataset['annotations'] = [dict(a) for a in data['annotations']]
    with _quiet(verbose):
        coco = COCO()
        coco.dataset = dataset
        coco.createIndex()
    return coco


def validate_results(results: Any,
                     coco_gt: COCO,
                     source: str = _RESULTS_LIST,
                     iou_type: str = 'segm') -> None:
    """Check a results list before handing it to ``COCO.loadRes``.

    Every entry must be a dict with an integer ``image_id`` of the ground
    truth, an integer ``category_id`` of the ground truth, a finite numeric
    ``score`` and, for ``iou_type='segm'``, a compressed RLE
    ``segmentation`` (``{'size': [H, W], 'counts': str}``, ``size`` equal to
    the image size when the ground truth records it); for ``'bbox'`` a
    ``bbox`` of 4 finite numbers. ``loadRes`` decides between its bbox and
    segm code paths on the first entry, so if that one has a ``bbox`` all
    must have one.

    Raises:
        ValueError: The first problem found, prefixed with ``source``.
    """
    if not isinstance(results, list):
        raise ValueError(f'{source}: results must be a JSON list of '
                         f'detections, got {type(results).__name__}')
    imgs = coco_gt.imgs
    cats = coco_gt.cats
    need_bbox = iou_type == 'bbox' or (
        bool(results) and isinstance(results[0], dict)
        and 'bbox' in results[0] and results[0]['bbox'] != [])
    unknown_imgs: Counter = Counter()
    for i, r in enumerate(results):
        where = f'{source}: result #{i}'
        if not isinstance(r, dict):
            raise ValueError(f'{where} is a {type(r).__name__}, not an '
                             f'object')
        keys = ['image_id', 'category_id', 'score']
        keys.append('bbox' if iou_type == 'bbox' else 'segmentation')
        missing = [k for k in keys if k not in r]
        if missing:
            raise ValueError(f'{where} lacks {", ".join(missing)}')
        image_id, cat_id, score = r['image_id'], r['category_id'], r['score']
        if not _is_int(image_id):
            raise ValueError(f'{where}: image_id must be an integer, got '
                             f'{image_id!r}')
        if image_id not in imgs:
            unknown_imgs[image_id] += 1
            continue
        if not _is_int(cat_id):
            raise ValueError(f'{where}: category_id must be an integer, got '
                             f'{cat_id!r}')
        if cat_id not in cats:
            raise ValueError(f'{where}: category_id {cat_id} is not a '
                             f'ground-truth category {sorted(cats)}')
        if not _is_real(score) or not math.isfinite(float(score)):
            raise ValueError(f'{where}: score must be a finite number, got '
                             f'{score!r}')
        if need_bbox:
            bbox = r.get('bbox')
            if not (isinstance(bbox, (list, tuple)) and len(bbox) == 4
                    and all(_is_real(v) and math.isfinite(float(v))
                            for v in bbox)):
                raise ValueError(f'{where}: bbox must be [x, y, w, h], got '
                                 f'{bbox!r}')
        if iou_type == 'segm':
            seg = r['segmentation']
            if not (isinstance(seg, dict) and 'size' in seg
                    and 'counts' in seg):
                raise ValueError(
                    f'{where}: segmentation must be an RLE object with '
                    f'"size" and "counts", got {type(seg).__name__}')
            size = seg['size']
            if not (isinstance(size, (list, tuple)) and len(size) == 2
                    and all(_is_int(v) for v in size)):
                raise ValueError(f'{where}: segmentation size must be '
                                 f'[height, width], got {size!r}')
            if not isinstance(seg['counts'], (str, bytes)):
                raise ValueError(
                    f'{where}: segmentation counts must be a compressed '
                    f'RLE string, got {type(seg["counts"]).__name__}')
            img = imgs[image_id]
            if 'height' in img and 'width' in img and \
                    list(size) != [img['height'], img['width']]:
                raise ValueError(
                    f'{where}: segmentation size {list(size)} differs from '
                    f'image {image_id} size [{img["height"]}, '
                    f'{img["width"]}]')
    if unknown_imgs:
        examples = sorted(unknown_imgs, key=str)[:5]
        raise ValueError(
            f'{source}: {sum(unknown_imgs.values())} result(s) on '
            f'{len(unknown_imgs)} image_id(s) not in the ground truth '
            f'(e.g. {examples}); results must use the ground-truth image ids')


def load_results(results: Union[PathLike, List[dict]],
                 coco_gt: COCO,
                 iou_type: str = 'segm') -> List[dict]:
    """Read (if a path) and validate detection results.

    Returns:
        list[dict]: Shallow copies of the entries (``loadRes`` adds keys to
        them), in file order.

    Raises:
        FileNotFoundError: Missing results file.
        ValueError: Invalid JSON or structure; the message names the file.
    """
    if isinstance(results, (str, os.PathLike)):
        source = os.fspath(results)
        data = _read_json(source, 'results')
    else:
        source, data = _RESULTS_LIST, results
    validate_results(data, coco_gt, source, iou_type)
    return [dict(r) for r in data]


def _silent(*args: Any, **kwargs: Any) -> None:
    """A ``print_function`` that prints nothing."""


def _evaluator(fast: bool, verbose: bool) -> Callable[..., Any]:
    """The COCOeval class to run: stock pycocotools, or faster-coco-eval's
    ``COCOeval_faster``, a drop-in that takes the same ``COCO`` objects and
    parameters and fills the same ``eval['precision']`` and, at the default
    ``maxDets``, ``stats`` (for other lists it lays ``stats`` out
    differently; only ``stats[1]`` is read then).

    Measured by ``benchmarks/coco_eval_speed.py`` (faster-coco-eval 1.8.0,
    pycocotools 2.0.11; ``hw3_sample/val_coco.json``, 50 images and 6,860
    cells, against a perturbed copy with 7,177 detections and a crowded one
    with 50,000, 1000 per image; maxDets 100 and 1000):

    * agreement with stock: AP50 and per-class AP50 identical,
      ``eval['precision']`` within 2.2e-16 (stock divides by
      ``tp + fp + eps``, the C++ code by ``tp + fp``), ``recall`` and
      ``scores`` identical; a match with ground-truth id 0 is a miss in both;
    * time of loadRes + evaluate + accumulate + summarize on 2 shared CPU
      cores: 0.7-1.8 s, 0.34-0.84x the time of pycocotools' COCOeval with a
      vectorised numpy ``evaluateImg`` (1.7-3.9 s) and 0.02-0.14x that of
      stock (13-67 s);
    * peak memory above the loaded inputs: 32-158 MiB, 14-56 MiB more than
      the numpy variant (18-102 MiB), plus about 20 MiB for its import (it
      imports cv2).
    """
    if not fast:
        return COCOeval
    # imported here: the package (and its cv2 import) is only needed to
    # evaluate, not to import this module
    from faster_coco_eval import COCOeval_faster

    def make(coco_gt: COCO, coco_dt: COCO, iou_type: str) -> Any:
        return COCOeval_faster(coco_gt, coco_dt, iou_type,
                               print_function=print if verbose else _silent)
    return make


def _ap50_from_eval(E: Any, max_det: int,  # noqa: N803
                    k: Optional[int] = None) -> float:
    """AP50 (area 'all') at ``max_det`` from ``E.eval['precision']``, the
    formula of ``COCOeval.summarize``; for one category index ``k`` if
    given. -1 when there is no ground truth to score (COCO's convention)."""
    p = E.params
    t = np.where(0.5 == p.iouThrs)[0]
    aind = [i for i, lbl in enumerate(p.areaRngLbl) if lbl == 'all']
    mind = [i for i, m in enumerate(p.maxDets) if m == max_det]
    s = E.eval['precision'][t]
    if k is not None:
        s = s[:, :, [k]]
    s = s[:, :, :, aind, mind]
    valid = s[s > -1]
    return float(np.mean(valid)) if valid.size else -1.0


def _empty_dt(coco_gt: COCO, verbose: bool) -> COCO:
    """A detections object with no detections (``loadRes`` rejects [])."""
    with _quiet(verbose):
        dt = COCO()
        dt.dataset = {
            'images': list(coco_gt.dataset['images']),
            'categories': copy.deepcopy(coco_gt.dataset['categories']),
            'annotations': [],
        }
        dt.createIndex()
    return dt


def leaderboard_ap50(coco_gt: COCO,
                     dets: List[dict],
                     img_ids: Optional[Sequence[int]] = None,
                     iou_type: str = 'segm') -> float:
    """The leaderboard number: ``COCOeval.stats[1]`` at default parameters
    (maxDets 100 per image and category), optionally on a subset of images.

    ``dets`` is a COCO results list (validated by the caller; an empty list
    scores 0.0). ``img_ids`` restricts the evaluation to those images, as
    mmdet's ``CocoMetric`` does for the images it saw; default: all images
    of ``coco_gt``.
    """
    if not dets:
        return 0.0
    E = _run_cocoeval(coco_gt, dets, iou_type, 100,  # noqa: N806
                      _evaluator(True, False), verbose=False,
                      img_ids=img_ids)
    return float(E.stats[1])


def _run_cocoeval(coco_gt: COCO, dets: List[dict], iou_type: str,
                  max_det: int, evaluator: Callable[..., Any],
                  verbose: bool,
                  img_ids: Optional[Sequence[int]] = None) -> Any:
    """One evaluated and accumulated ``evaluator`` (a COCOeval class, see
    :func:`_evaluator`) at detection cap ``max_det``:
    pycocotools' default parameters for 100 (then also summarised, so that
    ``E.stats`` is the leaderboard's), ``maxDets = [1, 10, max_det]``
    otherwise; on ``img_ids`` only, if given."""
    with _quiet(verbose):
        if dets:
            coco_dt = coco_gt.loadRes([dict(r) for r in dets])
        else:
            coco_dt = _empty_dt(coco_gt, verbose)
        E = evaluator(coco_gt, coco_dt, iou_type)  # noqa: N806
        if max_det != 100:
            E.params.maxDets = sorted({1, 10, max_det})
        if img_ids is not None:
            E.params.imgIds = list(img_ids)
        if verbose:
            print(f'--- {iou_type} evaluation, maxDets='
                  f'{E.params.maxDets} ---')
        E.evaluate()
        E.accumulate()
        if max_det == 100 or verbose:
            E.summarize()
    return E


def evaluate_ap50(gt: Union[PathLike, dict, COCO],
                  results: Union[PathLike, List[dict]],
                  max_dets: Sequence[int] = (100, 1000),
                  iou_type: str = 'segm',
                  verbose: bool = False,
                  fast: bool = True) -> Dict[str, Any]:
    """AP at IoU 0.5 of detection results, the pycocotools way.

    For ``max_dets`` entry 100, ``COCOeval`` runs with its untouched default
    parameters and the value is ``E.stats[1]`` after ``summarize()``, i.e.
    exactly the usual leaderboard number. Any other ``m`` runs with
    ``params.maxDets = sorted({1, 10, m})`` and the value is the same
    ``summarize`` formula read at ``maxDets=m`` (equal to ``stats[1]`` for
    ``m > 10``).

    Args:
        gt (str | PathLike | dict | COCO): Ground truth (COCO json path, its
            content, or a ``COCO`` object).
        results (str | PathLike | list[dict]): Results json path (a list of
            ``{'image_id', 'category_id', 'score', 'segmentation'}``) or the
            list itself. An empty list scores 0 (``loadRes`` would crash).
        max_dets (Sequence[int]): Detection caps (per image and category) to
            report. Defaults to (100, 1000).
        iou_type (str): ``'segm'`` or ``'bbox'``. Defaults to ``'segm'``.
        verbose (bool): Let pycocotools print its progress and summary
            tables. Defaults to False.
        fast (bool): Evaluate with faster-coco-eval's ``COCOeval_faster``
            (same AP values, see :func:`_evaluator`); False runs stock
            pycocotools ``COCOeval``. Defaults to True.

    Returns:
        dict: ``'ap50@{m}'`` (float) for every ``m`` in ``max_dets``;
        ``'per_class'``: {category name: AP50} at ``max(max_dets)``;
        ``'per_class@{m}'`` the same for every ``m``; ``'num_gt'``:
        {category name: non-crowd ground-truth count}; ``'num_images'``,
        ``'num_dets'``, ``'max_dets'``; ``'coco_stats@100'``: the 12
        ``COCOeval.stats`` of the default run (if 100 is in ``max_dets``);
        ``'warnings'``: list of str. A class without ground truth gets -1.0
        (COCO's convention) and is left out of the means.

    Raises:
        FileNotFoundError: A file does not exist.
        ValueError: Invalid ground truth or results; the message names the
            offending file.
    """
    if iou_type not in ('segm', 'bbox'):
        raise ValueError(f"iou_type must be 'segm' or 'bbox', got "
                         f'{iou_type!r}')
    max_dets = [int(m) for m in max_dets]
    if not max_dets or min(max_dets) < 1:
        raise ValueError(f'max_dets must be positive integers, got '
                         f'{max_dets}')
    coco_gt = load_coco_gt(gt, verbose=verbose)
    dets = load_results(results, coco_gt, iou_type=iou_type)

    messages: List[str] = []
    zero_ids = [a for a in coco_gt.dataset['annotations'] if a['id'] == 0]
    if zero_ids:
        msg = ('the ground truth has an annotation with id 0; pycocotools '
               'counts a match with it as a miss (a leaderboard using '
               'pycocotools does the same), so even perfect results score '
               'below 1.0. Ground-truth annotation ids should start at 1.')
        messages.append(msg)
        warnings.warn(msg, stacklevel=2)

    cat_ids = sorted(coco_gt.getCatIds())
    names: Dict[int, str] = {}
    for cid in cat_ids:
        name = str(coco_gt.cats[cid].get('name', cid))
        if name in names.values():
            name = f'{name} (id {cid})'
        names[cid] = name
    num_gt = {names[cid]: 0 for cid in cat_ids}
    for a in coco_gt.dataset['annotations']:
        if a['category_id'] in names and not a.get('iscrowd', 0):
            num_gt[names[a['category_id']]] += 1

    out: Dict[str, Any] = {}
    evaluator = _evaluator(fast, verbose)
    for m in sorted(set(max_dets)):
        E = _run_cocoeval(coco_gt, dets, iou_type, m,  # noqa: N806
                          evaluator, verbose)
        if m == 100:
            out['ap50@100'] = float(E.stats[1])
            out['coco_stats@100'] = [float(v) for v in E.stats]
        else:
            out[f'ap50@{m}'] = _ap50_from_eval(E, m)
        catidx = {cid: k for k, cid in enumerate(E.params.catIds)}
        out[f'per_class@{m}'] = {
            names[cid]: _ap50_from_eval(E, m, catidx[cid])
            for cid in cat_ids
        }
    out['per_class'] = out[f'per_class@{max(max_dets)}']
    out['num_gt'] = num_gt
    out['num_images'] = len(coco_gt.getImgIds())
    out['num_dets'] = len(dets)
    out['max_dets'] = sorted(set(max_dets))
    out['warnings'] = messages
    return out
