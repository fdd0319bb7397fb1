"""Synthetic bursts from one clean image (for training data and benchmarks only).

Frame t is ``gain_t * Down_s(Warp(x, M_t))`` optionally Bayer-mosaicked, plus sensor noise, where M_t is a
random small rotation about the image centre plus a sub-pixel shift (frame 0 is the reference: M_0 = id,
gain 1). ``Down_s`` is a Gaussian blur of known width followed by s x s average pooling, so the known
point-spread function is (Gaussian * box) and a low-resolution pixel i sits at high-resolution coordinate
``s i + (s - 1) / 2``. Warping uses bicubic interpolation with reflected borders, and a margin larger than
any displacement is cropped from every frame and from the clean reference afterwards, so no frame sees
invented border content.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from ..corruption import Corruption, parse_corruption
from ..corruption.mosaic import mosaic
from ..errors import UserError
from .geometry import (identity_affine, invert_affine, rescale_affine, rigid_affine, translate_affine,
                       warp_affine)


@dataclass
class BurstConfig:
    """How a burst is synthesised. ``noise`` is a corruption name (``parse_corruption``) or a model."""

    frames: int = 5
    max_shift: float = 2.0          #: uniform shift in [-max_shift, max_shift] high-resolution px, per axis
    max_rotation: float = 1.0       #: uniform rotation in [-max_rotation, max_rotation] degrees
    exposure: tuple[float, float] = (1.0, 1.0)  #: per-frame gain range (frame 0 keeps gain 1)
    mosaic: bool = False            #: Bayer RGGB mosaic of each (low-resolution) frame
    scale: int = 1                  #: downsampling factor s
    blur_sigma: float = 0.0         #: Gaussian blur (high-resolution px) before s x s average pooling
    noise: str | Corruption | None = "pg0.004_0.02"
    extra: dict = field(default_factory=dict)

    def noise_model(self) -> Corruption | None:
        if self.noise is None or isinstance(self.noise, Corruption):
            return self.noise
        return parse_corruption(self.noise)


def gaussian_kernel1d(sigma: float, device: torch.device | str = "cpu") -> Tensor:
    """Normalised 1-D Gaussian kernel of radius max(1, ceil(3 sigma)), for separable blurs."""
    radius = max(1, int(math.ceil(3 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32, device=device)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of (N, C, H, W) with reflected borders (identity for sigma <= 0)."""
    if sigma <= 0:
        return x
    k = gaussian_kernel1d(sigma, x.device).to(x.dtype)
    r = k.numel() // 2
    c = x.shape[1]
    x = F.pad(x, (r, r, r, r), mode="reflect" if min(x.shape[-2:]) > r else "replicate")
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def downsample(x: Tensor, scale: int, blur_sigma: float = 0.0) -> Tensor:
    """The known acquisition operator: Gaussian blur then s x s average pooling (differentiable)."""
    x = gaussian_blur(x, blur_sigma)
    return F.avg_pool2d(x, scale) if scale > 1 else x


def lr_offset(scale: int) -> float:
    """High-resolution coordinate of low-resolution pixel 0 (centre of its s x s block)."""
    return (scale - 1) / 2


def random_motions(n: int, frames: int, config: BurstConfig, center: tuple[float, float],
                   generator: torch.Generator | None) -> Tensor:
    """(n, T, 2, 3) high-resolution motions M_t (frame t samples the scene at M_t u); M_0 = identity."""
    shift = (torch.rand(n, frames, 2, generator=generator) * 2 - 1) * config.max_shift
    angle = (torch.rand(n, frames, generator=generator) * 2 - 1) * math.radians(config.max_rotation)
    shift[:, 0] = 0
    angle[:, 0] = 0
    return rigid_affine(shift[..., 0], shift[..., 1], angle, center)


def synthesize_burst(clean: Tensor, config: BurstConfig, generator: torch.Generator | None = None
                     ) -> dict[str, Tensor]:
    """Synthesise bursts from clean images (N, C, H, W) in [0, 1].

    Returns ``frames`` (N, T, C', h, w) (C' = 1 when mosaicked), ``clean`` (N, C, s h, s w) the reference
    frame's ground truth on the high-resolution grid, ``motion`` (N, T, 2, 3) the true low-resolution
    affines (``frame_t(A_t p) ~ frame_0(p)``), and ``gains`` (N, T).
    """
    if clean.dim() != 4:
        raise UserError(f"synthesize_burst needs (N, C, H, W) images, got {tuple(clean.shape)}")
    if config.frames < 1 or config.scale < 1:
        raise UserError("a burst needs at least 1 frame and a scale >= 1")
    if config.mosaic and clean.shape[1] != 3:
        raise UserError("a Bayer mosaic needs RGB images")
    n, c, h, w = clean.shape
    s, t_count = config.scale, config.frames
    center = ((w - 1) / 2, (h - 1) / 2)
    motions = random_motions(n, t_count, config, center, generator)
    # margin (in low-resolution px) larger than any displacement plus the blur support
    reach = config.max_shift + math.radians(config.max_rotation) * math.hypot(h, w) / 2 + 3 * config.blur_sigma
    margin = int(math.ceil((reach + 2) / s))
    lr_h, lr_w = h // s - 2 * margin, w // s - 2 * margin
    if config.mosaic:
        lr_h, lr_w = lr_h - lr_h % 2, lr_w - lr_w % 2
    if lr_h < 4 or lr_w < 4:
        raise UserError(f"image {h}x{w} is too small for this burst (scale {s}, margin {margin})")

    gains = torch.ones(n, t_count)
    if config.exposure != (1.0, 1.0):
        lo, hi = config.exposure
        gains[:, 1:] = lo + (hi - lo) * torch.rand(n, t_count - 1, generator=generator)

    frames = []
    for t in range(t_count):
        warped = warp_affine(clean, motions[:, t].to(clean.device), mode="bicubic", padding_mode="reflection")
        low = downsample(warped, s, config.blur_sigma)[..., margin:margin + lr_h, margin:margin + lr_w]
        low = low * gains[:, t].view(n, 1, 1, 1).to(low)
        frames.append(mosaic(low) if config.mosaic else low)
    frames_t = torch.stack(frames, dim=1)
    noise = config.noise_model()
    if noise is not None:
        flat = frames_t.reshape(n * t_count, *frames_t.shape[2:])
        frames_t = noise.sample(flat, generator).reshape(frames_t.shape)

    # true low-resolution motion of the cropped frames
    lr_motion = rescale_affine(invert_affine(motions), 1.0 / s, -lr_offset(s) / s)
    lr_motion = translate_affine(lr_motion, float(margin), float(margin))
    reference = clean[..., s * margin:s * (margin + lr_h), s * margin:s * (margin + lr_w)]
    return {"frames": frames_t, "clean": reference, "motion": lr_motion, "gains": gains}


__all__ = ["BurstConfig", "synthesize_burst", "downsample", "gaussian_blur", "lr_offset", "identity_affine"]
