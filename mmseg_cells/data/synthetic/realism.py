"""How close synthetic images look to real H&E: colour and texture
statistics of the nucleus and background pixels of a set of labelled images,
and distances between two such sets.

Used by ``benchmarks/synthetic_realism.py`` (before/after figures of the
generator's look) and by the tests that keep the generator fitted. numpy and
OpenCV only.
"""
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Tuple

import cv2
import numpy as np

from ..stain import rgb_to_hed, rgb_to_od

__all__ = [
    'ColourStats', 'collect_colour_stats', 'compare_colour_stats',
    'pool_colour_stats', 'region_masks'
]

#: Histogram bins per RGB channel (8^3 = 512 colour cells).
BINS = 8
# pixels kept per image and region for the quantile (W1) distances
_SAMPLE = 4000


def region_masks(masks: Dict[int, np.ndarray],
                 shape: Tuple[int, int],
                 ring: int = 3) -> Tuple[np.ndarray, np.ndarray]:
    """``(nucleus, background)`` boolean masks of one labelled image.

    Nucleus: any annotated instance, eroded by 1 px (boundary pixels mix
    nucleus and stroma). Background: farther than ``ring`` px from every
    annotated nucleus (so that an outline drawn slightly too tight does not
    count nucleus pixels as stroma).
    """
    inst = np.zeros(shape, bool)
    for m in masks.values():
        inst |= np.asarray(m) > 0
    u8 = inst.astype(np.uint8)
    kern = np.ones((3, 3), np.uint8)
    nucleus = cv2.erode(u8, kern).astype(bool)
    near = cv2.dilate(u8, np.ones((2 * ring + 1, 2 * ring + 1), np.uint8))
    return nucleus, ~near.astype(bool)


def _instance_texture(hed: np.ndarray, masks: Dict[int, np.ndarray],
                      max_per_image: int = 200) -> List[float]:
    """Chromatin texture: per nucleus, the std of the haematoxylin
    concentration over its (1 px eroded) pixels divided by their mean."""
    out: List[float] = []
    haem = hed[..., 0]
    for m in masks.values():
        m = np.asarray(m)
        ids = np.unique(m[m > 0])
        for i in ids[:max_per_image]:
            sel = cv2.erode((m == i).astype(np.uint8),
                            np.ones((3, 3), np.uint8)).astype(bool)
            if sel.sum() < 12:
                continue
            v = haem[sel]
            mean = float(v.mean())
            if mean > 1e-3:
                out.append(float(v.std()) / mean)
    return out


@dataclass
class ColourStats:
    """Pooled colour statistics of a set of labelled images.

    Attributes:
        hist: ``{'nucleus'|'background': normalised 8x8x8 RGB histogram}``.
        samples: ``{region: (N, 3) uint8 RGB pixels}``, a random subsample
            for quantile distances.
        od_mean: ``{region: mean optical density (R, G, B)}``.
        texture: per-nucleus haematoxylin coefficients of variation.
        images: number of images.
    """
    hist: Dict[str, np.ndarray] = field(default_factory=dict)
    samples: Dict[str, np.ndarray] = field(default_factory=dict)
    od_mean: Dict[str, np.ndarray] = field(default_factory=dict)
    texture: np.ndarray = field(default_factory=lambda: np.zeros(0))
    images: int = 0

    def summary(self) -> dict:
        """Mean RGB / OD per region and the median texture (JSON-able)."""
        out = {'images': self.images,
               'texture_median': float(np.median(self.texture))
               if self.texture.size else float('nan')}
        for region, pix in self.samples.items():
            out[f'{region}_rgb_mean'] = [
                round(float(v), 1) for v in pix.mean(0)]
            out[f'{region}_od_mean'] = [
                round(float(v), 3) for v in self.od_mean[region]]
        return out


def collect_colour_stats(
        images: Iterable[Tuple[np.ndarray, Dict[int, np.ndarray]]],
        seed: int = 0) -> ColourStats:
    """Pool the statistics of ``(rgb, {class: instance map})`` pairs."""
    rng = np.random.default_rng(seed)
    hist = {r: np.zeros(BINS**3) for r in ('nucleus', 'background')}
    od_sum = {r: np.zeros(3) for r in hist}
    count = {r: 0 for r in hist}
    samples: Dict[str, List[np.ndarray]] = {r: [] for r in hist}
    texture: List[float] = []
    n = 0
    for rgb, masks in images:
        rgb = np.ascontiguousarray(rgb[..., :3])
        if rgb.dtype != np.uint8:
            raise TypeError(f'expected uint8 RGB, got {rgb.dtype}')
        nucleus, background = region_masks(masks, rgb.shape[:2])
        for region, sel in (('nucleus', nucleus),
                            ('background', background)):
            pix = rgb[sel]
            if not len(pix):
                continue
            idx = (pix.astype(np.int64) * BINS) // 256
            flat = (idx[:, 0] * BINS + idx[:, 1]) * BINS + idx[:, 2]
            hist[region] += np.bincount(flat, minlength=BINS**3)
            od_sum[region] += rgb_to_od(pix).sum(0)
            count[region] += len(pix)
            take = rng.choice(len(pix), min(_SAMPLE, len(pix)),
                              replace=False)
            samples[region].append(pix[take])
        texture += _instance_texture(rgb_to_hed(rgb), masks)
        n += 1
    if n == 0:
        raise ValueError('no images')
    stats = ColourStats(images=n, texture=np.asarray(texture))
    for region in hist:
        if count[region] == 0:
            raise ValueError(f'no {region} pixels in {n} images')
        stats.hist[region] = hist[region] / hist[region].sum()
        stats.od_mean[region] = od_sum[region] / count[region]
        stats.samples[region] = np.concatenate(samples[region])
    return stats


def pool_colour_stats(parts: List[ColourStats],
                      seed: int = 0) -> ColourStats:
    """Statistics of the union of several sets, each set weighted equally
    (whatever its number of images or pixels)."""
    if not parts:
        raise ValueError('nothing to pool')
    rng = np.random.default_rng(seed)
    out = ColourStats(images=sum(p.images for p in parts))
    for region in parts[0].hist:
        out.hist[region] = np.mean([p.hist[region] for p in parts], 0)
        out.od_mean[region] = np.mean([p.od_mean[region] for p in parts], 0)
        n = min(len(p.samples[region]) for p in parts)
        out.samples[region] = np.concatenate([
            p.samples[region][rng.choice(len(p.samples[region]), n,
                                         replace=False)] for p in parts])
    n = min(p.texture.size for p in parts)
    out.texture = np.concatenate(
        [rng.choice(p.texture, n, replace=False) for p in parts])
    return out


def _w1(a: np.ndarray, b: np.ndarray) -> float:
    """1-D Wasserstein distance of two samples (through 201 quantiles)."""
    q = np.linspace(0, 1, 201)
    return float(np.abs(np.quantile(a, q) - np.quantile(b, q)).mean())


def compare_colour_stats(a: ColourStats, b: ColourStats) -> dict:
    """Distances between two pooled statistics.

    Returns:
        dict: per region, ``{region}_tv`` (total-variation distance of the
        8x8x8 RGB histograms: 0 = same colours, 1 = disjoint) and
        ``{region}_w1`` (1-D Wasserstein distance averaged over R, G, B, in
        grey levels); ``texture_ratio`` (median chromatin texture of ``a``
        over ``b``).
    """
    out = {}
    for region in ('nucleus', 'background'):
        out[f'{region}_tv'] = 0.5 * float(
            np.abs(a.hist[region] - b.hist[region]).sum())
        out[f'{region}_w1'] = float(
            np.mean([
                _w1(a.samples[region][:, c].astype(float),
                    b.samples[region][:, c].astype(float)) for c in range(3)
            ]))
    ta = np.median(a.texture) if a.texture.size else np.nan
    tb = np.median(b.texture) if b.texture.size else np.nan
    out['texture_ratio'] = float(ta / tb)
    return out
