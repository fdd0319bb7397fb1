"""Gaussian noise clipped at the ends of the data's range, and how to undo the bias it leaves.

An 8-bit photo stores a noisy value below 0 as 0 and one above 255 as 255. Near black and white the mean of
the stored values is then pulled towards the middle of the range, and a denoiser trained on unclipped noise
(every shipped Gaussian model) returns about that mean, not the image: a bias of up to 0.4 sigma over whole
dark or bright areas. With Gaussian noise of std s, the mean of y = clip(x + s n, L, H) is a known increasing
function of x (Foi 2009, "Clipped noisy images: heteroskedastic modeling and practical denoising"):

    m(x) = L Phi(a) + H (1 - Phi(b)) + x (Phi(b) - Phi(a)) + s (phi(a) - phi(b)),  a = (L - x)/s, b = (H - x)/s

so the restored image is m^-1(denoiser output), and a standard deviation maps by 1 / m'(x), with
m'(x) = Phi(b) - Phi(a). Without clipping at an end that end's terms drop out (L = -inf or H = +inf).
Values are on the [0, 1] scale (L = 0, H = 1). s is the noise the image really has, measured on the image
(:func:`clipped_noise_level`), not the level a model was trained for: the bias depends on the former.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

#: a range end counts as clipped when at least this fraction of the values (and MIN_CLIPPED_COUNT) sits
#: exactly on it, and fewer lie beyond it than on it
MIN_CLIPPED_FRACTION = 1e-4
MIN_CLIPPED_COUNT = 16
#: patches with a channel mean within this many noise stds of an end are left out of the level measurement
#: (the first margin that leaves enough patches)
MARGIN_STDS = (3.0, 2.0, 1.5, 1.0)
PATCH = 7
JOINT_LEVEL_FLOOR = 0.5  #: a joint (all-channel) level under this share of the per-channel one is not taken
#: planes of a stack whose noise level is measured (evenly spaced; the median is used)
MEASURED_PLANES = 8
#: stack axes (tifffile letters) along which planes are the same kind of acquisition, decided together: time
#: and depth. Planes at different channels, bands, wavelengths, pages of a plain multi-page TIFF (I) or unknown
#: axes (C, B, E, I, Q ...) may have other noise (a clean scan next to noisy ones) and decide apart.
SHARED_AXES = "TZ"
_GRID_POINTS = 8193
_CHUNK = 1 << 20  #: values per block in :func:`unclip` (its float64 work arrays stay ~40 MB)


def _pdf(t: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * t * t) / np.sqrt(2 * np.pi)


def clipped_bounds(values: np.ndarray | Sequence[np.ndarray]) -> tuple[bool, bool]:
    """(low end clipped, high end clipped) for values on the [0, 1] scale (an array, or the planes of a stack
    counted together): enough values sit exactly on 0 (on 1), and fewer lie beyond it. NaN values are ignored.
    This says where clipping may have happened; whether it matters depends on the noise
    (:func:`clipped_noise_level`): a clean photo's black border or saturated sky also sits on an end, and
    there the correction, with the image's small noise, does ~nothing."""
    size = on_low = below = on_high = above = 0
    for part in ([values] if isinstance(values, np.ndarray) else values):
        part = np.asarray(part)
        size += int(np.count_nonzero(~np.isnan(part))) if part.dtype.kind == "f" else part.size
        on_low, below = on_low + int(np.count_nonzero(part == 0)), below + int(np.count_nonzero(part < 0))
        on_high, above = on_high + int(np.count_nonzero(part == 1)), above + int(np.count_nonzero(part > 1))
    least = max(MIN_CLIPPED_COUNT, int(np.ceil(MIN_CLIPPED_FRACTION * size)))
    return on_low >= least and below < on_low, on_high >= least and above < on_high


def clipped_noise_level(image: np.ndarray, seed: int = 0) -> float | None:
    """The std of the (white, Gaussian) noise of a possibly clipped image on the [0, 1] scale, by patch PCA
    (:func:`selfrestore.noise_check.pca_noise_sigma`) on patches away from the ends: first on all patches
    (clipped noise reads low), then, twice, on the patches with no value on an end and every channel's mean
    at least MARGIN_STDS of the last estimate from both ends (fewer where too few are left). An image with
    (almost) no mid-tones therefore reads low: the correction is then partial, not wrong in sign. Patches
    with a NaN (blank) pixel are left out. None for an image too small (or too blank) to measure."""
    from ..noise_check import random_patches

    channels = 1 if np.ndim(image) == 2 else np.shape(image)[2]
    try:
        samples = random_patches(image, PATCH, count=60000, seed=seed)
        samples = samples[np.isfinite(samples).all(axis=1)]  # patches touching blank (NaN) pixels left out
        level = _patch_noise_level(samples[:40000], channels)
    except ValueError:
        return None
    means = samples.reshape(len(samples), channels, -1).mean(axis=2)
    darkest, brightest = means.min(axis=1), means.max(axis=1)
    untouched = (samples.min(axis=1) > 0) & (samples.max(axis=1) < 1)  # no value on an end
    for _ in range(2):
        for margin in MARGIN_STDS:
            inner = samples[untouched & (darkest > margin * level) & (brightest < 1 - margin * level)]
            if len(inner) >= 4 * samples.shape[1]:
                level = _patch_noise_level(inner[:40000], channels)
                break
    return level


def _patch_noise_level(samples: np.ndarray, channels: int) -> float:
    """The noise std of (N, C * PATCH * PATCH) patch samples by PCA over all channels together; where that
    reads far below the channels measured one at a time (their median), the latter. Colour JPEGs are mostly
    4:2:0: the chroma's fine detail is gone, so some colour patterns have no noise at all and the joint PCA,
    which takes the quietest directions, read 0.5/255 on a sigma-25 photo (the correction then did nothing:
    0.85 dB lost with unet-gauss25, found by an audit). Each channel's fine detail is then the luma's, whose
    noise is sqrt(sum of LUMA^2) = 0.67 of independent RGB noise: the per-channel level is divided by that."""
    from ..io import LUMA
    from ..noise_check import pca_noise_sigma

    level = pca_noise_sigma(samples)
    if channels == 3:
        per_channel = samples.reshape(len(samples), channels, -1)
        alone = float(np.median([pca_noise_sigma(per_channel[:, c]) for c in range(channels)]))
        if level < JOINT_LEVEL_FLOOR * alone:
            if np.array_equal(per_channel[:, 0], per_channel[:, 1]) and \
                    np.array_equal(per_channel[:, 1], per_channel[:, 2]):
                return alone  # a gray image stored as RGB: each channel holds the noise itself
            return alone / float(np.sqrt(np.sum(np.square(LUMA))))
    return level


def clipping_of(image: np.ndarray, sigma: float | None = None) -> tuple[float, bool, bool] | None:
    """(noise std, low end clipped, high end clipped) of an image on the [0, 1] scale whose Gaussian noise may
    be clipped, for :func:`unclip`; None when no end is clipped or no level can be had. ``sigma``: the level
    when known, else measured on the image (:func:`clipped_noise_level`)."""
    return clipping_of_planes([image], sigma)


def clipping_of_planes(planes: Sequence[np.ndarray], sigma: float | None = None,
                       measured: int = MEASURED_PLANES) -> tuple[float, bool, bool] | None:
    """As :func:`clipping_of`, one decision for all the planes of a stack (a time-lapse or z-stack): the ends
    from the values of every plane counted together (read one at a time: ``planes`` may be a lazy sequence),
    the level (unless ``sigma``) the median of the levels measured on up to ``measured`` evenly spaced planes.
    Decided plane by plane, a plane just under the count threshold would be left biased next to corrected
    ones (flicker near black in a time-lapse). NaN (blank) values are left out of both."""
    if not len(planes):
        return None
    low, high = clipped_bounds(planes)
    if not (low or high):
        return None
    if sigma is None:
        picks = np.unique(np.linspace(0, len(planes) - 1, min(measured, len(planes))).round().astype(int))
        levels = [level for level in (clipped_noise_level(planes[i]) for i in picks) if level is not None]
        sigma = float(np.median(levels)) if levels else None
    return (float(sigma), low, high) if sigma is not None and sigma > 0 else None


def plane_groups(count: int, stack_shape: Sequence[int] = (), stack_axes: str = "") -> list[list[int]]:
    """The planes of a stack (flat indices, C order over ``stack_shape``) that share one clipped-noise decision:
    those at the same index on every axis not in SHARED_AXES. Without a known layout, each plane alone."""
    if len(stack_axes) != len(stack_shape) or int(np.prod(stack_shape, dtype=np.int64)) != count:
        return [[i] for i in range(count)]
    index = np.arange(count).reshape(tuple(stack_shape))
    apart = [axis for axis, letter in enumerate(stack_axes) if letter not in SHARED_AXES]
    together = [axis for axis in range(len(stack_shape)) if axis not in apart]
    grouped = np.transpose(index, apart + together).reshape(int(np.prod([stack_shape[a] for a in apart],
                                                                          dtype=np.int64)), -1)
    return [row.tolist() for row in grouped]


def clipped_mean(x: np.ndarray, sigma: float, low: bool = True, high: bool = True) -> np.ndarray:
    """m(x) = E[clip(x + sigma n)]: at 0 if ``low``, at 1 if ``high`` (module docstring)."""
    from scipy.special import ndtr  # here: importing scipy.special takes 0.3-1 s, and most images need no correction

    x = np.asarray(x, dtype=np.float64)
    below = ndtr(-x / sigma) if low else 0.0
    above = 1 - ndtr((1 - x) / sigma) if high else 0.0
    density = (_pdf(-x / sigma) if low else 0.0) - (_pdf((1 - x) / sigma) if high else 0.0)
    return above + x * (1 - below - above) + sigma * density


def clipped_slope(x: np.ndarray, sigma: float, low: bool = True, high: bool = True) -> np.ndarray:
    """m'(x) = P(the noisy value is not clipped), in (0, 1]."""
    from scipy.special import ndtr  # (as clipped_mean)

    x = np.asarray(x, dtype=np.float64)
    return 1 - (ndtr(-x / sigma) if low else 0.0) - ((1 - ndtr((1 - x) / sigma)) if high else 0.0)


def unclip(estimate: np.ndarray, sigma: float, low: bool = True, high: bool = True,
           std: np.ndarray | None = None, in_place: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """x = m^-1(estimate) for an estimate of the mean of the clipped noisy image, float32; with ``std`` (of
    that estimate) also x's std, std / m'(x) (first order). At a clipped end x stops: estimates below m(0)
    give 0, above m(1) give 1; at an end that was not clipped m is the identity far out, and so is x.
    ``in_place``: write into ``estimate`` and ``std`` when they are C-contiguous float32 (no image-sized copy)."""
    if not (low or high) or not sigma > 0:
        return estimate.astype(np.float32), None if std is None else std.astype(np.float32)
    start = 0.0 if low else -6 * sigma  # beyond 6 sigma from a clipped end, m(x) = x to float precision
    stop = 1.0 if high else 1 + 6 * sigma
    grid = np.linspace(start, stop, _GRID_POINTS)
    means = clipped_mean(grid, sigma, low, high)

    def target(array: np.ndarray) -> np.ndarray:
        reusable = in_place and array.dtype == np.float32 and array.flags.c_contiguous
        return array.reshape(-1) if reusable else np.empty(array.size, np.float32)

    flat = np.ascontiguousarray(estimate).reshape(-1)
    out = target(estimate)
    flat_std = None if std is None else np.ascontiguousarray(std).reshape(-1)
    spread = None if std is None else target(std)
    for i in range(0, flat.size, _CHUNK):
        part = flat[i:i + _CHUNK].astype(np.float64)
        x = np.interp(part, means, grid)
        if not low:
            x = np.where(part < means[0], part, x)
        if not high:
            x = np.where(part > means[-1], part, x)
        out[i:i + _CHUNK] = x
        if spread is not None:
            slope = clipped_slope(np.clip(x, 0, 1), sigma, low, high)
            spread[i:i + _CHUNK] = flat_std[i:i + _CHUNK] / slope
    return out.reshape(estimate.shape), None if spread is None else spread.reshape(estimate.shape)
