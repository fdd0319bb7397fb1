"""Full-reference image quality metrics.

Conventions (the ones published denoising tables use):

* ``psnr``: 10 log10(1 / MSE) on [0, 1] images, over the full image and all channels (no border crop).
  Benchmarks first round the restored image to 8 bits (``quantize8``), as a saved PNG would be.
* ``ssim``: Wang et al. 2004 with an 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, data range 1,
  computed per channel on the full image ('valid' filtering, no padding) and averaged over channels —
  the convention of scikit-image's ``structural_similarity(gaussian_weights=True, use_sample_covariance=False)``.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import correlate1d


def quantize8(image: np.ndarray) -> np.ndarray:
    """Round to the 256 levels an 8-bit file can hold (and clip), returned as float in [0, 1]."""
    return np.round(np.clip(image, 0.0, 1.0) * 255.0) / 255.0


def psnr(estimate: np.ndarray, reference: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB over all pixels and channels."""
    a = np.asarray(estimate, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"psnr: shapes differ {a.shape} vs {b.shape}")
    mse = np.mean((a - b) ** 2)
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(data_range**2 / mse))


SSIM_WINDOW = 11  #: side of SSIM's Gaussian window: the smallest image it can score


def _gaussian_window(size: int = SSIM_WINDOW, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size) - (size - 1) / 2
    w = np.exp(-(x**2) / (2 * sigma**2))
    return w / w.sum()


def _filter_valid(image: np.ndarray, window: np.ndarray) -> np.ndarray:
    out = correlate1d(correlate1d(image, window, axis=0, mode="reflect"), window, axis=1, mode="reflect")
    r = len(window) // 2
    return out[r:-r, r:-r]


def ssim(estimate: np.ndarray, reference: np.ndarray, data_range: float = 1.0) -> float:
    """Mean structural similarity over the image and channels (see the module docstring)."""
    a = np.asarray(estimate, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"ssim: shapes differ {a.shape} vs {b.shape}")
    if a.ndim == 2:
        a, b = a[:, :, None], b[:, :, None]
    window = _gaussian_window()
    if min(a.shape[:2]) < len(window):
        raise ValueError("ssim: image smaller than the 11x11 window")
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    values = []
    for c in range(a.shape[2]):
        x, y = a[:, :, c], b[:, :, c]
        mx, my = _filter_valid(x, window), _filter_valid(y, window)
        vx = _filter_valid(x * x, window) - mx**2
        vy = _filter_valid(y * y, window) - my**2
        cxy = _filter_valid(x * y, window) - mx * my
        s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
        values.append(s.mean())
    return float(np.mean(values))
