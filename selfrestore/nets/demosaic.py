"""A small joint demosaicking + denoising network for RGGB raw frames (the mosaic-to-mosaic network).

The raw frame (N, 1, H, W) is packed into its four Bayer planes at half resolution, processed by a plain
convolutional stack with one coarser (quarter-resolution) level for a wider view, and unpacked by pixel
shuffle into a full-resolution RGB correction of the bilinear demosaic. Predicting a residual on top of
bilinear demosaicking makes the untrained network already a sensible demosaicker.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..corruption.mosaic import bilinear_demosaic, pack_raw
from ..registry import NETS


def _block(cin: int, cout: int, depth: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1), nn.LeakyReLU(0.1, inplace=True)]
    return nn.Sequential(*layers)


@NETS.register("demosaic")
class RawDemosaicNet(nn.Module):
    """Raw (N, 1, H, W) RGGB -> RGB (N, 3, H, W). H and W must be even."""

    size_multiple = 2

    def __init__(self, in_channels: int = 1, out_channels: int = 3, features: int = 32, depth: int = 3):
        super().__init__()
        self.head = _block(4, features, depth)
        self.down = _block(features, 2 * features, depth)
        self.up = nn.ConvTranspose2d(2 * features, features, 2, stride=2)
        self.tail = _block(2 * features, features, depth)
        self.out = nn.Conv2d(features, 4 * out_channels, 3, padding=1)
        with torch.no_grad():  # start close to bilinear demosaicking, but not at a dead zero
            self.out.weight.mul_(0.1)
            self.out.bias.zero_()
        self.receptive_field = 2 * (depth + 2 * depth + depth + 2) + 4

    def forward(self, raw: Tensor) -> Tensor:
        packed = pack_raw(raw) - 0.5  # centred input
        h, w = packed.shape[-2:]
        packed = F.pad(packed, (0, w % 2, 0, h % 2), mode="replicate")  # the coarse level needs even sizes
        high = self.head(packed)
        low = self.down(F.max_pool2d(high, 2))
        merged = self.tail(torch.cat([high, self.up(low)], dim=1))
        correction = F.pixel_shuffle(self.out(merged)[..., :h, :w], 2).float()
        return bilinear_demosaic(raw) + correction
