"""Global registration between noisy (possibly aliased, possibly Bayer) frames.

Two stages, both on a low-passed, contrast-normalised gray image (the low-pass suppresses noise and the
aliased high frequencies of under-sampled frames; normalisation removes exposure changes):

1. phase correlation (Kuglin & Hines 1975) on Hann-windowed images with a Gaussian-weighted cross-power
   spectrum gives the integer translation and a parabolic sub-pixel refinement, robust to large shifts;
2. Lucas-Kanade / Gauss-Newton refinement (forward additive, Baker & Matthews 2004) of a translation,
   Euclidean (shift + rotation) or affine motion, coarse to fine over a two-level pyramid.

Raw Bayer frames are registered on their half-resolution tile means (:func:`raw_luminance`), and the
result is converted back to full-resolution coordinates. The returned affine ``A`` satisfies
``moving(A p) ~ reference(p)``.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ..corruption.mosaic import raw_luminance
from ..errors import UserError
from .geometry import identity_affine, pixel_grid, rescale_affine, sample_at
from .synthesis import gaussian_blur

MODELS = ("translation", "euclidean", "affine")


def _prepare(image: Tensor, sigma: float) -> Tensor:
    """(C, H, W) -> (1, 1, H, W) gray, low-passed, zero mean, unit variance, float64."""
    gray = image.double().mean(dim=0, keepdim=True).unsqueeze(0)
    gray = gaussian_blur(gray, sigma)
    return (gray - gray.mean()) / gray.std().clamp_min(1e-8)


def phase_correlation(reference: Tensor, moving: Tensor, sigma: float = 1.0) -> tuple[float, float]:
    """Translation (dx, dy) with ``moving(p + d) ~ reference(p)`` for (1, 1, H, W) images."""
    h, w = reference.shape[-2:]
    window = torch.outer(torch.hann_window(h, periodic=False, dtype=reference.dtype),
                         torch.hann_window(w, periodic=False, dtype=reference.dtype))
    fr = torch.fft.fft2((reference[0, 0] - reference.mean()) * window)
    fm = torch.fft.fft2((moving[0, 0] - moving.mean()) * window)
    cross = fm * fr.conj()
    cross = cross / cross.abs().clamp_min(1e-12)
    # Gaussian weighting of the spectrum = smoothing of the correlation surface (noise robustness)
    fy = torch.fft.fftfreq(h, dtype=reference.dtype).view(-1, 1)
    fx = torch.fft.fftfreq(w, dtype=reference.dtype).view(1, -1)
    cross = cross * torch.exp(-2 * (math.pi * sigma) ** 2 * (fx**2 + fy**2))
    surface = torch.fft.ifft2(cross).real
    index = int(torch.argmax(surface))
    py, px = divmod(index, w)

    def parabolic(values: tuple[float, float, float]) -> float:
        left, centre, right = values
        denom = left - 2 * centre + right
        return 0.0 if abs(denom) < 1e-12 else 0.5 * (left - right) / denom

    dy = py + parabolic((float(surface[(py - 1) % h, px]), float(surface[py, px]), float(surface[(py + 1) % h, px])))
    dx = px + parabolic((float(surface[py, (px - 1) % w]), float(surface[py, px]), float(surface[py, (px + 1) % w])))
    dy = dy - h if dy > h / 2 else dy
    dx = dx - w if dx > w / 2 else dx
    return dx, dy


def _gradients(image: Tensor) -> Tensor:
    """(1, 2, H, W) central-difference gradients (d/dx, d/dy)."""
    padded = F.pad(image, (1, 1, 1, 1), mode="replicate")
    gx = (padded[..., 1:-1, 2:] - padded[..., 1:-1, :-2]) / 2
    gy = (padded[..., 2:, 1:-1] - padded[..., :-2, 1:-1]) / 2
    return torch.cat([gx, gy], dim=1)


def _refine(reference: Tensor, moving: Tensor, affine: Tensor, model: str, iterations: int) -> Tensor:
    """Gauss-Newton refinement of ``affine`` (2, 3) so that moving(A p) ~ reference(p)."""
    h, w = reference.shape[-2:]
    grid = pixel_grid(h, w).double()
    cx, cy, size = (w - 1) / 2, (h - 1) / 2, max(h, w) / 2
    xn, yn = (grid[0] - cx) / size, (grid[1] - cy) / size
    moving_and_grad = torch.cat([moving, _gradients(moving)], dim=1)
    margin = 2.0
    a = affine.double().clone()
    for _ in range(iterations):
        points = torch.einsum("ij,jhw->ihw", a[:, :2], grid) + a[:, 2, None, None]
        sampled = sample_at(moving_and_grad, points.unsqueeze(0))[0]
        valid = ((points[0] >= margin) & (points[0] <= w - 1 - margin) &
                 (points[1] >= margin) & (points[1] <= h - 1 - margin))
        if valid.sum() < 16:
            break
        residual = (sampled[0] - reference[0, 0])[valid]
        gx, gy = sampled[1][valid], sampled[2][valid]
        x, y = xn[valid], yn[valid]
        if model == "translation":
            jac = torch.stack([gx, gy], dim=1)
        elif model == "euclidean":  # small rotation about the centre: d(p) = theta * (-(y - cy), x - cx)
            jac = torch.stack([gx, gy, -gx * y + gy * x], dim=1)
        else:
            jac = torch.stack([gx * x, gx * y, gx, gy * x, gy * y, gy], dim=1)
        hessian = jac.T @ jac
        hessian = hessian + torch.diag(1e-6 * torch.diagonal(hessian).clamp_min(1e-9))  # flat images: no motion
        delta = -torch.linalg.solve(hessian, jac.T @ residual)
        # the update as an affine correction d(p) added to A p (pixel units)
        if model == "translation":
            correction = torch.tensor([[0, 0, delta[0]], [0, 0, delta[1]]], dtype=a.dtype)
        elif model == "euclidean":
            theta = float(delta[2]) / size
            rot = torch.tensor([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]],
                               dtype=a.dtype)
            centre = torch.tensor([cx, cy], dtype=a.dtype)
            new_linear = rot @ a[:, :2]
            new_shift = rot @ (a[:, 2] - centre) + centre + delta[:2]
            # rotate the whole mapping about the image centre, then shift
            a = torch.cat([new_linear, new_shift.view(2, 1)], dim=1)
            if float(delta.abs().max()) < 1e-5:
                break
            continue
        else:
            d = delta / torch.tensor([size, size, 1, size, size, 1], dtype=a.dtype)
            correction = torch.stack([
                torch.stack([d[0], d[1], d[2] - d[0] * cx - d[1] * cy]),
                torch.stack([d[3], d[4], d[5] - d[3] * cx - d[4] * cy])])
        a = a + correction
        if float(delta.abs().max()) < 1e-5:
            break
    return a


def register(reference: Tensor, moving: Tensor, model: str = "affine", sigma: float = 1.0,
             iterations: int = 30, raw: bool = False) -> Tensor:
    """Affine (2, 3) float32 with ``moving(A p) ~ reference(p)`` for two (C, H, W) frames.

    ``sigma`` is the low-pass width (px) applied before matching; ``raw=True`` treats (1, H, W) inputs as
    RGGB Bayer frames and registers their half-resolution tile means.
    """
    if model not in MODELS:
        raise UserError(f"unknown registration model {model!r}; use one of {', '.join(MODELS)}")
    if reference.shape != moving.shape or reference.dim() != 3:
        raise UserError(f"registration needs two (C, H, W) frames of one shape, got "
                        f"{tuple(reference.shape)} and {tuple(moving.shape)}")
    if raw:
        half = register(raw_luminance(reference[None])[0], raw_luminance(moving[None])[0], model,
                        sigma, iterations, raw=False)
        return rescale_affine(half, 2.0, 0.5)
    ref, mov = _prepare(reference, sigma), _prepare(moving, sigma)
    dx, dy = phase_correlation(ref, mov, sigma=1.0)
    a = identity_affine().double()
    a[0, 2], a[1, 2] = dx, dy
    # coarse to fine: a half-resolution pass (positions scale by 2, offset 0.5) then the full resolution
    if min(ref.shape[-2:]) >= 64:
        ref2, mov2 = F.avg_pool2d(ref, 2), F.avg_pool2d(mov, 2)
        half = rescale_affine(a, 0.5, -0.25)
        half = _refine(ref2, mov2, half, model, iterations)
        a = rescale_affine(half, 2.0, 0.5)
    return _refine(ref, mov, a, model, iterations).float()


def register_burst(frames: Tensor, reference_index: int = 0, model: str = "affine", sigma: float = 1.0,
                   raw: bool = False) -> Tensor:
    """(T, 2, 3) affines registering every frame of a (T, C, H, W) burst to its reference frame."""
    reference = frames[reference_index]
    out = identity_affine(frames.shape[0])
    for t in range(frames.shape[0]):
        if t != reference_index:
            out[t] = register(reference, frames[t], model, sigma, raw=raw)
    return out


def motion_error(estimated: Tensor, true: Tensor, height: int, width: int) -> Tensor:
    """Per-frame mean displacement error (px) between two affines over an H x W grid (endpoint error)."""
    grid = pixel_grid(height, width).reshape(2, -1)
    est = torch.einsum("...ij,jk->...ik", estimated[..., :2], grid) + estimated[..., 2:]
    ref = torch.einsum("...ij,jk->...ik", true[..., :2], grid) + true[..., 2:]
    return (est - ref).norm(dim=-2).mean(dim=-1)
