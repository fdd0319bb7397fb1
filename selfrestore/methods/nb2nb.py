"""Neighbor2Neighbor (Huang, Li, Jia, Wang & Liu 2021): Noise2Noise between two neighbour sub-images.

Two sub-images g1(y), g2(y) are drawn by the random neighbour sub-sampler (:mod:`.subsample`); their pixels
are neighbours, so they show almost the same scene with independent noise. Loss (paper eq. 5):

    || f(g1(y)) - g2(y) ||^2  +  gamma * || f(g1(y)) - g2(y) - (g1(f(y)) - g2(f(y))) ||^2

The second (regularisation) term, with f(y) computed without gradient, corrects for the small scene
difference between the neighbours. gamma ramps linearly from 0 to ``gamma`` (2, the official setting) over
training; the driver provides the progress as ``method.progress`` in [0, 1]. Restoration runs the net on
the full image. Patch sides must be multiples of 2 x the net's ``size_multiple``.
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..corruption import Corruption
from ..registry import METHODS
from .base import Method, check_non_negative
from .subsample import neighbour_indices, subsample


@METHODS.register("nb2nb", "neighbor2neighbor")
class Neighbor2Neighbor(Method):
    name: ClassVar[str] = "nb2nb"
    batch_kind: ClassVar[str] = "single"
    corrects_clipped_noise: ClassVar[bool] = True
    default_net: ClassVar[str] = "unet"
    supports_adaptation: ClassVar[bool] = True  # needs only the noisy image
    needs_independent_noise: ClassVar[bool] = True  # one neighbour's noise is the other's target
    patch_multiple: ClassVar[int] = 2  # the half-size sub-images go through the net
    cli_options: ClassVar[dict[str, dict[str, Any]]] = {
        "gamma": {"type": float, "default": 2.0,
                  "help": "nb2nb: final weight of the regulariser (ramped up linearly from 0)"},
    }

    def __init__(self, noise: Corruption | None = None, gamma: float = 2.0, width: int | None = None,
                 depth: int | None = None, **options: Any):
        check_non_negative("nb2nb", gamma=gamma)
        net_size = {k: v for k, v in (("width", width), ("depth", depth)) if v is not None}
        super().__init__(noise, gamma=float(gamma), **net_size, **options)
        self.gamma_max, self.net_size = float(gamma), net_size
        self.progress = 0.0  #: fraction of training done, set by the driver

    def net_kwargs(self, channels: int) -> dict[str, Any]:
        return {"in_channels": channels, "out_channels": channels, **self.net_size}

    def gamma(self) -> float:
        """The regularisation weight now: gamma_max * progress (linear ramp, as the official code)."""
        return self.gamma_max * min(1.0, max(0.0, float(self.progress)))

    def loss(self, net: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        y = batch["noisy"]
        self.check_patch(net, y)
        idx1, idx2 = neighbour_indices(y)
        sub1, sub2 = subsample(y, idx1), subsample(y, idx2)
        gamma = self.gamma()
        out = net(sub1).float()
        diff = out - sub2.float()
        loss = torch.mean(diff**2)
        if gamma > 0:
            with torch.no_grad():
                full = net(y).float()
                expected = subsample(full, idx1) - subsample(full, idx2)
            loss = loss + gamma * torch.mean((diff - expected) ** 2)
        return loss
