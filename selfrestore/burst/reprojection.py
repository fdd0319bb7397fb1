"""Re-projection of a high-resolution estimate onto another frame of the burst (the self-supervised data term
of Deep Shift-and-Add, Nguyen et al. 2021, adapted from the frame-to-frame framework).

An estimate ``SR`` rendered on the high-resolution grid of a reference frame r predicts every other frame j
through the known acquisition operator:

    I_j ~ D(W_j(SR))      W_j: the motion r -> j on the high-resolution grid,  D: blur k then s x s pooling

Rendered on r's own grid (W = id), D always pools the same s x s blocks, so the detail inside each block
(the null space of D) never reaches the loss. Frame j samples the scene at another sub-pixel phase, so
D o W_j has another null space and, over the bursts of a training set, the whole estimate is constrained.

Affines follow the burst convention of :mod:`selfrestore.burst.geometry` (``frame_t(A_t p) ~ frame_0(p)``
in low-resolution px).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .geometry import apply_affine, compose_affine, inside_mask, invert_affine, pixel_grid, rescale_affine, sample_at
from .synthesis import downsample, lr_offset


def rebase_affines(affines: Tensor, reference: Tensor) -> Tensor:
    """Affines (N, T, 2, 3) registered to frame 0 re-expressed for a new reference frame ``reference`` (N,):
    B_t = A_t o A_r^{-1}, so that frame_t(B_t p) ~ frame_r(p)."""
    n, t = affines.shape[:2]
    a_r = affines[torch.arange(n, device=affines.device), reference.to(affines.device)]
    inverse = invert_affine(a_r).unsqueeze(1).expand(-1, t, -1, -1)
    return compose_affine(affines, inverse)


def reproject(sr: Tensor, affine: Tensor, scale: int, blur_sigma: float = 0.0,
              margin: float = 2.0) -> tuple[Tensor, Tensor]:
    """Predict frame j from an estimate on the reference's high-resolution grid.

    ``sr`` (N, C, s h, s w); ``affine`` (N, 2, 3) the low-resolution motion B_j with frame_j(B_j p) ~
    frame_r(p). Returns D(W_j(SR)) (N, C, h, w) and a mask (N, 1, h, w), 1 where the whole footprint of the
    low-resolution pixel (pooling block, blur support and a ``margin`` for bicubic interpolation) falls
    inside the estimate. W_j uses bicubic interpolation, as the synthesis of the frames does.
    """
    s = int(scale)
    height, width = sr.shape[-2:]
    # high-resolution frame-j pixel v sees the reference at H^{-1} v, H = B_j on the fine grid
    to_reference = invert_affine(rescale_affine(affine.float(), float(s), lr_offset(s)))
    points = apply_affine(to_reference, pixel_grid(height, width, sr.device))
    warped = sample_at(sr.float(), points, mode="bicubic")
    reach = margin + (math.ceil(3 * blur_sigma) if blur_sigma > 0 else 0)
    inside = inside_mask(points, height, width, margin=reach)
    valid = -F.max_pool2d(-inside, s) if s > 1 else inside  # a low-resolution pixel needs its whole block
    return downsample(warped, s, blur_sigma), valid


def reprojection_error(sr: Tensor, target: Tensor, affine: Tensor, scale: int, blur_sigma: float = 0.0,
                       border: int = 0, norm: str = "l1") -> Tensor:
    """|| D(W_j(SR)) - I_j || averaged over the valid pixels of I_j (those whose footprint lies inside the
    estimate, ``border`` low-resolution px away from the frame's edges): mean absolute error (``norm="l1"``,
    the paper's) or mean squared error ("l2": with noisy targets its minimiser is the mean, not the median,
    and the mean is the more efficient estimate under Gaussian-like noise: pi/2 fewer samples for the same
    variance)."""
    low, valid = reproject(sr, affine, scale, blur_sigma)
    if border > 0:
        keep = torch.zeros_like(valid)
        keep[..., border:-border, border:-border] = 1
        valid = valid * keep
    difference = low - target.float()
    if norm not in ("l1", "l2"):
        raise ValueError(f"norm must be 'l1' or 'l2', not {norm!r}")
    error = (difference.abs() if norm == "l1" else difference.square()) * valid
    return error.sum() / (valid.sum() * target.shape[1]).clamp_min(1.0)


__all__ = ["rebase_affines", "reproject", "reprojection_error"]
