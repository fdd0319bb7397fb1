"""Deep Shift-and-Add training (Nguyen et al. 2021), self-supervised and its supervised twin.

Self-supervised loss (the frame-to-frame framework adapted to bursts): for each training burst a target
frame j is left out, the network fuses the other frames onto the high-resolution grid of a reference frame r
(one of its inputs), and the estimate is re-projected onto frame j with the registration r -> j estimated on
the noisy frames, then compared with I_j through the known acquisition operator D (blur k, s x s pooling):

    L = || D(W_j(SR(I_r, I_t : t != j)) * k) - I_j ||_1  +  mu * sum_t ( || I_t - W(I_r, F_t) ||_1 + lambda TV(F_t) )

Frame j samples the scene at another sub-pixel phase than r, so the detail inside the s x s blocks of the
estimate (the null space of D on r's own grid) is constrained too (:mod:`selfrestore.burst.reprojection`).
j and r are drawn at random for every sample (a natural augmentation); with ``min_frames`` > 0 each step
also keeps a random number k in [min_frames, T] of frames (target included), so one network learns to fuse
bursts as short and as long as it will meet at inference. With ``targets`` > 1 (not in the paper) the data
term is averaged over up to that many of the frames left out of the fusion, each an independent noisy view
at its own phase: more supervision per fused estimate for the cost of a few re-projections. The flows F_t
enter the fusion detached: only the motion loss trains the motion residual. At inference all frames are
fused, frame 0 being the reference.

``data_loss="l2"`` (not in the paper) replaces the first norm by the squared error: the noisy targets' mean
instead of their median is then what the estimate is drawn to (the same choice as F2F's ``--warp-loss l2``).

The supervised twin keeps frame 0 as the reference, fuses it with a random subset of the other frames
(``min_frames``) and replaces the first term by || SR(I_0..I_{k-1}) - x ||_1.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from ..burst.geometry import warp_flow
from ..burst.reprojection import rebase_affines, reprojection_error
from ..errors import UserError
from ..registry import METHODS
from .base import Method
from .m2m import burst_affines

if TYPE_CHECKING:
    from ..burst.sources import RealBursts
    from ..corruption import Corruption


def total_variation(flow: Tensor) -> Tensor:
    """Mean absolute difference of vertically and horizontally adjacent flow values: keeps the flows smooth."""
    return ((flow[..., 1:, :] - flow[..., :-1, :]).abs().mean() + (flow[..., :, 1:] - flow[..., :, :-1]).abs().mean())


@METHODS.register("dsa")
class DeepShiftAndAddMethod(Method):
    name = "dsa"
    batch_kind = "burst"
    maps_own_data = True  #: (its sources map float counts and dim data: training_map)
    default_net = "dsa"
    min_training_frames = 3  #: frames a training burst needs: at least 2 to fuse and 1 held out as the target

    def __init__(self, noise=None, scale: int = 2, blur_sigma: float = 0.5, motion_weight: float = 1.0,
                 tv_weight: float = 0.05, border: int = 4, min_frames: int = 0, targets: int = 1,
                 data_loss: str = "l1", **options):
        if data_loss not in ("l1", "l2"):
            raise UserError(f"{self.name}: data_loss must be l1 or l2, not {data_loss!r}")
        super().__init__(noise, scale=int(scale), blur_sigma=float(blur_sigma), motion_weight=float(motion_weight),
                         tv_weight=float(tv_weight), border=int(border), min_frames=int(min_frames),
                         targets=int(targets), data_loss=data_loss, **options)
        self.scale, self.blur_sigma, self.min_frames = int(scale), float(blur_sigma), int(min_frames)
        self.data_loss = data_loss
        self.targets = max(1, int(targets))
        self.motion_weight, self.tv_weight, self.border = float(motion_weight), float(tv_weight), int(border)

    def net_kwargs(self, channels: int) -> dict:
        return {"in_channels": channels, "out_channels": channels, "scale": self.scale}

    def make_source(self, args: Any, noise: Corruption | None) -> RealBursts:
        """``fit --method dsa BURSTS/``: low-resolution bursts (folders of gray or RGB frames)."""
        from ..burst.sources import burst_source

        return burst_source(args, self)

    def motion_loss(self, frames: Tensor, flows: Tensor) -> Tensor:
        """Photometric error of the reference (first) frame warped onto each other frame, plus TV."""
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

    def frame_count(self, t: int) -> int:
        """Frames used by one training step: all T, or k uniform in [min_frames, T] with ``min_frames``."""
        if self.min_frames <= 0 or t <= self.min_frames:
            return t
        return int(torch.randint(max(2, self.min_frames), t + 1, ()))

    def roles(self, n: int, t: int) -> tuple[Tensor, int]:
        """Frame indices per sample (N, m) and the number of inputs: [:, 0] the reference r, [:, 1:inputs] the
        other inputs, [:, inputs:] the targets (distinct frames drawn at random; k - 1 inputs and up to
        ``targets`` of the T - k + 1 frames left out, one k for the whole batch)."""
        inputs = self.frame_count(t) - 1
        m = min(t, inputs + self.targets)
        return torch.stack([torch.randperm(t)[:m] for _ in range(n)]), inputs

    def split(self, batch: dict[str, Tensor], order: Tensor, inputs: int) -> dict[str, Tensor]:
        """Inputs (N, k-1, C, h, w) with their affines to the reference, the targets (N, m, C, h, w) and theirs."""
        frames, affines = batch["frames"], burst_affines(batch, raw=False)
        order = order.to(frames.device)
        rows = torch.arange(frames.shape[0], device=frames.device)[:, None]
        rebased = rebase_affines(affines, order[:, 0])[rows, order]
        chosen = frames[rows, order]
        return {"inputs": chosen[:, :inputs], "input_affines": rebased[:, :inputs],
                "targets": chosen[:, inputs:], "target_affines": rebased[:, inputs:]}

    def loss(self, net: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        self._check(batch["frames"], self.min_training_frames)
        n, t = batch["frames"].shape[:2]
        views = self.split(batch, *self.roles(n, t))
        bare = getattr(net, "module", net)
        inputs, targets, affines = views["inputs"], views["targets"], views["target_affines"]
        flows = bare.motion(inputs, views["input_affines"])
        sr = bare.fuse(inputs, flows.detach())
        data = sum(reprojection_error(sr, targets[:, j], affines[:, j], self.scale, self.blur_sigma, self.border,
                                      self.data_loss) for j in range(targets.shape[1])) / targets.shape[1]
        return data + self.motion_weight * self.motion_loss(inputs, flows)

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
    """The supervised twin: frame 0 and a random subset of the others in, L1 against the clean
    high-resolution reference."""

    name = "dsa_supervised"
    needs_clean = True
    min_training_frames = 2  #: the clean reference is the target: any 2 frames can be fused

    def random_frames(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """The reference plus a random subset of k - 1 other frames, k uniform in [min_frames, T]."""
        t = batch["frames"].shape[1]
        if self.min_frames <= 0 or t <= self.min_frames:
            return batch
        count = int(torch.randint(self.min_frames, t + 1, ()))
        keep = torch.cat([torch.zeros(1, dtype=torch.long), 1 + torch.randperm(t - 1)[: count - 1]])
        return {**batch, "frames": batch["frames"][:, keep], "affines": burst_affines(batch, raw=False)[:, keep]}

    def loss(self, net: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        self._check(batch["frames"], self.min_training_frames)
        batch = self.random_frames(batch)
        frames = batch["frames"]
        bare = getattr(net, "module", net)
        flows = bare.motion(frames, burst_affines(batch, raw=False))
        sr = bare.fuse(frames, flows.detach()).float()
        b = self.border * self.scale
        h, w = sr.shape[-2:]
        difference = (sr - batch["clean"].float())[..., b:h - b, b:w - b]
        data = (difference.abs() if self.data_loss == "l1" else difference.square()).mean()
        return data + self.motion_weight * self.motion_loss(frames, flows)
