"""RandomRot90, RandomHEDJitter and RandomScaleFactorResize: label-safe
augmentations."""
import numpy as np
import pytest
import torch
from mmdet.structures.bbox import HorizontalBoxes
from mmdet.structures.mask import BitmapMasks

from mmseg_cells.datasets.transforms import (RandomHEDJitter, RandomRot90,
                                             RandomScaleFactorResize)
from mmseg_cells.data.stain import RGB_FROM_HED, hed_to_rgb, rgb_to_hed
from mmseg_cells.structures.crop_masks import CropBitmapMasks
from mmseg_cells.utils import register_all_modules

register_all_modules()


def _sample(seed: int, height: int = 37, width: int = 53, n: int = 6):
    """An image with ``n`` random blob masks, their tight boxes."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    full = np.zeros((n, height, width), np.uint8)
    for i in range(n):
        cy, cx = rng.integers(0, height), rng.integers(0, width)
        ry, rx = rng.integers(2, 9, 2)
        yy, xx = np.ogrid[:height, :width]
        full[i] = ((yy - cy) / ry)**2 + ((xx - cx) / rx)**2 <= 1
    boxes = CropBitmapMasks.from_bitmap(full).get_bboxes('hbox')
    return img, full, boxes


@pytest.mark.parametrize('k', [0, 1, 2, 3, 5])
@pytest.mark.parametrize('crop', [True, False])
def test_rot90_moves_image_boxes_and_masks_together(k, crop):
    img, full, boxes = _sample(k)
    h, w = img.shape[:2]
    masks = (CropBitmapMasks.from_bitmap(full) if crop else
             BitmapMasks(full.copy(), h, w))
    seg = np.arange(h * w, dtype=np.int32).reshape(h, w)
    res = RandomRot90(k=k)(dict(img=img.copy(), img_shape=(h, w),
                                gt_bboxes=HorizontalBoxes(boxes.tensor),
                                gt_masks=masks, gt_seg_map=seg))
    assert res['rot90_k'] == k % 4
    assert np.array_equal(res['img'], np.rot90(img, k))
    assert res['img_shape'] == res['img'].shape[:2]
    assert np.array_equal(res['gt_seg_map'], np.rot90(seg, k))
    got = res['gt_masks']
    assert type(got) is type(masks)
    assert (got.height, got.width) == res['img'].shape[:2]
    assert np.array_equal(got.to_ndarray(), np.rot90(full, k, axes=(1, 2)))
    # the boxes are the tight boxes of the rotated masks, exactly
    tight = CropBitmapMasks.from_bitmap(
        np.rot90(full, k, axes=(1, 2)).copy()).get_bboxes('hbox')
    assert torch.equal(res['gt_bboxes'].tensor, tight.tensor)
    if k % 4 == 0:
        assert 'homography_matrix' not in res
        return
    # the homography maps the original boxes' corners onto the new ones
    mat = res['homography_matrix']
    corners = boxes.tensor.numpy().reshape(-1, 2)
    moved = (mat[:, :2] @ corners.T + mat[:, 2:]).T[:, :2].reshape(-1, 4)
    moved = np.concatenate([np.minimum(moved[:, :2], moved[:, 2:]),
                            np.maximum(moved[:, :2], moved[:, 2:])], 1)
    np.testing.assert_allclose(moved, tight.tensor.numpy(), atol=1e-4)


def test_rot90_draws_each_orientation():
    np.random.seed(0)
    t = RandomRot90(prob=0.75)
    img = np.zeros((4, 6, 3), np.uint8)
    ks = [t(dict(img=img))['rot90_k'] for _ in range(4000)]
    freq = np.bincount(ks, minlength=4) / len(ks)
    np.testing.assert_allclose(freq, 0.25, atol=0.03)
    assert {RandomRot90(prob=0.0)(dict(img=img))['rot90_k']
            for _ in range(50)} == {0}


def test_rot90_in_a_pipeline_from_the_registry():
    from mmdet.registry import TRANSFORMS
    img, full, boxes = _sample(7)
    pipe = TRANSFORMS.build(dict(type='RandomRot90', k=1))
    res = pipe(dict(img=img, gt_bboxes=HorizontalBoxes(boxes.tensor),
                    gt_masks=CropBitmapMasks.from_bitmap(full)))
    assert res['img'].shape == (img.shape[1], img.shape[0], 3)


def test_hed_round_trip_and_stain_vectors():
    """Converting to HED and back gives the image (within rounding); a pure
    haematoxylin optical density has concentrations (1, 0, 0)."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(1, 256, (30, 40, 3), dtype=np.uint8)
    assert np.abs(hed_to_rgb(rgb_to_hed(rgb)).astype(int) - rgb).max() <= 1
    haem = (255 * np.exp(-RGB_FROM_HED[0])).reshape(1, 1, 3)
    np.testing.assert_allclose(rgb_to_hed(haem), [[[1, 0, 0]]], atol=1e-12)


@pytest.mark.parametrize('order', ['bgr', 'rgb'])
def test_hed_jitter_scales_the_stains_and_leaves_labels(order):
    rng = np.random.default_rng(1)
    rgb = rng.integers(40, 230, (32, 32, 3), dtype=np.uint8)
    img = rgb[..., ::-1].copy() if order == 'bgr' else rgb.copy()
    img_before = img.copy()
    boxes = HorizontalBoxes(torch.tensor([[1., 2., 10., 12.]]))
    masks = CropBitmapMasks.from_bitmap(np.ones((1, 32, 32), np.uint8))
    np.random.seed(3)
    res = RandomHEDJitter(sigma_alpha=0.2, sigma_beta=0.0,
                          channel_order=order)(
        dict(img=img, gt_bboxes=boxes, gt_masks=masks))
    alpha, beta = res['hed_jitter']
    assert np.all(np.abs(alpha - 1) <= 0.2) and np.all(beta == 0)
    out = res['img'][..., ::-1] if order == 'bgr' else res['img']
    hed_in, hed_out = rgb_to_hed(rgb), rgb_to_hed(out)
    # each stain channel scaled by its alpha (up to uint8 rounding; pixels
    # that saturate at 0 or 255 excluded)
    ok = (out > 1).all(-1) & (out < 254).all(-1)
    for c in range(3):
        x, y = hed_in[ok][:, c], hed_out[ok][:, c]
        np.testing.assert_allclose(y, alpha[c] * x, atol=0.04)
        assert abs((x @ y) / (x @ x) - alpha[c]) < 0.01
    assert not np.array_equal(out, rgb)
    assert np.array_equal(img, img_before)  # the input is not modified
    assert res['gt_bboxes'] is boxes and res['gt_masks'] is masks


def test_hed_jitter_zero_sigma_is_identity_and_bad_input_is_named():
    rng = np.random.default_rng(2)
    img = rng.integers(1, 256, (8, 9, 3), dtype=np.uint8)
    res = RandomHEDJitter(0.0, 0.0)(dict(img=img.copy()))
    assert np.abs(res['img'].astype(int) - img).max() <= 1
    with pytest.raises(TypeError, match='x.tif'):
        RandomHEDJitter()(dict(img=img.astype(np.float32),
                               img_path='x.tif'))
    with pytest.raises(ValueError):
        RandomHEDJitter(prob=2)


@pytest.mark.parametrize('crop', [True, False])
@pytest.mark.parametrize('seed', [0, 1, 2])
def test_scale_jitter_moves_image_boxes_and_masks_together(crop, seed):
    """Image, boxes and masks are rescaled by the same drawn factor: the
    masks are exactly the nearest-neighbour rescale of the full masks (for
    crop masks as for stock bitmaps), the boxes the boxes times the image's
    per-axis scale."""
    img, full, boxes = _sample(seed, height=41, width=57)
    h, w = img.shape[:2]
    masks = (CropBitmapMasks.from_bitmap(full) if crop else
             BitmapMasks(full.copy(), h, w))
    np.random.seed(seed)
    res = RandomScaleFactorResize(ratio_range=(0.6, 2.4))(
        dict(img=img.copy(), img_shape=(h, w),
             gt_bboxes=HorizontalBoxes(boxes.tensor.clone()),
             gt_masks=masks))
    f = res['scale_jitter']
    assert 0.6 <= f <= 2.4
    nh, nw = res['img'].shape[:2]
    assert abs(nh - h * f) <= 1 and abs(nw - w * f) <= 1
    assert res['img_shape'] == (nh, nw)
    sx, sy = res['scale_factor']
    assert (sx, sy) == (nw / w, nh / h)
    got = res['gt_masks']
    assert type(got) is type(masks)
    assert (got.height, got.width) == (nh, nw)
    stock = BitmapMasks(full.copy(), h, w).rescale((nw, nh))
    assert np.array_equal(got.to_ndarray(), stock.to_ndarray())
    want = boxes.tensor * torch.tensor([sx, sy, sx, sy])
    torch.testing.assert_close(res['gt_bboxes'].tensor,
                               want.clamp(min=0).minimum(
                                   torch.tensor([nw, nh, nw, nh])))


def test_scale_jitter_draws_log_uniformly_and_checks_its_arguments():
    np.random.seed(0)
    t = RandomScaleFactorResize(ratio_range=(1.0, 2.25))
    img = np.zeros((20, 30, 3), np.uint8)
    fs = np.array([t(dict(img=img))['scale_jitter'] for _ in range(3000)])
    assert fs.min() >= 1.0 and fs.max() <= 2.25
    # log-uniform: the log-factors are uniform on [0, log 2.25], so the
    # geometric centre (the fixed test scale x1.5) is the median
    assert abs(np.median(fs) - 1.5) < 0.03
    hist = np.histogram(np.log(fs), bins=5, range=(0, np.log(2.25)))[0]
    np.testing.assert_allclose(hist / len(fs), 0.2, atol=0.03)
    assert RandomScaleFactorResize(ratio_range=(1.5, 1.5))(
        dict(img=img))['img'].shape == (30, 45, 3)
    with pytest.raises(ValueError):
        RandomScaleFactorResize(ratio_range=(2.0, 1.0))
    with pytest.raises(ValueError):
        RandomScaleFactorResize(ratio_range=(0.0, 1.0))
    with pytest.raises(TypeError, match='scale'):
        RandomScaleFactorResize(scale=(100, 100))
