"""Random fields of the synthetic generator: smooth Gaussian noise, fibre
streaks and the tissue / lumen mask."""
import cv2
import numpy as np

__all__ = ['smooth_noise', 'streaks', 'tissue_map']


def smooth_noise(rng: np.random.Generator, h: int, w: int,
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


def streaks(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Unit-std noise smeared along a smoothly varying direction field
    (collagen-fibre-like streaks)."""
    base = rng.uniform(0, np.pi)
    angle = base + 0.9 * smooth_noise(rng, h, w, 150.0)
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


def tissue_map(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Soft tissue mask in [0, 1]: 0 in pale lumen / white patches."""
    field = smooth_noise(rng, h, w, rng.uniform(60, 140))
    thr = rng.uniform(-3.2, -1.0)
    return (1 / (1 + np.exp(-(field - thr) * 4.0))).astype(np.float32)
