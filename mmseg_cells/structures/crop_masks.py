"""Instance masks stored as tight per-instance crops.

mmdet's :class:`~mmdet.structures.mask.BitmapMasks` holds one full-image
bitmap per instance (``N x H x W`` bytes). Cell images carry up to ~800 small
cells (box side 14-41 px) on images of up to 2500 px, so the training
pipeline of this project (x1.5 upscaling, then a 1024 px random crop) would
hold gigabytes of zeros per sample. :class:`CropBitmapMasks` keeps, per
instance, only the bounding crop of its non-zero pixels and the crop's
``(x0, y0)`` offset in the image, plus the image ``height``/``width``; the
memory is ``sum(crop areas)`` instead of ``N * H * W``.

Every method of :class:`~mmdet.structures.mask.BaseInstanceMasks` is
implemented with the semantics of ``BitmapMasks`` (checked pixel for pixel
against ``BitmapMasks`` in ``tests/test_crop_masks.py``), working on the
crops:

* ``flip``, ``crop``, ``pad`` (``pad_val=0``), ``expand``, integral
  ``translate`` (``border_value=0``) and the indexing/``cat`` helpers move
  offsets and slice crops.
* ``rescale``/``resize`` with ``'nearest'`` interpolation (the only one the
  mmdet transforms use for masks) map every output row/column to its source
  row/column exactly as OpenCV's ``INTER_NEAREST`` does (``src = min(floor(
  dst * (1 / (dst_size / src_size))), src_size - 1)``, the formula of
  OpenCV's ``resizeNN``), so a crop is resized on its own into exactly the
  pixels that resizing the full mask and cropping would give.
* ``crop_and_resize`` (the RoI mask-target hot path of mmdet's
  ``mask_target``) reproduces mmcv's CPU ``RoIAlign`` on the full masks
  (what ``BitmapMasks.crop_and_resize`` runs) from the crops with
  :func:`mmseg_cells.ops.roi_align_crops`: binarized targets identical to
  ``BitmapMasks``' on the CPU, soft targets within ~1e-7. It runs in numpy
  on the CPU whatever ``device`` is (both implementations return numpy) and
  never copies full masks to the GPU (``BitmapMasks`` copies all N masks to
  ``device``).
* ``rotate``, ``shear``, fractional or non-zero-border ``translate``,
  non-zero ``pad_val`` and non-nearest ``rescale``/``resize`` have no cheap
  exact crop formulation (OpenCV's warp/resize arithmetic depends on
  absolute coordinates); they fall back to ``BitmapMasks`` semantics through
  a full-size temporary ONE instance at a time (memory ``H * W``, time
  ``O(N * H * W)``); none of them is used by this project's training
  pipeline. ``BitmapMasks`` warps all masks as one ``N``-channel image and
  OpenCV rounds half-pixel samples differently for 1/3/4 channels than for
  2 or >= 5, which the fallback reproduces; a non-zero ``border_value`` is
  applied to every instance (``BitmapMasks`` hands cv2 one scalar for all
  channels, which reaches only the first ones).

Only :meth:`CropBitmapMasks.to_ndarray`, :meth:`CropBitmapMasks.to_tensor`,
:meth:`CropBitmapMasks.to_bitmap` and iteration (which yields one full-size
``H x W`` array at a time, like iterating ``BitmapMasks``) build full-size
arrays.

Why a :class:`BaseInstanceMasks` subclass and not a ``BitmapMasks`` one: on
the training path (Resize, RandomFlip, RandomCrop, FilterAnnotations,
PackDetInputs, DetDataPreprocessor, mask_target) the only
``isinstance(masks, BitmapMasks)`` test is in
``HorizontalBoxes.from_instance_masks``, reached only through
``BaseInstanceMasks.get_bboxes``, which is overridden here. A ``BitmapMasks``
subclass would inherit a ``.masks`` contract (a full ``N x H x W`` array that
code such as ``CopyPaste``, ``Albu`` or ``HorizontalBoxes`` reads and
writes) that this class cannot honour; failing loudly with an
``AttributeError`` on ``.masks`` is safer than silently wrong pixels.
"""
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
import pycocotools.mask as maskUtils
import torch
from mmdet.structures.mask import BaseInstanceMasks, BitmapMasks

from mmseg_cells.mask_codec import (empty_crop, encode_crop_rle, rle_to_crop,
                                    tighten_crop)
from mmseg_cells.ops import roi_align_crops

__all__ = ['CropBitmapMasks', 'nearest_index_map']


def nearest_index_map(src_size: int, dst_size: int) -> np.ndarray:
    """Source index of every destination index of an OpenCV
    ``INTER_NEAREST`` resize along one axis (``resizeNN``: ``fx =
    dst/src``, ``ifx = 1/fx``, ``min(floor(i * ifx), src - 1)``, in double
    precision). Non-decreasing."""
    inv_scale = float(dst_size) / float(src_size)
    ifx = 1.0 / inv_scale
    idx = np.floor(np.arange(dst_size, dtype=np.float64) * ifx)
    return np.minimum(idx.astype(np.int64), src_size - 1)


def _ann_to_rle(ann: Union[list, dict], height: int, width: int) -> dict:
    """RLE of a mmdet/COCO mask annotation exactly as
    ``LoadAnnotations._poly2mask`` builds it before decoding: polygons are
    merged into one RLE; RLE dicts (compressed, or uncompressed, which
    ``frPyObjects`` would only compress) are used as they are."""
    if isinstance(ann, list):
        return maskUtils.merge(maskUtils.frPyObjects(ann, height, width))
    return ann


class CropBitmapMasks(BaseInstanceMasks):
    """Instance masks as tight per-instance crops (see the module doc).

    Args:
        crops (Sequence[ndarray]): One 2-D array per instance, the instance
            mask inside its box (values outside the crop are 0). Trimmed to
            the bounding box of their non-zero pixels on construction.
        offsets (array-like): ``(N, 2)`` integer ``(x0, y0)`` image position
            of each crop's top-left pixel.
        height (int): Image height.
        width (int): Image width.
        dtype (np.dtype, optional): dtype of all crops (as ``masks.dtype``
            of ``BitmapMasks``). Defaults to the crops' common dtype, or
            uint8 without instances.

    Attributes that mirror ``BitmapMasks``: ``height``, ``width``,
    ``dtype``; ``crops`` (list of arrays) and ``offsets`` ((N, 2) int64)
    expose the storage. There is deliberately no ``masks`` attribute.
    """

    def __init__(self,
                 crops: Sequence[np.ndarray],
                 offsets,
                 height: int,
                 width: int,
                 dtype=None) -> None:
        crops = [np.asarray(c) for c in crops]
        offsets = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
        if len(crops) != len(offsets):
            raise ValueError(f'{len(crops)} crops but {len(offsets)} '
                             'offsets')
        if dtype is None:
            dtype = (np.result_type(*[c.dtype for c in crops])
                     if crops else np.uint8)
        dtype = np.dtype(dtype)
        height, width = int(height), int(width)
        tight, offs = [], np.zeros((len(crops), 2), np.int64)
        for i, c in enumerate(crops):
            if c.ndim != 2:
                raise ValueError(f'crop {i} is not 2-D: {c.shape}')
            x0, y0 = int(offsets[i, 0]), int(offsets[i, 1])
            c = c.astype(dtype, copy=False)
            if c.size and (x0 < 0 or y0 < 0 or x0 + c.shape[1] > width
                           or y0 + c.shape[0] > height):
                raise ValueError(f'crop {i} ({c.shape} at x0={x0}, y0={y0})'
                                 f' exceeds the {height}x{width} image')
            c, x0, y0 = tighten_crop(c, x0, y0)
            tight.append(c)
            offs[i] = (x0, y0)
        self._init(tight, offs, height, width, dtype)

    # ------------------------------------------------------------ internals
    def _init(self, crops: List[np.ndarray], offsets: np.ndarray, height: int,
              width: int, dtype) -> None:
        self._crops = crops
        self._offsets = offsets
        self.height = int(height)
        self.width = int(width)
        self.dtype = np.dtype(dtype)

    @classmethod
    def _make(cls, crops, offsets, height, width,
              dtype) -> 'CropBitmapMasks':
        """Build from crops already tight, in bounds and of ``dtype``."""
        obj = cls.__new__(cls)
        offsets = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
        obj._init(list(crops), offsets, height, width, dtype)
        return obj

    def _build(self, items, height, width, dtype=None) -> 'CropBitmapMasks':
        """From ``(crop, x0, y0)`` triples, tightening each one."""
        dtype = self.dtype if dtype is None else np.dtype(dtype)
        crops, offs = [], np.zeros((len(items), 2), np.int64)
        for i, (c, x0, y0) in enumerate(items):
            c, x0, y0 = tighten_crop(
                c.astype(dtype, copy=False), int(x0), int(y0))
            crops.append(c)
            offs[i] = (x0, y0)
        return self._make(crops, offs, height, width, dtype)

    def _items(self) -> Iterator[Tuple[np.ndarray, int, int]]:
        for c, (x0, y0) in zip(self._crops, self._offsets):
            yield c, int(x0), int(y0)

    def _full(self, i: int, height: Optional[int] = None,
              width: Optional[int] = None) -> np.ndarray:
        """Instance ``i`` as a full ``height x width`` array (its content
        clipped to it); defaults to the image size."""
        height = self.height if height is None else int(height)
        width = self.width if width is None else int(width)
        out = np.zeros((height, width), dtype=self.dtype)
        c, (x0, y0) = self._crops[i], self._offsets[i]
        if c.size:
            hh = max(min(c.shape[0], height - y0), 0)
            ww = max(min(c.shape[1], width - x0), 0)
            out[y0:y0 + hh, x0:x0 + ww] = c[:hh, :ww]
        return out

    def _per_instance(self, fn, height, width, dtype=None,
                      warp=False) -> 'CropBitmapMasks':
        """Fallback: apply ``fn`` to one full-size mask at a time and crop
        the result (memory: one ``H x W`` temporary, two with ``warp``).

        ``warp``: ``fn`` is a cv2 warp (``BitmapMasks`` warps all ``N``
        masks at once as one ``N``-channel image). OpenCV takes another code
        path (IPP) for 1, 3 and 4 channels than for 2 or >= 5, and the two
        round differently at exact half-pixel sample positions, so the
        instance is warped as a 1-channel image when ``N`` is 1, 3 or 4 and
        as channel 0 of a 2-channel image otherwise, reproducing
        ``BitmapMasks`` bit for bit.
        """
        two = warp and len(self) not in (1, 3, 4)
        items = []
        for i in range(len(self)):
            full = self._full(i)
            if two:
                full = np.stack([full, np.zeros_like(full)], axis=-1)
            res = np.asarray(fn(full))
            if two:
                res = res[..., 0]
            if res.shape != (height, width):
                raise ValueError(f'result shape {res.shape} != out_shape '
                                 f'{(height, width)}')
            items.append((res, 0, 0))
        return self._build(items, height, width, dtype)

    @staticmethod
    def _clip(c: np.ndarray, x0: int, y0: int, height: int,
              width: int) -> Tuple[np.ndarray, int, int]:
        """The part of a crop at (x0, y0) inside ``[0, width) x [0,
        height)``."""
        if c.size == 0:
            return c, 0, 0
        a, b = max(x0, 0), min(x0 + c.shape[1], width)
        t, u = max(y0, 0), min(y0 + c.shape[0], height)
        if a >= b or t >= u:
            return empty_crop(c.dtype), 0, 0
        return c[t - y0:u - y0, a - x0:b - x0], a, t

    # ----------------------------------------------------------- properties
    @property
    def crops(self) -> List[np.ndarray]:
        """The per-instance crops (do not modify in place)."""
        return self._crops

    @property
    def offsets(self) -> np.ndarray:
        """(N, 2) int64 ``(x0, y0)`` of each crop."""
        return self._offsets

    @property
    def nbytes(self) -> int:
        """Bytes held by the crops and offsets."""
        return int(sum(c.nbytes for c in self._crops) + self._offsets.nbytes)

    # -------------------------------------------------------- constructors
    @classmethod
    def from_bitmap(cls,
                    masks,
                    height: Optional[int] = None,
                    width: Optional[int] = None) -> 'CropBitmapMasks':
        """From a ``BitmapMasks``, an ``(N, H, W)`` array or a list of
        ``H x W`` arrays."""
        if isinstance(masks, BitmapMasks):
            height, width, masks = masks.height, masks.width, masks.masks
        if isinstance(masks, np.ndarray) and masks.ndim == 3:
            height = masks.shape[1] if height is None else height
            width = masks.shape[2] if width is None else width
            dtype = masks.dtype
        else:
            masks = [np.asarray(m) for m in masks]
            if masks:
                height = masks[0].shape[0] if height is None else height
                width = masks[0].shape[1] if width is None else width
                dtype = np.result_type(*[m.dtype for m in masks])
            else:
                dtype = np.uint8
        if height is None or width is None:
            raise ValueError('height and width are needed without masks')
        if len(masks) == 0:
            dtype = np.uint8  # as BitmapMasks
        crops, offs = [], np.zeros((len(masks), 2), np.int64)
        for i, m in enumerate(masks):
            if m.shape != (height, width):
                raise ValueError(f'mask {i} has shape {m.shape}, expected '
                                 f'{(height, width)}')
            c, x0, y0 = tighten_crop(np.asarray(m, dtype=dtype), 0, 0)
            crops.append(c if c.base is None else c.copy())
            offs[i] = (x0, y0)
        return cls._make(crops, offs, height, width, dtype)

    @classmethod
    def from_rle_list(cls, rles: Sequence[dict], height: int,
                      width: int) -> 'CropBitmapMasks':
        """From COCO RLEs (compressed ``str``/``bytes`` or uncompressed
        ``list`` counts), each of size ``(height, width)``; decodes only the
        crops (uint8, like ``pycocotools.mask.decode``)."""
        crops, offs = [], np.zeros((len(rles), 2), np.int64)
        for i, rle in enumerate(rles):
            size = tuple(int(v) for v in rle['size'])
            if size != (int(height), int(width)):
                raise ValueError(f'RLE {i} has size {size}, expected '
                                 f'{(height, width)}')
            c, x0, y0 = rle_to_crop(rle)
            crops.append(c)
            offs[i] = (x0, y0)
        return cls._make(crops, offs, height, width, np.uint8)

    @classmethod
    def from_annotations(cls, anns: Sequence, height: int,
                         width: int) -> 'CropBitmapMasks':
        """From mmdet mask annotations (polygon lists, uncompressed or
        compressed RLE dicts), decoded as ``LoadAnnotations._poly2mask``
        would (polygons go through ``frPyObjects`` + ``merge``)."""
        return cls.from_rle_list(
            [_ann_to_rle(a, height, width) for a in anns], height, width)

    def to_rle_list(self) -> List[dict]:
        """COCO RLE of each full-image mask (``counts`` as ``str``), as
        ``pycocotools.mask.encode`` of the full masks gives, encoded from
        the crops without allocating a full mask."""
        return [encode_crop_rle(c, x0, y0, self.height, self.width)
                for c, x0, y0 in self._items()]

    def to_bitmap(self) -> BitmapMasks:
        """Full-size :class:`BitmapMasks` (allocates ``N x H x W``)."""
        return BitmapMasks(self.to_ndarray(), self.height, self.width)

    # --------------------------------------------------------- container
    def __getitem__(self, index) -> 'CropBitmapMasks':
        """Index like ``BitmapMasks``: int (keeps one instance), slice,
        bool/int arrays or lists, torch tensors."""
        if isinstance(index, torch.Tensor):
            index = index.cpu().numpy()
        sel = np.arange(len(self))[index].reshape(-1)
        return self._make([self._crops[i] for i in sel], self._offsets[sel],
                          self.height, self.width, self.dtype)

    def __iter__(self) -> Iterator[np.ndarray]:
        """Full-size ``H x W`` masks, one at a time (like iterating
        ``BitmapMasks``)."""
        for i in range(len(self)):
            yield self._full(i)

    def __len__(self) -> int:
        return len(self._crops)

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_masks={len(self)}, '
                f'height={self.height}, width={self.width})')

    @classmethod
    def cat(cls, masks: Sequence['CropBitmapMasks']) -> 'CropBitmapMasks':
        """Concatenate mask sets of the same image size."""
        assert isinstance(masks, Sequence)
        if len(masks) == 0:
            raise ValueError('masks should not be an empty list.')
        assert all(isinstance(m, cls) for m in masks)
        h, w = masks[0].height, masks[0].width
        if any((m.height, m.width) != (h, w) for m in masks):
            raise ValueError('cannot cat masks of different image sizes')
        dtype = np.result_type(*[m.dtype for m in masks])
        crops = [c.astype(dtype, copy=False) for m in masks for c in m._crops]
        offs = np.concatenate([m._offsets for m in masks], axis=0)
        return cls._make(crops, offs, h, w, dtype)

    # ------------------------------------------------------- geometry ops
    def rescale(self, scale, interpolation='nearest') -> 'CropBitmapMasks':
        """See :func:`BaseInstanceMasks.rescale` (``mmcv.imrescale``)."""
        new_w, new_h = mmcv.rescale_size((self.width, self.height), scale)
        return self._resize(new_h, new_w, interpolation)

    def resize(self, out_shape, interpolation='nearest') -> 'CropBitmapMasks':
        """See :func:`BaseInstanceMasks.resize` (``mmcv.imresize``)."""
        return self._resize(int(out_shape[0]), int(out_shape[1]),
                            interpolation)

    def _resize(self, new_h: int, new_w: int,
                interpolation: str) -> 'CropBitmapMasks':
        if len(self) == 0:
            return self._make([], np.zeros((0, 2)), new_h, new_w, np.uint8)
        if interpolation != 'nearest':
            return self._per_instance(
                lambda m: mmcv.imresize(
                    m, (new_w, new_h), interpolation=interpolation), new_h,
                new_w)
        my = nearest_index_map(self.height, new_h)
        mx = nearest_index_map(self.width, new_w)
        items = []
        for c, x0, y0 in self._items():
            if c.size == 0:
                items.append((c, 0, 0))
                continue
            a, b = np.searchsorted(mx, [x0, x0 + c.shape[1]])
            t, u = np.searchsorted(my, [y0, y0 + c.shape[0]])
            if a >= b or t >= u:
                items.append((empty_crop(c.dtype), 0, 0))
                continue
            new = c[(my[t:u] - y0)[:, None], (mx[a:b] - x0)[None, :]]
            items.append((new, a, t))
        return self._build(items, new_h, new_w)

    def flip(self, flip_direction='horizontal') -> 'CropBitmapMasks':
        """See :func:`BaseInstanceMasks.flip` (``mmcv.imflip``)."""
        assert flip_direction in ('horizontal', 'vertical', 'diagonal')
        crops, offs = [], self._offsets.copy()
        for i, (c, x0, y0) in enumerate(self._items()):
            if c.size == 0:
                crops.append(c)
                continue
            h, w = c.shape
            if flip_direction in ('horizontal', 'diagonal'):
                c = c[:, ::-1]
                offs[i, 0] = self.width - x0 - w
            if flip_direction in ('vertical', 'diagonal'):
                c = c[::-1, :]
                offs[i, 1] = self.height - y0 - h
            crops.append(np.ascontiguousarray(c))
        return self._make(crops, offs, self.height, self.width, self.dtype)

    def rot90(self, k: int = 1) -> 'CropBitmapMasks':
        """Rotate every mask by ``k`` x 90 degrees counter-clockwise, as
        ``np.rot90(mask, k)`` rotates a full ``H x W`` mask (the image
        becomes ``W x H`` for odd ``k``): each crop is rotated on its own
        and its offset moved, exactly."""
        k %= 4
        crops, offs = list(self._crops), self._offsets.copy()
        height, width = self.height, self.width
        for _ in range(k):
            for i, c in enumerate(crops):
                if c.size == 0:
                    continue
                x0, y0 = offs[i]
                # pixel (x, y) of a W-wide image moves to (y, W - 1 - x)
                offs[i] = (y0, width - x0 - c.shape[1])
                crops[i] = np.ascontiguousarray(np.rot90(c))
            height, width = width, height
        return self._make(crops, offs, height, width, self.dtype)

    def pad(self, out_shape, pad_val=0) -> 'CropBitmapMasks':
        """See :func:`BaseInstanceMasks.pad` (``mmcv.impad`` at the bottom
        and right)."""
        out_h, out_w = int(out_shape[0]), int(out_shape[1])
        if len(self) == 0:
            return self._make([], np.zeros((0, 2)), out_h, out_w, np.uint8)
        if out_h < self.height or out_w < self.width:
            raise ValueError(f'cannot pad {self.height}x{self.width} masks '
                             f'to the smaller {out_h}x{out_w}')
        if pad_val == 0 or (out_h, out_w) == (self.height, self.width):
            return self._make(self._crops, self._offsets, out_h, out_w,
                              self.dtype)
        return self._per_instance(
            lambda m: mmcv.impad(m, shape=(out_h, out_w), pad_val=pad_val),
            out_h, out_w)

    def crop(self, bbox) -> 'CropBitmapMasks':
        """See :func:`BaseInstanceMasks.crop`."""
        assert isinstance(bbox, np.ndarray)
        assert bbox.ndim == 1
        bbox = bbox.copy()
        bbox[0::2] = np.clip(bbox[0::2], 0, self.width)
        bbox[1::2] = np.clip(bbox[1::2], 0, self.height)
        x1, y1, x2, y2 = (int(v) for v in bbox)
        w = max(x2 - x1, 1)
        h = max(y2 - y1, 1)
        if len(self) == 0:
            return self._make([], np.zeros((0, 2)), h, w, np.uint8)
        items = [
            self._clip(c, x0 - x1, y0 - y1, h, w)
            for c, x0, y0 in self._items()
        ]
        return self._build(items, h, w)

    def crop_and_resize(self,
                        bboxes,
                        out_shape,
                        inds,
                        device='cpu',
                        interpolation='bilinear',
                        binarize=True) -> BitmapMasks:
        """See :func:`BaseInstanceMasks.crop_and_resize`.

        Same targets as ``BitmapMasks.crop_and_resize`` (mmcv RoIAlign,
        ``aligned=True``, on the full masks) computed from the crops; see the
        module doc. Returns a dense :class:`BitmapMasks` of ``len(bboxes)``
        ``out_shape`` masks (bool if ``binarize`` else float in the dtype of
        ``bboxes``), computed with numpy on the CPU whatever ``device`` is.
        """
        out_h, out_w = int(out_shape[0]), int(out_shape[1])
        if len(self) == 0:
            return BitmapMasks(
                np.empty((0, *out_shape), dtype=np.uint8), *out_shape)
        if isinstance(bboxes, torch.Tensor):
            bboxes = bboxes.detach().cpu().numpy()
        if isinstance(inds, torch.Tensor):
            inds = inds.detach().cpu().numpy()
        boxes = np.asarray(bboxes)
        num_bbox = boxes.shape[0]
        if num_bbox == 0:
            return BitmapMasks([], *out_shape)
        gt = np.asarray(inds).astype(np.int64).reshape(-1)
        if gt.size != num_bbox:
            raise ValueError(f'{num_bbox} bboxes but {gt.size} inds')
        if gt.min() < -len(self) or gt.max() >= len(self):
            raise IndexError('inds out of range')
        gt = np.where(gt < 0, gt + len(self), gt)

        out = roi_align_crops(self._crops, self._offsets, self.height,
                              self.width, boxes, gt, (out_h, out_w))
        if binarize:
            out = out >= 0.5
        return BitmapMasks(out, *out_shape)

    def expand(self, expanded_h, expanded_w, top,
               left) -> 'CropBitmapMasks':
        """See :func:`BaseInstanceMasks.expand` (result is uint8, as in
        ``BitmapMasks``)."""
        if len(self) == 0:
            return self._make([], np.zeros((0, 2)), expanded_h, expanded_w,
                              np.uint8)
        if (top < 0 or left < 0 or top + self.height > expanded_h
                or left + self.width > expanded_w):
            raise ValueError('expanded canvas does not hold the masks')
        offs = self._offsets.copy()
        nonempty = np.array([c.size > 0 for c in self._crops])
        offs[nonempty] += np.array([left, top], np.int64)
        crops = [c.astype(np.uint8, copy=False) for c in self._crops]
        return self._make(crops, offs, expanded_h, expanded_w, np.uint8)

    def translate(self,
                  out_shape,
                  offset,
                  direction='horizontal',
                  border_value=0,
                  interpolation='bilinear') -> 'CropBitmapMasks':
        """See :func:`BaseInstanceMasks.translate`.

        Integral offsets with ``border_value=0`` (the case of mmdet's
        transforms on masks up to a fractional offset) shift the crops;
        other cases go through one full-size mask at a time with
        ``mmcv.imtranslate``, applying ``border_value`` to every instance
        (``BitmapMasks`` passes it to ``cv2.warpAffine`` as one scalar for
        all instance channels, which sets it on the first 3 only).
        """
        assert direction in ('horizontal', 'vertical')
        out_h, out_w = int(out_shape[0]), int(out_shape[1])
        if len(self) == 0:
            return self._make([], np.zeros((0, 2)), out_h, out_w, np.uint8)
        # BitmapMasks first pads/crops the masks to out_shape (top-left)
        clipped = [
            self._clip(c, x0, y0, out_h, out_w) for c, x0, y0 in self._items()
        ]
        border_zero = np.all(np.asarray(border_value) == 0)
        if border_zero and float(offset).is_integer():
            dx = int(offset) if direction == 'horizontal' else 0
            dy = int(offset) if direction == 'vertical' else 0
            items = [
                self._clip(c, x0 + dx, y0 + dy, out_h, out_w)
                for c, x0, y0 in clipped
            ]
            return self._build(items, out_h, out_w)
        tmp = self._make([c for c, _, _ in clipped],
                         [(x0, y0) for _, x0, y0 in clipped], out_h, out_w,
                         self.dtype)
        return tmp._per_instance(
            lambda m: mmcv.imtranslate(
                m,
                offset,
                direction,
                border_value=border_value,
                interpolation=interpolation), out_h, out_w, warp=True)

    def shear(self,
              out_shape,
              magnitude,
              direction='horizontal',
              border_value=0,
              interpolation='bilinear') -> 'CropBitmapMasks':
        """See :func:`BaseInstanceMasks.shear` (one full-size temporary at
        a time, ``mmcv.imshear``)."""
        out_h, out_w = int(out_shape[0]), int(out_shape[1])
        if len(self) == 0:
            return self._make([], np.zeros((0, 2)), out_h, out_w, np.uint8)
        return self._per_instance(
            lambda m: mmcv.imshear(
                m,
                magnitude,
                direction,
                border_value=border_value,
                interpolation=interpolation), out_h, out_w, warp=True)

    def rotate(self,
               out_shape,
               angle,
               center=None,
               scale=1.0,
               border_value=0,
               interpolation='bilinear') -> 'CropBitmapMasks':
        """See :func:`BaseInstanceMasks.rotate` (one full-size temporary at
        a time, ``mmcv.imrotate``)."""
        out_h, out_w = int(out_shape[0]), int(out_shape[1])
        if len(self) == 0:
            return self._make([], np.zeros((0, 2)), out_h, out_w, self.dtype)
        return self._per_instance(
            lambda m: mmcv.imrotate(
                m,
                angle,
                center=center,
                scale=scale,
                border_value=border_value,
                interpolation=interpolation), out_h, out_w, warp=True)

    # ---------------------------------------------------------- summaries
    @property
    def areas(self) -> np.ndarray:
        """See :py:attr:`BaseInstanceMasks.areas` (same dtype as
        ``BitmapMasks.areas``)."""
        dtype = np.zeros((0, 1, 1), self.dtype).sum((1, 2)).dtype
        return np.array([c.sum() for c in self._crops], dtype=dtype)

    def get_bboxes(self, dst_type='hbox'):
        """Boxes of the masks' non-zero pixels, as
        ``HorizontalBoxes.from_instance_masks`` computes them for
        ``BitmapMasks`` (``[x0, y0, x1 + 1, y1 + 1]``, zeros for empty
        masks), straight from the tight crops. Other box types go through
        their ``from_instance_masks`` with one full-size ``BitmapMasks`` at
        a time."""
        from mmdet.structures.bbox import HorizontalBoxes, get_box_type
        _, box_type_cls = get_box_type(dst_type)
        if box_type_cls is HorizontalBoxes:
            boxes = np.zeros((len(self), 4), dtype=np.float32)
            for i, (c, x0, y0) in enumerate(self._items()):
                if c.size:
                    boxes[i] = (x0, y0, x0 + c.shape[1], y0 + c.shape[0])
            return HorizontalBoxes(boxes)
        parts = [
            box_type_cls.from_instance_masks(
                BitmapMasks(self._full(i)[None], self.height, self.width))
            for i in range(len(self))
        ]
        if not parts:
            return box_type_cls.from_instance_masks(
                BitmapMasks(
                    np.empty((0, self.height, self.width), np.uint8),
                    self.height, self.width))
        return box_type_cls.cat(parts)

    # --------------------------------------------------------- conversion
    def to_ndarray(self) -> np.ndarray:
        """See :func:`BaseInstanceMasks.to_ndarray` (allocates the full
        ``N x H x W`` array; not for the training hot path)."""
        out = np.zeros((len(self), self.height, self.width), dtype=self.dtype)
        for i, (c, x0, y0) in enumerate(self._items()):
            if c.size:
                out[i, y0:y0 + c.shape[0], x0:x0 + c.shape[1]] = c
        return out

    def to_tensor(self, dtype, device) -> torch.Tensor:
        """See :func:`BaseInstanceMasks.to_tensor` (full-size)."""
        return torch.tensor(self.to_ndarray(), dtype=dtype, device=device)
