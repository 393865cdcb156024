"""Scene statistics of the synthetic generator: image size, crowded or
sparse regime, number of cells and class mixture, and the morphology and
appearance of each annotated class.

The numbers are fitted to the real ground truth (``val_coco.json``, 50
training images).
"""
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np

__all__ = [
    'CLASS_SPECS', 'ClassSpec', 'sample_crowded', 'sample_image_size',
    'scene_params'
]

# Real image sides (val_coco.json): log-normal fit of (height, width).
_LOG_SIDE_MEAN = (6.07, 6.13)
_LOG_SIDE_STD = (0.62, 0.66)
_LOG_SIDE_CORR = 0.79
_DEFAULT_SIDE_RANGE = (93, 2162)

_P_CROWDED = 0.5
_REGIME_LOG_SHIFT = 0.35


@dataclass(frozen=True)
class ClassSpec:
    """Morphology and appearance of one annotated class."""
    area_median: float  # px
    area_sigma: Tuple[float, float]  # log-normal sigma below / above median
    elong_median: float  # median of (axis ratio - 1)
    elong_sigma: float  # log-normal sigma of (axis ratio - 1)
    irregularity: float  # amplitude of the boundary harmonics
    lobes: Tuple[int, int]  # range of the dominant harmonic order
    core: float  # stain concentration of the interior
    rim: float  # extra concentration at the boundary
    rim_width: float  # px
    texture: float  # chromatin texture amplitude
    nucleolus_prob: float
    edge_softness: float  # px


# One column per class: class1 medium, elongated / irregular, pale vesicular
# with a darker rim; class2 small, dark, compact, most common; class3 medium,
# round with a mildly lobed outline, coarse chromatin, nucleolus; class4
# rare, large, pale with a thin rim and nucleoli. Areas: median and 5-95 %
# quantiles of the real annotations; elongation: sqrt of the eigenvalue ratio
# of the pixel covariance (10/50/90 %).
_SPEC_COLUMNS = dict(
    area_median=(830., 285., 575., 2400.),
    area_sigma=((0.50, 0.33), (0.39, 0.28), (0.30, 0.29), (0.49, 0.89)),
    elong_median=(0.33, 0.26, 0.15, 0.22),
    elong_sigma=(0.65, 0.6, 0.6, 0.85),
    irregularity=(0.05, 0.07, 0.06, 0.04),
    lobes=((2, 4), (2, 4), (3, 5), (2, 4)),
    core=(0.50, 0.95, 0.72, 0.30),
    rim=(0.45, -0.15, 0.25, 0.45),
    rim_width=(2.2, 1.5, 1.8, 2.0),
    texture=(0.30, 0.28, 0.32, 0.28),
    nucleolus_prob=(0.25, 0.0, 0.75, 0.7),
    edge_softness=(1.0, 1.3, 0.9, 1.2),
)

#: ``{class id: ClassSpec}`` of the four annotated classes.
CLASS_SPECS: Dict[int, ClassSpec] = {
    cls: ClassSpec(**{k: v[cls - 1]
                      for k, v in _SPEC_COLUMNS.items()})
    for cls in (1, 2, 3, 4)
}


def sample_image_size(rng: np.random.Generator,
                      min_side: Optional[int] = None,
                      max_side: Optional[int] = None,
                      crowded: Optional[bool] = None) -> Tuple[int, int]:
    """Draw ``(height, width)`` from the log-normal fitted to the real image
    sizes, truncated to ``[min_side, max_side]`` (defaults 93 / 2162).

    As in the real data, crowded scenes tend to be larger images (median
    about 0.5 Mpx) than sparse ones (about 0.13 Mpx): with ``crowded`` given,
    the log-sides are shifted by +-0.35 (and their spread reduced so that the
    mixture of both keeps the overall fit).
    """
    lo = _DEFAULT_SIDE_RANGE[0] if min_side is None else int(min_side)
    hi = _DEFAULT_SIDE_RANGE[1] if max_side is None else int(max_side)
    if min_side is None:
        lo = min(lo, hi)
    if max_side is None:
        hi = max(hi, lo)
    mean = np.array(_LOG_SIDE_MEAN)
    std = np.array(_LOG_SIDE_STD)
    if crowded is not None:
        mean = mean + (_REGIME_LOG_SHIFT if crowded else -_REGIME_LOG_SHIFT)
        std = np.sqrt(std**2 - _REGIME_LOG_SHIFT**2)
    cov = np.array([[std[0]**2, _LOG_SIDE_CORR * std[0] * std[1]],
                    [_LOG_SIDE_CORR * std[0] * std[1], std[1]**2]])
    for _ in range(200):
        hw = np.exp(rng.multivariate_normal(mean, cov))
        if lo <= hw[0] <= hi and lo <= hw[1] <= hi:
            return int(round(hw[0])), int(round(hw[1]))
    # Range far in a tail of the real distribution: log-uniform inside it.
    hw = np.exp(rng.uniform(np.log(lo), np.log(hi + 1), size=2))
    return (int(np.clip(hw[0], lo, hi)), int(np.clip(hw[1], lo, hi)))


def sample_crowded(rng: np.random.Generator) -> bool:
    """Draw the scene regime: crowded (class1/class2, hundreds of cells per
    Mpx) or sparse (a few class3/class4 cells)."""
    return bool(rng.random() < _P_CROWDED)


def scene_params(rng: np.random.Generator, h: int, w: int,
                 max_cells: Optional[int], crowded: bool) -> dict:
    """Number of annotated cells and the class mixture of a scene.

    Returns:
        dict: ``crowded``, ``n`` (cells to place), ``probs`` (class1..class4
        probabilities) and ``mpix`` (image area in megapixels).
    """
    mpix = h * w / 1e6
    if crowded:
        density = float(np.clip(np.exp(rng.normal(np.log(520), 0.6)), 120,
                                1600))
        u = rng.random()
        if u < 0.3:  # almost only class2
            f1 = rng.uniform(0.0, 0.1)
        elif u < 0.85:  # mixed
            f1 = rng.uniform(0.1, 0.5)
        else:  # class1 dominated
            f1 = rng.uniform(0.55, 0.9)
        f3 = rng.uniform(0.0, 0.015)
        f4 = rng.uniform(0.0, 0.006)
        probs = np.array([f1 * (1 - f3 - f4), (1 - f1) * (1 - f3 - f4), f3,
                          f4])
    else:
        density = float(np.clip(np.exp(rng.normal(np.log(50), 0.7)), 20,
                                400))
        u = rng.random()
        dom = rng.uniform(0.6, 1.0)
        if u < 0.42:  # class4 dominated
            probs = np.array([0.02, 0.5, 0.48, 0.0]) * (1 - dom)
            probs[3] += dom
        elif u < 0.84:  # class3 dominated
            probs = np.array([0.02, 0.5, 0.0, 0.48]) * (1 - dom)
            probs[2] += dom
        else:  # mixed small clusters
            probs = np.array([0.05, 0.45, 0.3, 0.2])
    # the count scales with the area (realistic density on small images)
    n = max(int(rng.poisson(density * mpix)), 1)
    if crowded:
        n = min(n, int(rng.integers(450, 800)))  # the real max is 772
    else:
        n = min(n, int(rng.integers(12, 40)))  # the real max is 35
    if max_cells is not None:
        n = min(n, int(max_cells))
    probs = probs / probs.sum()
    return dict(crowded=crowded, n=n, probs=probs, mpix=mpix)
