"""Deep Shift-and-Add training (Nguyen et al. 2021), self-supervised and its supervised twin.

Self-supervised loss: the reference frame I_0 is left out of the fusion and becomes the target through the
known acquisition operator D (blur with the known kernel, s x s average pooling):

    L = || D(SR(I_1..I_{T-1})) - I_0 ||_1  +  mu * sum_t ( || I_t - W(I_0, F_t) ||_1 + lambda TV(F_t) )

The flows F_t enter the fusion detached, so only the motion loss trains the motion residual: that closes
the one path through which I_0 (which the motion estimator does see) could leak into the output. At
inference the reference is included. The supervised twin replaces the first term by || SR(I_0..I_{T-1}) - x ||_1.

With ``min_frames`` > 0 each training step keeps the reference and a random subset of the other frames, of a
random size, so one network learns to fuse bursts as short and as long as it will meet at inference (the
fused sampling density changes with T). The loss itself is unchanged.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..burst.geometry import warp_flow
from ..burst.synthesis import downsample
from ..errors import UserError
from ..registry import METHODS
from .base import Method
from .m2m import burst_affines


def total_variation(flow: Tensor) -> Tensor:
    return ((flow[..., 1:, :] - flow[..., :-1, :]).abs().mean() + (flow[..., :, 1:] - flow[..., :, :-1]).abs().mean())


@METHODS.register("dsa")
class DeepShiftAndAddMethod(Method):
    name = "dsa"
    batch_kind = "burst"
    default_net = "dsa"

    def __init__(self, noise=None, scale: int = 2, blur_sigma: float = 0.5, motion_weight: float = 1.0,
                 tv_weight: float = 0.05, border: int = 4, min_frames: int = 0, **options):
        super().__init__(noise, scale=int(scale), blur_sigma=float(blur_sigma), motion_weight=float(motion_weight),
                         tv_weight=float(tv_weight), border=int(border), min_frames=int(min_frames), **options)
        self.scale, self.blur_sigma, self.min_frames = int(scale), float(blur_sigma), int(min_frames)
        self.motion_weight, self.tv_weight, self.border = float(motion_weight), float(tv_weight), int(border)

    def net_kwargs(self, channels: int) -> dict:
        return {"in_channels": channels, "out_channels": channels, "scale": self.scale}

    def motion_loss(self, frames: Tensor, flows: Tensor) -> Tensor:
        n, t, c, h, w = frames.shape
        if t < 2:
            return frames.new_zeros(())
        moving = frames[:, 1:].reshape(-1, c, h, w).float()
        reference = frames[:, :1].expand(-1, t - 1, -1, -1, -1).reshape(-1, c, h, w).float()
        flow = flows[:, 1:].reshape(-1, 2, h, w)
        b = self.border
        photometric = (moving - warp_flow(reference, flow)).abs()[..., b:h - b, b:w - b].mean()
        return photometric + self.tv_weight * total_variation(flow)

    def _check(self, frames: Tensor, minimum: int) -> None:
        if frames.dim() != 5 or frames.shape[1] < minimum:
            raise UserError(f"{self.name} needs bursts (N, T, C, h, w) with T >= {minimum}, got {tuple(frames.shape)}")

    def data_loss(self, net: nn.Module, batch: dict[str, Tensor], flows: Tensor) -> Tensor:
        frames = batch["frames"]
        sr = net.fuse(frames[:, 1:], flows[:, 1:].detach())
        low = downsample(sr.float(), self.scale, self.blur_sigma)
        b = self.border
        h, w = low.shape[-2:]
        return (low - frames[:, 0].float()).abs()[..., b:h - b, b:w - b].mean()

    def random_frames(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """The reference plus a random subset of k - 1 other frames, k uniform in [min_frames, T]."""
        t = batch["frames"].shape[1]
        if self.min_frames <= 0 or t <= self.min_frames:
            return batch
        count = int(torch.randint(self.min_frames, t + 1, ()))
        keep = torch.cat([torch.zeros(1, dtype=torch.long), 1 + torch.randperm(t - 1)[: count - 1]])
        return {**batch, "frames": batch["frames"][:, keep], "affines": burst_affines(batch, raw=False)[:, keep]}

    def loss(self, net: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        self._check(batch["frames"], 3 if not self.needs_clean else 2)
        batch = self.random_frames(batch)
        frames = batch["frames"]
        bare = getattr(net, "module", net)
        flows = bare.motion(frames, burst_affines(batch, raw=False))
        return self.data_loss(bare, batch, flows) + self.motion_weight * self.motion_loss(frames, flows)

    @torch.no_grad()
    def restore(self, net: nn.Module, obs: Tensor, **extra: Tensor) -> Tensor:
        """Super-resolve the reference (first) frame of bursts (N, T, C, h, w) using all frames."""
        self._check(obs, 1)
        affines = extra.get("affines")
        if affines is None:
            affines = burst_affines({"frames": obs}, raw=False)
        return net(obs, affines)


@METHODS.register("dsa_supervised")
class DeepShiftAndAddSupervised(DeepShiftAndAddMethod):
    """The supervised twin: all frames in, L1 against the clean high-resolution reference."""

    name = "dsa_supervised"
    needs_clean = True

    def data_loss(self, net: nn.Module, batch: dict[str, Tensor], flows: Tensor) -> Tensor:
        sr = net.fuse(batch["frames"], flows.detach()).float()
        b = self.border * self.scale
        h, w = sr.shape[-2:]
        return (sr - batch["clean"].float()).abs()[..., b:h - b, b:w - b].mean()
