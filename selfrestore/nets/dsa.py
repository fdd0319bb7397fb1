"""Deep Shift-and-Add (Nguyen et al. 2021, "Self-supervised multi-image super-resolution for push-frame
satellite images"): a per-frame encoder, motion to the reference frame, differentiable shift-and-add
splatting of the features onto the high-resolution reference grid, and a decoder.

Motion: the global affine from classical registration (:mod:`selfrestore.burst.registration`, robust to
noise and aliasing) converted to a dense flow, plus a small learned residual flow (last layer initialised at
zero, bounded by ``max_residual``), trained by the motion loss of the method. Starting from the classical
estimate keeps training short on a CPU and stable from the first step.

Because frames are fused by normalised splatting, the network accepts any number of frames: it is trained
without the reference frame (self-supervised) and run with it at inference.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..burst.geometry import affine_to_flow, invert_affine, warp_flow
from ..burst.shift_and_add import flow_to_positions, normalize, splat
from ..registry import NETS


def _conv(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1)


@NETS.register("dsa")
class DeepShiftAndAdd(nn.Module):
    """Input: frames (N, T, C, h, w) and registration affines (N, T, 2, 3) (frame_t(A p) ~ frame_0(p)).
    Output: the reference frame on the s-times finer grid, (N, C_out, s h, s w)."""

    size_multiple = 1

    def __init__(self, in_channels: int = 3, out_channels: int = 3, scale: int = 2, features: int = 32,
                 flow_features: int = 16, decoder_depth: int = 4, max_residual: float = 1.0):
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
        layers: list[nn.Module] = [_conv(in_channels + features + 1, features), nn.ReLU(inplace=True)]
        for _ in range(decoder_depth - 1):
            layers += [_conv(features, features), nn.ReLU(inplace=True)]
        layers.append(_conv(features, out_channels))
        self.decoder = nn.Sequential(*layers)
        self.receptive_field = 2 * 3 + self.scale * (decoder_depth + 1)

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
