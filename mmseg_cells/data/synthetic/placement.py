"""Cell placement of the synthetic generator: star-shaped nucleus outlines
rasterised in their bounding-box crop, and their placement in a scene
(clustered or spread out, touching but not overlapping, plus unannotated
distractor nuclei)."""
from dataclasses import dataclass
from typing import List, Optional, Tuple

import cv2
import numpy as np

from .fields import smooth_noise
from .scene import CLASS_SPECS

__all__ = ['Cell', 'place_cells']


@dataclass
class Cell:
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
                h: int, w: int, softness: float
                ) -> Optional[Tuple[int, int, np.ndarray, np.ndarray]]:
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
    """A log-normal draw around ``median`` with the log-sigma ``sigmas[0]``
    below the median and ``sigmas[1]`` above it."""
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
               min_pixels: int = 12) -> Optional[Cell]:
    """Draw one annotated cell at ``(cy, cx)`` into ``labels`` unless it
    overlaps earlier cells by more than ``max_overlap`` of its area. Pixels
    already taken stay with the earlier cell (so cells touch)."""
    h, w = labels.shape
    spec = CLASS_SPECS[cls]
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
    return Cell(cls, y0, x0, cover.astype(np.float32), sdist, own, conc,
                 nucleolus)


def place_cells(rng: np.random.Generator, h: int, w: int, scene: dict,
                 tissue: np.ndarray) -> Tuple[List[Cell], np.ndarray]:
    """Place the annotated cells (earlier cells keep their pixels, moderate
    overlaps are clipped so that cells touch) and unannotated distractors.
    Returns the cells in drawing order and the annotated label map."""
    block = 8
    gh, gw = -(-h // block), -(-w // block)
    small = cv2.resize(tissue, (gw, gh), interpolation=cv2.INTER_AREA)
    if scene['crowded']:
        clusters = smooth_noise(rng, gh, gw, max(2.0, 70.0 / block))
        prob = np.exp(rng.uniform(0.6, 1.6) * clusters) * (small + 0.02)
        max_overlap = 0.04
    else:
        prob = small + 0.05
        max_overlap = 0.05
    n = scene['n']
    labels = np.zeros((h, w), np.int32)
    cells: List[Cell] = []
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
    distractors: List[Cell] = []
    n_dis = np.exp(rng.normal(np.log(160), 0.6)) * scene['mpix']
    if scene['crowded']:
        n_dis += rng.uniform(0.3, 0.8) * n
    n_dis = int(round(n_dis))
    if n_dis:
        dprob = small + 0.05 if rng.random() < 0.5 else np.exp(
            1.2 * smooth_noise(rng, gh, gw, 6.0)) * (small + 0.02)
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
                Cell(kind, y0, x0, cover, sdist, sdist >= 0, conc, None))
    return distractors + cells, labels
