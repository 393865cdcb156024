"""Synthetic H&E-like cell images in the exact hw3-data-release layout.

The generator lets the whole pipeline (conversion, training, inference,
evaluation) run end to end without the real data set. It writes::

    out_dir/
        train/<uuid>/image.tif          uint8 RGBA (alpha 255), LZW
        train/<uuid>/class{1..4}.tif    float64 HxW instance-id maps, only for
                                        the classes present in the image; ids
                                        are unique within the image (1..K
                                        over all its class files)
        test_release/<uuid>.tif         uint8 RGBA (alpha 255), LZW
        test_image_name_to_ids.json     [{"file_name", "id", "height",
                                          "width"}, ...]

The statistics imitate the real ground truth (``val_coco.json``, 50 training
images):

* image sides: log-normal fitted to the real sizes (93-2162 px), truncated to
  ``[min_side, max_side]`` when these are given;
* two kinds of scene, as in the real data: *crowded* images dominated by
  class2 (and class1), hundreds of cells per megapixel, clustered and often
  touching (about 30 % of the cells touch another one, as in the real data);
  and *sparse* images with a few class3 / class4 cells. Crowded scenes tend
  to be the larger images. The number of cells is ``density * area`` (capped
  near the real maxima, 772 and 35), so the density stays realistic on small
  images, and the instance counts per image are heavy-tailed;
* per-class areas (median 780 / 278 / 566 / 2356 px for class1..class4) and
  elongations are drawn from skewed log-normals fitted to the real quantiles;
* class2: small, dark, compact round/oval nuclei; class1: larger, elongated,
  paler vesicular nuclei with a darker rim; class3: medium round nuclei with
  mildly lobed outline, coarse chromatin and a nucleolus; class4: rare, large,
  pale nuclei with a thin rim and nucleoli.

Images are rendered in optical-density space (Beer-Lambert) with per-image
stain vectors that vary between the brownish/lavender look of the released
sample and a classic pink/purple H&E, plus stromal texture, fibre streaks,
pale lumen patches, cytoplasm haze, retraction halos, unannotated distractor
nuclei (out-of-focus ghosts and spindle-shaped stromal nuclei), blur and
noise.

The module needs numpy, OpenCV and tifffile only and has no intra-package
imports, so tools can load it from its file without importing the package
(whose ``__init__`` imports torch and mmdet).

Everything is deterministic: each image draws from its own
``numpy.random.SeedSequence(seed, spawn_key=(split, index))`` stream, so the
same arguments give byte-identical files and the first ``n`` images do not
depend on how many are requested.
"""
import json
import os
import os.path as osp
import uuid
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple, Union

import cv2
import numpy as np
import tifffile

__all__ = [
    'make_synthetic', 'synthesize_sample', 'sample_image_size',
    'sample_crowded', 'write_rgba_tif', 'write_instance_tif',
    'format_summary', 'CLASS_NAMES', 'LOOKS'
]

CLASS_NAMES: Tuple[str, ...] = ('class1', 'class2', 'class3', 'class4')
LOOKS: Tuple[str, ...] = ('sample', 'he')

PathLike = Union[str, os.PathLike]

# Real image sides (val_coco.json): log-normal fit of (height, width).
_LOG_SIDE_MEAN = (6.07, 6.13)
_LOG_SIDE_STD = (0.62, 0.66)
_LOG_SIDE_CORR = 0.79
_DEFAULT_SIDE_RANGE = (93, 2162)

_SPLIT_KEYS = {'train': 0, 'test': 1}
_P_CROWDED = 0.5
_REGIME_LOG_SHIFT = 0.35


@dataclass(frozen=True)
class _ClassSpec:
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


# Areas: median and 5-95 % quantiles of the real annotations; elongation:
# sqrt of the eigenvalue ratio of the pixel covariance (10/50/90 %).
_CLASS_SPECS: Dict[int, _ClassSpec] = {
    # medium, elongated / irregular, pale vesicular with a darker rim
    1: _ClassSpec(area_median=830., area_sigma=(0.50, 0.33),
                  elong_median=0.33, elong_sigma=0.65, irregularity=0.05,
                  lobes=(2, 4), core=0.50, rim=0.45, rim_width=2.2,
                  texture=0.30, nucleolus_prob=0.25, edge_softness=1.0),
    # small, dark, compact, most common
    2: _ClassSpec(area_median=285., area_sigma=(0.39, 0.28),
                  elong_median=0.26, elong_sigma=0.6, irregularity=0.07,
                  lobes=(2, 4), core=0.95, rim=-0.15, rim_width=1.5,
                  texture=0.28, nucleolus_prob=0.0, edge_softness=1.3),
    # medium, round with a mildly lobed outline, coarse chromatin, nucleolus
    3: _ClassSpec(area_median=575., area_sigma=(0.30, 0.29),
                  elong_median=0.15, elong_sigma=0.6, irregularity=0.06,
                  lobes=(3, 5), core=0.72, rim=0.25, rim_width=1.8,
                  texture=0.32, nucleolus_prob=0.75, edge_softness=0.9),
    # rare, large, pale with a thin rim and nucleoli
    4: _ClassSpec(area_median=2400., area_sigma=(0.49, 0.89),
                  elong_median=0.22, elong_sigma=0.85, irregularity=0.04,
                  lobes=(2, 4), core=0.30, rim=0.45, rim_width=2.0,
                  texture=0.28, nucleolus_prob=0.7, edge_softness=1.2),
}

# Stain optical densities (per unit concentration, RGB) of two looks: the
# brownish nuclei on lavender of the released sample and classic H&E.
_STAINS = {
    'sample': dict(
        nuc=(1.00, 1.72, 1.66), bg=(0.20, 0.31, 0.21),
        fib=(0.42, 0.52, 0.33), cyto=(0.24, 0.45, 0.60)),
    'he': dict(
        nuc=(1.20, 1.70, 0.72), bg=(0.06, 0.42, 0.20),
        fib=(0.12, 0.55, 0.26), cyto=(0.14, 0.55, 0.26)),
}


# --------------------------------------------------------------------------
# TIFF writing (imitates the released files)
# --------------------------------------------------------------------------
def write_rgba_tif(path: PathLike, rgb: np.ndarray) -> None:
    """Write an ``HxWx3`` uint8 RGB image as RGBA (alpha 255), LZW with
    horizontal predictor and 4-row strips, like the released ``image.tif``."""
    h, w = rgb.shape[:2]
    rgba = np.empty((h, w, 4), np.uint8)
    rgba[..., :3] = rgb
    rgba[..., 3] = 255
    tifffile.imwrite(
        path, rgba, photometric='rgb', extrasamples=('unassalpha', ),
        planarconfig='contig', compression='lzw', predictor=True,
        rowsperstrip=4, metadata=None, software=False, maxworkers=1)


def write_instance_tif(path: PathLike, inst: np.ndarray) -> None:
    """Write an ``HxW`` instance-id map as uncompressed float64, like the
    released ``classN.tif`` files."""
    tifffile.imwrite(
        path, np.ascontiguousarray(inst, dtype=np.float64),
        photometric='minisblack', rowsperstrip=2, metadata=None,
        software=False, maxworkers=1)


# --------------------------------------------------------------------------
# Random fields
# --------------------------------------------------------------------------
def _smooth_noise(rng: np.random.Generator, h: int, w: int,
                  scale: float) -> np.ndarray:
    """Zero-mean, unit-std Gaussian random field with correlation length of
    about ``scale`` px (white noise at low resolution, blurred, upsampled)."""
    if scale <= 2.5:
        f = rng.standard_normal((h, w), dtype=np.float32)
        f = cv2.GaussianBlur(f, (0, 0), scale / 2.0)
    else:
        lh, lw = int(np.ceil(h / scale)) + 4, int(np.ceil(w / scale)) + 4
        low = rng.standard_normal((lh, lw), dtype=np.float32)
        low = cv2.GaussianBlur(low, (0, 0), 0.8)
        up = cv2.resize(low, (int(lw * scale), int(lh * scale)),
                        interpolation=cv2.INTER_CUBIC)
        oy = int(rng.integers(0, up.shape[0] - h + 1))
        ox = int(rng.integers(0, up.shape[1] - w + 1))
        f = up[oy:oy + h, ox:ox + w]
    f = f - f.mean()
    return (f / (f.std() + 1e-6)).astype(np.float32)


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


def _scene_params(rng: np.random.Generator, h: int, w: int,
                  max_cells: Optional[int], crowded: bool) -> dict:
    """Number of annotated cells and the class mixture of a scene."""
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


@dataclass
class _Cell:
    """A rasterised nucleus: crop box, soft coverage, signed distance to the
    boundary (px, positive inside) and the appearance parameters."""
    cls: int  # 1..4 annotated, 0 ghost, -1 spindle (unannotated)
    y0: int
    x0: int
    cover: np.ndarray  # float32 soft coverage in the crop (0..1)
    sdist: np.ndarray  # float32 approx. signed distance (px)
    mask: np.ndarray  # bool hard mask in the crop (own pixels only)
    conc: float
    nucleolus: Optional[Tuple[float, float, float]]  # (y, x, radius)


def _draw_shape(rng: np.random.Generator, cy: float, cx: float, area: float,
                ratio: float, irregularity: float, lobes: Tuple[int, int],
                h: int, w: int, softness: float):
    """Rasterise a star-shaped outline ``r(phi) = 1 + sum a_k cos(k phi +
    p_k)`` of an ellipse with the given area and axis ratio, rotated at
    random, in its bounding-box crop. Returns ``(y0, x0, cover, sdist)`` or
    ``None`` if the crop is outside the image."""
    b = np.sqrt(area / (np.pi * ratio))
    a = ratio * b
    theta = rng.uniform(0, np.pi)
    ks = np.arange(2, 7)
    amps = irregularity * rng.uniform(0.2, 1.0, ks.size) / (ks - 1.0)
    dom = int(rng.integers(lobes[0], lobes[1] + 1))
    amps[ks == dom] = irregularity * rng.uniform(0.6, 1.0)
    phases = rng.uniform(0, 2 * np.pi, ks.size)
    rmax = a * (1 + amps.sum()) + softness + 2
    y0 = max(int(np.floor(cy - rmax)), 0)
    y1 = min(int(np.ceil(cy + rmax)) + 1, h)
    x0 = max(int(np.floor(cx - rmax)), 0)
    x1 = min(int(np.ceil(cx + rmax)) + 1, w)
    if y1 <= y0 or x1 <= x0:
        return None
    a, b = float(a), float(b)
    yy = (np.arange(y0, y1, dtype=np.float32) - np.float32(cy))[:, None]
    xx = (np.arange(x0, x1, dtype=np.float32) - np.float32(cx))[None, :]
    c, s = float(np.cos(theta)), float(np.sin(theta))
    u = (xx * (c / a) + yy * (s / a))
    v = (xx * (-s / b) + yy * (c / b))
    rho = np.sqrt(u * u + v * v)
    phi = np.arctan2(v, u)
    r = np.ones_like(phi)
    for k, amp, ph in zip(ks.tolist(), amps.tolist(), phases.tolist()):
        r += amp * np.cos(k * phi + ph)
    cphi, sphi = np.cos(phi), np.sin(phi)
    scale = np.sqrt((a * a) * cphi * cphi + (b * b) * sphi * sphi)
    sdist = (r - rho) * scale
    cover = np.clip(sdist * (0.5 / softness) + 0.5, 0, 1)
    return y0, x0, cover, sdist


def _lognormal_skewed(rng: np.random.Generator, median: float,
                      sigmas: Tuple[float, float]) -> float:
    z = rng.standard_normal()
    return float(median * np.exp(z * (sigmas[0] if z < 0 else sigmas[1])))


def _sample_centres(rng: np.random.Generator, prob: np.ndarray, block: int,
                    n: int) -> np.ndarray:
    """Draw ``n`` (y, x) centres from a coarse probability map."""
    p = prob.ravel().astype(np.float64)
    p = p / p.sum()
    idx = rng.choice(p.size, size=n, p=p)
    gy, gx = np.divmod(idx, prob.shape[1])
    jit = rng.uniform(0, block, size=(n, 2))
    return np.stack([gy * block + jit[:, 0], gx * block + jit[:, 1]], 1)


def _try_place(rng: np.random.Generator,
               cls: int,
               cy: float,
               cx: float,
               labels: np.ndarray,
               label: int,
               max_overlap: float,
               min_pixels: int = 12) -> Optional[_Cell]:
    """Draw one annotated cell at ``(cy, cx)`` into ``labels`` unless it
    overlaps earlier cells by more than ``max_overlap`` of its area. Pixels
    already taken stay with the earlier cell (so cells touch)."""
    h, w = labels.shape
    spec = _CLASS_SPECS[cls]
    area = _lognormal_skewed(rng, spec.area_median, spec.area_sigma)
    ratio = 1 + spec.elong_median * np.exp(spec.elong_sigma *
                                           rng.standard_normal())
    ratio = min(ratio, 2.6)
    out = _draw_shape(rng, cy, cx, area, ratio, spec.irregularity,
                      spec.lobes, h, w, spec.edge_softness)
    if out is None:
        return None
    y0, x0, cover, sdist = out
    inside = sdist >= 0
    total = int(inside.sum())
    if total < min_pixels:
        return None
    crop = labels[y0:y0 + inside.shape[0], x0:x0 + inside.shape[1]]
    taken = inside & (crop > 0)
    n_taken = int(taken.sum())
    if n_taken > max_overlap * total:
        return None
    own = inside & (crop == 0)
    if n_taken:
        # keep the largest connected part of what is left
        nlab, lab, stats, _ = cv2.connectedComponentsWithStats(
            own.view(np.uint8), connectivity=4)
        if nlab > 2:
            big = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
            own = lab == big
        if own.sum() < min_pixels:
            return None
    crop[own] = label
    # soft coverage limited to free pixels (no bleeding over neighbours)
    cover = np.where(crop == label, cover,
                     np.where(crop > 0, 0.0, cover * (sdist < 0)))
    conc = spec.core * float(np.exp(rng.normal(0, 0.13)))
    nucleolus = None
    if rng.random() < spec.nucleolus_prob:
        rr = np.sqrt(area / np.pi)
        nucleolus = (float(cy + rng.normal(0, 0.2 * rr)),
                     float(cx + rng.normal(0, 0.2 * rr)),
                     float(rng.uniform(1.2, 2.4) * (1 + (cls == 4))))
    return _Cell(cls, y0, x0, cover.astype(np.float32), sdist, own, conc,
                 nucleolus)


def _place_cells(rng: np.random.Generator, h: int, w: int, scene: dict,
                 tissue: np.ndarray) -> Tuple[List[_Cell], np.ndarray]:
    """Place the annotated cells (earlier cells keep their pixels, moderate
    overlaps are clipped so that cells touch) and unannotated distractors.
    Returns the cells in drawing order and the annotated label map."""
    block = 8
    gh, gw = -(-h // block), -(-w // block)
    small = cv2.resize(tissue, (gw, gh), interpolation=cv2.INTER_AREA)
    if scene['crowded']:
        clusters = _smooth_noise(rng, gh, gw, max(2.0, 70.0 / block))
        prob = np.exp(rng.uniform(0.6, 1.6) * clusters) * (small + 0.02)
        max_overlap = 0.04
    else:
        prob = small + 0.05
        max_overlap = 0.05
    n = scene['n']
    labels = np.zeros((h, w), np.int32)
    cells: List[_Cell] = []
    classes = rng.choice(4, size=n, p=scene['probs']) + 1
    centres = _sample_centres(rng, prob, block, 4 * n + 8)
    ci = 0
    for cls in classes.tolist():
        # a few attempts per cell keep the class mixture unbiased
        for _ in range(4):
            if ci >= len(centres):
                break
            cy, cx = centres[ci]
            ci += 1
            cell = _try_place(rng, cls, cy, cx, labels, len(cells) + 1,
                              max_overlap)
            if cell is not None:
                cells.append(cell)
                break
    if not cells:  # every training image has at least one instance
        cls = int(np.argmax(scene['probs'])) + 1
        cell = _try_place(rng, cls, (h - 1) / 2, (w - 1) / 2, labels, 1, 1.0,
                          min_pixels=1)
        if cell is not None:
            cells.append(cell)

    # unannotated distractors, drawn underneath the annotated cells
    distractors: List[_Cell] = []
    n_dis = np.exp(rng.normal(np.log(160), 0.6)) * scene['mpix']
    if scene['crowded']:
        n_dis += rng.uniform(0.3, 0.8) * n
    n_dis = int(round(n_dis))
    if n_dis:
        dprob = small + 0.05 if rng.random() < 0.5 else np.exp(
            1.2 * _smooth_noise(rng, gh, gw, 6.0)) * (small + 0.02)
        dcentres = _sample_centres(rng, dprob, block, n_dis)
        for cy, cx in dcentres:
            if rng.random() < 0.2:  # spindle-shaped stromal nucleus
                kind, area = -1, rng.uniform(70, 220)
                ratio, irr, soft = rng.uniform(2.8, 5.5), 0.03, 1.2
                conc = rng.uniform(0.35, 0.8)
            else:  # out-of-focus ghost nucleus
                kind, area = 0, rng.uniform(150, 600)
                ratio, irr, soft = 1 + rng.exponential(0.3), 0.06, \
                    rng.uniform(1.5, 4.0)
                conc = rng.uniform(0.2, 0.6)
            out = _draw_shape(rng, cy, cx, area, ratio, irr, (2, 3), h, w,
                              soft)
            if out is None:
                continue
            y0, x0, cover, sdist = out
            crop = labels[y0:y0 + cover.shape[0], x0:x0 + cover.shape[1]]
            inside = sdist >= 0
            if not inside.any() or (crop[inside] > 0).mean() > 0.3:
                continue
            distractors.append(
                _Cell(kind, y0, x0, cover, sdist, sdist >= 0, conc, None))
    return distractors + cells, labels


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------
def _stain_vectors(rng: np.random.Generator,
                   look: Optional[str]) -> Dict[str, np.ndarray]:
    """Per-image stain ODs, between the sample look (t=0) and H&E (t=1)."""
    if look == 'sample':
        t = rng.uniform(0.0, 0.1)
    elif look == 'he':
        t = rng.uniform(0.85, 1.0)
    else:
        u = rng.random()
        t = (rng.uniform(0, 0.2) if u < 0.45 else
             rng.uniform(0.8, 1.0) if u < 0.9 else rng.uniform(0.3, 0.7))
    out = {}
    for k in ('nuc', 'bg', 'fib', 'cyto'):
        v = (1 - t) * np.array(_STAINS['sample'][k]) + t * np.array(
            _STAINS['he'][k])
        v = v * np.exp(rng.normal(0, 0.04, 3))
        out[k] = (v * np.exp(rng.normal(0, 0.12))).astype(np.float32)
    return out


def _render(rng: np.random.Generator, h: int, w: int, cells: List[_Cell],
            tissue: np.ndarray, stains: Dict[str, np.ndarray]) -> np.ndarray:
    """Compose the optical-density maps and convert them to uint8 RGB."""
    # chromatin texture shared by all nuclei
    tex = (0.5 * _smooth_noise(rng, h, w, 2.0) +
           0.5 * _smooth_noise(rng, h, w, 5.0))
    nuc = np.zeros((h, w), np.float32)  # nuclear stain (alpha-premultiplied)
    alpha = np.zeros((h, w), np.float32)
    for c in cells:
        ch, cw = c.cover.shape
        sl = (slice(c.y0, c.y0 + ch), slice(c.x0, c.x0 + cw))
        t = tex[sl]
        if c.cls > 0:
            spec = _CLASS_SPECS[c.cls]
            d = np.maximum(c.sdist, 0)
            conc = c.conc + spec.rim * np.exp(-d / spec.rim_width)
            conc = conc * (1 + spec.texture * t)
            if c.nucleolus is not None:
                ny, nx, rr = c.nucleolus
                yy = np.arange(c.y0, c.y0 + ch, dtype=np.float32)[:, None] - ny
                xx = np.arange(c.x0, c.x0 + cw, dtype=np.float32)[None, :] - nx
                conc = conc + 0.7 * np.exp(-(yy * yy + xx * xx) / (rr * rr))
        elif c.cls == 0:
            conc = c.conc * (1 + 0.35 * t)
        else:
            conc = c.conc * (1 + 0.1 * t)
        a = c.cover
        nuc[sl] = nuc[sl] * (1 - a) + a * np.maximum(conc, 0.05)
        alpha[sl] = np.maximum(alpha[sl], a)

    # stroma: mottled base, oriented fibre streaks, lumen (tissue = 0)
    mid = _smooth_noise(rng, h, w, 14.0)
    fine = _smooth_noise(rng, h, w, 2.0)
    streak = _streaks(rng, h, w)
    bg = tissue * np.clip(
        0.85 + 0.3 * mid + 0.15 * fine - 0.2 * np.maximum(-streak, 0), 0.05,
        None)
    fib = np.maximum(streak - 0.6, 0)**1.3
    fib *= tissue * rng.uniform(0.2, 0.5) * np.clip(
        0.7 + 0.6 * _smooth_noise(rng, h, w, 40.0), 0, 1.5)
    # cytoplasm haze around nuclei and a pale retraction halo
    cyto = np.clip(cv2.GaussianBlur(alpha, (0, 0), 4.0) * 1.8, 0, 1)
    cyto *= rng.uniform(0.3, 0.7) * np.clip(
        1 + 0.5 * mid + 0.3 * fine, 0, None)
    halo = np.clip(cv2.GaussianBlur(alpha, (0, 0), 2.0) - alpha, 0, 1)
    keep = (1 - alpha) * (1 - rng.uniform(1.0, 1.8) * halo)
    keep = np.clip(keep, 0, 1)
    od = np.empty((h, w, 3), np.float32)
    for ch in range(3):
        od[..., ch] = (keep * (bg * stains['bg'][ch] + fib * stains['fib'][ch]
                               + cyto * stains['cyto'][ch]) +
                       nuc * stains['nuc'][ch])
    illum = 248 + 4 * _smooth_noise(rng, h, w, 200.0)
    tint = rng.uniform(-3, 3, 3).astype(np.float32)
    img = (illum[..., None] + tint) * np.exp(-np.maximum(od, 0))
    # optics: blur, lateral chromatic shift, scanner sharpening, noise
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.7, 1.1))
    shift = rng.uniform(-0.7, 0.7, 2)
    for ch, sgn in ((0, 1.0), (2, -1.0)):
        mat = np.float32([[1, 0, sgn * shift[1]], [0, 1, sgn * shift[0]]])
        img[..., ch] = cv2.warpAffine(
            img[..., ch], mat, (w, h), flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT)
    sharp = rng.uniform(0.2, 0.8)
    img = img + sharp * (img - cv2.GaussianBlur(img, (0, 0), 1.6))
    noise = rng.standard_normal((h, w, 1), dtype=np.float32) * rng.uniform(
        1.5, 3.5)
    noise = noise + rng.standard_normal((h, w, 3), dtype=np.float32) * 1.5
    img = img + noise
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _streaks(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Unit-std noise smeared along a smoothly varying direction field
    (collagen-fibre-like streaks)."""
    base = rng.uniform(0, np.pi)
    angle = base + 0.9 * _smooth_noise(rng, h, w, 150.0)
    noise = rng.standard_normal((h, w), dtype=np.float32)
    out = np.zeros((h, w), np.float32)
    wsum = np.zeros((h, w), np.float32)
    size = 13
    c = size // 2
    for th in (np.arange(6) * np.pi / 6).tolist():
        kern = np.zeros((size, size), np.float32)
        dx, dy = np.cos(th), np.sin(th)
        for t in np.linspace(-c, c, 4 * size):
            kern[int(round(c + t * dy)), int(round(c + t * dx))] += 1.0
        kern = cv2.GaussianBlur(kern, (0, 0), 0.6)
        kern /= np.sqrt((kern**2).sum())
        wk = np.cos(angle - np.float32(th))
        wk *= wk
        wk = wk * wk * wk
        out += wk * cv2.filter2D(noise, -1, kern,
                                 borderType=cv2.BORDER_REFLECT)
        wsum += wk
    out /= wsum + 1e-6
    out -= out.mean()
    return out / (out.std() + 1e-6)


def _tissue_map(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Soft tissue mask in [0, 1]: 0 in pale lumen / white patches."""
    field = _smooth_noise(rng, h, w, rng.uniform(60, 140))
    thr = rng.uniform(-3.2, -1.0)
    return (1 / (1 + np.exp(-(field - thr) * 4.0))).astype(np.float32)


def synthesize_sample(
    rng: np.random.Generator,
    height: int,
    width: int,
    max_cells: Optional[int] = None,
    look: Optional[str] = None,
    crowded: Optional[bool] = None,
) -> Tuple[np.ndarray, Dict[int, np.ndarray]]:
    """Generate one image and its per-class instance maps.

    Args:
        rng: the random generator (consumed).
        height, width: image size in px.
        max_cells: upper bound on annotated instances.
        look: ``'sample'`` (like the released sample), ``'he'`` (pink /
            purple H&E) or ``None`` (random mix).
        crowded: the crowded (``True``) or sparse (``False``) regime;
            ``None`` draws it like the real data (:func:`sample_crowded`).

    Returns:
        ``(rgb, masks)``: ``HxWx3`` uint8 image and ``{class_id: HxW float64
        map}`` only for the classes present. Instance ids are unique within
        the image, ``1..K`` over all classes (class1's first, then class2's,
        ...), like the released ``classN.tif`` files.
    """
    if look is not None and look not in LOOKS:
        raise ValueError(f'look must be one of {LOOKS} or None, got {look!r}')
    h, w = int(height), int(width)
    if h < 1 or w < 1:
        raise ValueError(f'invalid image size {h}x{w}')
    if crowded is None:
        crowded = sample_crowded(rng)
    scene = _scene_params(rng, h, w, max_cells, crowded)
    tissue = _tissue_map(rng, h, w)
    cells, _ = _place_cells(rng, h, w, scene, tissue)
    stains = _stain_vectors(rng, look)
    rgb = _render(rng, h, w, cells, tissue, stains)
    # ids are unique within the image (as in the released data): class1's
    # instances first, then class2's, ... each in placement order
    masks: Dict[int, np.ndarray] = {}
    next_id = 1
    for cls in sorted(_CLASS_SPECS):
        for c in cells:
            if c.cls != cls:
                continue
            if cls not in masks:
                masks[cls] = np.zeros((h, w), np.float64)
            ch, cw = c.mask.shape
            crop = masks[cls][c.y0:c.y0 + ch, c.x0:c.x0 + cw]
            crop[c.mask] = next_id
            next_id += 1
    return rgb, masks


# --------------------------------------------------------------------------
# Data set writer
# --------------------------------------------------------------------------
def _image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    ss = np.random.SeedSequence(int(seed), spawn_key=(_SPLIT_KEYS[split],
                                                      int(index)))
    return np.random.default_rng(ss)


def _nonempty(path: str) -> bool:
    if osp.isdir(path):
        return bool(os.listdir(path))
    return osp.exists(path)


def make_synthetic(out_dir: PathLike,
                   num_train: int = 30,
                   num_test: int = 10,
                   seed: int = 0,
                   min_side: Optional[int] = None,
                   max_side: Optional[int] = None,
                   max_cells: Optional[int] = None) -> dict:
    """Write a synthetic data set in the hw3-data-release layout.

    Args:
        out_dir: output root; ``train/``, ``test_release/`` and
            ``test_image_name_to_ids.json`` are created inside it. Raises
            ``FileExistsError`` if any of them already exists (non-empty).
        num_train: number of training images (with masks).
        num_test: number of test images (without masks).
        seed: random seed; the same arguments give byte-identical files.
        min_side, max_side: clamp the image sides (default: the real range
            93-2162 px, log-normal like the real sizes). With small images
            the number of cells scales with the area.
        max_cells: upper bound on annotated instances per image.

    Returns:
        dict with ``out_dir``, ``num_train``, ``num_test``,
        ``instances_per_class`` (``{'class1': n, ...}`` over the training
        images), ``instances_per_image`` (list, training images) and
        ``image_sizes`` (list of ``(h, w)``, train then test).
    """
    if num_train < 0 or num_test < 0:
        raise ValueError('num_train and num_test must be >= 0')
    if min_side is not None and min_side < 8:
        raise ValueError(f'min_side must be >= 8, got {min_side}')
    if max_side is not None and max_side < 8:
        raise ValueError(f'max_side must be >= 8, got {max_side}')
    if (min_side is not None and max_side is not None
            and min_side > max_side):
        raise ValueError(f'min_side ({min_side}) > max_side ({max_side})')
    if max_cells is not None and max_cells < 1:
        raise ValueError(f'max_cells must be >= 1, got {max_cells}')
    out_dir = os.fspath(out_dir)
    train_dir = osp.join(out_dir, 'train')
    test_dir = osp.join(out_dir, 'test_release')
    json_path = osp.join(out_dir, 'test_image_name_to_ids.json')
    for p in (train_dir, test_dir, json_path):
        if _nonempty(p):
            raise FileExistsError(f'{p} already exists; refusing to mix '
                                  'data sets (remove it first)')
    os.makedirs(train_dir, exist_ok=True)
    os.makedirs(test_dir, exist_ok=True)

    per_class = {name: 0 for name in CLASS_NAMES}
    per_image: List[int] = []
    sizes: List[Tuple[int, int]] = []
    for i in range(num_train):
        rng = _image_rng(seed, 'train', i)
        name = str(uuid.UUID(bytes=rng.bytes(16), version=4))
        crowded = sample_crowded(rng)
        h, w = sample_image_size(rng, min_side, max_side, crowded)
        rgb, masks = synthesize_sample(rng, h, w, max_cells, crowded=crowded)
        d = osp.join(train_dir, name)
        os.makedirs(d, exist_ok=True)
        write_rgba_tif(osp.join(d, 'image.tif'), rgb)
        n = 0
        for cls in sorted(masks):
            write_instance_tif(osp.join(d, f'class{cls}.tif'), masks[cls])
            k = int(np.count_nonzero(np.unique(masks[cls])))
            per_class[f'class{cls}'] += k
            n += k
        per_image.append(n)
        sizes.append((h, w))

    entries = []
    for i in range(num_test):
        rng = _image_rng(seed, 'test', i)
        name = str(uuid.UUID(bytes=rng.bytes(16), version=4))
        crowded = sample_crowded(rng)
        h, w = sample_image_size(rng, min_side, max_side, crowded)
        rgb, _ = synthesize_sample(rng, h, w, max_cells, crowded=crowded)
        write_rgba_tif(osp.join(test_dir, f'{name}.tif'), rgb)
        entries.append(
            dict(file_name=f'{name}.tif', id=i + 1, height=h, width=w))
        sizes.append((h, w))
    with open(json_path, 'w', encoding='utf-8') as f:
        json.dump(entries, f, indent=4)

    return dict(
        out_dir=out_dir,
        num_train=num_train,
        num_test=num_test,
        instances_per_class=per_class,
        instances_per_image=per_image,
        image_sizes=sizes)


def format_summary(summary: dict) -> List[str]:
    """Human-readable lines for the dict returned by :func:`make_synthetic`."""
    counts = summary['instances_per_image']
    lines = [
        f"wrote {summary['num_train']} train + {summary['num_test']} test "
        f"images to {summary['out_dir']}",
        'instances per class: ' + ', '.join(
            f'{k}={v}' for k, v in summary['instances_per_class'].items()),
    ]
    if counts:
        lines.append(f'instances per image: median {np.median(counts):g}, '
                     f'min {min(counts)}, max {max(counts)}')
    return lines
