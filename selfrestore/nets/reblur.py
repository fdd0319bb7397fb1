"""Networks of Nah et al. 2022 ("Clean Images are Hard to Reblur", ICLR 2022).

* :class:`ReblurNet`, the reblurring module M_R: a deliberately small ResNet (a 5x5 head convolution,
  1 or 2 residual blocks (5x5 conv, ReLU, 5x5 conv), a 5x5 tail convolution and a global skip, so that
  M_R(x) = x + r(x)). Its job is to *amplify the blur that remains* in a deblurred image; its small
  receptive field keeps it from learning to synthesise blur out of nothing, so a really sharp image (no
  blur left to amplify) passes through almost unchanged.
* :class:`ResidualUNet`, a deblurring network M_D: the N2N U-Net predicting a correction to its input,
  M_D(B) = B + U(B), with U's last convolution started at zero (so M_D starts as the identity, as the
  paper's deblurring baselines with a global skip do). A plain U-Net must first learn to reproduce the
  image before it can sharpen it; with the skip, every step of a short CPU training goes to the blur.
"""
from __future__ import annotations

from torch import Tensor, nn

from ..registry import NETS
from .unet import UNet


class _ResBlock(nn.Module):
    def __init__(self, features: int, kernel_size: int):
        super().__init__()
        pad = kernel_size // 2
        self.body = nn.Sequential(
            nn.Conv2d(features, features, kernel_size, padding=pad),
            nn.ReLU(inplace=True),
            nn.Conv2d(features, features, kernel_size, padding=pad),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


@NETS.register("reblur_resnet")
class ReblurNet(nn.Module):
    """M_R: image (N, C, H, W) -> reblurred image of the same size. ``blocks`` is 1 or 2 as in the paper."""

    size_multiple = 1

    def __init__(self, in_channels: int = 3, out_channels: int | None = None, features: int = 32,
                 blocks: int = 1, kernel_size: int = 5):
        super().__init__()
        out_channels = in_channels if out_channels is None else out_channels
        if blocks < 1:
            raise ValueError("the reblurring module needs at least one residual block")
        if kernel_size % 2 == 0:
            raise ValueError("kernel size must be odd")
        pad = kernel_size // 2
        self.head = nn.Conv2d(in_channels, features, kernel_size, padding=pad)
        self.blocks = nn.Sequential(*[_ResBlock(features, kernel_size) for _ in range(blocks)])
        self.tail = nn.Conv2d(features, out_channels, kernel_size, padding=pad)
        self.skip = in_channels == out_channels
        #: radius in pixels of the input region one output pixel depends on
        self.receptive_field = pad * (2 + 2 * blocks)

    def forward(self, x: Tensor) -> Tensor:
        r = self.tail(self.blocks(self.head(x)))
        return x + r if self.skip else r


@NETS.register("unet_residual")
class ResidualUNet(nn.Module):
    """M_D(B) = B + U(B) with U the N2N :class:`~selfrestore.nets.unet.UNet` (same ``width`` / ``depth``);
    U's output convolution starts at zero, so the untrained network is the identity."""

    def __init__(self, in_channels: int = 3, out_channels: int = 3, width: int = 48, depth: int = 5):
        super().__init__()
        if in_channels != out_channels:
            raise ValueError("a residual network needs as many output channels as input channels")
        self.body = UNet(in_channels, out_channels, width=width, depth=depth)
        last = self.body.dec0[-1]
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.size_multiple = self.body.size_multiple
        self.receptive_field = self.body.receptive_field

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)
