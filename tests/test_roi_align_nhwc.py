"""``roi_align_nhwc`` computes mmcv's RoIAlign (average mode).

Compared with ``mmcv.ops.roi_align`` on random maps and RoIs that cover the
kernel's special cases: both ``aligned`` modes, fixed and adaptive sampling,
RoIs partly or wholly outside the map, degenerate and sub-pixel RoIs, RoIs
larger than the map (one per batch step), several images, non-square
outputs, channels-last and contiguous inputs, float64.
"""
import pytest
import torch
from mmcv.ops import roi_align

from mmseg_cells.ops import roi_align_nhwc


def rois_for(n, img_h, img_w, batch, seed=0):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * torch.tensor(
        [img_w * 1.3, img_h * 1.3]) - torch.tensor([img_w, img_h]) * 0.15
    wh = torch.exp(torch.rand(n, 2, generator=g) * 5) - 1  # 0 .. ~150 px
    wh[:10] = 0  # degenerate
    wh[10:20] *= 0.01  # sub-pixel
    wh[20] = torch.tensor([img_w * 1.5, img_h * 1.5])  # larger than the map
    xy[21] = torch.tensor([img_w + 10., img_h + 10.])  # wholly outside
    xy[22] = torch.tensor([-200., -200.])
    bi = torch.randint(0, batch, (n, 1), generator=g).float()
    return torch.cat([bi, xy, xy + wh], 1)


@pytest.mark.parametrize('aligned', [True, False])
@pytest.mark.parametrize('sampling_ratio', [0, 2])
@pytest.mark.parametrize('out_size', [(7, 7), (14, 14), (3, 5)])
def test_equals_mmcv(aligned, sampling_ratio, out_size):
    torch.manual_seed(0)
    feat = torch.randn(2, 12, 30, 41)
    rois = rois_for(400, 30 * 4, 41 * 4, batch=2)
    ref = roi_align(feat, rois, out_size, 0.25, sampling_ratio, 'avg',
                    aligned)
    for x in (feat, feat.contiguous(memory_format=torch.channels_last)):
        got = roi_align_nhwc(x, rois, out_size, 0.25, sampling_ratio,
                             aligned)
        assert got.shape == ref.shape
        assert got.is_contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(got, ref, rtol=1e-5, atol=2e-6)
    # the special cases do occur: zeros outside, non-zero elsewhere
    assert ref[21].abs().max() == 0 and ref[22].abs().max() == 0
    assert ref[20].abs().max() > 0


def test_float64_and_single_map():
    torch.manual_seed(1)
    feat = torch.randn(1, 5, 17, 9, dtype=torch.float64)
    rois = rois_for(100, 17 * 8, 9 * 8, batch=1, seed=1).double()
    ref = roi_align(feat, rois, 7, 0.125, 0, 'avg', True)
    got = roi_align_nhwc(feat, rois, 7, 0.125, 0, True)
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)


def test_empty_and_many_groups():
    # seeded, so that the map does not depend on the tests run before
    torch.manual_seed(2)
    feat = torch.randn(1, 4, 64, 64)
    empty = roi_align_nhwc(feat, torch.zeros((0, 5)), 7, 0.25)
    assert empty.shape == (0, 4, 7, 7)
    # thousands of RoIs of mixed size: several batched steps, original order
    rois = rois_for(3000, 256, 256, batch=1, seed=2)
    # float64: mmcv's formula to rounding
    ref64 = roi_align(feat.double(), rois.double(), 7, 0.25, 0, 'avg', True)
    torch.testing.assert_close(
        roi_align_nhwc(feat.double(), rois.double(), 7, 0.25), ref64,
        rtol=1e-12, atol=1e-12)
    # float32: as close to the float64 result as mmcv's own float32 kernel
    # (the two sum bilinear taps in different orders; with up to 36 taps a
    # bin both are ~1.5e-5 off, so their mutual difference has no fixed
    # bound below that)
    got = roi_align_nhwc(feat, rois, 7, 0.25)
    ref = roi_align(feat, rois, 7, 0.25, 0, 'avg', True)
    err_ours = (got.double() - ref64).abs()
    err_mmcv = (ref.double() - ref64).abs()
    assert err_ours.max() <= 1.1 * err_mmcv.max()
    assert err_ours.mean() <= 1.1 * err_mmcv.mean()
