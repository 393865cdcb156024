"""tools/predict.py and the tiled, crop-based predictor."""
import collections
import json
import os.path as osp
import shutil
import zipfile

import numpy as np
import pytest
from pycocotools import mask as mask_util
from pycocotools.coco import COCO
from scipy import ndimage

from conftest import TINY_CONFIG, run_tool
from mmseg_cells.apis import (Detections, coco_results, instance_label_maps,
                              predict_tiled, tile_grid)
from mmseg_cells.data.io import read_instance_map, write_image_tif


@pytest.fixture(scope='module')
def checkpoint(trained_tiny):
    return osp.join(trained_tiny[0], 'epoch_8.pth')


@pytest.fixture(scope='module')
def predictor(checkpoint):
    from mmseg_cells.apis import CellPredictor
    return CellPredictor(TINY_CONFIG, checkpoint, device='cpu',
                         score_thr=0.05)


# --------------------------------------------------------------- tiling
@pytest.mark.parametrize('length,tile,overlap', [(100, 128, 32),
                                                 (300, 128, 48),
                                                 (1000, 256, 64),
                                                 (257, 128, 100)])
def test_tile_cores_partition_the_axis(length, tile, overlap):
    grid = tile_grid(length, tile, overlap)
    assert grid[0][0] == 0 and grid[-1][1] == length
    # balanced: equal tiles of at most `tile`, as few as the overlap allows
    sizes = {e - s for s, e, _, _ in grid}
    assert len(sizes) == 1 and sizes.pop() <= tile
    fewest = 1 if length <= tile else -(-(length - overlap) //
                                         (tile - overlap))
    assert len(grid) == fewest
    assert all(a[1] - b[0] >= overlap for a, b in zip(grid, grid[1:]))
    cores = [(cs, ce) for _, _, cs, ce in grid]
    assert cores[0][0] == 0 and cores[-1][1] == length
    assert all(a[1] == b[0] for a, b in zip(cores, cores[1:]))
    # each core keeps >= overlap/2 of context inside its tile
    for s, e, cs, ce in grid:
        assert cs - s >= (overlap // 2 if s > 0 else 0)
        assert e - ce >= (overlap // 2 if e < length else 0)


def blob_detector(img: np.ndarray, core=None) -> Detections:
    """A stand-in model: every dark connected blob is one detection (it
    ignores the core hint; predict_tiled must filter by itself)."""
    dark = img[..., 0] < 100
    labels, n = ndimage.label(dark)
    boxes, probs = [], []
    for i, sl in enumerate(ndimage.find_objects(labels), 1):
        ys, xs = sl
        boxes.append([xs.start, ys.start, xs.stop, ys.stop])
        crop = (labels[sl] == i).astype(np.float32)
        zy, zx = 28 / crop.shape[0], 28 / crop.shape[1]
        probs.append(ndimage.zoom(crop, (zy, zx), order=0)[:28, :28])
    h, w = img.shape[:2]
    if not boxes:
        return Detections.empty(h, w)
    return Detections(np.array(boxes, np.float32), np.linspace(
        0.9, 0.5, n).astype(np.float32), np.zeros(n, np.int64),
        np.stack(probs), h, w)


def test_cell_crossing_tile_border_is_predicted_once():
    rng = np.random.default_rng(0)
    h, w, tile, overlap = 300, 340, 128, 48
    img = np.full((h, w, 3), 230, np.uint8)
    yy, xx = np.mgrid[:h, :w]
    # on core boundaries (104, 184, 206/250) and tile edges (128, 208)
    centres = [(cy, cx) for cy in (30, 104, 128, 184, 206, 260)
               for cx in (30, 104, 128, 184, 250, 310)]
    truth = []
    for cy, cx in centres:
        r = rng.integers(5, 10)
        disc = (yy - cy)**2 + (xx - cx)**2 <= r * r
        img[disc] = 40
        ys, xs = np.nonzero(disc)
        truth.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    # the layout really crosses tile borders
    borders = {s for s, _, _, _ in tile_grid(w, tile, overlap)} | {
        e for _, e, _, _ in tile_grid(w, tile, overlap)}
    assert any(b[0] < x < b[2] for b in truth for x in borders)
    dets = predict_tiled(blob_detector, img, tile, overlap, 1000)
    got = sorted(map(tuple, dets.bboxes.astype(int).tolist()))
    assert got == sorted(map(tuple, truth))
    untiled = blob_detector(img)
    assert len(untiled) == len(dets) == len(centres)


# ------------------------------------------------------ the real model
def blob_image(seed: int, h: int, w: int, n: int,
               margin: int) -> np.ndarray:
    """An RGB H&E-coloured image with ``n`` round cells of radius 5-9
    centred at least ``margin`` px from the border."""
    rng = np.random.default_rng(seed)
    rgb = np.full((h, w, 3), (225, 170, 205), np.uint8)
    yy, xx = np.mgrid[:h, :w]
    for _ in range(n):
        cy, cx, r = rng.integers(margin, h - margin), \
            rng.integers(margin, w - margin), rng.integers(5, 10)
        rgb[(yy - cy)**2 + (xx - cx)**2 <= r * r] = (90, 40, 120)
    return rgb


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of xyxy boxes ``a`` [N, 4] and ``b`` [M, 4]."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(2)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None] - inter)


def _nms_explained(boxes, scores, labels, other_boxes, other_scores,
                   other_labels, iou_thr: float) -> np.ndarray:
    """Whether each detection missing on the other side is one that NMS
    could decide either way: the other side keeps a detection of the same
    label that overlaps it up to the IoU threshold (within 0.01) and scores
    at least as high (within 1e-4), so a float-rounding difference in an
    IoU or a score near-tie suppresses it there and keeps it here."""
    iou = _iou(boxes, other_boxes)
    could_suppress = ((iou >= iou_thr - 0.01)
                      & (labels[:, None] == other_labels[None])
                      & (other_scores[None] >= scores[:, None] - 1e-4))
    return could_suppress.any(1)


def test_crop_pasting_matches_stock_mmdet(checkpoint):
    """Same boxes, scores and masks as mmdet's inference_detector (which
    pastes full-image masks) with the model as built, on an image from the
    tiny dataset; ours runs its inference rewrite (BN folded,
    channels-last, own RoIAlign). Every box scored above 0 is kept (the
    tiny model's scores are low and crowd near-ties), so detections are
    paired by box and label, and NMS decisions that float rounding can
    flip (an IoU at the threshold, a score near-tie between overlapping
    boxes) may differ: each unpaired detection must be one of those, and
    there are few of them."""
    from mmdet.apis import inference_detector
    from mmseg_cells.apis import CellPredictor
    from mmseg_cells.models import to_stock_mask_head
    ours_p, plain = (CellPredictor(TINY_CONFIG, checkpoint, device='cpu',
                                   score_thr=0.0, max_per_img=100,
                                   optimize=opt, bounds=None)
                     for opt in (True, False))
    assert ours_p.channels_last and not plain.channels_last
    nms_thr = plain.model.test_cfg.rcnn.nms.iou_threshold
    rgb = blob_image(1, 150, 170, 25, margin=10)
    dets = ours_p.predict(rgb)
    # stock: mmdet's FCNMaskHead (full-image masks), same weights
    to_stock_mask_head(plain.model)
    inst = inference_detector(plain.model,
                              rgb[..., ::-1].copy()).pred_instances
    assert len(inst) == len(dets) == 100
    # the 100-detection cut may fall between near-equal scores: compare
    # the detections clearly above the lowest kept score of either side
    ref_scores = inst.scores.numpy()
    ref_boxes = inst.bboxes.numpy()
    ref_labels = inst.labels.numpy()
    cut = max(dets.scores.min(), ref_scores.min()) + 1e-4
    keep = np.flatnonzero(dets.scores > cut)
    dist = np.abs(dets.bboxes[keep, None] - ref_boxes[None]).max(2)
    dist[dets.labels[keep, None] != ref_labels[None]] = np.inf
    pair = dist.argmin(1)
    paired = dist[np.arange(len(keep)), pair] < 1e-3
    keep, pair = keep[paired], pair[paired]
    assert len(keep) >= 50
    assert len(np.unique(pair)) == len(keep)
    assert np.allclose(ref_scores[pair], dets.scores[keep], atol=1e-5)
    # the unpaired ones on either side: few, and each an NMS near-decision
    ours_only = np.setdiff1d(np.flatnonzero(dets.scores > cut), keep)
    ref_only = np.setdiff1d(np.flatnonzero(ref_scores > cut), pair)
    assert len(ours_only) + len(ref_only) <= 0.05 * len(keep)
    assert _nms_explained(dets.bboxes[ours_only], dets.scores[ours_only],
                          dets.labels[ours_only], ref_boxes, ref_scores,
                          ref_labels, nms_thr).all()
    assert _nms_explained(ref_boxes[ref_only], ref_scores[ref_only],
                          ref_labels[ref_only], dets.bboxes, dets.scores,
                          dets.labels, nms_thr).all()
    ours = np.zeros((len(dets), 150, 170), bool)
    for i, crop, x0, y0 in dets.iter_masks(ours_p.mask_thr):
        ours[i, y0:y0 + crop.shape[0], x0:x0 + crop.shape[1]] = crop
    ours = ours[keep]
    stock = inst.masks.numpy()[pair]
    assert stock.any()
    assert (ours != stock).sum() <= 0.001 * ours.size


def test_nms_explained_accepts_only_near_decisions():
    """The rule above: a box suppressed on the other side by a
    same-label, higher-scoring box at IoU >= threshold - 0.01 is explained;
    one with no such neighbour (a different label, a clearly lower score,
    or too little overlap) is not."""
    box = np.array([[0, 0, 10, 10]], np.float32)
    one = np.array([0.5], np.float32)
    lab = np.array([1])
    near = np.array([[0, 0, 10, 15]], np.float32)  # IoU 0.667
    tie = np.array([[0, 0, 10, 20]], np.float32)  # IoU 0.5 exactly
    far = np.array([[0, 0, 10, 21]], np.float32)  # IoU 0.476
    for other, score, label, expect in [(near, 0.5, 1, True),
                                        (near, 0.49995, 1, True),
                                        (near, 0.45, 1, False),
                                        (near, 0.5, 2, False),
                                        (tie, 0.5, 1, True),
                                        (far, 0.5, 1, False)]:
        got = _nms_explained(box, one, lab, other,
                             np.array([score], np.float32),
                             np.array([label]), 0.5)
        assert got.tolist() == [expect], (other, score, label)


def test_tiny_image_and_no_detections(predictor):
    rgb = np.full((33, 35, 3), 200, np.uint8)
    dets = predictor.predict(rgb)
    assert dets.height == 33 and dets.width == 35
    res = predictor.to_coco_results(dets.select(np.zeros(len(dets), bool)),
                                    7)
    assert res == []
    assert predictor.label_maps(dets.select(np.zeros(len(dets),
                                                     bool))) == {}


def test_label_maps_resolve_overlaps_by_score(predictor):
    prob = np.ones((2, 28, 28), np.float32)
    dets = Detections(
        np.array([[0, 0, 10, 10], [5, 5, 15, 15]], np.float32),
        np.array([0.3, 0.9], np.float32), np.array([1, 1]), prob, 20, 20)
    maps = predictor.label_maps(dets)
    assert list(maps) == [1]
    m = maps[1]
    assert m.dtype == np.float64 and m.shape == (20, 20)
    # the overlap belongs to the higher score (id 2 after renumbering)
    assert m[7, 7] == 2 and m[2, 2] == 1 and m[17, 17] == 0
    assert set(np.unique(m)) == {0, 1, 2}


# ---------------------------------------------------------- the tool
@pytest.fixture(scope='module')
def predicted(checkpoint, tiny_data_root, tmp_path_factory):
    out = tmp_path_factory.mktemp('pred')
    proc = run_tool([
        'tools/predict.py', TINY_CONFIG, checkpoint, '--data-root',
        tiny_data_root, '--out-dir',
        str(out), '--save-label-maps', '--save-overlays', '--score-thr',
        '0.05'
    ])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_results_load_with_pycocotools_and_keep_ids(predicted,
                                                    tiny_data_root):
    gt = COCO(osp.join(tiny_data_root, 'annotations', 'test.json'))
    with open(predicted / 'test-results.json') as f:
        results = json.load(f)
    assert results, 'the tiny model should detect something'
    dt = gt.loadRes(str(predicted / 'test-results.json'))
    assert set(dt.getImgIds()) <= set(gt.getImgIds())
    with open(osp.join(tiny_data_root, 'test_image_name_to_ids.json')) as f:
        listing = {e['id']: e for e in json.load(f)}
    for r in results:
        assert isinstance(r['segmentation']['counts'], str)
        e = listing[r['image_id']]
        assert r['segmentation']['size'] == [e['height'], e['width']]
        assert 1 <= r['category_id'] <= 4 and len(r['bbox']) == 4
    with zipfile.ZipFile(predicted / 'submission.zip') as z:
        assert z.namelist() == ['test-results.json']
        assert json.loads(z.read('test-results.json')) == results


def test_label_maps_round_trip_through_converter(predicted, tiny_data_root):
    from mmseg_cells.data.hw3_coco import convert_image_dir
    from mmseg_cells.data.io import read_image
    with open(predicted / 'test-results.json') as f:
        results = json.load(f)
    with open(osp.join(tiny_data_root, 'test_image_name_to_ids.json')) as f:
        listing = json.load(f)
    for entry in listing:
        stem = osp.splitext(entry['file_name'])[0]
        folder = predicted / 'label_maps' / stem
        assert (predicted / 'overlays' / f'{stem}.png').is_file()
        mine = [r for r in results if r['image_id'] == entry['id']]
        # owner of each pixel: the highest-scoring result covering it
        h, w = entry['height'], entry['width']
        expect = {}
        owner = np.full((h, w), -1)
        for i in np.argsort([r['score'] for r in mine], kind='stable'):
            owner[mask_util.decode(mine[i]['segmentation']) > 0] = i
        for i, r in enumerate(mine):
            m = owner == i
            if m.any():
                expect.setdefault(r['category_id'], []).append(m)
        # a file per class that owns pixels (a class whose every instance
        # lost its pixels to higher scores has none, as in the real layout)
        files = sorted(p.name for p in folder.glob('class*.tif'))
        assert files == sorted(f'class{c}.tif' for c in expect)
        # the converter reads the label maps back as these instances
        sample = predicted / 'rt' / 'train' / stem
        shutil.copytree(folder, sample)
        write_image_tif(sample / 'image.tif', read_image(
            osp.join(tiny_data_root, 'test_release', entry['file_name'])))
        conv = convert_image_dir(sample, predicted / 'rt')
        got = {}
        for a in conv['annotations']:
            got.setdefault(a['category_id'], []).append(
                mask_util.decode(a['segmentation']) > 0)
        assert sorted(got) == sorted(expect)
        for cat in expect:
            key = lambda m: tuple(np.argwhere(m)[0])  # noqa: E731
            assert len(got[cat]) == len(expect[cat])
            for a, b in zip(sorted(got[cat], key=key),
                            sorted(expect[cat], key=key)):
                assert np.array_equal(a, b)
            ids = read_instance_map(folder / f'class{cat}.tif')
            assert ids.max() == len(expect[cat])


def test_failed_image_is_reported_and_others_kept(checkpoint,
                                                  tiny_data_root, tmp_path):
    root = tmp_path / 'data'
    shutil.copytree(osp.join(tiny_data_root, 'test_release'),
                    root / 'test_release')
    shutil.copy(osp.join(tiny_data_root, 'test_image_name_to_ids.json'),
                root)
    with open(root / 'test_image_name_to_ids.json') as f:
        listing = json.load(f)
    bad = root / 'test_release' / listing[0]['file_name']
    bad.write_bytes(b'II*\x00 truncated')
    out = tmp_path / 'out'
    proc = run_tool([
        'tools/predict.py', TINY_CONFIG, checkpoint, '--data-root',
        str(root), '--out-dir',
        str(out), '--score-thr', '0.05'
    ])
    assert proc.returncode == 1
    assert str(bad) in proc.stderr
    with open(out / 'test-results.json') as f:
        results = json.load(f)
    assert {r['image_id'] for r in results} <= {listing[1]['id']}
    assert not list(out.glob('.*.tmp'))


def test_no_detections_give_empty_results(checkpoint, tiny_data_root,
                                          tmp_path):
    proc = run_tool([
        'tools/predict.py', TINY_CONFIG, checkpoint, '--data-root',
        tiny_data_root, '--out-dir',
        str(tmp_path), '--score-thr', '1.01'
    ])
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(tmp_path / 'test-results.json') as f:
        assert json.load(f) == []


def test_cfg_options_override_the_config(checkpoint, tiny_data_root,
                                         tmp_path):
    """``--cfg-options`` (mmdet's name) edits the config before the model
    is built: a cap of 2 detections per image holds in the results; a key
    the config lacks is an error naming it."""
    proc = run_tool([
        'tools/predict.py', TINY_CONFIG, checkpoint, '--data-root',
        tiny_data_root, '--out-dir', str(tmp_path), '--score-thr', '0',
        '--no-tta', '--exact', '--cfg-options',
        'model.test_cfg.rcnn.max_per_img=2'
    ])
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(tmp_path / 'test-results.json') as f:
        per_image = collections.Counter(r['image_id'] for r in json.load(f))
    assert sorted(per_image.values()) == [2, 2]
    bad = run_tool([
        'tools/predict.py', TINY_CONFIG, checkpoint, '--data-root',
        tiny_data_root, '--out-dir', str(tmp_path / 'bad'), '--cfg-options',
        'model.roi_head.mask_head.type=NoSuchHead'
    ])
    assert bad.returncode == 1
    assert 'tiny_cbam_mask_rcnn.py: cannot build the model: NoSuchHead is ' \
        'not in the mmdet::model registry' in bad.stderr
    assert 'Traceback' not in bad.stderr
    assert not (tmp_path / 'bad' / 'test-results.json').exists()


def test_overlays_show_only_cells_above_the_show_score_thr(
        checkpoint, tiny_data_root, tmp_path):
    """``--show-score-thr`` (mmdet's name) filters what the overlays draw,
    not the results: at 1.01 an overlay is the image itself, at 0 it shows
    the cells, and the results file is the same either way."""
    from mmseg_cells.data.io import read_image
    outs = {}
    for thr in ('1.01', '0'):
        out = tmp_path / thr
        proc = run_tool([
            'tools/predict.py', TINY_CONFIG, checkpoint, '--data-root',
            tiny_data_root, '--out-dir', str(out), '--save-overlays',
            '--score-thr', '0.05', '--show-score-thr', thr
        ])
        assert proc.returncode == 0, proc.stderr[-2000:]
        outs[thr] = out
    assert (outs['0'] / 'test-results.json').read_bytes() == \
        (outs['1.01'] / 'test-results.json').read_bytes()
    assert json.loads((outs['0'] / 'test-results.json').read_text())
    with open(osp.join(tiny_data_root, 'test_image_name_to_ids.json')) as f:
        listing = json.load(f)
    drawn = 0
    for e in listing:
        stem = osp.splitext(e['file_name'])[0]
        image = read_image(osp.join(tiny_data_root, 'test_release',
                                    e['file_name']))
        none = read_image(str(outs['1.01'] / 'overlays' / f'{stem}.png'))
        np.testing.assert_array_equal(none, image)
        drawn += int((read_image(str(outs['0'] / 'overlays' /
                                     f'{stem}.png')) != image).any())
    assert drawn > 0


def test_images_folder_mode_assigns_ids(checkpoint, tiny_data_root,
                                        tmp_path):
    proc = run_tool([
        'tools/predict.py', TINY_CONFIG, checkpoint, '--images',
        osp.join(tiny_data_root, 'test_release'), '--out-dir',
        str(tmp_path)
    ])
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(tmp_path / 'image_name_to_ids.json') as f:
        mapping = json.load(f)
    assert [m['id'] for m in mapping] == [1, 2]
    assert [m['file_name'] for m in mapping] == sorted(
        m['file_name'] for m in mapping)
    missing = run_tool([
        'tools/predict.py', TINY_CONFIG, checkpoint, '--data-root',
        str(tmp_path / 'nowhere'), '--out-dir',
        str(tmp_path / 'o2')
    ])
    assert missing.returncode == 1
    assert 'test_image_name_to_ids.json: not found' in missing.stderr


def test_core_hint_only_skips_work(checkpoint):
    """Dropping the boxes outside a tile's core before the mask head gives
    the same merged result as computing every mask and filtering after."""
    from mmseg_cells.apis import CellPredictor

    # score_thr 0 keeps every box: the tiny model's confidence on these blobs
    # varies from machine to machine, the equality under test does not
    predictor = CellPredictor(TINY_CONFIG, checkpoint, device='cpu',
                              score_thr=0.0, bounds=None)
    rgb = blob_image(2, 200, 230, 40, margin=5)
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    hinted = predict_tiled(predictor._predict_array, bgr, 96, 32, 1000)
    plain = predict_tiled(lambda img, core: predictor._predict_array(img),
                          bgr, 96, 32, 1000)
    assert len(hinted) == len(plain) > 0
    for a, b in [(hinted.bboxes, plain.bboxes), (hinted.scores, plain.scores),
                 (hinted.mask_probs, plain.mask_probs)]:
        assert np.allclose(a, b, atol=1e-5)


@pytest.mark.parametrize('shape,tiles', [((20, 400), 1),  # long, small area
                                         ((300, 290), 16),
                                         ((40, 400), 5),
                                         ((90, 95), 1)])  # short sides
def test_tiling_decided_by_side_and_area(predictor, monkeypatch, shape,
                                         tiles):
    """Tiles only when the longer side exceeds tile_above and the image is
    larger than one tile square: a long thin strip runs whole."""
    calls = []
    orig = predictor._predict_array

    def spy(img, *args, **kwargs):
        calls.append(img.shape[:2])
        return orig(img, *args, **kwargs)
    monkeypatch.setattr(predictor, '_predict_array', spy)
    monkeypatch.setattr(predictor, 'tile_size', 100)
    monkeypatch.setattr(predictor, 'tile_overlap', 20)
    monkeypatch.setattr(predictor, 'tile_above', 120)
    rgb = np.full(shape + (3, ), 200, np.uint8)
    dets = predictor.predict(rgb)
    assert len(calls) == tiles
    if tiles > 1:
        assert tiles == len(tile_grid(shape[0], 100, 20)) * len(
            tile_grid(shape[1], 100, 20))
        assert all(h <= 100 and w <= 100 for h, w in calls)
    else:
        assert calls == [shape]
    assert (dets.height, dets.width) == shape


def test_label_map_overlaps_follow_the_written_scores():
    """Two overlapping cells whose scores differ only below the 5 decimals
    of test-results.json: the label maps must give the overlap to the cell
    a reader of the results file would (the later of equal written scores),
    not decide by digits the file does not hold. The cause of a once flaky
    round-trip test."""
    m = 28
    probs = np.ones((2, m, m), np.float32)
    boxes = np.array([[10, 10, 40, 40], [25, 25, 55, 55]], np.float32)
    # float32 order: cell 0 higher; written (5 decimals): equal
    scores = np.array([0.1234571, 0.1234551], np.float32)
    dets = Detections(boxes, scores, np.array([0, 0]), probs, 64, 64)
    results = coco_results(dets, image_id=1, mask_thr=0.5)
    assert results[0]['score'] == results[1]['score']
    maps = instance_label_maps(dets, mask_thr=0.5)
    owner = np.full((64, 64), -1)
    for i in np.argsort([r['score'] for r in results], kind='stable'):
        owner[mask_util.decode(results[i]['segmentation']) > 0] = i
    # the overlap belongs to cell 1 (id 2 after renumbering)
    assert maps[0][30, 30] == 2 and owner[30, 30] == 1
    for i in range(2):
        assert np.array_equal(maps[0] == i + 1, owner == i)


# ------------------------------------------------------------- overlays
def test_overlay_fill_and_outline_rules():
    """predict's look: class colour blended at 0.45, white outline on the
    pixels whose upper or left neighbour differs (cyclically); the outline
    look of compare_synthetic: class-coloured inner boundaries, no fill."""
    from mmseg_cells.visualization import draw_instance_overlay
    rgb = np.full((6, 7, 3), 100, np.uint8)
    ids = np.zeros((6, 7))
    ids[1:4, 1:5] = 1
    ids[4:6, 1:5] = 2  # touches instance 1 and the bottom border
    vis = draw_instance_overlay(rgb, {1: ids}, [(0, 0, 0), (200, 0, 0)])
    thin = np.zeros((6, 7), bool)
    thin[1, 1:5] = thin[1:6, 1] = thin[4, 1:5] = True
    assert (vis[thin] == 255).all()
    assert (vis[(ids > 0) & ~thin] == (145, 55, 55)).all()
    assert (vis[ids == 0] == 100).all()
    # row 0 compares with the last row: an instance there is outlined
    top = np.zeros((6, 7))
    top[0, 2] = 3
    assert (draw_instance_overlay(rgb, {0: top}, [(0, 0, 0)])[0, 2] ==
            255).all()
    out = draw_instance_overlay(rgb, {0: ids}, [(0, 255, 0)], fill_alpha=0,
                                outline_colour=None, outline='inner')
    inner = np.zeros((6, 7), bool)
    inner[1:6, 1:5] = True
    # all 8 neighbours inside the image alike (the border does not count)
    inner[2, 2:4] = inner[5, 2:4] = False
    assert (out[inner] == (0, 255, 0)).all()
    assert (out[~inner] == 100).all()


def test_tool_defaults_to_cluster_merged_flip_tta():
    """Flip TTA with the cluster merge is the tool's default (it raised
    held-out AP50 on both real sets); --no-tta and --tta-merge nms remain."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'predict_tool', osp.join(osp.dirname(TINY_CONFIG), '..', '..',
                                 'tools', 'predict.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    base = ['cfg.py', 'ckpt.pth', '--data-root', 'd', '--out-dir', 'o']
    args = tool.parse_args(base)
    assert args.tta is True and args.tta_merge == 'cluster'
    args = tool.parse_args(base + ['--no-tta', '--tta-merge', 'nms'])
    assert args.tta is False and args.tta_merge == 'nms'
