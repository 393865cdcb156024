"""CropBitmapMasks / LoadCellAnnotations against mmdet's BitmapMasks."""
import copy
import random

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks, mask_target
from mmengine.config import ConfigDict
from mmengine.structures import InstanceData

from mmseg_cells.mask_codec import rle_to_crop
from mmseg_cells.structures.crop_masks import (CropBitmapMasks,
                                               nearest_index_map)
from mmseg_cells.utils import register_all_modules

register_all_modules()  # registrations and compat fixes


def _random_masks(rng, n, height, width, dtype=np.uint8):
    """Blobs of random size (some touching or leaving the image, some
    empty, some with holes) as an (n, H, W) array."""
    masks = np.zeros((n, height, width), dtype)
    yy, xx = np.ogrid[:height, :width]
    for i in range(n):
        r = rng.random()
        if r < 0.1:
            continue  # empty mask
        if r < 0.2:  # touching a border
            cy = rng.choice([0.0, height - 1.0, rng.uniform(0, height)])
            cx = rng.choice([0.0, width - 1.0])
        else:
            cy, cx = rng.uniform(-4, height + 4), rng.uniform(-4, width + 4)
        ry, rx = rng.uniform(0.6, 16, 2)
        blob = ((yy - cy) / ry)**2 + ((xx - cx) / rx)**2 <= 1
        blob &= rng.random((height, width)) > 0.15
        masks[i] = blob
    if n > 2:
        masks[1, :, :] = 0
        masks[1, 0, 0] = 1  # a single corner pixel
    return masks


def _pair(rng, n=30, height=67, width=91, dtype=np.uint8):
    full = _random_masks(rng, n, height, width, dtype)
    return (BitmapMasks(full, height, width),
            CropBitmapMasks.from_bitmap(full))


def _same(bm, cm):
    assert isinstance(cm, CropBitmapMasks)
    assert (bm.height, bm.width) == (cm.height, cm.width)
    assert len(bm) == len(cm)
    arr = cm.to_ndarray()
    assert arr.dtype == bm.masks.dtype, (arr.dtype, bm.masks.dtype)
    np.testing.assert_array_equal(arr, bm.masks)
    # crops stay tight: their boxes are the masks' boxes
    for c, (x0, y0) in zip(cm.crops, cm.offsets):
        if c.size:
            assert c[0].any() and c[-1].any() and c[:, 0].any() and \
                c[:, -1].any()
            assert x0 >= 0 and y0 >= 0
            assert x0 + c.shape[1] <= cm.width
            assert y0 + c.shape[0] <= cm.height


@pytest.fixture
def rng():
    return np.random.default_rng(0)


SIZES = [(67, 91), (1, 5), (40, 1), (128, 64)]


@pytest.mark.parametrize('n', [0, 1, 25])
def test_construct_index_cat_iter(rng, n):
    for h, w in SIZES:
        bm, cm = _pair(rng, n, h, w)
        _same(bm, cm)
        np.testing.assert_array_equal(cm.areas, bm.areas)
        assert cm.areas.dtype == bm.areas.dtype
        assert [m.tolist() for m in cm] == [m.tolist() for m in bm]
        t = cm.to_tensor(torch.float32, 'cpu')
        assert torch.equal(t, bm.to_tensor(torch.float32, 'cpu'))
        if n == 0:
            continue
        idx = [
            0, -1,
            slice(1, None, 3),
            slice(0, n, n),
            np.arange(n)[::-2],
            rng.random(n) > 0.5,
            [0, 0, n - 1],
            torch.tensor([n - 1, 0]),
            torch.from_numpy(rng.random(n) > 0.3),
            np.array([], np.int64),
        ]
        for i in idx:
            bi = i.numpy() if isinstance(i, torch.Tensor) else i
            _same(bm[bi], cm[i])
        _same(BitmapMasks.cat([bm, bm[:2]]), CropBitmapMasks.cat([cm, cm[:2]]))
        # InstanceData indexing (mmengine uses slices and cat for masks)
        inst = InstanceData(masks=cm, labels=torch.arange(n))
        sel = torch.from_numpy(rng.random(n) > 0.5)
        _same(bm[sel.numpy()], inst[sel].masks)
        _same(bm[[n - 1]], inst[n - 1].masks)


def test_from_rle_and_annotations(rng):
    h, w = 53, 77
    full = _random_masks(rng, 40, h, w)
    # a mask whose runs wrap columns (touches top and bottom)
    full[2, :, 10:12] = 1
    full[3, h - 3:, 5] = 1
    full[3, :2, 6] = 1
    for i, m in enumerate(full):
        rle = mask_util.encode(np.asfortranarray(m))
        for counts in (rle['counts'], rle['counts'].decode()):
            c, x0, y0 = rle_to_crop({'size': rle['size'], 'counts': counts})
            got = np.zeros((h, w), np.uint8)
            got[y0:y0 + c.shape[0], x0:x0 + c.shape[1]] = c
            np.testing.assert_array_equal(got, m, err_msg=str(i))
    # uncompressed RLE (list counts)
    m = full[5]
    flat = m.flatten(order='F')
    change = np.flatnonzero(np.diff(np.concatenate(([0], flat, [2]))))
    counts = np.diff(np.concatenate(([0], change))).tolist()
    cm = CropBitmapMasks.from_annotations([{
        'size': [h, w],
        'counts': counts
    }], h, w)
    np.testing.assert_array_equal(cm.to_ndarray()[0], m)
    # polygons (same rasterisation as LoadAnnotations)
    polys = [[np.array([3.2, 4.1, 30.5, 6.0, 20.0, 40.7])],
             [np.array([60., 50., 76., 52., 70., 30.]),
              np.array([1., 1., 5., 1., 3., 6.])]]
    cm = CropBitmapMasks.from_annotations(polys, h, w)
    for got, p in zip(cm.to_ndarray(), polys):
        want = mask_util.decode(
            mask_util.merge(mask_util.frPyObjects(p, h, w)))
        np.testing.assert_array_equal(got, want)
    assert cm.dtype == np.uint8


@pytest.mark.parametrize('n', [0, 1, 30])
def test_rescale_resize(rng, n):
    for h, w in [(67, 91), (3, 200), (129, 33)]:
        bm, cm = _pair(rng, n, h, w)
        for scale in [1.5, 0.7, 2.0, 0.33, 1.0, 3, (100, 60), (1333, 800)]:
            _same(bm.rescale(scale), cm.rescale(scale))
        for shape in [(50, 211), (300, 17), (h, w), (1, 1), (h + 1, w - 1)]:
            _same(bm.resize(shape), cm.resize(shape))
        # non-nearest interpolation (per-instance fallback)
        _same(bm.resize((40, 50), 'bilinear'), cm.resize((40, 50),
                                                         'bilinear'))


def test_nearest_index_map_matches_cv2(rng):
    import cv2
    for _ in range(60):
        n_in, n_out = (int(v) for v in rng.integers(1, 3000, 2))
        row = np.arange(n_in, dtype=np.uint16)[None].repeat(2, 0)
        want = cv2.resize(row, (n_out, 2), interpolation=cv2.INTER_NEAREST)
        np.testing.assert_array_equal(nearest_index_map(n_in, n_out), want[0])


@pytest.mark.parametrize('n', [0, 1, 30])
def test_flip_pad_crop_expand(rng, n):
    for dtype in (np.uint8, bool):
        bm, cm = _pair(rng, n, 67, 91, dtype)
        for d in ('horizontal', 'vertical', 'diagonal'):
            _same(bm.flip(d), cm.flip(d))
        if dtype is bool:  # cv2 (impad) cannot pad bool masks
            bm, cm = _pair(rng, n, 67, 91)
        for shape, val in [((96, 96), 0), ((67, 91), 0), ((70, 100), 1)]:
            _same(bm.pad(shape, pad_val=val), cm.pad(shape, pad_val=val))
        boxes = [[10, 5, 50, 40], [0, 0, 91, 67], [-5, -5, 200, 300],
                 [80, 60, 120, 100], [30, 30, 30, 30], [0, 0, 1, 1],
                 [45, 10, 46, 67]]
        for b in boxes:
            b = np.array(b)
            _same(bm.crop(b), cm.crop(b))
        _same(bm.expand(100, 120, 7, 11), cm.expand(100, 120, 7, 11))
        _same(bm.expand(67, 91, 0, 0), cm.expand(67, 91, 0, 0))


@pytest.mark.parametrize('n', [0, 1, 4, 30])
def test_translate_shear_rotate(rng, n):
    bm, cm = _pair(rng, n, 67, 91)
    for shape in [(67, 91), (50, 120), (80, 40)]:
        for off in [0, 7, -13, 200, 3.0, 2.4, -0.5]:
            for d in ('horizontal', 'vertical'):
                for interp in ('bilinear', 'nearest'):
                    _same(
                        bm.translate(shape, off, d, interpolation=interp),
                        cm.translate(shape, off, d, interpolation=interp))
    if n == 1:  # BitmapMasks only applies a border to its first 3 masks
        _same(bm.translate((67, 91), 5, border_value=1),
              cm.translate((67, 91), 5, border_value=1))
    if n > 0 and n <= 4:  # cv2.warpAffine: at most 4 channels for images
        for mag in (0.3, -0.2):
            for d in ('horizontal', 'vertical'):
                _same(bm.shear((67, 91), mag, d), cm.shear((67, 91), mag, d))
        for angle in (30, -45.5, 90):
            _same(bm.rotate((67, 91), angle), cm.rotate((67, 91), angle))
            _same(
                bm.rotate((67, 91), angle, center=(10., 20.), scale=1.3),
                cm.rotate((67, 91), angle, center=(10., 20.), scale=1.3))
    elif n == 0:
        _same(bm.shear((67, 91), 0.3), cm.shear((67, 91), 0.3))
        _same(bm.rotate((67, 91), 30), cm.rotate((67, 91), 30))


@pytest.mark.parametrize('n', [0, 1, 30])
def test_get_bboxes(rng, n):
    bm, cm = _pair(rng, n, 67, 91)
    want = bm.get_bboxes('hbox')
    got = cm.get_bboxes('hbox')
    assert isinstance(got, HorizontalBoxes)
    assert torch.equal(got.tensor, want.tensor)
    assert torch.equal(cm.get_bboxes(HorizontalBoxes).tensor, want.tensor)


def _random_rois(rng, num, height, width, gt_boxes):
    """Proposals around gt boxes (jittered/rescaled) plus random ones,
    clipped to the image like mask_target does."""
    out = []
    for _ in range(num):
        if rng.random() < 0.75 and len(gt_boxes):
            x1, y1, x2, y2 = gt_boxes[rng.integers(len(gt_boxes))]
            cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
            bw = max(x2 - x1, 1) * rng.uniform(0.5, 1.8)
            bh = max(y2 - y1, 1) * rng.uniform(0.5, 1.8)
            cx += rng.normal(0, 3)
            cy += rng.normal(0, 3)
            box = [cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2]
        else:
            x1, y1 = rng.uniform(-20, width), rng.uniform(-20, height)
            box = [x1, y1, x1 + rng.uniform(0, 120), y1 + rng.uniform(0, 90)]
        if rng.random() < 0.1:
            box = [round(v) for v in box]  # integral boxes: exact ties
        out.append(box)
    boxes = np.array(out, np.float64)
    boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, width)
    boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, height)
    return boxes


@pytest.mark.parametrize('height,width,n,num_rois',
                         [(67, 91, 40, 400), (520, 700, 12, 32),
                          (5, 7, 40, 400)])
def test_crop_and_resize(rng, height, width, n, num_rois):
    full = np.zeros((n, height, width), np.uint8)
    small = _random_masks(rng, n, min(height, 120), min(width, 140))
    for i in range(n):  # place the blobs anywhere (incl. far coordinates)
        y0 = rng.integers(0, height - small.shape[1] + 1)
        x0 = rng.integers(0, width - small.shape[2] + 1)
        full[i, y0:y0 + small.shape[1], x0:x0 + small.shape[2]] = small[i]
    bm = BitmapMasks(full, height, width)
    cm = CropBitmapMasks.from_bitmap(full)
    gt_boxes = bm.get_bboxes('hbox').tensor.numpy()
    rois = _random_rois(rng, num_rois, height, width, gt_boxes)
    inds = rng.integers(0, n, len(rois))
    for dtype in (np.float32, np.float64):
        r = rois.astype(dtype)
        for out_shape in ((28, 28), (14, 9)):
            want = bm.crop_and_resize(r, out_shape, inds, binarize=False)
            got = cm.crop_and_resize(r, out_shape, inds, binarize=False)
            assert isinstance(got, BitmapMasks)
            assert got.masks.dtype == want.masks.dtype
            assert got.masks.shape == want.masks.shape
            np.testing.assert_allclose(got.masks, want.masks, rtol=0,
                                       atol=1e-6)
            # values next to the threshold are recomputed exactly
            tie = np.abs(want.masks - 0.5) < 1e-6
            np.testing.assert_array_equal(got.masks[tie], want.masks[tie])
            want_b = bm.crop_and_resize(
                torch.from_numpy(r), out_shape, torch.from_numpy(inds))
            got_b = cm.crop_and_resize(
                torch.from_numpy(r), out_shape, torch.from_numpy(inds))
            assert got_b.masks.dtype == want_b.masks.dtype == bool
            np.testing.assert_array_equal(got_b.masks, want_b.masks)
    # degenerate cases
    empty = cm.crop_and_resize(rois[:0], (28, 28), inds[:0])
    assert len(empty) == 0 and (empty.height, empty.width) == (28, 28)
    none = CropBitmapMasks([], [], height, width)
    got = none.crop_and_resize(rois[:3], (28, 28), inds[:3] * 0)
    assert len(got) == 0 and got.masks.dtype == np.uint8
    with pytest.raises(TypeError):  # RoIAlign's dtypes only
        cm.crop_and_resize(rois[:3].astype(np.int64), (28, 28), inds[:3])


def test_mask_target(rng):
    """mmdet's mask_target (FCNMaskHead.get_targets) on both structures."""
    h, w = 150, 170
    full = _random_masks(rng, 50, h, w)
    bm, cm = BitmapMasks(full, h, w), CropBitmapMasks.from_bitmap(full)
    gt_boxes = bm.get_bboxes('hbox').tensor.numpy()
    props, assigned = [], []
    for _ in range(2):
        p = _random_rois(rng, 128, h, w, gt_boxes)
        props.append(torch.from_numpy(p).float())
        assigned.append(torch.from_numpy(rng.integers(0, 50, 128)))
    cfg = ConfigDict(mask_size=28)
    want = mask_target(props, assigned, [bm, bm], cfg)
    got = mask_target(props, assigned, [cm, cm], cfg)
    assert got.dtype == want.dtype and torch.equal(got, want)


# ---------------------------------------------------------------- pipeline
def _crowded_results(rng, height, width, n):
    """A CocoDataset-like data_info: n small elliptic cells, RLE/polygon
    masks, a few crowd (ignored) and one invalid-polygon instance."""
    yy, xx = np.ogrid[:height, :width]
    instances = []
    for i in range(n):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        ry, rx = rng.uniform(4, 14, 2)
        m = (((yy - cy) / ry)**2 + ((xx - cx) / rx)**2 <= 1).astype(np.uint8)
        if not m.any():
            continue
        ys, xs = np.nonzero(m)
        bbox = [float(xs.min()), float(ys.min()), xs.max() + 1.,
                ys.max() + 1.]
        if i % 7 == 3:  # polygon
            t = np.linspace(0, 2 * np.pi, 12, endpoint=False)
            mask = [np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)],
                             1).ravel().tolist()]
        else:
            rle = mask_util.encode(np.asfortranarray(m))
            mask = {'size': rle['size'], 'counts': rle['counts'].decode()}
        instances.append(
            dict(
                bbox=bbox,
                bbox_label=int(rng.integers(4)),
                ignore_flag=int(i % 23 == 5),
                mask=mask))
    instances.append(
        dict(bbox=[1., 1., 5., 5.], bbox_label=0, ignore_flag=0,
             mask=[[1., 1., 2., 2.]]))  # invalid polygon -> ignored
    img = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    return dict(
        img=img,
        img_shape=(height, width),
        ori_shape=(height, width),
        img_id=0,
        img_path='synthetic.png',
        instances=instances)


def _pipeline(load_type, crop):
    """The config's training pipeline after image loading, with
    ``load_type`` as annotation loader and a ``crop`` px RandomCrop."""
    from pathlib import Path

    from mmcv.transforms import Compose
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    init_default_scope('mmdet')  # 'Resize' etc. are mmdet's, as in training
    cfg = Config.fromfile(
        str(Path(__file__).resolve().parents[1] / 'configs' / '_base_' /
            'datasets' / 'hw3_cells.py'))
    steps = [dict(t) for t in cfg.train_pipeline[1:]]  # no image loading
    for t in steps:
        if t['type'] == 'LoadCellAnnotations':
            t['type'] = load_type
        elif t['type'] == 'RandomCrop':
            t['crop_size'] = (crop, crop)
    return Compose(steps)


def _run(pipeline, results, seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return pipeline(copy.deepcopy(results))


def test_train_pipeline_equivalent(rng):
    from mmdet.models.data_preprocessors import DetDataPreprocessor
    results = _crowded_results(rng, 230, 260, 160)
    stock, compact = (_pipeline(t, 192)
                      for t in ('LoadAnnotations', 'LoadCellAnnotations'))
    pre = DetDataPreprocessor(
        mean=[0., 0., 0.], std=[1., 1., 1.], pad_mask=True,
        pad_size_divisor=32)
    seen = set()
    for seed in range(12):
        a, b = _run(stock, results, seed), _run(compact, results, seed)
        sa, sb = a['data_samples'], b['data_samples']
        seen.add(sa.metainfo['flip_direction'])
        assert torch.equal(a['inputs'], b['inputs'])
        assert isinstance(sb.gt_instances.masks, CropBitmapMasks)
        for key in ('gt_instances', 'ignored_instances'):
            ia, ib = getattr(sa, key), getattr(sb, key)
            assert torch.equal(ia.bboxes.tensor, ib.bboxes.tensor)
            assert torch.equal(ia.labels, ib.labels)
            _same(ia.masks, ib.masks)
        # DetDataPreprocessor pads the masks (masks.pad)
        pa = pre(dict(inputs=[a['inputs']], data_samples=[sa]), True)
        pb = pre(dict(inputs=[b['inputs']], data_samples=[sb]), True)
        ma = pa['data_samples'][0].gt_instances.masks
        mb = pb['data_samples'][0].gt_instances.masks
        _same(ma, mb)
        # mask head targets from proposals around the gt boxes
        n = len(ma)
        if n:
            h, w = ma.height, ma.width
            gtb = ma.get_bboxes('hbox').tensor.numpy()
            p = torch.from_numpy(_random_rois(rng, 24, h, w, gtb)).float()
            g = torch.from_numpy(rng.integers(0, n, 24))
            cfg = ConfigDict(mask_size=28)
            assert torch.equal(
                mask_target([p], [g], [ma], cfg),
                mask_target([p], [g], [mb], cfg))
    assert {'horizontal', 'vertical', 'diagonal', None} <= seen


def test_memory_crowded_1024():
    """800 cells at 1024^2: the structure holds < 5 % of BitmapMasks'
    N*H*W bytes (computed, not allocated)."""
    rng = np.random.default_rng(1)
    h = w = 1024
    rles = []
    for _ in range(800):
        side = float(np.clip(rng.lognormal(np.log(21), 0.3), 8, 60))
        ry, rx = side / 2, side / 2 * rng.uniform(0.7, 1.0)
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        y0, y1 = max(int(cy - ry), 0), min(int(cy + ry) + 1, h)
        x0, x1 = max(int(cx - rx), 0), min(int(cx + rx) + 1, w)
        yy, xx = np.ogrid[y0:y1, x0:x1]
        blob = (((yy - cy) / ry)**2 + ((xx - cx) / rx)**2 <= 1)
        m = np.zeros((h, w), np.uint8, order='F')
        m[y0:y1, x0:x1] = blob
        rles.append(mask_util.encode(m))
    cm = CropBitmapMasks.from_rle_list(rles, h, w)
    stock_bytes = 800 * h * w
    assert cm.nbytes < 0.05 * stock_bytes, cm.nbytes
    up = cm.rescale(1.5)
    assert up.nbytes < 0.05 * 800 * up.height * up.width, up.nbytes


def test_load_cell_annotations_matches_load_annotations(rng):
    from mmdet.datasets.transforms import LoadAnnotations

    from mmseg_cells.datasets.transforms import LoadCellAnnotations
    results = _crowded_results(rng, 60, 70, 25)
    inst = results['instances']
    # mmdet marks these invalid (ignored, fake mask): bytes counts, bad dict
    rle = dict(inst[0]['mask'])
    inst[0]['mask'] = dict(size=rle['size'], counts=rle['counts'].encode())
    inst[1]['mask'] = dict(size=rle['size'])
    want = LoadAnnotations(with_mask=True)(copy.deepcopy(results))
    got = LoadCellAnnotations(with_mask=True)(copy.deepcopy(results))
    _same(want['gt_masks'], got['gt_masks'])
    np.testing.assert_array_equal(want['gt_ignore_flags'],
                                  got['gt_ignore_flags'])
    assert got['gt_ignore_flags'][:2].all()
    assert torch.equal(want['gt_bboxes'].tensor, got['gt_bboxes'].tensor)
    np.testing.assert_array_equal(want['gt_bboxes_labels'],
                                  got['gt_bboxes_labels'])
    stock = LoadCellAnnotations(
        with_mask=True, compact_masks=False)(copy.deepcopy(results))
    assert type(stock['gt_masks']) is BitmapMasks
    assert 'compact_masks=True' in repr(LoadCellAnnotations(with_mask=True))
    with pytest.raises(ValueError):
        CropBitmapMasks.from_rle_list([rle], 61, 70)
