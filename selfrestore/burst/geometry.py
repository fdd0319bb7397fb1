"""Affine motions in pixel coordinates, their conversions, and image warping.

An affine ``A`` (shape (..., 2, 3)) maps a point p = (x, y) to ``A[:, :2] @ p + A[:, 2]``. With the
burst convention ``frame_t(A_t p) ~ reference(p)``, warping frame t by ``A_t`` aligns it to the reference,
and the reference position of frame-t pixel q is ``A_t^{-1} q``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def identity_affine(*batch: int, device: torch.device | str = "cpu") -> Tensor:
    """Identity affines of shape (*batch, 2, 3) (no motion): the reference frame's, and where registration starts."""
    eye = torch.zeros(*batch, 2, 3, device=device)
    eye[..., 0, 0] = 1
    eye[..., 1, 1] = 1
    return eye


def rigid_affine(tx: Tensor | float, ty: Tensor | float, theta: Tensor | float,
                 center: tuple[float, float] = (0.0, 0.0)) -> Tensor:
    """Rotation by ``theta`` radians about ``center`` (x, y) followed by a shift (tx, ty)."""
    tx, ty, theta = (torch.as_tensor(v, dtype=torch.float32) for v in (tx, ty, theta))
    cos, sin = torch.cos(theta), torch.sin(theta)
    cx, cy = center
    row0 = torch.stack([cos, -sin, cx - cos * cx + sin * cy + tx], dim=-1)
    row1 = torch.stack([sin, cos, cy - sin * cx - cos * cy + ty], dim=-1)
    return torch.stack([row0, row1], dim=-2)


def _homogeneous(a: Tensor) -> Tensor:
    bottom = torch.zeros(*a.shape[:-2], 1, 3, device=a.device, dtype=a.dtype)
    bottom[..., 0, 2] = 1
    return torch.cat([a, bottom], dim=-2)


def invert_affine(a: Tensor) -> Tensor:
    """The inverse motion of ``a`` (..., 2, 3), e.g. to map frame-t pixels back to reference positions."""
    return torch.linalg.inv(_homogeneous(a))[..., :2, :]


def compose_affine(a: Tensor, b: Tensor) -> Tensor:
    """The affine p -> a(b(p))."""
    return (_homogeneous(a) @ _homogeneous(b))[..., :2, :]


def rescale_affine(a: Tensor, scale: float, offset: float) -> Tensor:
    """Express ``a`` (given in coordinates i) in coordinates u = scale * i + offset.

    Used between a low-resolution grid and the high-resolution one (offset (s - 1) / 2 for average-pooling
    by s), and between a Bayer raw and its half-resolution luminance (scale 2, offset 0.5).
    """
    s = torch.tensor([[scale, 0.0, offset], [0.0, scale, offset]], dtype=a.dtype, device=a.device)
    s_inv = invert_affine(s)
    return compose_affine(compose_affine(s.expand_as(a), a), s_inv.expand_as(a))


def translate_affine(a: Tensor, dx: float, dy: float) -> Tensor:
    """Express ``a`` in coordinates shifted by (dx, dy): p' = p - (dx, dy) (e.g. after cropping at (dy, dx))."""
    out = a.clone()
    out[..., 0, 2] = a[..., 0, 2] + a[..., 0, 0] * dx + a[..., 0, 1] * dy - dx
    out[..., 1, 2] = a[..., 1, 2] + a[..., 1, 0] * dx + a[..., 1, 1] * dy - dy
    return out


def pixel_grid(height: int, width: int, device: torch.device | str = "cpu") -> Tensor:
    """(2, H, W) pixel coordinates (x, y)."""
    ys, xs = torch.meshgrid(torch.arange(height, device=device, dtype=torch.float32),
                            torch.arange(width, device=device, dtype=torch.float32), indexing="ij")
    return torch.stack([xs, ys])


def apply_affine(a: Tensor, points: Tensor) -> Tensor:
    """Apply (N, 2, 3) affines to (N, 2, H, W) (or (2, H, W)) point maps."""
    if points.dim() == 3:
        points = points.unsqueeze(0).expand(a.shape[0], -1, -1, -1)
    return torch.einsum("nij,njhw->nihw", a[..., :2], points) + a[..., 2, None, None]


def affine_to_flow(a: Tensor, height: int, width: int) -> Tensor:
    """(N, 2, H, W) displacement field ``A p - p``."""
    grid = pixel_grid(height, width, a.device)
    return apply_affine(a, grid) - grid


def sample_at(image: Tensor, points: Tensor, mode: str = "bilinear",
              padding_mode: str = "border") -> Tensor:
    """Sample (N, C, H, W) images at (N, 2, h, w) pixel positions (x, y)."""
    h, w = image.shape[-2:]
    gx = 2 * points[:, 0] / max(w - 1, 1) - 1
    gy = 2 * points[:, 1] / max(h - 1, 1) - 1
    grid = torch.stack([gx, gy], dim=-1).to(image.dtype)
    return F.grid_sample(image, grid, mode=mode, padding_mode=padding_mode, align_corners=True)


def inside_mask(points: Tensor, height: int, width: int, margin: float = 0.0) -> Tensor:
    """(N, 1, h, w) 1 where the positions fall inside the image (with a margin), else 0."""
    x, y = points[:, 0:1], points[:, 1:2]
    ok = (x >= margin) & (x <= width - 1 - margin) & (y >= margin) & (y <= height - 1 - margin)
    return ok.to(points.dtype)


def warp_affine(image: Tensor, a: Tensor, mode: str = "bilinear", padding_mode: str = "border") -> Tensor:
    """out(p) = image(A p) for (N, C, H, W) images and (N, 2, 3) affines."""
    h, w = image.shape[-2:]
    return sample_at(image, apply_affine(a, pixel_grid(h, w, image.device)), mode, padding_mode)


def warp_flow(image: Tensor, flow: Tensor, mode: str = "bilinear", padding_mode: str = "border") -> Tensor:
    """out(p) = image(p + flow(p)) for (N, 2, H, W) flows (dx, dy)."""
    h, w = flow.shape[-2:]
    return sample_at(image, pixel_grid(h, w, flow.device) + flow, mode, padding_mode)


def max_displacement(a: Tensor, height: int, width: int) -> float:
    """Largest |A p - p| over the image corners (pixels)."""
    corners = torch.tensor([[0.0, 0.0], [width - 1.0, 0.0], [0.0, height - 1.0], [width - 1.0, height - 1.0]])
    pts = corners.T.reshape(1, 2, 4, 1).expand(a.reshape(-1, 2, 3).shape[0], -1, -1, -1)
    moved = apply_affine(a.reshape(-1, 2, 3), pts)
    return float((moved - pts).norm(dim=1).max()) if moved.numel() else 0.0


__all__ = ["identity_affine", "rigid_affine", "invert_affine", "compose_affine", "rescale_affine",
           "translate_affine", "pixel_grid", "apply_affine", "affine_to_flow", "sample_at", "inside_mask",
           "warp_affine", "warp_flow", "max_displacement"]
