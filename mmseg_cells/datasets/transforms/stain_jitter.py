"""Random H&E stain jitter in haematoxylin-eosin-DAB (HED) space."""
from typing import Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS

from mmseg_cells.data.stain import hed_to_rgb, rgb_to_hed

__all__ = ['RandomHEDJitter']


@TRANSFORMS.register_module()
class RandomHEDJitter(BaseTransform):
    """Jitter the amount of each stain (Tellez et al., 2018).

    The image is converted to stain concentrations with the Beer-Lambert
    law and Ruifrok & Johnston's H&E(-DAB) vectors; each stain channel
    ``s`` becomes ``alpha * s + beta`` with ``alpha ~ U(1 - sigma_alpha, 1 +
    sigma_alpha)`` and ``beta ~ U(-sigma_beta, sigma_beta)`` drawn per image,
    and the result is converted back. This imitates the spread of staining
    protocols, scanners and fading between hospitals (paler or darker
    haematoxylin, pinker or greyer eosin) without moving a pixel, so boxes
    and masks are untouched.

    Required keys: ``img`` (uint8, 3 channels). Modified keys: ``img``.
    Added keys: ``hed_jitter`` (the drawn ``(alpha, beta)``).

    Args:
        sigma_alpha (float): Half-width of the multiplicative factor per
            stain. Defaults to 0.05.
        sigma_beta (float): Half-width of the additive shift per stain
            (optical-density units). Defaults to 0.01.
        prob (float): Probability of jittering an image. Defaults to 1.0.
        channel_order (str): ``'bgr'`` (mmdet's loaders, the default) or
            ``'rgb'``.
    """

    def __init__(self,
                 sigma_alpha: float = 0.05,
                 sigma_beta: float = 0.01,
                 prob: float = 1.0,
                 channel_order: str = 'bgr') -> None:
        if sigma_alpha < 0 or sigma_beta < 0:
            raise ValueError('sigma_alpha and sigma_beta must be >= 0')
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        if channel_order not in ('bgr', 'rgb'):
            raise ValueError(f"channel_order must be 'bgr' or 'rgb', got "
                             f'{channel_order!r}')
        self.sigma_alpha = sigma_alpha
        self.sigma_beta = sigma_beta
        self.prob = prob
        self.channel_order = channel_order

    def _draw(self) -> Tuple[np.ndarray, np.ndarray]:
        alpha = np.random.uniform(1 - self.sigma_alpha, 1 + self.sigma_alpha,
                                  3)
        beta = np.random.uniform(-self.sigma_beta, self.sigma_beta, 3)
        return alpha, beta

    def transform(self, results: dict) -> dict:
        img = results['img']
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise TypeError(
                f'RandomHEDJitter needs a uint8 3-channel image, got '
                f'{img.dtype} {img.shape} ({results.get("img_path")})')
        if np.random.rand() >= self.prob:
            return results
        alpha, beta = self._draw()
        rgb = img[..., ::-1] if self.channel_order == 'bgr' else img
        out = hed_to_rgb(rgb_to_hed(rgb) * alpha + beta)
        if self.channel_order == 'bgr':
            out = out[..., ::-1]
        results['img'] = np.ascontiguousarray(out)
        results['hed_jitter'] = (alpha, beta)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(sigma_alpha={self.sigma_alpha}, '
                f'sigma_beta={self.sigma_beta}, prob={self.prob}, '
                f'channel_order={self.channel_order!r})')
