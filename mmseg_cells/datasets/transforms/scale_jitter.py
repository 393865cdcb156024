"""Random relative rescaling (scale jitter) of images and their labels."""
import math
from typing import Tuple

import numpy as np
from mmdet.datasets.transforms import Resize
from mmdet.registry import TRANSFORMS

__all__ = ['RandomScaleFactorResize']


@TRANSFORMS.register_module()
class RandomScaleFactorResize(Resize):
    """Resize each image by a random factor drawn log-uniformly.

    mmcv's ``RandomResize`` draws an *absolute* target size, which suits
    photographs rescaled to one size; microscopy images keep their native
    resolution (cells have one physical size per magnification, and images
    range from 35 to 2500 px), so the jitter must be *relative* to the
    image: ``scale_factor ~ exp(U(log lo, log hi))``. This imitates the
    spread of nucleus sizes between organs, scanners and magnifications
    (e.g. 20x vs 40x tiles). Boxes, masks (``BitmapMasks`` or
    ``CropBitmapMasks``) and segmentation maps follow through mmdet's
    ``Resize``.

    Args:
        ratio_range (tuple[float, float]): ``(lo, hi)``, ``0 < lo <= hi``.
            Centre it (geometrically) on the test scale: the test pipeline's
            fixed x1.5 pairs with ``(1.0, 2.25)``.
        **kwargs: ``keep_ratio``, ``clip_object_border``, ``backend``,
            ``interpolation`` of mmdet's ``Resize`` (``scale`` and
            ``scale_factor`` are drawn here).
    """

    def __init__(self, ratio_range: Tuple[float, float] = (1.0, 2.25),
                 **kwargs) -> None:
        if 'scale' in kwargs or 'scale_factor' in kwargs:
            raise TypeError('RandomScaleFactorResize draws the scale factor; '
                            'do not pass scale or scale_factor')
        lo, hi = (float(r) for r in ratio_range)
        if not 0 < lo <= hi:
            raise ValueError(
                f'ratio_range must satisfy 0 < lo <= hi, got {ratio_range}')
        kwargs.setdefault('keep_ratio', True)
        super().__init__(scale_factor=lo, **kwargs)
        self.ratio_range = (lo, hi)

    def _draw(self) -> float:
        lo, hi = self.ratio_range
        return float(math.exp(np.random.uniform(math.log(lo), math.log(hi))))

    def transform(self, results: dict) -> dict:
        factor = self._draw()
        self.scale = None
        self.scale_factor = (factor, factor)
        results = super().transform(results)
        results['scale_jitter'] = factor
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(ratio_range={self.ratio_range}, '
                f'keep_ratio={self.keep_ratio}, '
                f'clip_object_border={self.clip_object_border}, '
                f'backend={self.backend}, interpolation={self.interpolation})')
