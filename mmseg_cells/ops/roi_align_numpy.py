"""RoIAlign of instance masks stored as crops, in numpy (mask targets).

:func:`roi_align_crops` computes what mmcv's CPU ``RoIAlign`` kernel
(``aligned=True``, ``spatial_scale=1``, ``sampling_ratio=0``, average
pooling) returns for full-size ``H x W`` instance masks, i.e. what
``BitmapMasks.crop_and_resize`` produces as the RoI mask targets of
mmdet's ``mask_target``, from masks that are zero outside one crop each.

The sampling coordinates, the border rules (samples in ``[-1, 0]`` clamp to
the first row, beyond ``-1`` or ``H`` read 0, ...) and the bilinear weights
are computed in full-image coordinates with the kernel's own floating-point
operations (numpy, in the dtype of the RoIs), then applied to the crops
only (pixels outside a crop are 0) as a separable ``R_y @ crop @ R_x^T``
product in float64. That differs from the kernel's float32 summation by
~1e-7, so the bins whose value is within that error bound of the 0.5
threshold are recomputed with the kernel's exact per-sample arithmetic:
binarized targets are identical to ``BitmapMasks``' on the CPU, soft
targets within ~1e-7. It runs on the CPU and never builds a full-size mask
(``BitmapMasks`` gathers a float ``H x W`` mask per RoI).

On a GPU ``BitmapMasks`` runs mmcv's CUDA kernel, whose rounding differs
from the CPU kernel's: on an H100, torchvision's RoIAlign (the same
Detectron2 algorithm; equal to these targets within 1.2e-7 on the CPU) gave
soft targets up to 1.2e-4 away on CUDA for coordinates up to 1536, with no
binarized target differing in 3.2M bins.

:func:`mmseg_cells.ops.roi_align_nhwc` is the torch RoIAlign over
channels-last feature maps used at inference; this module is the training
target side, exact to the CPU kernel's rounding, in numpy only.
"""
from typing import Sequence, Tuple

import numpy as np

__all__ = ['roi_align_crops']

#: Upper bound (elements) of the float64 crop stack built per chunk of RoIs
#: (32 MB).
_CHUNK_ELEMS = 1 << 22

#: ``(low, high, w_low, w_high, grid)`` of :func:`_roi_axis`.
_Axis = Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _roi_axis(c1: np.ndarray, c2: np.ndarray, pooled: int,
              extent: int) -> _Axis:
    """Sample rows (or columns) and bilinear weights of mmcv's CPU RoIAlign
    (``aligned=True``, ``spatial_scale=1``, ``sampling_ratio=0``) along one
    axis, with the kernel's floating-point operations in the RoI dtype
    (numpy >= 2 keeps Python scalars weak, so every operation below rounds
    to the dtype of ``c1`` like the C++ ``T`` arithmetic).

    Returns ``low, high`` (P, pooled, G) int64 indices, ``w_low, w_high``
    (P, pooled, G) weights in the RoI dtype (0 for unused/out-of-range
    samples) and ``grid`` (P,) int64 samples per bin, G = max(grid).
    """
    dtype = c1.dtype.type
    start = c1 * 1.0 - 0.5
    end = c2 * 1.0 - 0.5
    size = end - start
    if (size < 0).any():
        raise ValueError('RoIs must have x2 >= x1 and y2 >= y1 (mmcv\'s '
                         'RoIAlign asserts the same).')
    bin_size = size / dtype(pooled)
    # ceilf(roi_size / pooled): the division is done in the RoI dtype, then
    # converted to float by ceilf
    grid = np.ceil(bin_size.astype(np.float32)).astype(np.int64)
    g_max = max(int(grid.max()), 1)
    ph = np.arange(pooled).astype(dtype)
    t1 = start[:, None] + ph[None, :] * bin_size[:, None]  # (P, pooled)
    half = (np.arange(g_max, dtype=np.float32) + np.float32(0.5)).astype(
        dtype)  # static_cast<T>(iy + .5f)
    grid_t = np.maximum(grid, 1).astype(dtype)
    t2 = (half[None, :] * bin_size[:, None]) / grid_t[:, None]  # (P, G)
    y = t1[:, :, None] + t2[:, None, :]  # (P, pooled, G)
    used = np.arange(g_max)[None, None, :] < grid[:, None, None]
    valid = used & ~((y < -1.0) | (y > extent))
    y = np.where(valid & (y > 0), y, dtype(0))
    low = y.astype(np.int64)
    top = low >= extent - 1
    low[top] = extent - 1
    high = np.where(top, low, low + 1)
    y = np.where(top, low.astype(dtype), y)
    lw = y - low.astype(dtype)
    hw = (1.0 - lw.astype(np.float64)).astype(dtype)  # T hy = 1. - ly
    w_low = np.where(valid, hw, dtype(0))
    w_high = np.where(valid, lw, dtype(0))
    return low, high, w_low, w_high, grid


def _axis_matrix(low: np.ndarray, high: np.ndarray, w_low: np.ndarray,
                 w_high: np.ndarray, origin: np.ndarray, length: np.ndarray,
                 size: int) -> np.ndarray:
    """(n, pooled, size) float64 matrix summing the weights of the samples
    of each output bin on the crop-local rows ``[0, length)``; samples
    outside the crop (zero pixels) are dropped."""
    n, pooled, _ = low.shape
    base = (np.arange(n * pooled, dtype=np.int64) * (size + 1)).reshape(
        n, pooled, 1)
    o = origin.reshape(-1, 1, 1)
    ln = length.reshape(-1, 1, 1)
    idx, wts = [], []
    for rows, wt in ((low, w_low), (high, w_high)):
        r = rows - o
        r = np.where((r >= 0) & (r < ln), r, size)
        idx.append((base + r).ravel())
        wts.append(wt.ravel())
    out = np.bincount(
        np.concatenate(idx),
        weights=np.concatenate(wts).astype(np.float64),
        minlength=n * pooled * (size + 1))
    return out.reshape(n, pooled, size + 1)[:, :, :size]


def _exact_bins(stack: np.ndarray, offs: np.ndarray, ch: np.ndarray,
                cw: np.ndarray, yax: _Axis, xax: _Axis, k: np.ndarray,
                ph: np.ndarray, pw: np.ndarray) -> np.ndarray:
    """RoIAlign outputs of the bins ``(k, ph, pw)`` with the exact arithmetic
    of mmcv's CPU kernel (``w1 = hy * hx`` ..., ``val = w1 * v1 + w2 * v2 +
    w3 * v3 + w4 * v4``, summed over the grid in order, divided by the
    count, all in the RoI dtype). ``stack`` holds the crop of each RoI (zero
    padded, in the RoI dtype), ``yax``/``xax`` the outputs of
    :func:`_roi_axis`."""
    ylo, yhi, hy_all, ly_all, gy = yax
    xlo, xhi, hx_all, lx_all, gx = xax
    dtype = hy_all.dtype.type
    gyk, gxk = gy[k], gx[k]
    g_y, g_x = max(int(gyk.max()), 1), max(int(gxk.max()), 1)
    oy, ox = offs[k, 1][:, None], offs[k, 0][:, None]
    rows_lo, rows_hi = ylo[k, ph, :g_y] - oy, yhi[k, ph, :g_y] - oy
    cols_lo, cols_hi = xlo[k, pw, :g_x] - ox, xhi[k, pw, :g_x] - ox
    hy, ly = hy_all[k, ph, :g_y], ly_all[k, ph, :g_y]
    hx, lx = hx_all[k, pw, :g_x], lx_all[k, pw, :g_x]
    hk, wk = ch[k], cw[k]

    def value(rr, cc):
        inside = (rr >= 0) & (rr < hk) & (cc >= 0) & (cc < wk)
        v = stack[k, np.clip(rr, 0, stack.shape[1] - 1),
                  np.clip(cc, 0, stack.shape[2] - 1)]
        return np.where(inside, v, dtype(0))

    acc = np.zeros(len(k), dtype=dtype)
    for iy in range(g_y):
        for ix in range(g_x):
            w1 = hy[:, iy] * hx[:, ix]
            w2 = hy[:, iy] * lx[:, ix]
            w3 = ly[:, iy] * hx[:, ix]
            w4 = ly[:, iy] * lx[:, ix]
            r0, r1 = rows_lo[:, iy], rows_hi[:, iy]
            c0, c1 = cols_lo[:, ix], cols_hi[:, ix]
            val = w1 * value(r0, c0) + w2 * value(r0, c1)
            val = val + w3 * value(r1, c0)
            val = val + w4 * value(r1, c1)
            used = (iy < gyk) & (ix < gxk)
            acc = np.where(used, acc + val, acc)
    return acc / np.maximum(gyk * gxk, 1).astype(dtype)


def roi_align_crops(crops: Sequence[np.ndarray], offsets: np.ndarray,
                    height: int, width: int, rois: np.ndarray,
                    inds: np.ndarray,
                    out_shape: Tuple[int, int]) -> np.ndarray:
    """mmcv's CPU RoIAlign of full-size masks given as crops (module doc).

    Args:
        crops (Sequence[np.ndarray]): One 2-D crop per instance (any
            numeric dtype; ``0 x 0`` for an empty mask).
        offsets (np.ndarray): ``(N, 2)`` int64 ``(x0, y0)`` image position
            of each crop's top-left pixel; every crop lies inside the image.
        height (int): Image height ``H``.
        width (int): Image width ``W``.
        rois (np.ndarray): ``(R, 4)`` float32 or float64 ``x1, y1, x2, y2``
            in image pixels, ``x2 >= x1`` and ``y2 >= y1``.
        inds (np.ndarray): ``(R,)`` int64 index in ``[0, N)`` of the
            instance each RoI samples.
        out_shape (tuple): ``(out_h, out_w)``.

    Returns:
        np.ndarray: ``(R, out_h, out_w)`` soft targets in the dtype of
        ``rois``.
    """
    if rois.dtype not in (np.float32, np.float64):
        raise TypeError(f'RoIs must be float32 or float64, got '
                        f'{rois.dtype}')
    out_h, out_w = int(out_shape[0]), int(out_shape[1])
    num_rois = rois.shape[0]
    dtype = rois.dtype.type
    yax = _roi_axis(rois[:, 1], rois[:, 3], out_h, int(height))
    xax = _roi_axis(rois[:, 0], rois[:, 2], out_w, int(width))
    count = np.maximum(yax[4] * xax[4], 1).astype(np.float64)
    # |float64 separable result - kernel result| stays below this bound
    eps = 8 * (count + 8) * np.finfo(dtype).eps

    ch = np.array([c.shape[0] for c in crops], np.int64)
    cw = np.array([c.shape[1] for c in crops], np.int64)
    out = np.empty((num_rois, out_h, out_w), dtype=dtype)
    # RoIs sorted by crop area, so that a chunk pads its crops little
    order = np.argsort(ch[inds] * cw[inds], kind='stable')
    pos = 0
    while pos < num_rois:
        # grow the chunk while its padded crop stack stays small
        end, hm, wm = pos, 1, 1
        while end < num_rois:
            g = inds[order[end]]
            nh, nw = max(hm, ch[g]), max(wm, cw[g])
            if end > pos and (end - pos + 1) * nh * nw > _CHUNK_ELEMS:
                break
            hm, wm, end = nh, nw, end + 1
        r = order[pos:end]
        g = inds[r]
        stack = np.zeros((len(r), hm, wm), dtype)
        for k, gi in enumerate(g):
            c = crops[gi]
            if c.size:
                stack[k, :c.shape[0], :c.shape[1]] = c
        offs = offsets[g]
        ry_ax = tuple(a[r] for a in yax)
        rx_ax = tuple(a[r] for a in xax)
        ry = _axis_matrix(*ry_ax[:4], offs[:, 1], ch[g], hm)
        rx = _axis_matrix(*rx_ax[:4], offs[:, 0], cw[g], wm)
        vals = np.matmul(np.matmul(ry, stack.astype(np.float64)),
                         rx.transpose(0, 2, 1))
        vals /= count[r][:, None, None]
        res = vals.astype(dtype)
        # bins within the float error bound of the 0.5 threshold are
        # recomputed with the kernel's exact arithmetic
        near = np.abs(vals - 0.5) <= eps[r][:, None, None]
        if near.any():
            k, ph, pw = np.nonzero(near)
            res[k, ph, pw] = _exact_bins(stack, offs, ch[g], cw[g], ry_ax,
                                         rx_ax, k, ph, pw)
        out[r] = res
        pos = end
    return out
