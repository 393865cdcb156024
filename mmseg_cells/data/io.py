"""Readers and writers for the hw3 cell data set.

The same functions are used by the hw3 -> COCO converter, by the training
pipeline and by the predictor, so that every component agrees on how an image
or an instance map is decoded and validated.

hw3 layout::

    <data_root>/train/<uuid>/image.tif     uint8 RGBA, LZW compressed
    <data_root>/train/<uuid>/class{1..4}.tif  float64 H x W instance-id maps
                                            (0 = background), any subset
    <data_root>/test_release/<uuid>.tif    uint8 RGBA
    <data_root>/test_image_name_to_ids.json

Value conventions of :func:`read_image`:

* ``uint8`` is returned unchanged.
* ``uint16`` is mapped linearly onto the full 8-bit range with
  ``round(x / 257)`` (so 0 -> 0 and 65535 -> 255). No per-image contrast
  stretching is done: a 16-bit image that only uses the low 8 bits becomes
  (almost) black, which is the faithful rendering of its values.
* floating point images must lie in ``[0, 1]`` and are mapped with
  ``round(x * 255)``.
* every other dtype (signed integers, ``uint32``, bool, complex ...) is
  rejected with :class:`DataFormatError`.

This module imports neither torch nor mmdet.
"""
import io
import os
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

import numpy as np
import tifffile

from mmseg_cells.utils.atomic import atomic_write

__all__ = [
    'CLASS_NAMES', 'DataFormatError', 'TIFF_SUFFIXES', 'find_class_files',
    'read_image', 'read_image_size', 'read_instance_map',
    'read_labelled_image', 'write_image_tif', 'write_instance_map'
]

PathLike = Union[str, os.PathLike]

#: Names of the four hw3 classes; ``classN.tif`` holds category ``N``.
CLASS_NAMES: Tuple[str, ...] = ('class1', 'class2', 'class3', 'class4')

#: File suffixes read with tifffile (lower case).
TIFF_SUFFIXES: Tuple[str, ...] = ('.tif', '.tiff')

# Largest integer that float64 represents exactly; ids above it cannot be
# trusted to be the value the writer meant.
_MAX_EXACT_FLOAT_INT = 2**53


class DataFormatError(ValueError):
    """An input file is missing, unreadable or violates the data format.

    The message always starts with the offending file path followed by a
    colon and the problem, e.g.
    ``"/x/train/abc/class2.tif: mask shape (10, 12) != image shape (10, 13)"``.
    """

    @classmethod
    def at(cls, path: PathLike, problem: str) -> 'DataFormatError':
        """Build an error whose message is ``"<path>: <problem>"``."""
        return cls(f'{os.fspath(path)}: {problem}')


def _is_tiff(path: PathLike) -> bool:
    return Path(path).suffix.lower() in TIFF_SUFFIXES


def _check_tiff_extent(path: PathLike, page: 'tifffile.TiffPage') -> None:
    """Raise if the strips/tiles of ``page`` point beyond the end of file."""
    size = os.path.getsize(path)
    ends = [
        int(o) + int(n)
        for o, n in zip(page.dataoffsets, page.databytecounts) if n
    ]
    if ends and max(ends) > size:
        raise DataFormatError.at(
            path, f'truncated TIFF: image data ends at byte {max(ends)} but '
            f'the file has only {size} bytes')


def _tiff_page_array(path: PathLike) -> np.ndarray:
    """Decode the first page of a TIFF file as ``H x W [x S]``."""
    with tifffile.TiffFile(path) as tif:
        if len(tif.pages) == 0:
            raise DataFormatError.at(path, 'TIFF file contains no image')
        page = tif.pages[0]
        _check_tiff_extent(path, page)
        arr = page.asarray()
        # Planar (separate) sample layout decodes as S x H x W.
        if (page.planarconfig == tifffile.PLANARCONFIG.SEPARATE
                and arr.ndim == 3 and page.samplesperpixel > 1):
            arr = np.moveaxis(arr, 0, -1)
    return arr


def _read_raw(path: PathLike, unchanged_flag: bool = True) -> np.ndarray:
    """Read an image file without any value conversion.

    TIFF files are decoded with tifffile; other formats with OpenCV (colour
    order converted to RGB[A]) or, when OpenCV is missing, with Pillow.
    Every failure is re-raised as :class:`DataFormatError` naming ``path``.
    """
    if not os.path.exists(path):
        raise DataFormatError.at(path, 'file does not exist')
    if os.path.isdir(path):
        raise DataFormatError.at(path, 'is a directory, expected an image')
    if os.path.getsize(path) == 0:
        raise DataFormatError.at(path, 'file is empty')
    try:
        if _is_tiff(path):
            return _tiff_page_array(path)
        return _read_other(path)
    except DataFormatError:
        raise
    except MemoryError:
        raise
    except Exception as e:  # tifffile / codec / OS errors
        raise DataFormatError.at(
            path, f'cannot read image ({type(e).__name__}: {e})') from e


def _read_other(path: PathLike) -> np.ndarray:
    """Read a non-TIFF image (PNG, JPEG, ...) as RGB[A] / gray."""
    try:
        import cv2
    except ImportError:  # pragma: no cover - cv2 is a dependency
        cv2 = None
    if cv2 is not None:
        buf = np.fromfile(os.fspath(path), dtype=np.uint8)
        arr = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        if arr is None:
            raise DataFormatError.at(path, 'cannot decode image (not an '
                                     'image file or corrupted)')
        if arr.ndim == 3 and arr.shape[2] == 3:
            arr = cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)
        elif arr.ndim == 3 and arr.shape[2] == 4:
            arr = cv2.cvtColor(arr, cv2.COLOR_BGRA2RGBA)
        return arr
    from PIL import Image  # pragma: no cover
    with Image.open(path) as im:  # pragma: no cover
        im.load()
        return np.asarray(im)


def _to_uint8(path: PathLike, arr: np.ndarray) -> np.ndarray:
    """Convert pixel values to uint8 following the module conventions."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.uint16:
        # round(x / 257): exact linear map of [0, 65535] onto [0, 255].
        return ((arr.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise DataFormatError.at(path, 'float image contains NaN or inf')
        lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0, 0)
        if lo < 0 or hi > 1:
            raise DataFormatError.at(
                path, f'float image values must lie in [0, 1], got '
                f'[{lo:g}, {hi:g}]')
        return np.rint(arr.astype(np.float64) * 255).astype(np.uint8)
    raise DataFormatError.at(
        path, f'unsupported image dtype {arr.dtype} (expected uint8, uint16 '
        'or float in [0, 1])')


def read_image(path: PathLike) -> np.ndarray:
    """Read an image as a C-contiguous ``H x W x 3`` uint8 RGB array.

    Accepted layouts: RGB, RGBA (alpha dropped), grayscale ``H x W`` or
    ``H x W x 1`` (replicated to three channels) and gray + alpha
    ``H x W x 2`` (alpha dropped, gray replicated). See the module docstring
    for the dtype conversion rules.

    Args:
        path: Image file. ``.tif``/``.tiff`` are read with tifffile (LZW via
            imagecodecs), other formats with OpenCV.

    Returns:
        np.ndarray: ``H x W x 3`` uint8 RGB image.

    Raises:
        DataFormatError: If the file is missing, unreadable, truncated, has
            an unsupported layout or dtype.
    """
    arr = _read_raw(path)
    if arr.ndim == 3 and arr.shape[2] in (1, 2):
        arr = arr[..., 0]
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] in (3, 4):
        arr = arr[..., :3]
    else:
        raise DataFormatError.at(
            path, f'unsupported image shape {tuple(arr.shape)} (expected '
            'H x W, H x W x 1, H x W x 2, H x W x 3 or H x W x 4)')
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise DataFormatError.at(path, f'image has zero size {arr.shape}')
    return np.ascontiguousarray(_to_uint8(path, arr))


def read_image_size(path: PathLike) -> Tuple[int, int]:
    """Return ``(height, width)`` of an image, reading only its header when
    the format allows it (TIFF via tifffile, others via Pillow).

    Raises:
        DataFormatError: If the file is missing or its header is unreadable.
    """
    if not os.path.exists(path):
        raise DataFormatError.at(path, 'file does not exist')
    try:
        if _is_tiff(path):
            with tifffile.TiffFile(path) as tif:
                if len(tif.pages) == 0:
                    raise DataFormatError.at(path, 'TIFF file contains no '
                                             'image')
                page = tif.pages[0]
                return int(page.imagelength), int(page.imagewidth)
        try:
            from PIL import Image
        except ImportError:  # pragma: no cover
            h, w = read_image(path).shape[:2]
            return h, w
        with Image.open(path) as im:
            w, h = im.size
        return int(h), int(w)
    except DataFormatError:
        raise
    except Exception as e:
        raise DataFormatError.at(
            path, f'cannot read image header ({type(e).__name__}: {e})') from e


def read_instance_map(
        path: PathLike,
        expected_shape: Optional[Tuple[int, int]] = None) -> np.ndarray:
    """Read an instance-id map (``0`` = background) as ``H x W`` int64.

    Accepted dtypes: any integer, bool, or floating point whose values are
    all integral (the hw3 maps are float64). ``H x W x 1`` is squeezed.

    Args:
        path: Map file (TIFF or any format OpenCV reads losslessly).
        expected_shape: If given, the required ``(H, W)``; typically the
            shape of the matching image.

    Returns:
        np.ndarray: ``H x W`` int64 ids.

    Raises:
        DataFormatError: If unreadable, not 2-D, of the wrong shape, or if it
            contains NaN, inf, negative or non-integral values.
    """
    arr = _read_raw(path)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2:
        raise DataFormatError.at(
            path, f'instance map must be 2-D (H x W), got shape '
            f'{tuple(arr.shape)}')
    if expected_shape is not None and tuple(arr.shape) != tuple(
            expected_shape):
        raise DataFormatError.at(
            path, f'mask shape {tuple(arr.shape)} != image shape '
            f'{tuple(int(s) for s in expected_shape)}')
    dt = arr.dtype
    if dt == np.bool_:
        return arr.astype(np.int64)
    if np.issubdtype(dt, np.integer):
        if np.issubdtype(dt, np.signedinteger):
            if arr.size and arr.min() < 0:
                raise DataFormatError.at(
                    path, f'negative instance id {int(arr.min())}')
        elif dt.itemsize >= 8 and arr.size and arr.max() > np.iinfo(
                np.int64).max:
            raise DataFormatError.at(
                path, f'instance id {int(arr.max())} exceeds int64')
        return arr.astype(np.int64)
    if np.issubdtype(dt, np.floating):
        finite = np.isfinite(arr)
        if not finite.all():
            bad = arr[~finite]
            kind = 'NaN' if np.isnan(bad).any() else 'inf'
            y, x = np.argwhere(~finite)[0]
            raise DataFormatError.at(
                path, f'instance map contains {kind} (first at row {y}, '
                f'col {x})')
        if arr.size and arr.min() < 0:
            y, x = np.unravel_index(int(np.argmin(arr)), arr.shape)
            raise DataFormatError.at(
                path, f'negative instance id {float(arr.min()):g} (at row '
                f'{y}, col {x})')
        if arr.size and arr.max() > _MAX_EXACT_FLOAT_INT:
            raise DataFormatError.at(
                path, f'instance id {float(arr.max()):g} is too large to be '
                'stored exactly as a float')
        ids = arr.astype(np.int64)
        nonint = ids != arr
        if nonint.any():
            y, x = np.argwhere(nonint)[0]
            raise DataFormatError.at(
                path, f'non-integral instance id {float(arr[y, x])!r} (at '
                f'row {y}, col {x})')
        return ids
    raise DataFormatError.at(path, f'unsupported instance map dtype {dt}')


def _atomic_imwrite(path: PathLike, data: np.ndarray, **kwargs) -> None:
    """``tifffile.imwrite`` into memory, then atomically onto ``path``.

    No tifffile metadata (shape description) and no software tag are
    written, so the file bytes depend on the pixels and ``kwargs`` only.
    """
    buf = io.BytesIO()
    tifffile.imwrite(buf, data, metadata=None, software=False, **kwargs)
    with atomic_write(path, 'wb') as f:
        f.write(buf.getbuffer())


def write_image_tif(path: PathLike, rgb: np.ndarray) -> None:
    """Write an image in the hw3 format, atomically.

    The file is laid out like the released ``image.tif`` files: uint8 RGBA
    (alpha = 255, or the given alpha for an RGBA input), contiguous samples,
    LZW compressed with horizontal predictor in 4-row strips, photometric
    RGB with an unassociated-alpha extra sample, and no tifffile metadata or
    software tag (so the bytes depend on the pixels only).

    Args:
        path: Output ``.tif`` path.
        rgb: ``H x W x 3`` (or ``H x W x 4``) uint8 array.
    """
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] not in (3, 4):
        raise ValueError(f'{os.fspath(path)}: expected H x W x 3 uint8 RGB, '
                         f'got {rgb.dtype} {rgb.shape}')
    if rgb.shape[2] == 3:
        rgba = np.empty(rgb.shape[:2] + (4, ), np.uint8)
        rgba[..., :3] = rgb
        rgba[..., 3] = 255
    else:
        rgba = np.ascontiguousarray(rgb)
    _atomic_imwrite(
        path,
        rgba,
        photometric='rgb',
        extrasamples=('unassalpha', ),
        planarconfig='contig',
        compression='lzw',
        predictor=True,
        rowsperstrip=4)


def write_instance_map(path: PathLike, ids: np.ndarray) -> None:
    """Write an ``H x W`` instance-id map in the hw3 format, atomically.

    Like the released ``classN.tif`` files: uncompressed float64 in 2-row
    strips, without tifffile metadata or software tag.
    """
    ids = np.asarray(ids)
    if ids.ndim != 2:
        raise ValueError(f'{os.fspath(path)}: expected an H x W id map, got '
                         f'shape {ids.shape}')
    _atomic_imwrite(
        path,
        np.ascontiguousarray(ids, dtype=np.float64),
        photometric='minisblack',
        rowsperstrip=2)


def find_class_files(image_dir: PathLike) -> Dict[int, Path]:
    """Return ``{category_id: path}`` for the ``class1..class4`` files present
    in ``image_dir`` (``classN.tif``, else ``classN.tiff``)."""
    image_dir = Path(image_dir)
    found: Dict[int, Path] = {}
    for cat_id, name in enumerate(CLASS_NAMES, start=1):
        for suffix in TIFF_SUFFIXES:
            p = image_dir / f'{name}{suffix}'
            if p.is_file():
                found[cat_id] = p
                break
    return found


def read_labelled_image(
        image_dir: PathLike) -> Tuple[np.ndarray, Dict[int, np.ndarray]]:
    """Read one image folder of the hw3 training layout.

    Returns:
        tuple: ``(rgb, masks)``: the ``image.tif`` as :func:`read_image`
        reads it and ``{category_id: H x W int64 instance ids}`` for the
        ``classN.tif`` files present (each checked to have the image's
        size, see :func:`read_instance_map`).
    """
    image_dir = Path(image_dir)
    rgb = read_image(image_dir / 'image.tif')
    return rgb, {
        cat_id: read_instance_map(path, expected_shape=rgb.shape[:2])
        for cat_id, path in find_class_files(image_dir).items()
    }
