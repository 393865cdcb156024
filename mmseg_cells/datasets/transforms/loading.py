"""Image loading for hw3 TIFFs (RGBA, LZW, 16-bit, grayscale)."""
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform

from mmdet.registry import TRANSFORMS
from mmseg_cells.data.io import read_image


@TRANSFORMS.register_module()
class LoadCellImageFromFile(BaseTransform):
    """Load an image with :func:`mmseg_cells.data.io.read_image`.

    mmcv's ``LoadImageFromFile`` decodes with cv2, which reads the RGBA LZW
    ``image.tif`` files of hw3 only through a libtiff fallback (with a
    warning) and has no defined behaviour for 16-bit or 2-channel TIFFs.
    This transform reads them with tifffile, drops alpha, converts 16-bit to
    8-bit (see ``read_image``) and returns **BGR** ``uint8``, the channel
    order of mmdet's loaders, so the standard ``DetDataPreprocessor`` with
    ``bgr_to_rgb=True`` and ImageNet RGB mean/std applies unchanged.

    Required keys: ``img_path``. Added keys: ``img``, ``img_shape``,
    ``ori_shape``.

    Args:
        to_float32 (bool): Return float32 instead of uint8. Defaults to False.
        ignore_empty (bool): Return None instead of raising when the file
            cannot be read. Defaults to False.
    """

    def __init__(self, to_float32: bool = False,
                 ignore_empty: bool = False) -> None:
        self.to_float32 = to_float32
        self.ignore_empty = ignore_empty

    def transform(self, results: dict) -> Optional[dict]:
        """Read ``results['img_path']`` into ``results['img']``."""
        try:
            rgb = read_image(results['img_path'])
        except Exception:
            if self.ignore_empty:
                return None
            raise
        img = np.ascontiguousarray(rgb[..., ::-1])
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(to_float32={self.to_float32}, '
                f'ignore_empty={self.ignore_empty})')


__all__ = ['LoadCellImageFromFile']
