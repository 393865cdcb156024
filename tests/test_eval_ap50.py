"""Tests for mmseg_cells.evaluation.ap50 and tools/eval_ap50.py."""
import contextlib
import copy
import io
import json
import os
import subprocess
import sys
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_util
from pycocotools.cocoeval import COCOeval

from mmseg_cells.evaluation.ap50 import (_evaluator, evaluate_ap50,
                                         load_coco_gt)
from mmseg_cells.mask_codec import encode_crop_rle
from mmseg_cells.utils import atomic_write_json

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parents[1].parent / 'shared' / 'data' / \
    'hw3_sample'
VAL_JSON = DATA / 'val_coco.json'
CLI = REPO / 'tools' / 'eval_ap50.py'

# small real images, some with more than 100 cells of one class
SUBSET = (171, 161, 71, 50, 76, 137, 169, 92, 104, 144, 89)


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def _gt_as_results(gt, score=1.0):
    return [{
        'image_id': a['image_id'],
        'category_id': a['category_id'],
        'segmentation': a['segmentation'],
        'score': score
    } for a in gt['annotations']]


def _ids_from_one(gt):
    """A copy of ``gt`` whose annotation ids start at 1.

    pycocotools stores the id of the matched ground truth and tests it for
    truth, so a match with annotation id 0 counts as a miss; see
    ``test_zero_annotation_id_quirk_is_reproduced``.
    """
    out = dict(gt)
    out['annotations'] = [dict(a, id=i + 1)
                          for i, a in enumerate(gt['annotations'])]
    return out


def _stock_coco_eval(gt, results, max_dets=None):
    """What a leaderboard runs: plain pycocotools."""
    coco_gt = load_coco_gt(copy.deepcopy(gt))
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = coco_gt.loadRes(copy.deepcopy(results))
        E = COCOeval(coco_gt, coco_dt, 'segm')
        if max_dets is not None:
            E.params.maxDets = max_dets
        E.evaluate()
        E.accumulate()
        E.summarize()
    return E


def _close(value, tol=1e-12):
    """``value`` to within ``tol``: the fast evaluator (faster-coco-eval)
    and stock pycocotools agree to ~1e-16, not always bit for bit (stock
    divides by ``tp + fp + eps`` for its precision)."""
    return pytest.approx(value, rel=0, abs=tol)


def _assert_same_metrics(fast, slow):
    """Two ``evaluate_ap50`` outputs equal, floats to 1e-12."""
    assert fast.keys() == slow.keys()
    for key, value in slow.items():
        if isinstance(value, dict):
            assert fast[key].keys() == value.keys(), key
            assert fast[key] == {k: _close(v) if isinstance(v, float) else v
                                 for k, v in value.items()}, key
        elif isinstance(value, list) and value and \
                isinstance(value[0], float):
            assert fast[key] == [_close(v) for v in value], key
        elif isinstance(value, float):
            assert fast[key] == _close(value), key
        else:
            assert fast[key] == value, key


def _perturb(gt, seed=0):
    """Realistic imperfect results: dropped, shifted, duplicated cells,
    wrong classes and tied scores."""
    rng = np.random.default_rng(seed)
    results = []
    for a in gt['annotations']:
        if rng.random() < 0.2:
            continue
        seg = a['segmentation']
        height, width = seg['size']
        full = mask_util.decode(seg)
        x, y, w, h = (int(v) for v in mask_util.toBbox(seg))
        crop = full[y:y + h + 1, x:x + w + 1]
        for rep in range(2 if rng.random() < 0.15 else 1):
            dx, dy = (0, 0)
            if rep or rng.random() < 0.5:
                dx, dy = (int(v) for v in rng.integers(-4, 5, 2))
            cat = a['category_id']
            if rng.random() < 0.05:
                cat = int(rng.integers(1, 5))
            results.append({
                'image_id': a['image_id'],
                'category_id': cat,
                'segmentation': encode_crop_rle(crop, x + dx, y + dy, height,
                                                width),
                'score': float(np.round(rng.random(), 1)),  # many ties
            })
    return results


def _run_cli(*args):
    # run from the repo root without installation (no PYTHONPATH)
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    return subprocess.run([sys.executable, str(CLI), *map(str, args)],
                          cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)


# --------------------------------------------------------------------------
# synthetic ground truth (no data needed)
# --------------------------------------------------------------------------
def _synthetic_gt():
    rng = np.random.default_rng(0)
    images, anns = [], []
    for img_id, (height, width) in enumerate([(60, 80), (50, 50)], start=1):
        images.append({'id': img_id, 'height': height, 'width': width,
                       'file_name': f'{img_id}.tif'})
        for _ in range(6):
            x0, y0 = (int(v) for v in rng.integers(0, 40, 2))
            crop = np.ones((8, 9), dtype=bool)
            seg = encode_crop_rle(crop, x0, y0, height, width)
            area = float(mask_util.area(
                {'size': seg['size'], 'counts': seg['counts'].encode()}))
            anns.append({'id': len(anns) + 1, 'image_id': img_id,
                         'category_id': int(rng.integers(1, 3)),
                         'segmentation': seg, 'area': area,
                         'bbox': [x0, y0, 9, 8], 'iscrowd': 0})
    cats = [{'id': 1, 'name': 'class1'}, {'id': 2, 'name': 'class2'},
            {'id': 3, 'name': 'class3'}]
    return {'images': images, 'annotations': anns, 'categories': cats}


def test_synthetic_perfect_empty_and_absent_class():
    gt = _synthetic_gt()
    res = evaluate_ap50(gt, _gt_as_results(gt))
    assert res['ap50@100'] == 1.0 and res['ap50@1000'] == 1.0
    # class3 has no ground truth: COCO's -1, left out of the mean
    assert res['per_class'] == {'class1': 1.0, 'class2': 1.0, 'class3': -1.0}
    assert res['warnings'] == []
    empty = evaluate_ap50(gt, [])
    assert empty['ap50@100'] == 0.0 and empty['ap50@1000'] == 0.0
    assert empty['per_class'] == {'class1': 0.0, 'class2': 0.0,
                                  'class3': -1.0}
    assert empty['num_dets'] == 0
    # inputs are not modified
    assert 'ignore' not in gt['annotations'][0]


def test_synthetic_bbox_and_file_inputs(tmp_path):
    gt = _synthetic_gt()
    results = _gt_as_results(gt, score=0.9)
    for r, a in zip(results, gt['annotations']):
        r['bbox'] = a['bbox']
    atomic_write_json(tmp_path / 'gt.json', gt)
    atomic_write_json(tmp_path / 'res.json', results)
    res = evaluate_ap50(str(tmp_path / 'gt.json'), tmp_path / 'res.json',
                        iou_type='bbox')
    assert res['ap50@100'] == 1.0
    # drop half of the detections: recall 0.5 at most
    res = evaluate_ap50(gt, results[::2], max_dets=(100, ))
    assert res['ap50@100'] < 0.75 and set(res) >= {'per_class', 'ap50@100'}


@pytest.mark.parametrize('bad, match', [
    ({'not': 'a list'}, 'must be a JSON list'),
    ([1, 2], 'not an object'),
    ([{'image_id': 1, 'category_id': 1, 'score': 1.0}], 'lacks segmentation'),
    ([{'image_id': 999, 'category_id': 1, 'score': 1.0,
       'segmentation': {'size': [60, 80], 'counts': '0'}}],
     'not in the ground truth'),
    ([{'image_id': 1, 'category_id': 0, 'score': 1.0,
       'segmentation': {'size': [60, 80], 'counts': '0'}}],
     'not a ground-truth category'),
    ([{'image_id': 1, 'category_id': 1, 'score': 'high',
       'segmentation': {'size': [60, 80], 'counts': '0'}}], 'score'),
    ([{'image_id': 1, 'category_id': 1, 'score': 1.0,
       'segmentation': [[1, 2, 3, 4, 5, 6]]}], 'RLE object'),
    ([{'image_id': 1, 'category_id': 1, 'score': 1.0,
       'segmentation': {'size': [60, 80], 'counts': [4800]}}],
     'compressed RLE string'),
    ([{'image_id': 1, 'category_id': 1, 'score': 1.0,
       'segmentation': {'size': [80, 60], 'counts': '0'}}],
     'differs from image 1 size'),
])
def test_invalid_results_raise_value_error_naming_file(tmp_path, bad, match):
    gt = _synthetic_gt()
    path = tmp_path / 'bad_results.json'
    atomic_write_json(path, bad)
    with pytest.raises(ValueError, match=match) as info:
        evaluate_ap50(gt, str(path))
    assert str(path) in str(info.value)


def test_cli_bad_results_exit_1(tmp_path):
    gt = _synthetic_gt()
    atomic_write_json(tmp_path / 'gt.json', gt)
    for i, bad in enumerate([{'not': 'a list'}, [{'image_id': 1}], 'x']):
        path = tmp_path / f'bad{i}.json'
        atomic_write_json(path, bad)
        proc = _run_cli(tmp_path / 'gt.json', path)
        assert proc.returncode == 1, proc.stdout
        assert proc.stderr.startswith('error: ') and str(path) in proc.stderr
        assert 'Traceback' not in proc.stderr


def test_cli_bad_files(tmp_path):
    gt = _synthetic_gt()
    atomic_write_json(tmp_path / 'gt.json', gt)
    (tmp_path / 'broken.json').write_text('[{"image_id": 1,')
    good, missing, broken = (tmp_path / 'gt.json', tmp_path / 'nope.json',
                             tmp_path / 'broken.json')
    for gt_path, res_path, culprit in [(good, missing, missing),
                                       (good, broken, broken),
                                       (broken, good, broken)]:
        proc = _run_cli(gt_path, res_path)
        assert proc.returncode == 1
        assert proc.stderr.startswith('error: ')
        assert str(culprit) in proc.stderr
    # a ground truth that is no COCO file
    atomic_write_json(tmp_path / 'res.json', [])
    proc = _run_cli(tmp_path / 'res.json', tmp_path / 'res.json')
    assert proc.returncode == 1 and 'ground truth' in proc.stderr


def test_cli_synthetic_ok(tmp_path):
    gt = _synthetic_gt()
    atomic_write_json(tmp_path / 'gt.json', gt)
    atomic_write_json(tmp_path / 'res.json', _gt_as_results(gt))
    proc = _run_cli(tmp_path / 'gt.json', tmp_path / 'res.json')
    assert proc.returncode == 0, proc.stderr
    assert 'segm AP50 (COCOeval defaults, maxDets=100): 1.0000' in \
        proc.stdout
    assert 'segm AP50 (maxDets=1000):' in proc.stdout
    assert 'class3' in proc.stdout and 'n/a' in proc.stdout
    assert 'Average Precision' not in proc.stdout  # silenced
    proc = _run_cli(tmp_path / 'gt.json', tmp_path / 'res.json',
                    '--verbose')
    assert proc.returncode == 0 and 'Average Precision' in proc.stdout
    # empty results file: 0, not a crash
    atomic_write_json(tmp_path / 'empty.json', [])
    proc = _run_cli(tmp_path / 'gt.json', tmp_path / 'empty.json')
    assert proc.returncode == 0, proc.stderr
    assert 'maxDets=100): 0.0000' in proc.stdout


# --------------------------------------------------------------------------
# real ground truth
# --------------------------------------------------------------------------
@pytest.fixture(scope='module')
def val_gt():
    if not VAL_JSON.is_file():
        pytest.skip(f'real data not available: {VAL_JSON}')
    with open(VAL_JSON) as f:
        return json.load(f)


@pytest.fixture(scope='module')
def val_subset(val_gt):
    gt = dict(val_gt)
    gt['images'] = [i for i in val_gt['images'] if i['id'] in SUBSET]
    gt['annotations'] = [a for a in val_gt['annotations']
                         if a['image_id'] in SUBSET]
    return _ids_from_one(gt)


def test_real_perfect_results(val_gt):
    gt = _ids_from_one(val_gt)
    res = evaluate_ap50(gt, _gt_as_results(gt))
    assert res['ap50@1000'] == 1.0
    assert all(v == 1.0 for v in res['per_class'].values())
    assert res['num_dets'] == len(gt['annotations']) == 6860
    # COCO's maxDets caps the detections per image *and category*: an
    # (image, class) pair with more than 100 cells cannot be fully
    # recalled with 100 detections, so AP50@100 < 1 for perfect results.
    per_pair = Counter((a['image_id'], a['category_id'])
                       for a in gt['annotations'])
    crowded = {cat for (_, cat), n in per_pair.items() if n > 100}
    if crowded:
        assert res['ap50@100'] < 1.0
        for cat in gt['categories']:
            if cat['id'] not in crowded:
                assert res['per_class@100'][cat['name']] == 1.0
    else:
        assert res['ap50@100'] == 1.0
    assert max(per_pair.values()) <= 1000


def test_zero_annotation_id_quirk_is_reproduced(val_gt):
    """The real val GT starts its annotation ids at 0. pycocotools marks a
    detection matched by storing the ground-truth id, and ``dtm == 0`` means
    unmatched, so the cell with id 0 counts as missed and its detection as a
    false positive. A leaderboard using pycocotools would score the same, so
    the number must equal stock ``COCOeval.stats[1]`` (to 1e-12; the fast
    evaluator tests ``match > 0`` the same way); the quirk is reported in
    'warnings'."""
    zero = [a for a in val_gt['annotations'] if a['id'] == 0]
    if not zero:
        pytest.skip('ground truth has no annotation id 0')
    keep = set(SUBSET) | {zero[0]['image_id']}  # stock COCOeval is slow
    gt = dict(val_gt)
    gt['images'] = [i for i in val_gt['images'] if i['id'] in keep]
    gt['annotations'] = [a for a in val_gt['annotations']
                         if a['image_id'] in keep]
    results = _gt_as_results(gt)
    with pytest.warns(UserWarning, match='id 0'):
        res = evaluate_ap50(gt, results)
    assert res['warnings']
    stock = _stock_coco_eval(gt, results)
    assert res['ap50@100'] == _close(stock.stats[1])
    assert res['coco_stats@100'] == [_close(v) for v in stock.stats]
    stock = _stock_coco_eval(gt, results, [1, 10, 1000])
    assert res['ap50@1000'] == _close(stock.stats[1])
    assert res['ap50@1000'] < 1.0
    assert evaluate_ap50(_ids_from_one(gt), results)['ap50@1000'] == 1.0


def _run_eval(make, coco_gt, results, **params):
    """An evaluator class run silently on ``results`` (deep-copied) with
    ``params`` set on ``E.params``; the evaluated object."""
    with contextlib.redirect_stdout(io.StringIO()):
        E = make(coco_gt, coco_gt.loadRes(copy.deepcopy(results)), 'segm')
        for key, value in params.items():
            setattr(E.params, key, value)
        E.evaluate()
        E.accumulate()
        E.summarize()
    return E


@pytest.mark.parametrize('max_dets', [[1, 10, 100], [1, 10, 1000],
                                      [1, 5, 20]])
def test_fast_evaluator_agrees_with_stock(val_subset, max_dets):
    """faster-coco-eval's accumulated arrays against stock pycocotools',
    crowd regions included: recall and scores identical, precision to
    2.2e-16 (pycocotools divides by ``tp + fp + eps``), AP50 and per-class
    AP50 (the numbers reported) to 1e-12."""
    gt = copy.deepcopy(val_subset)
    rng = np.random.default_rng(1)
    for a in gt['annotations']:  # exercise crowd regions too
        if rng.random() < 0.05:
            a['iscrowd'] = 1
    results = _perturb(gt)
    stock, fast = (_run_eval(make, load_coco_gt(copy.deepcopy(gt)), results,
                             maxDets=max_dets)
                   for make in (COCOeval, _evaluator(True, False)))
    assert type(fast).__name__ == 'COCOeval_faster'
    assert fast.eval['precision'].shape == stock.eval['precision'].shape
    for key in ('recall', 'scores'):
        assert np.array_equal(stock.eval[key], fast.eval[key]), key
    np.testing.assert_allclose(fast.eval['precision'],
                               stock.eval['precision'], rtol=0, atol=1e-15)
    assert fast.stats[1] == _close(stock.stats[1])
    t = np.flatnonzero(stock.params.iouThrs == 0.5)[0]
    for k in range(len(stock.params.catIds)):
        p_stock = stock.eval['precision'][t, :, k, 0, -1]
        p_fast = fast.eval['precision'][t, :, k, 0, -1]
        assert np.mean(p_fast[p_fast > -1]) == \
            _close(np.mean(p_stock[p_stock > -1]))


def test_fast_evaluator_leaves_pycocotools_objects_usable(val_subset):
    """The fast evaluator runs on the caller's pycocotools COCO (e.g.
    mmdet's CocoMetric ground truth), which stock COCOeval can score
    afterwards with the same result; restricting to images works too."""
    results = _perturb(val_subset, seed=4)
    coco_gt = load_coco_gt(copy.deepcopy(val_subset))
    ids = sorted(coco_gt.getImgIds())[:5]
    scores = [
        _run_eval(make, coco_gt, results, imgIds=ids).stats[1]
        for make in (_evaluator(True, False), COCOeval)
    ]
    assert scores[0] == _close(scores[1]) and scores[1] > 0


def test_real_subset_fast_equals_stock_and_perturbed_is_lower(val_subset):
    results = _perturb(val_subset, seed=2)
    fast = evaluate_ap50(val_subset, results)
    slow = evaluate_ap50(val_subset, results, fast=False)
    _assert_same_metrics(fast, slow)
    # fast=False is stock pycocotools, bit for bit
    stock = _stock_coco_eval(val_subset, results)
    assert slow['ap50@100'] == stock.stats[1]
    assert slow['coco_stats@100'] == [float(v) for v in stock.stats]
    assert fast['ap50@100'] == _close(stock.stats[1])
    stock = _stock_coco_eval(val_subset, results, [1, 10, 1000])
    assert slow['ap50@1000'] == stock.stats[1]
    assert fast['ap50@1000'] == _close(stock.stats[1])
    perfect = evaluate_ap50(val_subset, _gt_as_results(val_subset))
    assert perfect['ap50@1000'] == 1.0
    assert 0.0 < fast['ap50@1000'] < perfect['ap50@1000']
    assert fast['ap50@100'] < perfect['ap50@100']


def test_real_dropped_instances_score_lower(val_gt):
    gt = _ids_from_one(val_gt)
    rng = np.random.default_rng(3)
    results = [r for r in _gt_as_results(gt) if rng.random() >= 0.3]
    res = evaluate_ap50(gt, results)
    # recall is capped at ~0.7, precision stays 1
    assert 0.6 < res['ap50@1000'] < 0.8
    # false positives (the same masks labelled with another class) scored
    # above every true positive lower the precision as well
    fps = [dict(r, score=2.0, category_id=r['category_id'] % 4 + 1)
           for r in results]
    worse = evaluate_ap50(gt, fps + results)
    assert worse['ap50@1000'] < res['ap50@1000']


def test_real_empty_results(val_gt):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        res = evaluate_ap50(val_gt, [])
    assert res['ap50@100'] == 0.0 and res['ap50@1000'] == 0.0
    assert set(res['per_class'].values()) == {0.0}


def test_real_cli(val_gt, tmp_path):
    gt = _ids_from_one(val_gt)
    atomic_write_json(tmp_path / 'gt.json', gt)
    atomic_write_json(tmp_path / 'res.json', _gt_as_results(gt))
    proc = _run_cli(tmp_path / 'gt.json', tmp_path / 'res.json')
    assert proc.returncode == 0, proc.stderr
    assert 'segm AP50 (maxDets=1000):                  1.0000' in \
        proc.stdout
    for cat in gt['categories']:
        assert cat['name'] in proc.stdout
    # the raw file (annotation id 0) warns on stderr but succeeds
    proc = _run_cli(VAL_JSON, tmp_path / 'res.json')
    assert proc.returncode == 0, proc.stderr
    assert 'warning:' in proc.stderr and 'id 0' in proc.stderr
    # results on images the ground truth does not have
    bad = _gt_as_results(gt)[:10]
    bad[3]['image_id'] = 10**9
    atomic_write_json(tmp_path / 'bad.json', bad)
    proc = _run_cli(VAL_JSON, tmp_path / 'bad.json')
    assert proc.returncode == 1
    assert 'not in the ground truth' in proc.stderr
    assert str(tmp_path / 'bad.json') in proc.stderr
