"""Rendering of the synthetic generator: nuclei, stroma, cytoplasm and
optics composed in optical-density space (Beer-Lambert) with per-image stain
vectors, converted to uint8 RGB.

The stain vectors are drawn around three anchors fitted to real images (see
``_STAINS``): the released hw3 sample (brownish nuclei on lavender), dark
H&E (gbm40: deep purple nuclei on dense pink stroma) and pale H&E (TCGA
tiles of cpm15: lighter violet nuclei, pinker stroma).
"""
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

from .fields import smooth_noise, streaks
from .placement import Cell
from .scene import CLASS_SPECS

__all__ = ['LOOKS', 'render', 'stain_vectors']

#: Stain looks that :func:`stain_vectors` can be pinned to: ``'sample'``
#: (the released hw3 sample), ``'he_dark'`` / ``'he_pale'`` (the two real H&E
#: sets) and ``'he'`` (anywhere between the two).
LOOKS: Tuple[str, ...] = ('sample', 'he', 'he_dark', 'he_pale')

# Stain optical densities (per unit concentration, R, G, B) of the nuclear
# stain, stroma, fibres and cytoplasm of each anchor look, and the gain of
# the chromatin texture, fitted with ``benchmarks/synthetic_realism.py
# --fit`` so that the mean optical density of the nucleus and background
# pixels of rendered images and the median per-nucleus haematoxylin
# coefficient of variation match the real images': anchor 'sample' the hw3
# sample (1 image), 'he_dark' gbm40 (40 images), 'he_pale' cpm15 (15).
_STAINS = {
    'sample': dict(
        nuc=(1.34, 2.11, 2.00), bg=(0.25, 0.36, 0.26),
        fib=(0.52, 0.63, 0.39), cyto=(0.30, 0.54, 0.71), chromatin=1.43),
    'he_dark': dict(
        nuc=(2.11, 2.95, 1.12), bg=(0.42, 0.95, 0.35),
        fib=(0.84, 1.24, 0.45), cyto=(0.99, 1.24, 0.45), chromatin=1.00),
    'he_pale': dict(
        nuc=(1.33, 2.16, 1.16), bg=(0.25, 0.71, 0.42),
        fib=(0.48, 0.92, 0.54), cyto=(0.57, 0.92, 0.54), chromatin=1.86),
}
_PARTS = ('nuc', 'bg', 'fib', 'cyto', 'chromatin')


def _anchor_weights(rng: np.random.Generator,
                    look: Optional[str]) -> Dict[str, float]:
    """Mixture weights of the anchor looks for one image."""
    if look in _STAINS:
        return {look: 1.0}
    if look is None:
        u = rng.random()
        if u < 0.4:
            return {'sample': 1.0}
        if u >= 0.8:  # anywhere inside the triangle of the three anchors
            w = rng.dirichlet(np.ones(len(_STAINS)))
            return dict(zip(_STAINS, w.tolist()))
    s = float(rng.random())  # 'he' (or the remaining 40 % of None)
    return {'he_dark': s, 'he_pale': 1.0 - s}


def stain_vectors(rng: np.random.Generator,
                  look: Optional[str]) -> Dict[str, np.ndarray]:
    """Per-image stain ODs: a mixture of the anchor looks (``look`` pins
    it, see :data:`LOOKS`; ``None`` draws the sample look, H&E between dark
    and pale, or a mix of all three, 40/40/20 %), jittered per image."""
    weights = _anchor_weights(rng, look)
    out = {}
    for k in _PARTS:
        v = sum(w * np.array(_STAINS[a][k]) for a, w in weights.items())
        if k == 'chromatin':
            out[k] = np.float32(v)
            continue
        v = v * np.exp(rng.normal(0, 0.04, 3))
        out[k] = (v * np.exp(rng.normal(0, 0.12))).astype(np.float32)
    return out


def render(rng: np.random.Generator, h: int, w: int, cells: List[Cell],
           tissue: np.ndarray, stains: Dict[str, np.ndarray]) -> np.ndarray:
    """Compose the optical-density maps and convert them to uint8 RGB."""
    # chromatin texture shared by all nuclei
    tex = (0.5 * smooth_noise(rng, h, w, 2.0) +
           0.5 * smooth_noise(rng, h, w, 5.0))
    nuc = np.zeros((h, w), np.float32)  # nuclear stain (alpha-premultiplied)
    alpha = np.zeros((h, w), np.float32)
    for c in cells:
        ch, cw = c.cover.shape
        sl = (slice(c.y0, c.y0 + ch), slice(c.x0, c.x0 + cw))
        t = tex[sl]
        if c.cls > 0:
            spec = CLASS_SPECS[c.cls]
            d = np.maximum(c.sdist, 0)
            conc = c.conc + spec.rim * np.exp(-d / spec.rim_width)
            conc = conc * (1 + spec.texture * stains['chromatin'] * t)
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
    mid = smooth_noise(rng, h, w, 14.0)
    fine = smooth_noise(rng, h, w, 2.0)
    streak = streaks(rng, h, w)
    bg = tissue * np.clip(
        0.85 + 0.3 * mid + 0.15 * fine - 0.2 * np.maximum(-streak, 0), 0.05,
        None)
    fib = np.maximum(streak - 0.6, 0)**1.3
    fib *= tissue * rng.uniform(0.2, 0.5) * np.clip(
        0.7 + 0.6 * smooth_noise(rng, h, w, 40.0), 0, 1.5)
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
    illum = 248 + 4 * smooth_noise(rng, h, w, 200.0)
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
