"""NIQE, the Natural Image Quality Evaluator (Mittal, Soundararajan & Bovik 2013), no reference needed.

The score is the distance between two multivariate Gaussians (paper Eq. 10):

    D = sqrt( (mu_p - mu_d)^T  pinv((Sigma_p + Sigma_d) / 2)  (mu_p - mu_d) )

where (mu_p, Sigma_p) is the fixed "pristine" model (``niqe_pris_params.npz``) and (mu_d, Sigma_d) is
fitted to 36-d natural-scene-statistics features of the image's 96x96 blocks. Lower is better.

This is a re-implementation of the official MATLAB release (``niqe_release.zip``: computequality.m,
computefeature.m, estimateaggdparam.m) in float64 torch. The conventions it follows, all of which
matter at the third decimal:

* colour input -> MATLAB ``rgb2gray`` of an 8-bit image: Y = 0.298936021293775 R + 0.587043074451121 G
  + 0.114020904255103 B on the [0, 255] scale, rounded half away from zero and clipped to [0, 255]
  (IQA-PyTorch's calibration feeds ``rgb2gray`` output to the official script). A 1-channel input is
  scaled to [0, 255] and rounded the same way. ``crop_border`` pixels are then removed on every side.
* the image is cropped (bottom/right) to a whole number of 96x96 blocks; blocks do not overlap;
* MSCN coefficients: (I - mu) / (sigma + 1), mu and sigma from a 7x7 Gaussian (sigma 7/6, normalised)
  applied with replicate padding; sigma = sqrt(|E[I^2] - mu^2|). One deliberate deviation: where the
  7x7 neighbourhood is constant, I - mu is exactly 0 here (see :func:`mscn`), whereas MATLAB leaves a
  +-1e-14 rounding residual whose sign depends on the grey level. Images with such flat patches
  (saturation, heavy quantisation, blocking) therefore differ from MATLAB's published scores by up to
  ~0.03; images without them match to 1e-5 (benchmarks/results/perceptual_calibration.md);
* per block, 18 features: AGGD fit (alpha, (beta_l + beta_r)/2) of the MSCN values, and for the
  products with the horizontal, vertical and both diagonal neighbours (circular shift inside the block)
  (alpha, mean, beta_l, beta_r); alpha is the grid search over 0.2:0.001:10 of the official code;
* two scales: the second uses MATLAB ``imresize(I, 0.5)`` (bicubic, antialiased, symmetric padding, no
  rounding) and 48x48 blocks; block (i, j) at both scales forms one 36-d row;
* mu_d = nanmean over blocks; Sigma_d = nancov (rows containing a NaN dropped, normalised by N - 1);
  a block with no negative (or no positive) value yields NaN betas and, as in MATLAB, alpha = 0.2.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

from selfrestore.errors import UserError

from .assets import load_niqe_params

BLOCK = 96
_RGB2GRAY = (0.298936021293775, 0.587043074451121, 0.114020904255103)


# ----------------------------------------------------------------------------- preprocessing
def to_gray255(img: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) in [0, 1] with C in {1, 3} -> (N, 1, H, W) float64 integers in [0, 255] (rgb2gray)."""
    x = img.to(torch.float64) * 255.0
    if x.shape[1] == 3:
        weights = torch.tensor(_RGB2GRAY, dtype=torch.float64, device=x.device).view(1, 3, 1, 1)
        x = (x * weights).sum(dim=1, keepdim=True)
    elif x.shape[1] != 1:
        raise UserError(f"niqe: expected 1 or 3 channels, got {x.shape[1]}")
    return torch.floor(x + 0.5).clamp(0.0, 255.0)  # MATLAB rounds half away from zero; x >= 0 here


def _cubic(x: torch.Tensor) -> torch.Tensor:
    """MATLAB imresize's bicubic kernel (a = -0.5)."""
    ax = x.abs()
    ax2, ax3 = ax * ax, ax * ax * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return near + far


@functools.lru_cache(maxsize=16)
def _resize_taps(in_len: int, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """MATLAB ``imresize`` contributions along one axis (bicubic, antialiased, mirrored borders).

    Returns (indices, weights), both (out_len, taps): output o = sum_p weights[o, p] * input[indices[o, p]].
    """
    out_len = math.ceil(in_len * scale)
    kernel_width = 4.0 / scale if scale < 1 else 4.0  # antialiasing stretches the kernel by 1/scale
    x = torch.arange(1, out_len + 1, dtype=torch.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = torch.floor(u - kernel_width / 2)
    taps = math.ceil(kernel_width) + 2
    positions = left[:, None] + torch.arange(taps, dtype=torch.float64)[None, :]
    dist = u[:, None] - positions
    weights = scale * _cubic(scale * dist) if scale < 1 else _cubic(dist)
    weights = weights / weights.sum(dim=1, keepdim=True)
    mirror = torch.cat([torch.arange(in_len), torch.arange(in_len - 1, -1, -1)])  # 0-based [1:n, n:-1:1]
    indices = mirror[torch.remainder(positions.long() - 1, 2 * in_len)]
    return indices, weights


def _resize_axis(img: torch.Tensor, dim: int, scale: float) -> torch.Tensor:
    indices, weights = _resize_taps(img.shape[dim], scale)
    indices, weights = indices.to(img.device), weights.to(img.device)
    shape = [1] * img.ndim
    shape[dim] = indices.shape[0]
    out = torch.zeros(())
    # One tap at a time, so every output pixel sums its taps in the same order: a flat region stays
    # exactly flat (identical values), which the MSCN step below relies on.
    for tap in range(indices.shape[1]):
        out = out + img.index_select(dim, indices[:, tap]) * weights[:, tap].view(shape)
    return out


def imresize_matlab(img: torch.Tensor, scale: float) -> torch.Tensor:
    """MATLAB ``imresize(img, scale)`` (bicubic, antialiasing on) of a (N, C, H, W) float64 tensor.

    Rows are resized first, then columns, as MATLAB does for equal scales. No clipping or rounding.
    """
    return _resize_axis(_resize_axis(img, img.ndim - 2, scale), img.ndim - 1, scale)


# ----------------------------------------------------------------------------- features
@functools.lru_cache(maxsize=1)
def _gaussian_window() -> torch.Tensor:
    """fspecial('gaussian', 7, 7/6), normalised to sum 1, as a (1, 1, 7, 7) float64 filter."""
    r = torch.arange(-3, 4, dtype=torch.float64)
    sigma = 7.0 / 6.0
    g = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma * sigma))
    return (g / g.sum()).view(1, 1, 7, 7)


def mscn(img: torch.Tensor) -> torch.Tensor:
    """Mean-subtracted contrast-normalised coefficients (I - mu) / (sigma + 1) of a (N, 1, H, W) image.

    mu and sigma^2 are Gaussian-weighted (7x7, sigma 7/6, replicate padding) local moments, computed
    relative to the centre pixel: I - mu = -sum_k w_k (I_k - I) and sigma^2 = sum_k w_k (I_k - I)^2 -
    (I - mu)^2, equal to the textbook form in exact arithmetic. This makes I - mu exactly 0 where the
    7x7 neighbourhood is constant. The textbook form leaves a +-1e-14 residual there whose sign depends
    on the arithmetic (library, device, summation order); NIQE's AGGD fit counts negative and positive
    values separately, so on images with flat areas that noise alone moves the score by up to ~0.5.
    """
    window = _gaussian_window().to(img.device).reshape(7, 7)
    h, w = img.shape[-2:]
    padded = F.pad(img, (3, 3, 3, 3), mode="replicate")
    mean_offset = torch.zeros_like(img)
    second_moment = torch.zeros_like(img)
    for i in range(7):
        for j in range(7):
            delta = padded[..., i : i + h, j : j + w] - img
            mean_offset = mean_offset + window[i, j] * delta
            second_moment = second_moment + window[i, j] * delta * delta
    sigma = torch.sqrt((second_moment - mean_offset * mean_offset).abs())
    return -mean_offset / (sigma + 1.0)


@functools.lru_cache(maxsize=4)
def _aggd_grid(device: str) -> tuple[torch.Tensor, torch.Tensor]:
    gam = torch.arange(200, 10001, dtype=torch.float64, device=device) / 1000.0  # 0.2:0.001:10
    r_gam = torch.exp(2 * torch.lgamma(2 / gam) - torch.lgamma(1 / gam) - torch.lgamma(3 / gam))
    return gam, r_gam


def _gamma_ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    return torch.exp(torch.lgamma(num) - torch.lgamma(den))


def aggd_fit(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Moment-matching fit of an asymmetric generalised Gaussian to each row of ``values`` (B, n).

    Returns (alpha, beta_l, beta_r), each (B,). Rows lacking negative or positive values give NaN
    betas and alpha = 0.2, reproducing MATLAB's ``min`` over an all-NaN vector (index 1).
    """
    neg, pos = values < 0, values > 0
    sq = values * values
    left_std = torch.sqrt((sq * neg).sum(1) / neg.sum(1))  # 0/0 -> NaN like mean([]) in MATLAB
    right_std = torch.sqrt((sq * pos).sum(1) / pos.sum(1))
    gammahat = left_std / right_std
    rhat = values.abs().mean(1) ** 2 / sq.mean(1)
    rhatnorm = rhat * (gammahat**3 + 1) * (gammahat + 1) / (gammahat**2 + 1) ** 2
    gam, r_gam = _aggd_grid(str(values.device))
    position = torch.argmin((r_gam[None, :] - rhatnorm[:, None]) ** 2, dim=1)
    position = torch.where(torch.isnan(rhatnorm), torch.zeros_like(position), position)
    alpha = gam[position]
    factor = torch.sqrt(_gamma_ratio(1 / alpha, 3 / alpha))
    return alpha, left_std * factor, right_std * factor


_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))


def block_features(blocks: torch.Tensor) -> torch.Tensor:
    """The 18 NIQE features of each block of a (B, h, w) tensor of MSCN coefficients -> (B, 18)."""
    flat = blocks.reshape(blocks.shape[0], -1)
    alpha, beta_l, beta_r = aggd_fit(flat)
    feats = [alpha, (beta_l + beta_r) / 2]
    for shift in _SHIFTS:
        pair = flat * torch.roll(blocks, shifts=shift, dims=(1, 2)).reshape_as(flat)
        alpha, beta_l, beta_r = aggd_fit(pair)
        mean = (beta_r - beta_l) * _gamma_ratio(2 / alpha, 1 / alpha)
        feats += [alpha, mean, beta_l, beta_r]
    return torch.stack(feats, dim=1)


def _blocks(img: torch.Tensor, size: int) -> torch.Tensor:
    """(N, 1, R*size, C*size) -> (N, R*C, size, size), blocks in row-major order."""
    n, _, h, w = img.shape
    r, c = h // size, w // size
    return img.reshape(n, r, size, c, size).permute(0, 1, 3, 2, 4).reshape(n, r * c, size, size)


def niqe_features(gray: torch.Tensor) -> torch.Tensor:
    """36-d features of every 96x96 block of a (N, 1, H, W) [0, 255] image -> (N, blocks, 36)."""
    n, _, h, w = gray.shape
    rows, cols = h // BLOCK, w // BLOCK
    img = gray[..., : rows * BLOCK, : cols * BLOCK]
    per_scale = []
    for scale in (1, 2):
        size = BLOCK // scale
        blocks = _blocks(mscn(img), size)
        per_scale.append(block_features(blocks.reshape(-1, size, size)).reshape(n, rows * cols, 18))
        if scale == 1:
            img = imresize_matlab(img, 0.5)
    return torch.cat(per_scale, dim=2)


# ----------------------------------------------------------------------------- score
def _nan_mvg(feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """nanmean and nancov (complete rows only, N - 1 normalisation) of (blocks, 36) features."""
    mu = torch.nanmean(feats, dim=0)
    complete = feats[~torch.isnan(feats).any(dim=1)]
    if complete.shape[0] < 2:  # MATLAB's cov of one row is 0
        return mu, torch.zeros(feats.shape[1], feats.shape[1], dtype=feats.dtype, device=feats.device)
    return mu, torch.cov(complete.T)


@functools.lru_cache(maxsize=4)
def _pristine(device: str) -> tuple[torch.Tensor, torch.Tensor]:
    mu, cov = load_niqe_params()
    return torch.from_numpy(mu).to(device), torch.from_numpy(cov).to(device)


def niqe_torch(img: torch.Tensor, crop_border: int = 0) -> torch.Tensor:
    """NIQE of each image of a (N, C, H, W) (or (C, H, W)) tensor in [0, 1], C = 1 or 3 -> (N,) float64.

    The image, after ``crop_border``, must be at least 96x96. Not differentiable (rounding, argmin).
    """
    if img.ndim == 3:
        img = img.unsqueeze(0)
    if img.ndim != 4:
        raise UserError(f"niqe: expected an (N, C, H, W) tensor, got shape {tuple(img.shape)}")
    gray = to_gray255(img.detach())
    if crop_border > 0:
        gray = gray[..., crop_border:-crop_border, crop_border:-crop_border]
    if gray.shape[-2] < BLOCK or gray.shape[-1] < BLOCK:
        raise UserError(
            f"niqe: the image must be at least {BLOCK}x{BLOCK} pixels after cropping, "
            f"got {gray.shape[-2]}x{gray.shape[-1]}"
        )
    mu_p, cov_p = _pristine(str(img.device))
    feats = niqe_features(gray)
    scores = []
    for per_image in feats:
        mu_d, cov_d = _nan_mvg(per_image)
        diff = (mu_p - mu_d).unsqueeze(1)
        quad = diff.T @ torch.linalg.pinv((cov_p + cov_d) / 2) @ diff
        scores.append(torch.sqrt(quad.reshape(())))
    return torch.stack(scores)


def niqe(img: np.ndarray, crop_border: int = 0) -> float:
    """NIQE of one HxWxC (C = 1 or 3) or HxW float array in [0, 1]; lower means more natural.

    RGB is converted with MATLAB's rgb2gray on the 8-bit scale (see the module docstring).
    """
    arr = np.asarray(img, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3:
        raise UserError(f"niqe: expected an HxW or HxWxC array, got shape {arr.shape}")
    tensor = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1))).unsqueeze(0)
    return float(niqe_torch(tensor, crop_border=crop_border)[0])
