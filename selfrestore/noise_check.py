"""A label-free check that the noise of the training images is independent from pixel to pixel.

Blind-spot methods (Noise2Void, Laine et al. 2019) and Neighbor2Neighbor predict a pixel from its
neighbours and rely on the neighbours' noise telling nothing about the pixel's own noise. Noise that is
correlated between neighbours (JPEG-compressed or demosaicked photos, a camera's noise reduction, resampled
or box-filtered data) breaks that: the network learns to reproduce the noise and denoises little. Nothing
in the training loss shows it, so ``fit`` measures the correlation on the data first and warns.

The estimate: cut each image (channel mean) into 8 x 8 blocks, remove a fitted plane from each, keep the
flattest blocks (least residual variance: what is left there is mostly noise) and pool the lag-1
correlation of the residuals along rows and columns. The same estimator run on white noise gives the
baseline (the plane fit leaves a small negative correlation); the check reports the excess over it.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

BLOCK = 8
#: excess neighbour correlation above which the independence assumption is flagged. On scikit-image's
#: astronaut (tests/test_noise_check.py asserts these bounds): white Gaussian noise of std 5-50 below 0.05,
#: 3 x 3 box-filtered noise above 0.4, std-5 noise after JPEG quality 75 above the limit
CORRELATION_LIMIT = 0.2


def _plane_residuals(blocks: np.ndarray) -> np.ndarray:
    """(n, B, B) blocks minus their least-squares plane a + b y + c x."""
    y, x = np.mgrid[:BLOCK, :BLOCK].astype(np.float64)
    design = np.stack([np.ones(BLOCK * BLOCK), y.ravel(), x.ravel()], axis=1)  # (B*B, 3)
    projector = design @ np.linalg.pinv(design)                                 # onto the planes
    flat = blocks.reshape(len(blocks), -1)
    return (flat - flat @ projector.T).reshape(blocks.shape)


def _blocks(image: np.ndarray) -> np.ndarray:
    gray = np.asarray(image, dtype=np.float64)
    gray = gray.mean(axis=2) if gray.ndim == 3 else gray
    h, w = (gray.shape[0] // BLOCK) * BLOCK, (gray.shape[1] // BLOCK) * BLOCK
    return gray[:h, :w].reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK).transpose(0, 2, 1, 3).reshape(-1, BLOCK, BLOCK)


def _usable_blocks(usable: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
    """Which 8 x 8 blocks of :func:`_blocks` (for an image of ``shape``) hold only usable pixels (``usable``:
    an (H, W) mask, e.g. not transparent), or None for all."""
    if usable is None:
        return None
    h, w = (shape[0] // BLOCK) * BLOCK, (shape[1] // BLOCK) * BLOCK
    u = np.asarray(usable, bool)[:h, :w]
    return u.reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK).all(axis=(1, 3)).ravel()


def _lag1_correlation(residuals: np.ndarray) -> float:
    along_rows = np.sum(residuals[:, :, 1:] * residuals[:, :, :-1])
    along_cols = np.sum(residuals[:, 1:, :] * residuals[:, :-1, :])
    energy = np.sum(residuals[:, :, 1:] ** 2) + np.sum(residuals[:, 1:, :] ** 2)
    return float((along_rows + along_cols) / max(energy, 1e-30))


def neighbour_correlation(images: Sequence[np.ndarray], flattest: float = 0.25, max_blocks: int = 20000,
                          seed: int = 0, usable: Sequence[np.ndarray | None] | None = None) -> float | None:
    """Excess correlation of the noise between adjacent pixels (0: independent; 1: identical), estimated
    from noisy images alone; None when the images hold too few 8 x 8 blocks for the flattest ``flattest`` of
    them to number 64 (with fewer, textured blocks fill the selection and white noise on a small photo reads as
    correlated). ``usable``: per image, an (H, W) mask of the pixels to measure (None: all)."""
    rng = np.random.default_rng(seed)
    masks = list(usable) if usable is not None else [None] * len(images)
    residuals = []
    for image, mask in zip(images, masks):
        if min(image.shape[:2]) >= BLOCK:
            keep = _usable_blocks(mask, image.shape)
            blocks = _blocks(image)
            residuals.append(_plane_residuals(blocks if keep is None else blocks[keep]))
    if not residuals:
        return None
    residuals = np.concatenate(residuals)
    if int(flattest * len(residuals)) < 64:
        return None
    if len(residuals) > max_blocks:
        residuals = residuals[rng.choice(len(residuals), max_blocks, replace=False)]
    variance = residuals.reshape(len(residuals), -1).var(axis=1)
    keep = np.argsort(variance)[: int(flattest * len(residuals))]
    kept = residuals[keep]
    kept = kept[kept.reshape(len(kept), -1).var(axis=1) > 0]  # saturated or constant blocks carry no noise
    if len(kept) < 64:
        return None
    white = _plane_residuals(rng.standard_normal((len(kept), BLOCK, BLOCK)))
    return _lag1_correlation(kept) - _lag1_correlation(white)


def noise_sigma(image: np.ndarray, usable: np.ndarray | None = None, min_blocks: int = 1) -> float:
    """Standard deviation of white noise in one image, from the image alone (Donoho and Johnstone's
    estimator: the median absolute finest-scale diagonal Haar coefficient / 0.6745, per channel, then the
    median over channels). Texture raises it a little; correlated noise makes it low. ``usable``: an (H, W)
    mask; only 2x2 blocks all of whose pixels are usable count (not transparent, not clipped); NaN when fewer
    than ``min_blocks`` are left."""
    x = np.asarray(image, dtype=np.float64)
    x = x[:, :, None] if x.ndim == 2 else x
    h, w = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
    x = x[:h, :w]
    diagonal = (x[0::2, 0::2] - x[0::2, 1::2] - x[1::2, 0::2] + x[1::2, 1::2]) / 2  # HH, std sigma for noise
    coefficients = diagonal.reshape(-1, x.shape[2])
    if usable is not None:
        u = np.asarray(usable, bool)[:h, :w]
        coefficients = coefficients[(u[0::2, 0::2] & u[0::2, 1::2] & u[1::2, 0::2] & u[1::2, 1::2]).ravel()]
    if len(coefficients) < max(min_blocks, 1):
        return float("nan")
    return float(np.median(np.median(np.abs(coefficients), axis=0)) / 0.6745)


def noise_sigma_pca(image: np.ndarray, patch: int = 7, max_patches: int = 40000, seed: int = 0) -> float:
    """Standard deviation of white noise in one image, from the image alone, by the patch-PCA method of
    Chen, Zhu & Heng 2015 ("An Efficient Statistical Method for Image Noise Level Estimation"): the
    eigenvalues of the covariance of ``patch`` x ``patch`` (x channels) patches are the noise variance plus
    the signal's, and the signal lives in few directions; the noise variance is the mean of the largest set
    of smallest eigenvalues whose mean does not exceed its median. Texture barely moves it (on BSDS500
    with sigma in [5, 50]/255 it read 0.99-1.01x the truth, where the block estimator of
    :func:`noise_level_function` read 1.42x at the 90th percentile: ``benchmarks/results/noise_level_accuracy.md``).
    Signal-dependent noise gives its average variance over the image. Patches are sampled at
    ``max_patches`` random places (memory stays small for large images)."""
    return pca_noise_sigma(random_patches(image, patch, max_patches, seed))


def random_patches(image: np.ndarray, patch: int = 7, count: int = 40000, seed: int = 0) -> np.ndarray:
    """(N, patch * patch * C) patches of ``image`` at up to ``count`` random places, float64; a ValueError if
    the image has too few places for the covariance of patches that size."""
    from numpy.lib.stride_tricks import sliding_window_view

    x = np.asarray(image)
    x = x[:, :, None] if x.ndim == 2 else x
    places = max(0, x.shape[0] - patch + 1) * max(0, x.shape[1] - patch + 1)
    if places < 4 * patch * patch * x.shape[2]:  # too few patches for a covariance of that dimension
        raise ValueError(f"image of {x.shape[1]}x{x.shape[0]} is too small to measure its noise level")
    windows = sliding_window_view(x, (patch, patch), axis=(0, 1))  # (H', W', C, p, p), a view
    rng = np.random.default_rng(seed)
    count = min(count, windows.shape[0] * windows.shape[1])
    rows = rng.integers(0, windows.shape[0], count)
    cols = rng.integers(0, windows.shape[1], count)
    return windows[rows, cols].reshape(count, -1).astype(np.float64)


def pca_noise_sigma(samples: np.ndarray) -> float:
    """The white-noise std of (N, D) patch samples, as :func:`noise_sigma_pca` (a ValueError for N < 4 D)."""
    if samples.shape[0] < 4 * samples.shape[1]:
        raise ValueError(f"{samples.shape[0]} patches are too few to measure a noise level")
    eigen = np.sort(np.linalg.eigvalsh(np.cov(samples, rowvar=False)))
    for m in range(len(eigen), 0, -1):
        tail = eigen[:m]
        if tail.mean() <= np.median(tail):
            return float(np.sqrt(max(tail.mean(), 0.0)))
    return float(np.sqrt(max(eigen[0], 0.0)))


#: the fraction of a block's pixels allowed at 0 or 1 before noise_level_function counts it as clipped
CLIP_FRACTION = 0.05


def noise_level_function(image: np.ndarray, bins: int = 8, quantile: float = 0.2,
                         usable: np.ndarray | None = None) -> tuple[float, float] | None:
    """(a, b) with noise variance ~ a * x + b at brightness x in [0, 1], from the image alone: Poisson
    noise of photon count lambda at white gives a = 1 / lambda, Gaussian noise of std s gives b = s^2.

    Each channel is cut into 8 x 8 blocks, a plane removed from each; in each of ``bins`` brightness bins
    the ``quantile`` of the residual variances (the flattest blocks: least texture) is divided by that
    quantile of a chi-square with the residual's degrees of freedom (the flattest blocks of pure noise
    also scatter below the mean), then a line is fitted through the bins. None: too few blocks, or too few
    distinct brightnesses to fit a line (a flat image: its slope is undefined and the fit warned). ``usable``: an
    (H, W) mask of the pixels to measure (None: all)."""
    from scipy.stats import chi2

    x = np.asarray(image, dtype=np.float64)
    x = x[:, :, None] if x.ndim == 2 else x
    keep = _usable_blocks(usable, x.shape)
    blocks = np.concatenate([_blocks(x[:, :, c]) if keep is None else _blocks(x[:, :, c])[keep]
                             for c in range(x.shape[2])])
    if len(blocks) < 16 * bins:
        return None
    dof = BLOCK * BLOCK - 3
    variance = (_plane_residuals(blocks) ** 2).reshape(len(blocks), -1).sum(axis=1) / dof
    flat = blocks.reshape(len(blocks), -1)
    brightness = flat.mean(axis=1)
    # clipped blocks understate the noise: more than CLIP_FRACTION of the pixels at an end of the range (0 or 1:
    # clipped 8/16-bit data). An end the data goes beyond (values below 0 / above 1: unclipped noise) was not
    # clipped. A few zeros are allowed: they are real Poisson counts in dim areas, not only clipping.
    clipped = np.zeros(len(flat), bool)
    if not (x < 0).any():
        clipped |= (flat <= 0.0).mean(axis=1) > CLIP_FRACTION
    if not (x > 1).any():
        clipped |= (flat >= 1.0).mean(axis=1) > CLIP_FRACTION
    inside = (brightness > 0.02) & (brightness < 0.98) & ~clipped
    brightness, variance = brightness[inside], variance[inside]
    if len(variance) < 16 * bins:
        return None
    edges = np.quantile(brightness, np.linspace(0, 1, bins + 1))
    correction = chi2.ppf(quantile, dof) / dof
    centres, levels = [], []
    for low, high in zip(edges[:-1], edges[1:]):
        chosen = (brightness >= low) & (brightness <= high)
        if chosen.sum() >= 16:
            centres.append(float(np.median(brightness[chosen])))
            levels.append(float(np.quantile(variance[chosen], quantile)) / correction)
    if len(centres) < 3 or max(centres) - min(centres) < 1e-3:  # within a quarter of an 8-bit level
        return None
    a, b = np.polyfit(centres, levels, 1)
    return float(max(a, 0.0)), float(max(b, 0.0))


def check_images(images: Sequence[np.ndarray], method: str) -> tuple[dict | None, str | None]:
    """(record for the model file, warning or None) for a method that needs independent noise: the median
    over up to 16 of ``images`` (spread evenly) of each one's neighbour correlation, or pooled over them
    when each alone is too small; (None, None) when even that cannot tell."""
    chosen = [images[int(i)] for i in np.unique(np.linspace(0, len(images) - 1, min(16, len(images))).round())]
    each = [c for c in (neighbour_correlation([image]) for image in chosen) if c is not None]
    correlation = float(np.median(each)) if each else neighbour_correlation(chosen)
    if correlation is None:
        return None, None
    record = {"neighbour_correlation": round(correlation, 4), "limit": CORRELATION_LIMIT}
    return record, correlation_warning(correlation, method) if correlation > CORRELATION_LIMIT else None


INDEPENDENT_DATA_ADVICE = ("Train on raw or uncompressed data if you have it, or on two shots of each scene "
                           "(--pairs, Noise2Noise)")


def correlation_warning(correlation: float, method: str) -> str:
    """The warning printed when the neighbour ``correlation`` exceeds ``CORRELATION_LIMIT``: ``method`` will keep
    much of such noise, and what to train on instead."""
    return (f"the noise in these images is correlated between neighbouring pixels (excess correlation "
            f"{correlation:.2f} > {CORRELATION_LIMIT}): {method} assumes independent noise per pixel and will "
            f"keep much of it (as after JPEG compression, demosaicking or in-camera noise reduction). "
            + INDEPENDENT_DATA_ADVICE)
