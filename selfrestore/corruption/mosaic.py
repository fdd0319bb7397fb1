"""Bayer colour filter array (RGGB): mosaic / re-mosaic, packing to 4 channels, bilinear demosaicking.

A raw image is a tensor of shape (N, 1, H, W) with H and W even. In the RGGB pattern the 2x2 tile is

    R  G1
    G2 B

so R sits at (even row, even col), G at (even, odd) and (odd, even), B at (odd, odd). "Re-mosaicking" an
RGB estimate (keep, at each pixel, only the channel the sensor measured there) is the observation operator
that the mosaic-to-mosaic loss (Ehret et al. 2019) compares against a raw frame.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import UserError

#: (row, col) offset inside the 2x2 tile -> RGB channel, for the RGGB pattern, in packing order
RGGB_SITES: tuple[tuple[int, int, int], ...] = ((0, 0, 0), (0, 1, 1), (1, 0, 1), (1, 1, 2))


def _check_even(h: int, w: int) -> None:
    if h % 2 or w % 2:
        raise UserError(f"a Bayer mosaic needs even height and width, got {h}x{w}")


def bayer_mask(height: int, width: int, device: torch.device | str = "cpu",
               dtype: torch.dtype = torch.float32) -> Tensor:
    """(1, 3, H, W) mask: 1 where the sensor measured that colour, 0 elsewhere (exactly one 1 per pixel)."""
    _check_even(height, width)
    mask = torch.zeros(1, 3, height, width, device=device, dtype=dtype)
    for dy, dx, channel in RGGB_SITES:
        mask[:, channel, dy::2, dx::2] = 1
    return mask


def mosaic(rgb: Tensor) -> Tensor:
    """RGB (N, 3, H, W) -> raw (N, 1, H, W): the measured colour at each pixel (differentiable)."""
    if rgb.dim() != 4 or rgb.shape[1] != 3:
        raise UserError(f"mosaic needs RGB images of shape (N, 3, H, W), got {tuple(rgb.shape)}")
    mask = bayer_mask(rgb.shape[-2], rgb.shape[-1], rgb.device, rgb.dtype)
    return (rgb * mask).sum(dim=1, keepdim=True)


remosaic = mosaic  #: the same operator, named for its use in the mosaic-to-mosaic loss


def mask_raw(raw: Tensor) -> Tensor:
    """Raw (N, 1, H, W) -> sparse RGB (N, 3, H, W) with zeros where a colour was not measured."""
    return raw * bayer_mask(raw.shape[-2], raw.shape[-1], raw.device, raw.dtype)


def pack_raw(raw: Tensor) -> Tensor:
    """Raw (N, 1, H, W) -> (N, 4, H/2, W/2) planes in R, G1, G2, B order (what a raw network sees)."""
    _check_even(raw.shape[-2], raw.shape[-1])
    return torch.cat([raw[:, :, dy::2, dx::2] for dy, dx, _ in RGGB_SITES], dim=1)


def unpack_raw(packed: Tensor) -> Tensor:
    """Inverse of :func:`pack_raw`."""
    n, _, h, w = packed.shape
    raw = packed.new_zeros(n, 1, 2 * h, 2 * w)
    for index, (dy, dx, _) in enumerate(RGGB_SITES):
        raw[:, 0, dy::2, dx::2] = packed[:, index]
    return raw


def raw_luminance(raw: Tensor) -> Tensor:
    """(N, 1, H/2, W/2) mean of each 2x2 Bayer tile: a half-resolution, colour-blind proxy that is free of
    the mosaic pattern (used for registration). Its pixel i sits at full-resolution coordinate 2 i + 0.5."""
    return pack_raw(raw).mean(dim=1, keepdim=True)


_KERNEL_G = torch.tensor([[0, 1, 0], [1, 4, 1], [0, 1, 0]], dtype=torch.float32) / 4
_KERNEL_RB = torch.tensor([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=torch.float32) / 4


def bilinear_demosaic(raw: Tensor) -> Tensor:
    """Classical bilinear demosaicking of an RGGB raw (N, 1, H, W) -> RGB (N, 3, H, W).

    Each channel is its sparse samples convolved with the bilinear interpolation kernel; measured samples
    are kept exactly. Borders use reflection padding, which respects the 2-periodic pattern.
    """
    sparse = mask_raw(raw)
    padded = F.pad(sparse, (1, 1, 1, 1), mode="reflect")
    kernels = torch.stack([_KERNEL_RB, _KERNEL_G, _KERNEL_RB]).unsqueeze(1).to(raw.device, raw.dtype)
    return F.conv2d(padded, kernels, groups=3)
