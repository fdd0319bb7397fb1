"""Deep Shift-and-Add (Nguyen et al. 2021, "Self-supervised multi-image super-resolution for push-frame
satellite images"): a per-frame encoder, motion to the reference frame, differentiable shift-and-add
splatting of the features onto the high-resolution reference grid, and a decoder.

Motion: the global affine from classical registration (:mod:`selfrestore.burst.registration`, robust to
noise and aliasing) converted to a dense flow, plus a small learned residual flow (last layer initialised at
zero, bounded by ``max_residual``), trained by the motion loss of the method. Starting from the classical
estimate keeps training short on a CPU and stable from the first step.

Because frames are fused by normalised splatting, the network accepts any number of frames: it is trained
without a target frame (self-supervised) and run on the whole burst at inference.

Decoder: the fused high-resolution image and features, with the log of the splatting weight (how densely
each node was sampled), go through residual blocks of dilated convolutions on the high-resolution grid, whose
output corrects the shift-and-add image: ``SR = SaA + Decoder(fused)``.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..burst.geometry import affine_to_flow, invert_affine, warp_flow
from ..burst.shift_and_add import flow_to_positions, normalize, splat
from ..registry import NETS


def _conv(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1)


class ResidualBlock(nn.Module):
    """x + conv_d(relu(conv_d(x))) with dilation d."""

    def __init__(self, features: int, dilation: int = 1):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(features, features, 3, padding=dilation, dilation=dilation),
                                  nn.ReLU(inplace=True),
                                  nn.Conv2d(features, features, 3, padding=dilation, dilation=dilation))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class DilatedResidualDecoder(nn.Module):
    """(N, C_in, H, W) -> (N, C_out, H, W) on the high-resolution grid: a head convolution, residual blocks
    with growing dilations, a tail convolution (initialised small, so the network starts at shift-and-add).

    Every layer is a stride-1 convolution, so the decoder is shift-equivariant on the high-resolution grid:
    it applies one and the same rule at every sub-pixel phase, which the self-supervised loss (block
    averages of the estimate re-projected onto frames of other phases) can then constrain everywhere.
    """

    def __init__(self, in_channels: int, out_channels: int, features: int, dilations: tuple[int, ...]):
        super().__init__()
        self.head = nn.Sequential(_conv(in_channels, features), nn.ReLU(inplace=True))
        self.blocks = nn.Sequential(*[ResidualBlock(features, d) for d in dilations])
        self.tail = _conv(features, out_channels)
        with torch.no_grad():
            self.tail.weight.mul_(0.1)
            self.tail.bias.zero_()
        self.receptive_field = 2 + 2 * sum(dilations)

    def forward(self, x: Tensor) -> Tensor:
        return self.tail(self.blocks(self.head(x)))


@NETS.register("dsa")
class DeepShiftAndAdd(nn.Module):
    """Input: frames (N, T, C, h, w) and registration affines (N, T, 2, 3) (frame_t(A p) ~ frame_0(p)).
    Output: the reference frame on the s-times finer grid, (N, C_out, s h, s w)."""

    size_multiple = 1

    def __init__(self, in_channels: int = 3, out_channels: int = 3, scale: int = 2, features: int = 32,
                 flow_features: int = 16, decoder_features: int = 32,
                 decoder_dilations: tuple[int, ...] = (1, 2, 4), max_residual: float = 1.0):
        super().__init__()
        self.in_channels, self.out_channels, self.scale = in_channels, out_channels, int(scale)
        self.max_residual = float(max_residual)
        self.encoder = nn.Sequential(_conv(in_channels, features), nn.ReLU(inplace=True),
                                     _conv(features, features), nn.ReLU(inplace=True), _conv(features, features))
        self.flow_net = nn.Sequential(_conv(2 * in_channels + 2, flow_features), nn.ReLU(inplace=True),
                                      _conv(flow_features, flow_features), nn.ReLU(inplace=True),
                                      _conv(flow_features, 2))
        nn.init.zeros_(self.flow_net[-1].weight)
        nn.init.zeros_(self.flow_net[-1].bias)
        self.decoder = DilatedResidualDecoder(in_channels + features + 1, out_channels, decoder_features,
                                              tuple(int(d) for d in decoder_dilations))
        # high-resolution px: encoder (3 low-resolution px) + residual flow (<= max_residual) + normalisation
        # fill (3 fill sigmas = 3 s) + decoder
        reach = 3 + math.ceil(self.max_residual) + 3
        self.receptive_field = self.scale * reach + self.decoder.receptive_field

    def motion(self, frames: Tensor, affines: Tensor) -> Tensor:
        """(N, T, 2, h, w) flows F_t with frame_t(q) ~ frame_0(q + F_t(q)) (F_0 = 0)."""
        n, t, c, h, w = frames.shape
        flat = frames.reshape(n * t, c, h, w).float()
        base = affine_to_flow(invert_affine(affines.reshape(n * t, 2, 3).float()), h, w)
        reference = frames[:, :1].expand(-1, t, -1, -1, -1).reshape(n * t, c, h, w).float()
        warped_ref = warp_flow(reference, base)
        residual = self.flow_net(torch.cat([flat, warped_ref, base], dim=1)).float()
        flow = base + self.max_residual * torch.tanh(residual)
        flow = flow.view(n, t, 2, h, w)
        return torch.cat([torch.zeros_like(flow[:, :1]), flow[:, 1:]], dim=1)

    def fuse(self, frames: Tensor, flows: Tensor) -> Tensor:
        """Encode each frame, splat it at its reference positions, normalise, decode."""
        n, t, c, h, w = frames.shape
        s = self.scale
        flat = frames.reshape(n * t, c, h, w)
        features = self.encoder(flat)
        values = torch.cat([flat.float(), features.float()], dim=1)
        positions = flow_to_positions(flows.reshape(n * t, 2, h, w).float(), s)
        acc, wsum = splat(values, positions, (s * h, s * w))
        acc = acc.view(n, t, *acc.shape[1:]).sum(dim=1)
        wsum = wsum.view(n, t, *wsum.shape[1:]).sum(dim=1)
        fused = normalize(acc, wsum, fill_sigma=float(max(1, s)))
        decoded = self.decoder(torch.cat([fused, torch.log1p(wsum)], dim=1)).float()
        return fused[:, : self.out_channels] + decoded if self.out_channels <= c else decoded

    def forward(self, frames: Tensor, affines: Tensor) -> Tensor:
        return self.fuse(frames, self.motion(frames, affines))
