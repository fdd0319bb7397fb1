"""The baselines of the SelfIR paper (Zhang et al. 2022, Tables 1 and 3), on ``"blurry_noisy"`` batches.

All restore from ``obs = cat([blurry, noisy], 1)`` like SelfIR, each reading only its own input(s):

* ``selfir_sup``   Baseline_R: supervised, both inputs -> clean (the upper reference for SelfIR);
* ``selfir_sup_sub`` a diagnostic between the two: SelfIR's sub-sampled training (input g1(B), g1(N) at half
  size) with the CLEAN neighbour g2(clean) as target instead of g2(N): what the sub-sampled training alone
  costs against Baseline_R, apart from the noisy target; ``selfir_sup_same`` takes g1(clean) (the input's
  own pixels) instead, which separates the half size from the one-pixel offset of the neighbour target;
* ``deblur_sup``   Baseline_B: supervised deblurring, blurry -> clean;
* ``denoise_sup``  Baseline_N: supervised denoising, noisy -> clean;
* ``deblur_noisy`` Table 3: deblurring trained with the NOISY shot as target (blurry -> noisy), no clean
  data: zero-mean noise in the target averages out under the L2 loss (the Noise2Noise argument);
* ``nb2nb_noisy``  Neighbor2Neighbor on the noisy shot alone (the blind denoiser the paper compares with),
  through the existing ``nb2nb`` loss.
"""
from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor, nn

from ..corruption import Corruption
from ..registry import METHODS
from .base import l2
from .nb2nb import Neighbor2Neighbor
from .selfir import BlurryNoisyMethod
from .subsample import neighbour_indices, subsample


class RegressionBaseline(BlurryNoisyMethod):
    """L2 regression of the network's reading of (blurry, noisy) onto ``batch[target]``."""

    target: ClassVar[str] = "clean"

    def loss(self, net: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        return l2(net(self.select(self.net_input(batch["blurry"], batch["noisy"]))), batch[self.target])


@METHODS.register("selfir_sup", "baseline_r")
class SupervisedBlurryNoisy(RegressionBaseline):
    name: ClassVar[str] = "selfir_sup"
    needs_clean: ClassVar[bool] = True
    inputs: ClassVar[str] = "both"


@METHODS.register("selfir_sup_sub")
class SupervisedBlurryNoisySubsampled(BlurryNoisyMethod):
    """|| D(g1(B), g1(N)) - g2(clean) ||^2: SelfIR's reconstruction term with a clean target (diagnostic)."""

    name: ClassVar[str] = "selfir_sup_sub"
    needs_clean: ClassVar[bool] = True
    patch_multiple: ClassVar[int] = 2
    same_cell: ClassVar[bool] = False  #: target g1(clean), the input's own pixels, instead of g2(clean)

    def loss(self, net: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        idx1, idx2 = neighbour_indices(batch["noisy"])
        inputs = self.net_input(subsample(batch["blurry"], idx1), subsample(batch["noisy"], idx1))
        return l2(net(inputs), subsample(batch["clean"], idx1 if self.same_cell else idx2))


@METHODS.register("selfir_sup_same")
class SupervisedBlurryNoisyHalfSize(SupervisedBlurryNoisySubsampled):
    """|| D(g1(B), g1(N)) - g1(clean) ||^2: half-size training without the neighbour offset (diagnostic)."""

    name: ClassVar[str] = "selfir_sup_same"
    same_cell: ClassVar[bool] = True


@METHODS.register("deblur_sup", "baseline_b")
class SupervisedDeblur(RegressionBaseline):
    name: ClassVar[str] = "deblur_sup"
    needs_clean: ClassVar[bool] = True
    inputs: ClassVar[str] = "blurry"


@METHODS.register("denoise_sup", "baseline_n")
class SupervisedDenoise(RegressionBaseline):
    name: ClassVar[str] = "denoise_sup"
    needs_clean: ClassVar[bool] = True
    inputs: ClassVar[str] = "noisy"


@METHODS.register("deblur_noisy")
class NoisyTargetDeblur(RegressionBaseline):
    name: ClassVar[str] = "deblur_noisy"
    inputs: ClassVar[str] = "blurry"
    target: ClassVar[str] = "noisy"


@METHODS.register("nb2nb_noisy")
class Nb2NbOnNoisy(BlurryNoisyMethod):
    """Neighbor2Neighbor on ``batch["noisy"]`` alone (gamma ramped to 2 as in ``nb2nb``)."""

    name: ClassVar[str] = "nb2nb_noisy"
    needs_independent_noise: ClassVar[bool] = True
    inputs: ClassVar[str] = "noisy"
    cli_options: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init__(self, noise: Corruption | None = None, gamma: float = 2.0, **options: Any):
        super().__init__(noise, gamma=float(gamma), **options)
        self._nb2nb = Neighbor2Neighbor(noise, gamma=gamma)

    def loss(self, net: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        self._nb2nb.progress = self.progress
        return self._nb2nb.loss(net, {"noisy": batch["noisy"]})
