"""Noise2Noise (Lehtinen et al. 2018): regress one noisy shot onto an independent noisy shot of the same
scene. For zero-mean noise, E[y2 | y1] = E[x | y1], so the L2 minimiser is the clean-target one."""
from __future__ import annotations

from torch import Tensor, nn

from ..registry import METHODS
from .base import Method, l2


@METHODS.register("n2n")
class Noise2Noise(Method):
    name = "n2n"
    batch_kind = "pair"
    corrects_clipped_noise = True

    def loss(self, net: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        return l2(net(batch["noisy"]), batch["noisy2"])
