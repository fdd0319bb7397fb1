"""Noise2Void (Krull, Buchholz & Jug 2019): blind-spot training by masking, on an ordinary network.

A few pixels per patch (``mask_ratio``, 0.2 % by default as in the reference implementation; chosen by
stratified sampling, one per box of side ~1/sqrt(ratio)) have all their channels replaced by a random
neighbour's value from a (2r+1)^2 window (``neighbour_radius`` r = 2), never the pixel itself. The net sees the
modified patch and is trained by L2 against the *original* noisy values at the masked pixels only, so it
cannot learn the identity. Restoration runs the net on the unmodified image.
"""
from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..corruption import Corruption
from ..errors import UserError
from ..registry import METHODS
from .base import Method, masked_mean


def _reflect(index: Tensor, size: int) -> Tensor:
    """Mirror indices into [0, size) without repeating the edge (so a non-zero offset never maps back to
    the centre pixel)."""
    if size == 1:
        return torch.zeros_like(index)
    period = 2 * (size - 1)
    index = torch.remainder(index, period)
    return torch.where(index < size, index, period - index)


def n2v_mask(y: Tensor, ratio: float = 0.002, radius: int = 2,
             generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """(masked input, mask): ``mask`` (N, 1, H, W) is 1 at the chosen pixels, whose values in the masked
    input come from a random other pixel within ``radius``."""
    n, c, h, w = y.shape
    box = max(1, int(round(1.0 / math.sqrt(ratio))))
    by, bx = math.ceil(h / box), math.ceil(w / box)
    rows = torch.arange(by).view(1, by, 1) * box + torch.randint(0, box, (n, by, bx), generator=generator)
    cols = torch.arange(bx).view(1, 1, bx) * box + torch.randint(0, box, (n, by, bx), generator=generator)
    batch = torch.arange(n).view(n, 1, 1).expand(n, by, bx)
    keep = (rows < h) & (cols < w)
    batch, rows, cols = batch[keep], rows[keep], cols[keep]
    offsets = torch.tensor([(dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)
                            if (dy, dx) != (0, 0)])
    pick = offsets[torch.randint(0, len(offsets), (rows.numel(),), generator=generator)]
    src_rows, src_cols = _reflect(rows + pick[:, 0], h), _reflect(cols + pick[:, 1], w)
    batch, rows, cols = batch.to(y.device), rows.to(y.device), cols.to(y.device)
    src_rows, src_cols = src_rows.to(y.device), src_cols.to(y.device)
    masked = y.clone()
    masked[batch, :, rows, cols] = y[batch, :, src_rows, src_cols]
    mask = torch.zeros((n, 1, h, w), dtype=y.dtype, device=y.device)
    mask[batch, 0, rows, cols] = 1
    return masked, mask


@METHODS.register("n2v", "noise2void")
class Noise2Void(Method):
    name: ClassVar[str] = "n2v"
    batch_kind: ClassVar[str] = "single"
    default_net: ClassVar[str] = "unet"
    supports_adaptation: ClassVar[bool] = True  # needs only the noisy image
    needs_independent_noise: ClassVar[bool] = True  # the masked pixel is predicted from its neighbours
    cli_options: ClassVar[dict[str, dict[str, Any]]] = {
        "mask_ratio": {"type": float, "default": 0.002, "help": "n2v: fraction of pixels masked per patch"},
        "neighbour_radius": {"type": int, "default": 2,
                             "help": "n2v: masked pixels take the value of a random pixel within this radius"},
    }

    def __init__(self, noise: Corruption | None = None, mask_ratio: float = 0.002, neighbour_radius: int = 2,
                 width: int | None = None, depth: int | None = None, **options: Any):
        if not 0 < mask_ratio <= 0.5:
            raise UserError(f"n2v: mask ratio must be in (0, 0.5], got {mask_ratio}")
        if neighbour_radius < 1:
            raise UserError(f"n2v: neighbour radius must be >= 1, got {neighbour_radius}")
        net_size = {k: v for k, v in (("width", width), ("depth", depth)) if v is not None}
        super().__init__(noise, mask_ratio=float(mask_ratio), neighbour_radius=int(neighbour_radius), **net_size,
                         **options)
        self.mask_ratio, self.radius, self.net_size = float(mask_ratio), int(neighbour_radius), net_size

    def net_kwargs(self, channels: int) -> dict[str, Any]:
        return {"in_channels": channels, "out_channels": channels, **self.net_size}

    def loss(self, net: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        y = batch["noisy"]
        masked, mask = n2v_mask(y, self.mask_ratio, self.radius)
        out = net(masked).float()
        return masked_mean((out - y.float()) ** 2, mask)
