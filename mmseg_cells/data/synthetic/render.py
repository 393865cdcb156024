"""Rendering of the synthetic generator: nuclei, stroma, cytoplasm and
optics composed in optical-density space (Beer-Lambert) with per-image stain
vectors, converted to uint8 RGB.

The stain vectors vary between the brownish/lavender look of the released
sample and a classic pink/purple H&E.
"""
from typing import Dict, List, Optional, Tuple

import cv2
import numpy as np

from .fields import smooth_noise, streaks
from .placement import Cell
from .scene import CLASS_SPECS

__all__ = ['LOOKS', 'render', 'stain_vectors']

#: Stain looks that :func:`stain_vectors` can be pinned to.
LOOKS: Tuple[str, ...] = ('sample', 'he')

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


def stain_vectors(rng: np.random.Generator,
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
