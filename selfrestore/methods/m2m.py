"""Mosaic-to-mosaic (Ehret et al. 2019, "Joint demosaicking and denoising by fine-tuning of bursts of raw
images"): a joint demosaicking + denoising network trained on raw bursts alone.

For each frame i of a burst the network predicts RGB; the prediction is warped onto frame j = i + 1 with
the registration of the noisy frames (bicubic interpolation), re-mosaicked, and compared (L1) with the raw
frame j on the pixels that the warp keeps inside the image. The noise of frame j is independent of frame i,
so, like Noise2Noise, the minimiser is the clean image — but the target also has other Bayer phases, which
is what teaches demosaicking without ever seeing a full RGB image.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from ..burst.geometry import apply_affine, compose_affine, inside_mask, invert_affine, pixel_grid, sample_at
from ..burst.registration import register_burst
from ..corruption.mosaic import mosaic
from ..errors import UserError
from ..registry import METHODS
from .base import Method

if TYPE_CHECKING:
    from ..burst.sources import RealBursts
    from ..corruption import Corruption


def burst_affines(batch: dict[str, Tensor], raw: bool) -> Tensor:
    """The batch's registration (estimated on its noisy frames), or a registration computed now."""
    if "affines" in batch:
        return batch["affines"].float()
    frames = batch["frames"].detach().float().cpu()
    return torch.stack([register_burst(f, raw=raw) for f in frames]).to(batch["frames"].device)


@METHODS.register("m2m")
class MosaicToMosaic(Method):
    name = "m2m"
    batch_kind = "burst"
    maps_own_data = True  #: (its sources map float counts and dim data: training_map)
    min_training_frames = 2  #: frames a training burst needs: each frame is the target of the next
    raw_bursts = True  #: trains on and restores RGGB raw frames
    default_net = "demosaic"
    supports_adaptation = True  # Ehret et al. fine-tune on the very burst to restore
    loss_margin = 2  #: px at the image's edges where the warped prediction (bicubic) is left out of the loss

    def net_kwargs(self, channels: int) -> dict:
        return {"in_channels": 1, "out_channels": 3}

    def make_source(self, args: Any, noise: Corruption | None) -> RealBursts:
        """``fit --method m2m BURSTS/``: raw bursts (folders of RGGB frames, or of raw files)."""
        from ..burst.sources import burst_source

        return burst_source(args, self)

    def loss(self, net: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        frames = batch["frames"]
        n, t, c, h, w = frames.shape
        if t < self.min_training_frames or c != 1:
            raise UserError("mosaic-to-mosaic needs bursts of at least 2 raw (1-channel) frames")
        affines = burst_affines(batch, raw=True)
        rgb = net(frames.reshape(n * t, 1, h, w)).float()
        target = torch.roll(frames, shifts=-1, dims=1).reshape(n * t, 1, h, w).float()
        # frame-j coordinates -> reference -> frame-i coordinates
        a_i = affines.reshape(n * t, 2, 3)
        a_j = torch.roll(affines, shifts=-1, dims=1).reshape(n * t, 2, 3)
        points = apply_affine(compose_affine(a_i, invert_affine(a_j)), pixel_grid(h, w, frames.device))
        warped = sample_at(rgb, points, mode="bicubic")
        valid = inside_mask(points, h, w, margin=float(self.loss_margin))
        error = (mosaic(warped) - target).abs() * valid
        return error.sum() / valid.sum().clamp_min(1.0)

    def restore(self, net: nn.Module, obs: Tensor, **extra: Tensor) -> Tensor:
        """RGB of the reference frame from its raw (N, 1, H, W) (or the first frame of (N, T, 1, H, W))."""
        return net(obs[:, 0] if obs.dim() == 5 else obs)


@METHODS.register("m2m_supervised")
class MosaicToClean(MosaicToMosaic):
    """The supervised twin: the same network, L1 against the clean RGB of the reference frame."""

    name = "m2m_supervised"
    needs_clean = True
    supports_adaptation = False

    def loss(self, net: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        return (net(batch["frames"][:, 0]).float() - batch["clean"].float()).abs().mean()
