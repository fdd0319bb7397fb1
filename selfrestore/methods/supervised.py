"""N2C: the supervised reference ("noisy to clean"). It reads clean targets, so it exists only so that
benchmarks can show the gap between self-supervised methods and supervision with the same budget."""
from __future__ import annotations

from torch import Tensor, nn

from ..registry import METHODS
from .base import Method, l2


@METHODS.register("n2c")
class Noise2Clean(Method):
    name = "n2c"
    batch_kind = "single"
    corrects_clipped_noise = True
    needs_clean = True

    def loss(self, net: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        return l2(net(batch["noisy"]), batch["clean"])
