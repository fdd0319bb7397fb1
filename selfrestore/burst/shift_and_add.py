"""Shift-and-add: splat every low-resolution sample of every frame onto the high-resolution reference grid.

``splat`` is bilinear forward splatting (each sample spreads onto its 4 nearest grid nodes with bilinear
weights), differentiable with respect to both the values and the positions; Deep Shift-and-Add splats
features with it. ``normalize`` turns accumulated (value, weight) sums into an image, filling nodes that no
sample reached by normalised convolution at a coarser scale (Knutsson & Westin 1993), so there are no holes.
The classical baseline is ``shift_and_add``: register, splat raw samples (each Bayer sample only into its own
colour), normalise.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..corruption.mosaic import bayer_mask, mask_raw
from .geometry import affine_to_flow, invert_affine, pixel_grid
from .registration import register_burst
from .synthesis import gaussian_blur, lr_offset


def flow_to_positions(flow: Tensor, scale: int) -> Tensor:
    """High-resolution reference positions (N, 2, h, w) of the low-resolution samples displaced by ``flow``
    (the flow of a frame to the reference, in low-resolution px)."""
    grid = pixel_grid(flow.shape[-2], flow.shape[-1], flow.device).to(flow.dtype)
    return scale * (grid + flow) + lr_offset(scale)


def affine_positions(affines: Tensor, height: int, width: int, scale: int) -> Tensor:
    """Positions (N, 2, h, w) for motions ``A`` with frame(A p) ~ reference(p): samples land at A^-1 q."""
    return flow_to_positions(affine_to_flow(invert_affine(affines), height, width), scale)


def splat(values: Tensor, positions: Tensor, size: tuple[int, int], weights: Tensor | None = None
          ) -> tuple[Tensor, Tensor]:
    """Bilinear forward splatting. values (N, C, h, w), positions (N, 2, h, w) as (x, y) on an H x W grid;
    optional per-sample weights (N, C or 1, h, w). Returns (sum of w v, sum of w): (N, C, H, W) and
    (N, C or 1, H, W) (one weight channel when the weights are shared by all channels)."""
    n, c = values.shape[:2]
    height, width = size
    x, y = positions[:, 0].reshape(n, 1, -1), positions[:, 1].reshape(n, 1, -1)
    x0, y0 = torch.floor(x), torch.floor(y)
    fx, fy = x - x0, y - y0
    # integer node coordinates and flat indices in int64: in float32 the flat index y * W + x loses whole pixels
    # above 2^24 nodes (a sample moved one column, or an index past the end); non-finite positions (weight 0)
    # get any in-range index
    finite = torch.isfinite(x0) & torch.isfinite(y0)
    fx, fy = torch.where(finite, fx, torch.zeros_like(fx)), torch.where(finite, fy, torch.zeros_like(fy))
    x0i = torch.where(finite, x0, torch.zeros_like(x0)).clamp(-2, width + 1).long()
    y0i = torch.where(finite, y0, torch.zeros_like(y0)).clamp(-2, height + 1).long()
    vals = values.float().reshape(n, c, -1)  # accumulate in float32 (also under bf16 autocast)
    base_w = torch.ones_like(vals[:, :1]) if weights is None else weights.float().reshape(n, weights.shape[1], -1)
    cw = base_w.shape[1]
    acc = vals.new_zeros(n, c, height * width)
    wsum = vals.new_zeros(n, cw, height * width)
    for dx, dy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        xi, yi = x0 + dx, y0 + dy
        inside = ((xi >= 0) & (xi <= width - 1) & (yi >= 0) & (yi <= height - 1)).float()
        index = (y0i + dy).clamp(0, height - 1) * width + (x0i + dx).clamp(0, width - 1)
        weight = w.float() * inside * base_w
        acc = acc.scatter_add(2, index.expand(n, c, -1), (weight * vals) if cw == c else weight.expand(n, c, -1) * vals)
        wsum = wsum.scatter_add(2, index.expand(n, cw, -1), weight)
    return acc.view(n, c, height, width), wsum.view(n, cw, height, width)


def normalize(acc: Tensor, wsum: Tensor, fill_sigma: float = 2.0, prior: float = 0.05) -> Tensor:
    """acc / wsum, with poorly covered nodes pulled toward a coarser normalised convolution."""
    coarse = gaussian_blur(acc, fill_sigma) / gaussian_blur(wsum, fill_sigma).clamp_min(1e-6)
    return (acc + prior * coarse) / (wsum + prior)


def shift_and_add(frames: Tensor, affines: Tensor | None = None, scale: int = 1, raw: bool = False,
                  gains: Tensor | None = None, model: str = "affine", fill_sigma: float | None = None,
                  prior: float = 0.05, valid: tuple[int, int] | None = None) -> Tensor:
    """Classical shift-and-add of one burst (T, C, h, w) (or (N, T, C, h, w)) onto the reference grid.

    ``affines`` (T, 2, 3) register each frame to frame 0 (estimated from the frames when omitted);
    ``raw`` treats (T, 1, h, w) frames as RGGB Bayer and returns RGB; ``gains`` divides each frame.
    ``fill_sigma`` (default max(1, s)) and ``prior`` set the normalisation (see :func:`normalize`).
    ``valid``: (rows, columns) of the frames that are data; those past them (a raw frame padded to whole Bayer
    tiles) are given no weight. Returns (C', s h, s w) (or (N, C', s h, s w)).
    """
    batched = frames.dim() == 5
    if not batched:
        frames = frames.unsqueeze(0)
        affines = None if affines is None else affines.unsqueeze(0)
        gains = None if gains is None else gains.unsqueeze(0)
    n, t, c, h, w = frames.shape
    if affines is None:
        affines = torch.stack([register_burst(f, model=model, raw=raw) for f in frames])
    if gains is not None:
        frames = frames / gains.view(n, t, 1, 1, 1).to(frames)
    flat = frames.reshape(n * t, c, h, w)
    if raw:
        values, weights = mask_raw(flat), bayer_mask(h, w, flat.device, flat.dtype).expand(n * t, -1, -1, -1)
    else:
        values, weights = flat, None
    if valid is not None and tuple(valid) != (h, w):
        keep = torch.zeros(1, 1, h, w, dtype=flat.dtype, device=flat.device)
        keep[..., :valid[0], :valid[1]] = 1
        weights = keep.expand(n * t, -1, -1, -1) if weights is None else weights * keep
    positions = affine_positions(affines.reshape(n * t, 2, 3).to(flat), h, w, scale)
    acc, wsum = splat(values, positions, (scale * h, scale * w), weights)
    acc = acc.view(n, t, *acc.shape[1:]).sum(dim=1)
    wsum = wsum.view(n, t, *wsum.shape[1:]).sum(dim=1)
    out = normalize(acc, wsum, fill_sigma=max(1.0, float(scale)) if fill_sigma is None else fill_sigma, prior=prior)
    return out if batched else out[0]
