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


def _neighbour(index: Tensor, offset: Tensor, size: int) -> Tensor:
    """``index + offset`` inside [0, size): past a border the offset is taken the other way (a non-zero
    offset then never lands on ``index`` itself, which mirroring the index did: -2 from row 1 gave row 1);
    clamped only in images smaller than the radius."""
    ahead = index + offset
    return torch.where((ahead < 0) | (ahead >= size), index - offset, ahead).clamp(0, size - 1)


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
    side = 2 * radius + 1  # one of the side^2 - 1 non-zero offsets, uniformly, without listing them
    pick = torch.randint(0, side * side - 1, (rows.numel(),), generator=generator)
    pick = pick + (pick >= radius * side + radius).long()  # skip (0, 0)
    src_rows = _neighbour(rows, pick // side - radius, h)
    src_cols = _neighbour(cols, pick % side - radius, w)
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
    corrects_clipped_noise: ClassVar[bool] = True
    default_net: ClassVar[str] = "unet"
    supports_adaptation: ClassVar[bool] = True  # needs only the noisy image
    needs_independent_noise: ClassVar[bool] = True  # the masked pixel is predicted from its neighbours
    cli_options: ClassVar[dict[str, dict[str, Any]]] = {
        "mask_ratio": {"type": float, "default": 0.002, "help": "n2v: fraction of pixels masked per patch"},
        "neighbour_radius": {"type": int, "default": 2,
                             "help": "n2v: masked pixels take the value of a random pixel within this radius (1-16)"},
    }

    def __init__(self, noise: Corruption | None = None, mask_ratio: float = 0.002, neighbour_radius: int = 2,
                 width: int | None = None, depth: int | None = None, **options: Any):
        if not 0 < mask_ratio <= 0.5:
            raise UserError(f"n2v: mask ratio must be in (0, 0.5], got {mask_ratio}")
        if not 1 <= neighbour_radius <= 16:  # the paper's 5x5 window is radius 2
            raise UserError(f"n2v: neighbour radius must be 1-16, got {neighbour_radius}")
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
