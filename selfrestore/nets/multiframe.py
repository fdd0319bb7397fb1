"""A FastDVDnet-style multi-frame denoiser (Tassano et al. 2020), in plain torch.

Five consecutive frames in, the middle one restored. Two stages of the same small U-Net "denoising
block": stage 1 (shared weights) turns each overlapping triplet (0,1,2), (1,2,3), (2,3,4) into an
estimate of its middle frame; stage 2 fuses the three estimates. No explicit motion compensation: the
U-Nets learn to align. Differences from the paper: the last layer of each block starts at zero (so an untrained net returns its
middle frame), no noise-level map (blind denoising, as MF2F
fine-tunes it on unknown noise), no batch norm (fine-tuning uses batches of one video), and narrower
``width`` by default so that it runs on a CPU.

Input: (N, T*C, H, W) (frames stacked on channels, so tiled inference works unchanged) or
(N, T, C, H, W). Output: (N, C, H, W).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..registry import NETS


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.ReLU(inplace=True))


class DenoisingBlock(nn.Module):
    """Three frames -> the middle one: a 3-scale U-Net with pixel-shuffle upsampling, additive skips and
    a residual output (middle frame minus predicted noise)."""

    def __init__(self, channels: int, width: tuple[int, int, int]):
        super().__init__()
        w0, w1, w2 = width
        self.channels = channels
        self.inc = nn.Sequential(_conv(3 * channels, w0), _conv(w0, w0))
        self.down1 = nn.Sequential(_conv(w0, w1, stride=2), _conv(w1, w1))
        self.down2 = nn.Sequential(_conv(w1, w2, stride=2), _conv(w2, w2),
                                   nn.Conv2d(w2, 4 * w1, 3, padding=1), nn.PixelShuffle(2))
        self.up1 = nn.Sequential(_conv(w1, w1), nn.Conv2d(w1, 4 * w0, 3, padding=1), nn.PixelShuffle(2))
        self.out = nn.Sequential(_conv(w0, w0), nn.Conv2d(w0, channels, 3, padding=1))
        nn.init.zeros_(self.out[-1].weight)  # start as the identity on the middle frame
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, frames: Tensor) -> Tensor:
        c = self.channels
        middle = frames[:, c:2 * c]
        h0 = self.inc(frames)
        h1 = self.down1(h0)
        h = self.up1(self.down2(h1) + h1)
        return middle - self.out(h + h0)


@NETS.register("fastdvd", "multiframe")
class MultiFrameNet(nn.Module):
    """Two-stage five-frame denoiser; ``width`` = feature maps at the three scales of each block."""

    def __init__(self, in_channels: int = 3, out_channels: int = 3, frames: int = 5,
                 width: tuple[int, int, int] | list[int] = (16, 32, 64)):
        super().__init__()
        if frames != 5:
            raise ValueError("the FastDVDnet layout takes exactly 5 frames")
        if out_channels != in_channels:
            raise ValueError("out_channels must equal in_channels (residual output)")
        self.channels, self.frames, self.width = in_channels, frames, tuple(width)
        self.stage1 = DenoisingBlock(in_channels, self.width)
        self.stage2 = DenoisingBlock(in_channels, self.width)
        self.size_multiple = 4
        self.receptive_field = 2 * 30  # two blocks of radius <= 30 px each (checked by autograd in tests)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 5:
            x = x.flatten(1, 2)
        c = self.channels
        if x.shape[1] != self.frames * c:
            raise ValueError(f"expected {self.frames} frames of {c} channels, got {x.shape[1]} channels")
        triplets = torch.cat([x[:, i * c:(i + 3) * c] for i in range(3)], dim=0)  # one batched call
        middles = self.stage1(triplets).chunk(3, dim=0)
        return self.stage2(torch.cat(middles, dim=1))
