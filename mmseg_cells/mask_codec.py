"""The mask codec: COCO RLE encoding and decoding of box-sized crops, and
mask pasting, for big images.

Instance segmentation of H&E tiles produces up to 1000 detections per image
on images of e.g. 2500x1987 pixels. Materialising one full-image mask per
detection (as ``mmdet`` does on its way to ``pycocotools.mask.encode``) costs
``N * H * W`` bytes (5 GB for the example) although every mask is non-zero
only inside its box. This module works on box-sized crops only:

* :func:`paste_mask_crop` resizes the ``M x M`` probability map of an RoI
  mask head into the image region of its box, reproducing mmdet's
  ``_do_paste_mask`` (``fcn_mask_head.py``, bilinear ``grid_sample`` with
  ``align_corners=False`` and zero padding) in numpy for a single box, and
  thresholds it like mmdet (``>= threshold``).
* :func:`encode_crop_rle` turns such a crop into the COCO RLE of the full-size
  mask, computing the column-major run lengths straight from the crop and
  compressing them with pycocotools' string codec; the result is
  byte-identical to ``pycocotools.mask.encode`` of the full mask, which it
  beats 25-45x on cell masks of a 2500x1987 image (no full-size mask to fill
  and scan; ``benchmarks/codec_vs_library.py``).
* :func:`rle_to_crop` decodes a COCO RLE into its tight crop and offset,
  never the full-size mask (:func:`rle_string_to_counts` is the vectorised
  string decoder; pycocotools exposes none that stops short of the full
  mask, and ``decode`` + cut is ~45-65x slower on the same masks).

Used by the converter (:mod:`mmseg_cells.data`), the predictor
(:mod:`mmseg_cells.apis`), the crop-mask container
(:mod:`mmseg_cells.structures`) and the evaluation alike.

numpy and pycocotools only, no torch: the converter runs without the
training stack.
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import pycocotools.mask as maskUtils

__all__ = [
    'empty_crop', 'encode_crop_rle', 'paste_mask_crop', 'rle_string_to_counts',
    'rle_to_crop', 'tighten_crop'
]

_F32 = np.float32
_F64 = np.float64


def _crop_run_bounds(crop: np.ndarray, x0: int, y0: int,
                     height: int) -> Tuple[np.ndarray, np.ndarray]:
    """Start/end (exclusive) column-major indices of the foreground runs."""
    h, w = crop.shape
    # One image column per row of ``cols``; zero padding above and below
    # every column makes every run start and end inside the column.
    padded = np.zeros((w, h + 2), dtype=np.int8)
    padded[:, 1:-1] = crop.T
    diff = np.diff(padded, axis=1)  # (w, h + 1)
    # np.nonzero walks in C order: column by column, top to bottom within a
    # column, i.e. in increasing full-image column-major index.
    s_col, s_row = np.nonzero(diff == 1)
    e_col, e_row = np.nonzero(diff == -1)
    base = np.int64(height)
    starts = (s_col.astype(np.int64) + x0) * base + (s_row + y0)
    ends = (e_col.astype(np.int64) + x0) * base + (e_row + y0)
    if starts.size > 1:
        # A run ending at the bottom of one column and a run starting at the
        # top of the next one are a single run in column-major order (only
        # possible when the crop spans the full image height).
        keep = starts[1:] != ends[:-1]
        if not keep.all():
            starts = np.concatenate((starts[:1], starts[1:][keep]))
            ends = np.concatenate((ends[:-1][keep], ends[-1:]))
    return starts, ends


def encode_crop_rle(crop: np.ndarray, x0: int, y0: int, height: int,
                    width: int) -> Dict[str, Union[List[int], str]]:
    """COCO RLE of a full-image mask that is empty outside one crop.

    The full ``height x width`` mask is zero everywhere except that
    ``crop`` is placed with its top-left pixel at column ``x0``, row ``y0``.
    The parts of ``crop`` outside the image are clipped. The full mask is
    never allocated: the run lengths are computed from the crop directly,
    so the cost is ``O(crop.size)`` whatever the image size.

    The result is byte-identical to
    ``pycocotools.mask.encode(np.asfortranarray(full.astype(np.uint8)))``
    with ``counts`` decoded to ``str``.

    Args:
        crop (np.ndarray): ``h x w`` mask (bool or anything whose non-zero
            entries are foreground).
        x0 (int): Image column of ``crop[:, 0]``; may be negative.
        y0 (int): Image row of ``crop[0, :]``; may be negative.
        height (int): Image height ``H``.
        width (int): Image width ``W``.

    Returns:
        dict: ``{'size': [H, W], 'counts': str}``.
    """
    height = int(height)
    width = int(width)
    x0 = int(x0)
    y0 = int(y0)
    if height < 0 or width < 0:
        raise ValueError(f'invalid image size {height}x{width}')
    crop = np.asarray(crop)
    if crop.ndim != 2:
        raise ValueError(f'crop must be 2-D, got shape {crop.shape}')
    # Clip the crop to the image.
    cx0, cy0 = max(x0, 0), max(y0, 0)
    cx1 = min(x0 + crop.shape[1], width)
    cy1 = min(y0 + crop.shape[0], height)
    total = height * width
    if cx1 > cx0 and cy1 > cy0:
        sub = crop[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0] != 0
        starts, ends = _crop_run_bounds(sub, cx0, cy0, height)
    else:
        starts = ends = np.zeros(0, dtype=np.int64)
    if starts.size == 0:
        counts = [total]
    else:
        bounds = np.empty(2 * starts.size + 2, dtype=np.int64)
        bounds[0] = 0
        bounds[1:-1:2] = starts
        bounds[2:-1:2] = ends
        bounds[-1] = total
        counts = np.diff(bounds)
        if counts[-1] == 0:  # mask ends with foreground: no trailing zeros
            counts = counts[:-1]
    # The COCO string codec is pycocotools' C ``rleToString``: on 1000 cell
    # masks (box side 15-40 px, ~55 runs each) of a 2500x1987 image it
    # compresses the run lengths 4.1-4.7x faster than a pure-Python port
    # (5-6 vs 19-23 ms; this function 1.2-1.3x faster in all; 2-2.7x on
    # noise-like 30x30 crops with ~450 runs), same bytes.
    rle = maskUtils.frPyObjects({
        'size': [height, width],
        'counts': counts
    }, height, width)
    return {'size': [height, width], 'counts': rle['counts'].decode('ascii')}


def _sampled_range(lo: float, hi: float, cells: int,
                   size: int) -> Tuple[int, int]:
    """Pixel range ``[start, stop)`` along one axis where mmdet's
    whole-image sampling (GPU, ``skip_empty=False``) of a box spanning
    ``[lo, hi]`` with a ``cells``-long mask can be non-zero.

    Bilinear sampling with zero padding is non-zero only where the source
    coordinate lies in (-1, M), i.e. within half a mask cell
    (box_size / (2 M)) of the box; a margin of a full cell plus two pixels
    covers that with room to spare. A degenerate box maps every pixel to the
    mask centre (mmdet replaces the infinite grid coordinates by 0): the
    whole axis.
    """
    extent = hi - lo
    if extent > 0 and np.isfinite(extent):
        margin = extent / cells + 2
        return (max(int(np.floor(lo - margin)), 0),
                min(int(np.ceil(hi + margin)), size))
    return 0, size


def _paste_region(box: np.ndarray, height: int, width: int, mask_h: int,
                  mask_w: int, skip_empty: bool) -> Tuple[int, int, int, int]:
    """Image pixel range ``[x0, x1) x [y0, y1)`` that ``_do_paste_mask``
    fills for one box."""
    if skip_empty:
        # mmdet on CPU (one box per chunk): floor(min) - 1 clamped at 0 and
        # ceil(max) + 1 clamped at the image size, computed in float32.
        x0 = max(int(np.floor(box[0])) - 1, 0)
        y0 = max(int(np.floor(box[1])) - 1, 0)
        x1 = min(int(np.ceil(box[2])) + 1, width)
        y1 = min(int(np.ceil(box[3])) + 1, height)
        return x0, y0, x1, y1
    bx1, by1, bx2, by2 = (float(v) for v in box)
    x0, x1 = _sampled_range(bx1, bx2, mask_w, width)
    y0, y1 = _sampled_range(by1, by2, mask_h, height)
    return x0, y0, x1, y1


def _grid_taps(start: int, stop: int, lo: np.float32, hi: np.float32,
               size: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray,
                                   np.ndarray, np.ndarray]:
    """Bilinear taps along one axis, in float32 like torch.

    Returns the indices (into the mask padded by one zero cell on each
    side) of the lower and upper taps, their weights, and whether the
    sample is finite.
    """
    # mmdet: img = arange(start, stop).float() + 0.5
    #        g = (img - lo) / (hi - lo) * 2 - 1, infinite g set to 0
    img = np.arange(start, stop, dtype=np.int64).astype(_F32) + _F32(0.5)
    with np.errstate(divide='ignore', invalid='ignore', over='ignore'):
        g = (img - lo) / (hi - lo) * _F32(2) - _F32(1)
    g[np.isinf(g)] = 0
    # torch's vectorised CPU grid_sample (align_corners=False) un-normalises
    # as (g + 1) * (size / 2) - 0.5, which the compiler contracts into a
    # fused multiply-add: emulated by one float64 evaluation rounded once.
    with np.errstate(invalid='ignore', over='ignore'):
        src = ((g + _F32(1)).astype(_F64) * (size / 2) - 0.5).astype(_F32)
    finite = np.isfinite(src)
    src = np.where(finite, src, _F32(-10))  # NaN samples: all taps outside
    lower = np.floor(src)
    frac = (src - lower).astype(_F32)  # weight of the upper tap
    lower = lower.astype(np.int64)
    # Taps outside [0, size - 1] read the zero padding at -1 / size.
    idx_lo = np.clip(lower, -1, size) + 1
    idx_hi = np.clip(lower + 1, -1, size) + 1
    return idx_lo, idx_hi, frac, _F32(1) - frac, finite


# Kept over mmdet's own ``_do_paste_mask`` (torch): pasting 1000 28x28
# masks into boxes of 15-40 px on a 2500x1987 image, one box per call as
# mmdet does on the CPU, takes 1.5-1.9x less time than it with torch on one
# thread (0.36-0.41 vs 0.52-0.75 s) and 13x less with two threads on a
# busy 2-core machine (its dozen-plus small torch operators per box stall
# there), with the same thresholded pixels and no torch. Its batched call
# (one joint region for all boxes, as on the GPU) takes ~0.46 GiB per 10
# boxes, ~45 GiB for 1000 (benchmarks/codec_vs_library.py).
def paste_mask_crop(mask_prob: np.ndarray,
                    box: Sequence[float],
                    height: int,
                    width: int,
                    threshold: Optional[float] = 0.5,
                    skip_empty: bool = True) -> Tuple[np.ndarray, int, int]:
    """Paste one RoI mask probability map into its box, as mmdet does.

    Re-implements ``_do_paste_mask`` of mmdet 3.x
    (``mmdet/models/roi_heads/mask_heads/fcn_mask_head.py``) for a single box
    in numpy, restricted to the pixels it can touch. For every image pixel
    ``(x, y)`` of the region, the pixel centre is mapped to the normalised
    coordinate ``(x + 0.5 - x1) / (x2 - x1) * 2 - 1`` (same for ``y``) and
    ``mask_prob`` is sampled bilinearly as ``F.grid_sample(...,
    align_corners=False)`` with zero padding does: pixels just outside the
    box still receive a fading contribution of the border cells, exactly as
    in mmdet. The result is thresholded with ``>= threshold`` like
    ``FCNMaskHead._predict_by_feat_single``.

    The region is, like mmdet on CPU (``skip_empty=True``),
    ``floor(x1) - 1 .. ceil(x2) + 1`` (end exclusive) clipped to the image,
    and the same for ``y``; all pixels outside it are 0. With
    ``skip_empty=False`` the support of the whole-image sampling that mmdet
    uses on GPU is returned instead; the two differ only in pixels whose
    probability is below 0.5, so they agree for any ``threshold >= 0.5``.

    Tolerance: the arithmetic follows torch's vectorised CPU kernel in
    float32 (grid coordinates, ``(g + 1) * M / 2 - 0.5`` un-normalisation,
    weights and the four-tap sum in the same order, with the fused
    multiply-adds of an x86-64 AVX2 build emulated), so the probabilities
    are normally bit-identical to mmdet on CPU and otherwise differ by a few
    float32 ulps (< 1e-5; other builds or the CUDA kernel round slightly
    differently). A thresholded pixel can only differ when its probability
    is within that distance of ``threshold`` (in practice << 0.1% of the
    pixels).

    Args:
        mask_prob (np.ndarray): ``M_h x M_w`` mask probabilities (after the
            sigmoid), e.g. the 28x28 output of an FCN mask head.
        box (Sequence[float]): ``(x1, y1, x2, y2)`` in image pixels.
        height (int): Image height.
        width (int): Image width.
        threshold (float, optional): Binarisation threshold (mmdet's
            ``mask_thr_binary``). ``None`` returns float32 probabilities.
            Defaults to 0.5.
        skip_empty (bool): Region choice, see above. Defaults to True.

    Returns:
        tuple: ``(crop, x0, y0)``: the ``h x w`` bool crop (float32 when
        ``threshold`` is None) and the image column/row of its top-left
        pixel, ready for :func:`encode_crop_rle`. ``crop`` has shape
        ``(0, 0)`` when the box lies outside the image.
    """
    prob = np.asarray(mask_prob, dtype=_F32)
    if prob.ndim != 2:
        raise ValueError(f'mask_prob must be 2-D, got shape {prob.shape}')
    box32 = np.asarray(box, dtype=_F32).reshape(-1)
    if box32.size != 4:
        raise ValueError(f'box must have 4 values, got {box!r}')
    mask_h, mask_w = prob.shape
    height, width = int(height), int(width)
    x0, y0, x1, y1 = _paste_region(box32, height, width, mask_h, mask_w,
                                   skip_empty)
    if x1 <= x0 or y1 <= y0:
        dtype = _F32 if threshold is None else bool
        return np.zeros((0, 0), dtype=dtype), max(x0, 0), max(y0, 0)

    xl, xh, wx, ex, fx = _grid_taps(x0, x1, box32[0], box32[2], mask_w)
    yl, yh, ny, sy, fy = _grid_taps(y0, y1, box32[1], box32[3], mask_h)

    padded = np.zeros((mask_h + 2, mask_w + 2), dtype=_F32)
    padded[1:-1, 1:-1] = prob
    # torch: nw = s * e, ne = s * w, sw = n * e, se = n * w (float32) and
    # out = v_nw * nw + v_ne * ne + v_sw * sw + v_se * se, which the
    # compiler evaluates as a chain of fused multiply-adds. The product of
    # two float32 numbers is exact in float64, so each FMA is emulated by a
    # float64 multiply-add rounded once to float32.
    s_ = sy[:, None]
    n_ = ny[:, None]
    e_ = ex[None, :]
    w_ = wx[None, :]
    rows_n = padded[yl]  # (h, M_w + 2)
    rows_s = padded[yh]
    out = rows_n[:, xl] * (s_ * e_)
    for vals, wgt in ((rows_n[:, xh], s_ * w_), (rows_s[:, xl], n_ * e_),
                      (rows_s[:, xh], n_ * w_)):
        out = (vals.astype(_F64) * wgt.astype(_F64) + out).astype(_F32)
    if not (fx.all() and fy.all()):
        # NaN grid coordinates (e.g. 0/0 for an empty box) give NaN in torch
        # as well; they are never >= threshold.
        out[~(fy[:, None] & fx[None, :])] = np.nan
    if threshold is None:
        return out, x0, y0
    with np.errstate(invalid='ignore'):
        return out >= threshold, x0, y0


def empty_crop(dtype) -> np.ndarray:
    """A ``0 x 0`` crop (an empty mask)."""
    return np.zeros((0, 0), dtype=dtype)


def tighten_crop(crop: np.ndarray, x0: int,
                 y0: int) -> Tuple[np.ndarray, int, int]:
    """Trim the all-zero border rows/columns of ``crop`` (offset kept
    consistent); an all-zero crop becomes a ``0 x 0`` crop at (0, 0)."""
    if crop.size == 0:
        return empty_crop(crop.dtype), 0, 0
    rows = np.flatnonzero(crop.any(axis=1))
    if rows.size == 0:
        return empty_crop(crop.dtype), 0, 0
    cols = np.flatnonzero(crop.any(axis=0))
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    if r0 == 0 and c0 == 0 and r1 == crop.shape[0] and c1 == crop.shape[1]:
        return crop, x0, y0
    return (np.ascontiguousarray(crop[r0:r1, c0:c1]), x0 + int(c0),
            y0 + int(r0))


def rle_string_to_counts(s: Union[str, bytes]) -> np.ndarray:
    """Decode a compressed COCO RLE counts string into run lengths.

    Vectorised port of ``rleFrString`` (COCO API ``maskApi.c``): 5-bit
    little-endian groups offset by 48, 0x20 = "more groups follow", 0x10 in
    the last group = negative; from the fourth count on, values are deltas
    to the count two places earlier.
    """
    if isinstance(s, str):
        s = s.encode('ascii')
    b = np.frombuffer(s, dtype=np.uint8).astype(np.int64) - 48
    if b.size == 0:
        return np.zeros(0, np.int64)
    end = (b & 0x20) == 0  # last group of a value
    first = np.empty_like(end)
    first[0] = True
    first[1:] = end[:-1]
    starts = np.flatnonzero(first)
    tok = np.cumsum(first) - 1
    k = np.arange(b.size) - starts[tok]
    x = np.add.reduceat((b & 0x1f) << (5 * k), starts)
    last = np.flatnonzero(end)
    neg = (b[last] & 0x10) != 0
    if neg.any():
        x[neg] |= np.left_shift(np.int64(-1), 5 * (k[last][neg] + 1))
    counts = x.copy()
    if counts.size > 3:
        counts[1::2] = np.cumsum(x[1::2])
    if counts.size > 4:
        counts[2::2] = np.cumsum(x[2::2])
    return counts & 0xffffffff  # (uint) cast of the C code


def rle_to_crop(rle: dict) -> Tuple[np.ndarray, int, int]:
    """Decode a COCO RLE (``{'size': [h, w], 'counts': str | bytes |
    list}``) into its tight uint8 crop and ``(x0, y0)`` offset, filling only
    the crop (never the ``h x w`` mask). Equals
    ``maskUtils.decode(rle)[y0:y0 + ch, x0:x0 + cw]`` for valid RLEs (runs
    beyond ``h * w`` are clipped instead of overflowing)."""
    h, w = int(rle['size'][0]), int(rle['size'][1])
    counts = rle['counts']
    if isinstance(counts, (str, bytes)):
        c = rle_string_to_counts(counts)
    else:
        c = np.asarray(counts, dtype=np.int64).reshape(-1)
    total = h * w
    ends = np.minimum(np.cumsum(c), total)
    s = np.concatenate(([0], ends[:-1]))[1::2]
    e = ends[1::2]
    keep = e > s
    if not keep.any():
        return empty_crop(np.uint8), 0, 0
    s, e = s[keep], e[keep]
    xs, xe = s // h, (e - 1) // h
    x0, x1 = int(xs[0]), int(xe[-1]) + 1
    multi_col = bool((xe > xs).any())
    if multi_col:  # a run wraps into the next column: full height
        y0, y1 = 0, h
    else:
        y0, y1 = int((s % h).min()), int(((e - 1) % h).max()) + 1
    ch, cw = y1 - y0, x1 - x0
    n = ch * cw
    fs = (xs - x0) * ch + (s % h - y0)
    fe = fs + (e - s)
    d = np.bincount(fs, minlength=n + 1)[:n + 1] - np.bincount(
        fe, minlength=n + 1)[:n + 1]
    flat = np.cumsum(d[:n]).astype(np.uint8)
    crop = np.ascontiguousarray(flat.reshape(cw, ch).T)
    if multi_col:
        return tighten_crop(crop, x0, y0)
    return crop, x0, y0
