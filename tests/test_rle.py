"""Tests for mmseg_cells.mask_codec (crop RLE encoding, mask pasting)."""
import time

import numpy as np
import pytest
from pycocotools import mask as mask_util

from mmseg_cells.mask_codec import encode_crop_rle, paste_mask_crop


def _full_mask(crop, x0, y0, height, width):
    full = np.zeros((height, width), dtype=np.uint8)
    cy0, cx0 = max(y0, 0), max(x0, 0)
    cy1 = min(y0 + crop.shape[0], height)
    cx1 = min(x0 + crop.shape[1], width)
    if cy1 > cy0 and cx1 > cx0:
        full[cy0:cy1, cx0:cx1] = crop[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
    return full


def _reference_rle(full):
    rle = mask_util.encode(np.asfortranarray(full.astype(np.uint8)))
    return {'size': list(rle['size']), 'counts': rle['counts'].decode()}


def _check(crop, x0, y0, height, width):
    got = encode_crop_rle(crop, x0, y0, height, width)
    want = _reference_rle(_full_mask(crop, x0, y0, height, width))
    assert got == want, (crop.shape, x0, y0, height, width)
    assert isinstance(got['counts'], str)
    assert got['size'] == [height, width]
    return got


def test_encode_random_crops_byte_identical():
    rng = np.random.default_rng(0)
    for _ in range(2000):
        height, width = (int(v) for v in rng.integers(1, 40, 2))
        h, w = (int(v) for v in rng.integers(0, 45, 2))
        # anywhere from fully left/above to fully right/below the image
        x0 = int(rng.integers(-w - 2, width + 2))
        y0 = int(rng.integers(-h - 2, height + 2))
        crop = rng.random((h, w)) < rng.random()
        _check(crop, x0, y0, height, width)


@pytest.mark.parametrize('corner', ['tl', 'tr', 'bl', 'br'])
def test_encode_corners_and_borders(corner):
    rng = np.random.default_rng(1)
    height, width = 37, 53
    for _ in range(50):
        crop = rng.random((15, 12)) < 0.6
        x0 = -5 if corner in ('tl', 'bl') else width - 7
        y0 = -4 if corner in ('tl', 'tr') else height - 9
        _check(crop, x0, y0, height, width)
        # exactly on the border, inside
        x0 = 0 if corner in ('tl', 'bl') else width - 12
        y0 = 0 if corner in ('tl', 'tr') else height - 15
        _check(crop, x0, y0, height, width)


def test_encode_full_height_runs_merge_across_columns():
    # foreground touching both the bottom of one column and the top of the
    # next one forms a single column-major run
    height, width = 6, 5
    crop = np.ones((height, 3), dtype=bool)
    crop[2, 1] = False
    _check(crop, 1, 0, height, width)
    _check(np.ones((height, width), dtype=bool), 0, 0, height, width)
    _check(np.ones((height + 4, width + 4), dtype=bool), -2, -2, height,
           width)


def test_encode_edge_cases():
    # empty crops, crops fully outside, all-zero crops
    _check(np.zeros((0, 0), dtype=bool), 3, 3, 10, 12)
    _check(np.zeros((5, 0), dtype=bool), 3, 3, 10, 12)
    _check(np.zeros((4, 4), dtype=bool), 3, 3, 10, 12)
    _check(np.ones((4, 4), dtype=bool), 20, 3, 10, 12)
    _check(np.ones((4, 4), dtype=bool), -4, -4, 10, 12)
    # 1x1 image
    for value in (False, True):
        _check(np.array([[value]]), 0, 0, 1, 1)
    _check(np.ones((3, 3), dtype=bool), -1, -1, 1, 1)
    # first pixel set: counts start with an empty run of zeros
    crop = np.zeros((2, 2), dtype=bool)
    crop[0, 0] = True
    _check(crop, 0, 0, 4, 4)
    # non-bool crops
    _check(np.array([[0, 2], [3, 0]], dtype=np.uint8), 1, 1, 4, 4)


def test_encode_big_image_and_decode_roundtrip():
    rng = np.random.default_rng(2)
    height, width = 2500, 1987
    crop = rng.random((31, 27)) < 0.5
    rle = _check(crop, 1980, 2490, height, width)
    decoded = mask_util.decode({'size': rle['size'],
                                'counts': rle['counts'].encode()})
    assert decoded[2490:, 1980:].astype(bool).tolist() == \
        crop[:10, :7].tolist()
    assert decoded.sum() == crop[:10, :7].sum()


def test_encode_speed_1000_crops():
    rng = np.random.default_rng(4)
    height, width = 2500, 2000
    crops = [rng.random((30, 30)) < 0.5 for _ in range(1000)]
    xs = rng.integers(-10, width - 20, 1000)
    ys = rng.integers(-10, height - 20, 1000)
    start = time.perf_counter()
    for crop, x0, y0 in zip(crops, xs, ys):
        encode_crop_rle(crop, int(x0), int(y0), height, width)
    elapsed = time.perf_counter() - start
    # ~0.25 s for these (worst-case, noise-like) crops on a busy 2-core
    # machine
    assert elapsed < 1.0, elapsed


# --------------------------------------------------------------------------
# paste_mask_crop
# --------------------------------------------------------------------------
def _brute_force_paste(prob, box, height, width):
    """mmdet ``_do_paste_mask`` (CPU, one box) written out per pixel on the
    full image: grid coordinates in float32 like torch, bilinear
    ``grid_sample(align_corners=False)`` with zero padding in float64."""
    f32 = np.float32
    mh, mw = prob.shape
    bx1, by1, bx2, by2 = np.asarray(box, dtype=f32)
    x0 = max(int(np.floor(bx1)) - 1, 0)
    y0 = max(int(np.floor(by1)) - 1, 0)
    x1 = min(int(np.ceil(bx2)) + 1, width)
    y1 = min(int(np.ceil(by2)) + 1, height)
    out = np.zeros((height, width), dtype=np.float64)
    if x1 <= x0 or y1 <= y0:
        return out
    ys = np.arange(height).astype(f32) + f32(0.5)
    xs = np.arange(width).astype(f32) + f32(0.5)
    with np.errstate(divide='ignore', invalid='ignore'):
        gy = (ys - by1) / (by2 - by1) * f32(2) - f32(1)
        gx = (xs - bx1) / (bx2 - bx1) * f32(2) - f32(1)
    gy[np.isinf(gy)] = 0
    gx[np.isinf(gx)] = 0
    for y in range(y0, y1):
        iy = ((float(gy[y]) + 1) * mh - 1) / 2
        for x in range(x0, x1):
            ix = ((float(gx[x]) + 1) * mw - 1) / 2
            if not (np.isfinite(ix) and np.isfinite(iy)):
                out[y, x] = np.nan
                continue
            fx, fy = int(np.floor(ix)), int(np.floor(iy))
            val = 0.0
            for ty, wy in ((fy, fy + 1 - iy), (fy + 1, iy - fy)):
                for tx, wx in ((fx, fx + 1 - ix), (fx + 1, ix - fx)):
                    if 0 <= ty < mh and 0 <= tx < mw:
                        val += wy * wx * float(prob[ty, tx])
            out[y, x] = val
    return out


def _paste_full(prob, box, height, width, threshold, skip_empty=True):
    crop, x0, y0 = paste_mask_crop(prob, box, height, width, threshold,
                                   skip_empty)
    dtype = np.float64 if threshold is None else bool
    full = np.zeros((height, width), dtype=dtype)
    if crop.size:
        full[y0:y0 + crop.shape[0], x0:x0 + crop.shape[1]] = crop
    return full


def _random_case(rng, i):
    height, width = (int(v) for v in rng.integers(5, 70, 2))
    m = int(rng.choice([28, 14, 5, 1]))
    x1 = rng.uniform(-8, width)
    y1 = rng.uniform(-8, height)
    box = (x1, y1, x1 + rng.uniform(0.3, 50), y1 + rng.uniform(0.3, 50))
    if i % 5 == 0:
        box = tuple(float(np.round(v)) for v in box)
    if i % 2:
        prob = rng.random((m, m)).astype(np.float32)
    else:  # sigmoid of logits: many values near 0 and 1
        prob = (1 / (1 + np.exp(-rng.normal(0, 6, (m, m))))).astype(
            np.float32)
    return prob, box, height, width


def test_paste_matches_brute_force():
    rng = np.random.default_rng(5)
    differing = total = 0
    for i in range(120):
        prob, box, height, width = _random_case(rng, i)
        ref = _brute_force_paste(prob, box, height, width)
        got = _paste_full(prob, box, height, width, None)
        # float32 (torch-like) against float64 arithmetic
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5)
        got_bin = _paste_full(prob, box, height, width, 0.5)
        assert got_bin.dtype == bool
        differing += int((got_bin != (ref >= 0.5)).sum())
        total += height * width
    assert differing <= 0.001 * total


def test_paste_region_and_threshold():
    prob = np.ones((28, 28), dtype=np.float32)
    crop, x0, y0 = paste_mask_crop(prob, (10.2, 20.7, 30.6, 40.0), 100, 80)
    # mmdet's region: floor(x1) - 1 .. ceil(x2) + 1 (exclusive)
    assert (x0, y0) == (9, 19)
    assert crop.shape == (41 - 19, 32 - 9)
    # with a constant probability of 1 the thresholded mask is the pixels
    # whose centre lies in the box (outside it only a border cell with a
    # bilinear weight < 0.5 contributes)
    cols = np.flatnonzero(crop.any(axis=0)) + x0
    rows = np.flatnonzero(crop.any(axis=1)) + y0
    assert cols.min() == 10 and cols.max() == 30
    assert rows.min() == 21 and rows.max() == 39
    assert crop.sum() == 21 * 19
    probs, _, _ = paste_mask_crop(prob, (10.2, 20.7, 30.6, 40.0), 100, 80,
                                  None)
    assert 0 < probs[1, 6] < 0.5  # pixel (x=15, y=20): outside, faded
    # >= threshold, like mmdet
    flat = np.full((4, 4), 0.5, dtype=np.float32)
    crop, _, _ = paste_mask_crop(flat, (4, 4, 12, 12), 20, 20, 0.5)
    assert crop[2:-2, 2:-2].all()
    probs, _, _ = paste_mask_crop(flat, (4, 4, 12, 12), 20, 20, None)
    assert probs.dtype == np.float32 and probs.max() == 0.5


def test_paste_edge_cases():
    prob = np.random.default_rng(6).random((28, 28))
    # box entirely outside the image
    crop, x0, y0 = paste_mask_crop(prob, (120, 5, 140, 20), 50, 100)
    assert crop.shape == (0, 0)
    assert encode_crop_rle(crop, x0, y0, 50, 100) == _reference_rle(
        np.zeros((50, 100), dtype=np.uint8))
    # box overhanging every border
    crop, x0, y0 = paste_mask_crop(prob, (-10, -10, 60, 60), 30, 40)
    assert (x0, y0) == (0, 0) and crop.shape == (30, 40)
    # degenerate (zero-width) box: no crash
    crop, x0, y0 = paste_mask_crop(prob, (10, 10, 10, 20), 30, 40)
    assert crop.dtype == bool
    with pytest.raises(ValueError):
        paste_mask_crop(prob[0], (0, 0, 1, 1), 5, 5)


def test_paste_skip_empty_false_agrees_at_half():
    rng = np.random.default_rng(7)
    for i in range(60):
        prob, box, height, width = _random_case(rng, i)
        a = _paste_full(prob, box, height, width, 0.5, skip_empty=True)
        b = _paste_full(prob, box, height, width, 0.5, skip_empty=False)
        assert np.array_equal(a, b)


def test_paste_then_encode_equals_full_encode():
    rng = np.random.default_rng(8)
    height, width = 300, 257
    for i in range(30):
        prob = rng.random((28, 28)).astype(np.float32)
        x1, y1 = rng.uniform(-10, width), rng.uniform(-10, height)
        box = (x1, y1, x1 + rng.uniform(1, 60), y1 + rng.uniform(1, 60))
        crop, x0, y0 = paste_mask_crop(prob, box, height, width)
        full = _paste_full(prob, box, height, width, 0.5)
        assert encode_crop_rle(crop, x0, y0, height, width) == \
            _reference_rle(full)


def _mmdet_paste():
    torch = pytest.importorskip('torch')
    pytest.importorskip('mmdet')
    try:
        from mmdet.models.roi_heads.mask_heads.fcn_mask_head import \
            _do_paste_mask
    except Exception as e:  # e.g. mmcv (ops) not built yet
        pytest.skip(f'mmdet not importable: {e!r}')
    return torch, _do_paste_mask


@pytest.mark.parametrize('skip_empty', [True, False])
def test_paste_matches_mmdet_do_paste_mask(skip_empty):
    """Against mmdet's own ``_do_paste_mask`` on CPU.

    Tolerance: probabilities within 1e-5 and at most 0.1% of the pixels
    differing after ``>= 0.5`` (float rounding). On x86-64 torch builds the
    result has been bit-identical in every case tried (the FMA rounding of
    torch's kernel is emulated).
    """
    torch, do_paste = _mmdet_paste()
    rng = np.random.default_rng(9)
    differing = total = 0
    for i in range(200):
        prob, box, height, width = _random_case(rng, i)
        boxes = torch.tensor([box], dtype=torch.float32)
        try:
            masks, spatial = do_paste(
                torch.from_numpy(prob)[None, None], boxes, height, width,
                skip_empty=skip_empty)
        except RuntimeError:
            # mmdet fails on boxes entirely outside the image; ours: empty
            crop, _, _ = paste_mask_crop(prob, box, height, width, None,
                                         skip_empty)
            assert crop.size == 0
            continue
        ref = np.zeros((height, width), dtype=np.float32)
        ref[spatial] = masks[0].numpy()
        got = _paste_full(prob, box, height, width, None, skip_empty)
        np.testing.assert_allclose(
            np.nan_to_num(got, nan=-1), np.nan_to_num(ref, nan=-1), rtol=0,
            atol=1e-5)
        got_bin = _paste_full(prob, box, height, width, 0.5, skip_empty)
        differing += int((got_bin != (ref >= 0.5)).sum())
        total += height * width
    assert differing <= 0.001 * total
