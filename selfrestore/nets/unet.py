"""The Noise2Noise U-Net (Lehtinen et al. 2018, appendix A.1), in plain torch.

Five 2x2 max-pool levels, ``width`` = 48 feature maps in the encoder, 2 * width in the decoder, leaky ReLU
(slope 0.1), nearest-neighbour upsampling, skip connections by concatenation, linear output. Input sizes
must be multiples of ``size_multiple`` = 2**depth (restoration pads as needed).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..registry import NETS


def conv3(cin: int, cout: int) -> nn.Conv2d:
    """A 3x3 convolution with zero padding 1 (the output keeps the input's size), the U-Net's building block."""
    return nn.Conv2d(cin, cout, 3, padding=1)


def _act() -> nn.Module:
    return nn.LeakyReLU(0.1, inplace=True)


def _encoder_layers(in_channels: int, width: int, depth: int) -> tuple[nn.Sequential, nn.ModuleList]:
    """ENC_CONV0-1 (two convs) and one conv per lower level, the last one the bottleneck."""
    enc0 = nn.Sequential(conv3(in_channels, width), _act(), conv3(width, width), _act())
    return enc0, nn.ModuleList([nn.Sequential(conv3(width, width), _act()) for _ in range(depth)])


def _encode(module: nn.Module, x: Tensor) -> tuple[list[Tensor], Tensor]:
    """Run ``module``'s encoder (its ``enc0``, ``enc``, ``pool``, ``depth``): the skips (input first) and the
    bottleneck features."""
    skips = [x]
    h = module.pool(module.enc0(x))          # level 1
    for i in range(module.depth - 1):
        skips.append(h)
        h = module.pool(module.enc[i](h))    # levels 2..depth
    return skips, module.enc[module.depth - 1](h)  # bottleneck (ENC_CONV6)


@NETS.register("unet")
class UNet(nn.Module):
    """Encoder-decoder with skips; ``width`` 48 and ``depth`` 5 reproduce the N2N network (~1.0 M params)."""

    def __init__(self, in_channels: int = 3, out_channels: int = 3, width: int = 48, depth: int = 5):
        super().__init__()
        self.depth, self.width = depth, width
        self.size_multiple = 2**depth
        self.receptive_field = unet_receptive_radius(depth)
        w, d = width, 2 * width
        self.enc0, self.enc = _encoder_layers(in_channels, w, depth)
        self.pool = nn.MaxPool2d(2)
        # decoder level l (from depth-1 down to 1): concat(up, skip) -> 2 convs of d maps
        self.dec = nn.ModuleList()
        for level in range(depth - 1, 0, -1):
            cin = (w if level == depth - 1 else d) + w
            self.dec.append(nn.Sequential(conv3(cin, d), _act(), conv3(d, d), _act()))
        # with depth 1 no decoder level runs: the bottleneck's w maps (not d) meet the input
        self.dec0 = nn.Sequential(conv3((d if depth > 1 else w) + in_channels, 64), _act(), conv3(64, 32), _act(),
                                  conv3(32, out_channels))
        self.up = nn.Upsample(scale_factor=2, mode="nearest")

    def forward(self, x: Tensor) -> Tensor:
        skips, h = _encode(self, x)
        for block in self.dec:
            h = block(torch.cat([self.up(h), skips.pop()], dim=1))
        return self.dec0(torch.cat([self.up(h), skips.pop()], dim=1))


def unet_receptive_radius(depth: int) -> int:
    """How far (in pixels) an output pixel can see: each 3x3 conv at scale s adds s, each 2x2 pool s,
    nearest upsampling from scale s adds up to s. An upper bound, checked by autograd in the tests."""
    r = 2 + 1                                   # enc0 (two convs) + pool at scale 1
    for level in range(1, depth):               # conv + pool at scales 2 .. 2**(depth-1)
        r += 2 * 2**level
    r += 2**depth                               # bottleneck conv
    for level in range(depth - 1, 0, -1):       # upsample + two convs
        r += 2**(level + 1) + 2 * 2**level
    r += 2 + 3                                  # last upsample + three convs at scale 1
    return r


class _Encoder(nn.Module):
    """The N2N U-Net's encoder alone: returns the skips (input first) and the bottleneck features."""

    def __init__(self, in_channels: int, width: int, depth: int):
        super().__init__()
        self.depth = depth
        self.enc0, self.enc = _encoder_layers(in_channels, width, depth)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: Tensor) -> tuple[list[Tensor], Tensor]:
        return _encode(self, x)


@NETS.register("dual_unet")
class DualEncoderUNet(nn.Module):
    """Two-input U-Net: the two halves of the input channels (SelfIR's blurry and noisy shots, in that order)
    go through separate encoders, whose skips and bottlenecks one decoder reads together. This is the layout
    of the SelfIR authors' network (two encoders, late fusion); the plain ``unet`` fuses the two inputs at
    its first layer. Same levels, widths and receptive field as :class:`UNet`."""

    def __init__(self, in_channels: int = 6, out_channels: int = 3, width: int = 48, depth: int = 5):
        super().__init__()
        if in_channels % 2:
            raise ValueError(f"dual_unet takes two inputs of equal channels: in_channels must be even, "
                             f"not {in_channels}")
        self.depth, self.width = depth, width
        self.size_multiple = 2**depth
        self.receptive_field = unet_receptive_radius(depth)
        w, d = width, 2 * width
        self.first, self.second = _Encoder(in_channels // 2, w, depth), _Encoder(in_channels // 2, w, depth)
        self.dec = nn.ModuleList()
        for level in range(depth - 1, 0, -1):
            cin = (2 * w if level == depth - 1 else d) + 2 * w
            self.dec.append(nn.Sequential(conv3(cin, d), _act(), conv3(d, d), _act()))
        self.dec0 = nn.Sequential(conv3((d if depth > 1 else 2 * w) + in_channels, 64), _act(), conv3(64, 32),
                                  _act(), conv3(32, out_channels))
        self.up = nn.Upsample(scale_factor=2, mode="nearest")

    def forward(self, x: Tensor) -> Tensor:
        half = x.shape[1] // 2
        skips_a, h_a = self.first(x[:, :half])
        skips_b, h_b = self.second(x[:, half:])
        h = torch.cat([h_a, h_b], dim=1)
        for block in self.dec:
            h = block(torch.cat([self.up(h), skips_a.pop(), skips_b.pop()], dim=1))
        return self.dec0(torch.cat([self.up(h), x], dim=1))
