"""Per-pixel multivariate Gaussian algebra for the Bayesian blind-spot method (Laine et al. 2019, sec. 4).

Covariance matrices are stored per pixel as tensors of shape (N, C, C, H, W) and vectors as (N, C, H, W).
C is small (1 or 3), so the Cholesky factorisation and the triangular solves are written out entry by entry
on whole images, which is fast on CPU and differentiable, instead of calling batched LAPACK per pixel.
Everything here runs in float32 whatever the autocast context (callers cast; we re-cast defensively).

With prior x ~ N(mu, Sx) and observation y = x + n, n ~ N(0, Sn):

* marginal (training):  y ~ N(mu, Sy), Sy = Sx + Sn                                      (paper eq. 4-5)
* posterior (restore):  E[x | y] = mu + Sx Sy^-1 (y - mu),  Cov[x | y] = Sx - Sx Sy^-1 Sx   (eq. 6)

These forms never invert Sx, so a singular prior (a confident net) is harmless; Sy is positive definite
because Sn is (callers keep noise variances >= a small floor).
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

EPS = 1e-8


def add_diagonal(matrix: Tensor, diag: Tensor) -> Tensor:
    """matrix (N, C, C, H, W) + diag(diag), with diag broadcastable to (N, C, H, W)."""
    c = matrix.shape[1]
    diag = diag.float().expand(matrix.shape[0], c, *matrix.shape[3:]) if diag.dim() == 4 else diag
    out = matrix.clone()
    idx = torch.arange(c, device=matrix.device)
    out[:, idx, idx] = out[:, idx, idx] + diag
    return out


def outer(v: Tensor) -> Tensor:
    """v v^T per pixel: (N, C, H, W) -> (N, C, C, H, W)."""
    return v[:, :, None] * v[:, None, :]


def cholesky(matrix: Tensor, floor: float = EPS) -> Tensor:
    """Lower-triangular L with L L^T = matrix, per pixel. Pivots are floored at ``floor`` for safety."""
    matrix = matrix.float()
    c = matrix.shape[1]
    rows: list[list[Tensor | None]] = [[None] * c for _ in range(c)]
    for j in range(c):
        radicand = matrix[:, j, j] - sum((rows[j][k] ** 2 for k in range(j)), torch.zeros_like(matrix[:, j, j]))
        rows[j][j] = torch.sqrt(radicand.clamp_min(floor))
        for i in range(j + 1, c):
            acc = matrix[:, i, j] - sum((rows[i][k] * rows[j][k] for k in range(j)), torch.zeros_like(matrix[:, i, j]))
            rows[i][j] = acc / rows[j][j]
    zero = torch.zeros_like(matrix[:, 0, 0])
    return torch.stack([torch.stack([rows[i][j] if j <= i else zero for j in range(c)], dim=1)
                        for i in range(c)], dim=1)


def solve_lower(chol: Tensor, b: Tensor) -> Tensor:
    """z with L z = b (forward substitution). chol (N, C, C, H, W), b (N, C, H, W)."""
    c = chol.shape[1]
    z: list[Tensor] = []
    for i in range(c):
        acc = b[:, i].float() - sum((chol[:, i, k] * z[k] for k in range(i)), torch.zeros_like(b[:, i]).float())
        z.append(acc / chol[:, i, i])
    return torch.stack(z, dim=1)


def solve_upper_transposed(chol: Tensor, b: Tensor) -> Tensor:
    """x with L^T x = b (back substitution)."""
    c = chol.shape[1]
    x: list[Tensor | None] = [None] * c
    for i in range(c - 1, -1, -1):
        acc = b[:, i].float() - sum((chol[:, k, i] * x[k] for k in range(i + 1, c)), torch.zeros_like(b[:, i]).float())
        x[i] = acc / chol[:, i, i]
    return torch.stack(x, dim=1)  # type: ignore[arg-type]


def solve(chol: Tensor, b: Tensor) -> Tensor:
    """S^-1 b given the Cholesky factor of S."""
    return solve_upper_transposed(chol, solve_lower(chol, b))


def matvec(matrix: Tensor, v: Tensor) -> Tensor:
    """matrix v per pixel: (N, C, C, H, W) x (N, C, H, W) -> (N, C, H, W), in float32."""
    return torch.einsum("nijhw,njhw->nihw", matrix.float(), v.float())


def gaussian_nll(y: Tensor, mean: Tensor, cov: Tensor) -> Tensor:
    """-log N(y; mean, cov) per pixel, shape (N, H, W)."""
    chol = cholesky(cov)
    z = solve_lower(chol, y.float() - mean.float())
    c = y.shape[1]
    logdet = 2.0 * torch.log(torch.diagonal(chol, dim1=1, dim2=2)).sum(dim=-1)  # (N, H, W)
    return 0.5 * (z.pow(2).sum(dim=1) + logdet + c * math.log(2 * math.pi))


def posterior(y: Tensor, mu: Tensor, prior_cov: Tensor, noise_var: Tensor) -> tuple[Tensor, Tensor]:
    """Posterior mean and per-channel posterior variance of x given y = x + n, x ~ N(mu, prior_cov),
    n ~ N(0, diag(noise_var)). Returns (mean (N, C, H, W), variance (N, C, H, W))."""
    y, mu, prior_cov = y.float(), mu.float(), prior_cov.float()
    chol = cholesky(add_diagonal(prior_cov, noise_var))
    mean = mu + matvec(prior_cov, solve(chol, y - mu))
    # diag(Sx Sy^-1 Sx) = squared column norms of L^-1 Sx
    c = y.shape[1]
    m = torch.stack([solve_lower(chol, prior_cov[:, :, j]) for j in range(c)], dim=2)  # (N, C, C, H, W)
    variance = torch.diagonal(prior_cov, dim1=1, dim2=2).permute(0, 3, 1, 2) - m.pow(2).sum(dim=1)
    return mean, variance.clamp_min(0)


def posterior_variance_of_mean(prior_cov: Tensor, noise_var: Tensor) -> Tensor:
    """Posterior variance of the channel mean g = a^T x, a = (1/C, ..., 1/C), for the model of
    :func:`posterior`: a^T P a with P = Sx - Sx Sy^-1 Sx, i.e. a^T Sx a - |L^-1 Sx a|^2 (Sy = L L^T). The
    channels' posteriors are correlated (a colour prior is mostly luma), so this is not the mean of their
    variances. Returns (N, 1, H, W)."""
    prior_cov = prior_cov.float()
    chol = cholesky(add_diagonal(prior_cov, noise_var))
    spread = prior_cov.mean(dim=2)  # Sx a, (N, C, H, W)
    explained = solve_lower(chol, spread).pow(2).sum(dim=1, keepdim=True)
    return (spread.mean(dim=1, keepdim=True) - explained).clamp_min(0)


def subsample_stride(height: int, width: int, max_pixels: int) -> int:
    """The step of the regular grid that keeps at most about ``max_pixels`` of a height x width image."""
    return max(1, int(math.ceil(math.sqrt(height * width / max_pixels))))


def ml_noise_level(y: Tensor, mu: Tensor, prior_cov: Tensor, noise_variance: Callable[[Tensor, Tensor], Tensor],
                   low: float, high: float, max_pixels: int = 65536, iterations: int = 24) -> Tensor:
    """Per-image maximum-likelihood noise level under the network's prior (the marginal of eq. 4-5).

    ``noise_variance(level, mu)`` maps a (N, 1, 1, 1) level (and the prior mean, for signal-dependent noise)
    to the per-pixel noise variance (broadcastable to (N, C, H, W)); the level maximising the mean of
    log N(y; mu, Sigma_x + Sigma_n(level)) over the image is found by golden-section search on log(level) in
    [low, high] (the marginal likelihood of one scalar is unimodal in practice). At most ``max_pixels`` pixels
    per image are used (a fixed regular subsample), so this costs a fraction of the network pass. Returns
    (N, 1, 1, 1).
    """
    n, c, h, w = y.shape
    stride = subsample_stride(h, w, max_pixels)
    ys, ms = y[..., ::stride, ::stride].float(), mu[..., ::stride, ::stride].float()
    cs = prior_cov[..., ::stride, ::stride].float()

    def cost(log_level: Tensor) -> Tensor:  # (N,) -> (N,) mean negative log-likelihood
        level = log_level.exp().view(n, 1, 1, 1)
        var = noise_variance(level, ms).expand_as(ms)
        return gaussian_nll(ys, ms, add_diagonal(cs, var)).mean(dim=(1, 2))

    a = torch.full((n,), math.log(low), device=y.device)
    b = torch.full((n,), math.log(high), device=y.device)
    ratio = (math.sqrt(5) - 1) / 2
    x1, x2 = b - ratio * (b - a), a + ratio * (b - a)
    f1, f2 = cost(x1), cost(x2)
    for _ in range(iterations):
        left = f1 < f2                       # the minimum lies in [a, x2]
        b = torch.where(left, x2, b)
        a = torch.where(left, a, x1)
        x1_new, x2_new = b - ratio * (b - a), a + ratio * (b - a)
        f_new = cost(torch.where(left, x1_new, x2_new))
        f2, f1 = torch.where(left, f1, f_new), torch.where(left, f_new, f2)
        x2, x1 = torch.where(left, x1, x2_new), torch.where(left, x1_new, x2)
    return ((a + b) / 2).exp().view(n, 1, 1, 1)
