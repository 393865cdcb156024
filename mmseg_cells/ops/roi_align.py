"""RoIAlign on channels-last torch feature maps, for CPU inference."""
from typing import Tuple, Union

import torch
from torch import Tensor

__all__ = ['roi_align_nhwc']

# RoIs per batched step are chosen so that the gathered crops stay near
# this many pixels (x C floats): 64 RoIs of 32 x 32.
_CROP_BUDGET = 64 * 32 * 32


def _axis_weights(start: Tensor, length: Tensor, bins: int, size: int,
                  grid: Tensor, crop: int) -> Tuple[Tensor, Tensor]:
    """Per-RoI interpolation matrix along one axis.

    ``start``/``length`` (N,) are the RoIs' extent in feature pixels,
    ``grid`` (N,) their samples per bin; every RoI spans at most ``crop``
    pixels (``ceil(length) + 2``, at most ``size``). Returns ``(first,
    weights)``: the first feature row/column of each RoI's crop (N,),
    chosen so that the crop lies inside the map, and the (N, bins, crop)
    weights with which each output bin averages that axis' samples,
    bilinear interpolation and the out-of-map rules of mmcv's kernel
    included (a sample beyond one pixel outside the map is 0, one in that
    margin reads the border).
    """
    n = start.shape[0]
    s_max = max(int(grid.max()), 1)
    bin_len = length / bins
    a = torch.arange(s_max, dtype=start.dtype, device=start.device)
    p = torch.arange(bins, dtype=start.dtype, device=start.device)
    g = grid.clamp(min=1).to(start.dtype)
    # sample positions (N, bins, S): start + p*bin + (a+0.5)*bin/grid
    pos = (start.view(n, 1, 1) + p.view(1, bins, 1) * bin_len.view(n, 1, 1)
           + (a.view(1, 1, s_max) + 0.5) * (bin_len / g).view(n, 1, 1))
    valid = (a.view(1, 1, s_max) < grid.view(n, 1, 1)) & (pos >= -1.0) & \
        (pos <= size)
    pos = pos.clamp(min=0)
    low = pos.floor()
    at_end = low >= size - 1
    low = low.clamp(max=size - 1)
    high = torch.where(at_end, low, low + 1)
    frac = torch.where(at_end, torch.zeros_like(pos), pos - low)
    first = start.clamp(min=0).floor().clamp(max=size - 1)
    first = first.clamp(max=size - crop).long()
    w = valid.to(start.dtype) / g.view(n, 1, 1)
    idx = (torch.cat([low, high], 2).long() - first.view(n, 1, 1)).clamp(
        0, crop - 1)  # invalid samples (weight 0) may point anywhere
    weights = start.new_zeros((n, bins, crop))
    weights.scatter_add_(2, idx, torch.cat([(1 - frac) * w, frac * w], 2))
    return first, weights


def roi_align_nhwc(feat: Tensor,
                   rois: Tensor,
                   output_size: Union[int, Tuple[int, int]],
                   spatial_scale: float,
                   sampling_ratio: int = 0,
                   aligned: bool = True) -> Tensor:
    """``mmcv.ops.roi_align`` (``pool_mode='avg'``), computed from crops.

    The same function as mmcv's kernel: each output bin averages
    ``grid_h x grid_w`` bilinear samples (``sampling_ratio``, or
    ``ceil(roi_size / output_size)`` when it is 0; samples beyond one pixel
    outside the map count as 0). Bilinear sampling on a regular grid is
    separable, so for each RoI the output is ``Wy @ crop @ Wx^T`` per
    channel, with ``crop`` the feature pixels under the RoI and ``Wy``,
    ``Wx`` small interpolation matrices. Computed in batches of RoIs
    sorted by size: a gather of the crops in channels-last order (each
    pixel's channels contiguous, whatever ``feat``'s layout) and two
    batched matrix products, instead of mmcv's CPU loop over channels
    and samples, which reads NCHW with strided access and runs on one
    thread. Values equal mmcv's up to float32 summation order.

    Args:
        feat (Tensor): (B, C, H, W) feature map, any memory format
            (channels-last avoids a copy).
        rois (Tensor): (N, 5) ``batch_index, x1, y1, x2, y2`` in image
            coordinates.
        output_size (int | tuple): ``(out_h, out_w)``.
        spatial_scale (float): image-to-feature scale.
        sampling_ratio (int): samples per bin and axis; 0 adapts it to
            the RoI size as mmcv does.
        aligned (bool): shift by half a pixel (mmcv's ``aligned=True``).

    Returns:
        Tensor: (N, C, out_h, out_w), channels-last memory format.
    """
    out_h, out_w = ((output_size, output_size)
                    if isinstance(output_size, int) else output_size)
    b, c, h, w = feat.shape
    n = rois.shape[0]
    out = feat.new_empty((n, out_h, out_w, c))  # every RoI is written
    if n == 0:
        return out.permute(0, 3, 1, 2)
    maps = feat.permute(0, 2, 3, 1).contiguous().view(b * h * w, c)
    r = rois.to(feat.dtype)
    offset = 0.5 if aligned else 0.0
    x0 = r[:, 1] * spatial_scale - offset
    y0 = r[:, 2] * spatial_scale - offset
    rw = r[:, 3] * spatial_scale - offset - x0
    rh = r[:, 4] * spatial_scale - offset - y0
    if not aligned:
        rw, rh = rw.clamp(min=1), rh.clamp(min=1)
    if sampling_ratio > 0:
        gx = torch.full((n, ), sampling_ratio, device=feat.device)
        gy = gx
    else:
        gx = torch.ceil(rw / out_w).long()
        gy = torch.ceil(rh / out_h).long()
    # crop extent: the span of the samples (+1 for the bilinear neighbour)
    ext_y = torch.ceil(rh).clamp(min=0).long() + 2
    ext_x = torch.ceil(rw).clamp(min=0).long() + 2
    order = torch.argsort(torch.maximum(ext_y, ext_x))
    ext_y_s, ext_x_s = ext_y[order].tolist(), ext_x[order].tolist()
    i = 0
    while i < n:
        # the largest group of the next RoIs within the pixel budget
        ky, kx, j = ext_y_s[i], ext_x_s[i], i + 1
        while j < n:
            ny, nx = max(ky, ext_y_s[j]), max(kx, ext_x_s[j])
            if (j + 1 - i) * ny * nx > _CROP_BUDGET:
                break
            ky, kx, j = ny, nx, j + 1
        ky, kx = min(ky, h), min(kx, w)
        sel = order[i:j]
        fy, wy = _axis_weights(y0[sel], rh[sel], out_h, h, gy[sel], ky)
        fx, wx = _axis_weights(x0[sel], rw[sel], out_w, w, gx[sel], kx)
        bi = r[sel, 0].long()
        rows = fy.view(-1, 1) + torch.arange(ky, device=feat.device)
        cols = fx.view(-1, 1) + torch.arange(kx, device=feat.device)
        pix = (bi.view(-1, 1, 1) * h + rows.view(-1, ky, 1)) * w + \
            cols.view(-1, 1, kx)
        crops = maps[pix.view(-1)].view(-1, ky, kx * c)  # (m, ky, kx*C)
        m = sel.numel()
        t = torch.bmm(wy, crops).view(m * out_h, kx, c)  # rows pooled
        out[sel] = torch.bmm(
            wx.repeat_interleave(out_h, dim=0), t).view(m, out_h, out_w, c)
        i = j
    return out.permute(0, 3, 1, 2)

