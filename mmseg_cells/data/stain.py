"""Colour deconvolution of H&E images (Ruifrok & Johnston, 2001).

numpy only: used by the stain-jitter transform and by the synthetic
generator's realism statistics.
"""
import numpy as np

__all__ = ['RGB_FROM_HED', 'HED_FROM_RGB', 'hed_to_rgb', 'rgb_to_hed',
           'rgb_to_od']

#: Ruifrok & Johnston's stain vectors (rows: haematoxylin, eosin, DAB; the
#: optical density of each stain in R, G, B), as in scikit-image's
#: ``rgb2hed``.
RGB_FROM_HED = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11],
                         [0.27, 0.57, 0.78]])
#: Its inverse: optical density (R, G, B) -> stain concentrations.
HED_FROM_RGB = np.linalg.inv(RGB_FROM_HED)
# optical density of a pixel value v in [1, 255]: -log(v / 255)
_MIN_VALUE = 1.0


def rgb_to_od(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB (..., 3) -> optical density ``-log(v / 255)``, float64."""
    return -np.log(np.maximum(rgb.astype(np.float64), _MIN_VALUE) / 255.0)


def rgb_to_hed(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB (..., 3) -> stain concentrations (..., 3), float64."""
    return rgb_to_od(rgb) @ HED_FROM_RGB


def hed_to_rgb(hed: np.ndarray) -> np.ndarray:
    """Stain concentrations -> uint8 RGB (rounded, clipped)."""
    rgb = 255.0 * np.exp(-(hed @ RGB_FROM_HED))
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
