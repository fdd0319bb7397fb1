"""A noisy gray image made into the colour input a colour denoiser was trained on.

A colour model learnt images whose noise is independent in each channel, of std t per channel: the luma of
such an image has noise t / sqrt(3), its chroma noise t^2 (I - 11^T / 3). A gray image given as its one
channel repeated has noise sigma in the luma and none in the chroma: to the model it looks sqrt(3) noisier
than the level it sees in the chroma, and a Bayesian model reading the level from the channels finds none
(the shipped default returned such images almost unchanged). Here the gray value is scaled by 1 / s around
mid-grey, so that its noise sigma / s is the luma noise of the level t the model expects (s = sqrt(3) sigma / t),
and zero-sum chroma noise of that level is added (a fixed pseudo-random draw, so results repeat): the colour
image then has independent noise of std t in each channel, exactly the model's noise. The restored gray value
is the mean of the restored channels (the chroma noise sums to zero), scaled back by s.

t is the model's level for a single-level Gaussian model (s never below 1: a gray image whose noise is
already lower than the model's luma noise is not amplified); for a model of a range of levels, sqrt(3)
sigma (s = 1) unless that is above the range's top; for a model of unknown noise, sigma itself
(s = sqrt(3): the same noise per channel as the gray image has). :class:`selfrestore.restore.Restorer` decides
where the view is taken (colour denoisers of Gaussian or unknown noise; not under a range model's lowest
level). Set12: ``benchmarks/results/gray_default*.md``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: the seed of the chroma noise: the same image restores to the same result
CHROMA_SEED = 0
#: the zero-sum chroma directions (orthonormal, both orthogonal to (1, 1, 1)): u1 u1^T + u2 u2^T = I - 11^T / 3
_CHROMA = np.array([[1.0, -1.0, 0.0], [1.0, 1.0, -2.0]], np.float32) / np.array([[math.sqrt(2)], [math.sqrt(6)]],
                                                                                    np.float32)


@dataclass(frozen=True)
class ColourView:
    """The colour image to give the model (H, W, 3), the gray scale factor ``scale`` (s) and the per-channel
    noise std ``level`` (t) it has, on the model's [0, 1] scale."""
    colour: np.ndarray
    scale: float
    level: float

    def gray_of(self, restored: np.ndarray) -> np.ndarray:
        """The restored gray value (H, W, 1) of the model's colour output (H, W, 3)."""
        return ((restored.mean(axis=2, keepdims=True) - 0.5) * self.scale + 0.5).astype(np.float32)

    def gray_std_of(self, channel_mean_std: np.ndarray) -> np.ndarray:
        """The gray value's posterior std (H, W, 1) from the std of the mean of the restored channels (any
        channel of the model's (H, W, 3) output, e.g. ``restore_with_uncertainty(channel_mean=True)``),
        scaled back by s."""
        return (channel_mean_std[:, :, :1] * self.scale).astype(np.float32)


def target_level(sigma: float, model_levels: tuple[float, float] | None) -> float:
    """The per-channel level t the colour view gets, for gray noise ``sigma``: the model's level
    (``model_levels`` (low, high) with low == high), min(sqrt(3) sigma, high) for a range, ``sigma`` for a
    model whose noise is unknown (None)."""
    if model_levels is None:
        return sigma
    low, high = model_levels
    if low == high:
        return low
    return min(math.sqrt(3) * sigma, high)


def colour_view(gray: np.ndarray, sigma: float, model_levels: tuple[float, float] | None) -> ColourView:
    """The colour view (module docstring) of a gray image (H, W, 1) on the model's [0, 1] scale whose noise
    std is ``sigma`` (> 0, on that scale), for a model of Gaussian noise of ``model_levels`` (see
    :func:`target_level`)."""
    level = target_level(sigma, model_levels)
    scale = max(1.0, math.sqrt(3) * sigma / level)
    h, w = gray.shape[:2]
    draws = np.random.default_rng(CHROMA_SEED).standard_normal((2, h, w), dtype=np.float32)
    draws *= np.float32(level)
    lifted = (np.asarray(gray, np.float32)[:, :, 0] - np.float32(0.5)) / np.float32(scale) + np.float32(0.5)
    colour = np.empty((h, w, 3), np.float32)  # channel by channel: a few image planes at a time (40 MP: ~1 GB)
    for k in range(3):  # lifted + level * (d1 u1_k + d2 u2_k): zero-sum chroma, std level per channel
        colour[:, :, k] = lifted
        colour[:, :, k] += draws[0] * _CHROMA[0, k]
        colour[:, :, k] += draws[1] * _CHROMA[1, k]
    return ColourView(colour, scale, level)
