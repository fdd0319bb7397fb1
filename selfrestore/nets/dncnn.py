"""DnCNN (Zhang et al. 2017): a plain stack of 3x3 conv + BN + ReLU that predicts the residual (noise)."""
from __future__ import annotations

from torch import Tensor, nn

from ..registry import NETS


@NETS.register("dncnn")
class DnCNN(nn.Module):
    """``depth`` = 17 conv layers of ``width`` = 64 maps; output = input - predicted noise."""

    def __init__(self, in_channels: int = 3, out_channels: int = 3, width: int = 64, depth: int = 17):
        super().__init__()
        if out_channels != in_channels:
            raise ValueError("DnCNN predicts a residual: out_channels must equal in_channels")
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                       nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(width, out_channels, 3, padding=1))
        self.body = nn.Sequential(*layers)
        self.size_multiple = 1
        self.receptive_field = depth

    def forward(self, x: Tensor) -> Tensor:
        return x - self.body(x)
