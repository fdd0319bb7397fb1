"""SelfIR with same-pixel targets: blurry + noisy restoration trained by recorruption (Recorrupted-to-
Recorrupted, Pang, Zhan, Chen & Zuo, CVPR 2021) instead of Neighbor2Neighbor sub-sampling.

Why: SelfIR's reconstruction target g2(N) sits one pixel away from the input pixels g1(B), g1(N); the
network cannot know in which direction, so it learns the average over the neighbours, a blur. Measured in
``benchmarks/results/selfir_table_half15.md``: a supervised net trained on the same neighbour offset (clean
target) loses 0.90 dB against the same net with the target on the input's own pixels, and that offset is
most of SelfIR's gap to the supervised Baseline_R. Recorruption gives an unbiased target on the SAME pixels.

With N = x + n, n ~ N(0, Sigma) independent per pixel, and z ~ N(0, I) drawn afresh every step:

    input  N_in  = N + alpha * Sigma^(1/2) z           (the net sees B and N_in)
    target N_tgt = N - Sigma^(1/2) z / alpha

Cov(n + alpha S z, n - S z / alpha) = Sigma - Sigma = 0, so the two are independent given x (Gaussian), and
E || D(B, N_in) - N_tgt ||^2 = E || D(B, N_in) - x ||^2 + const: a Noise2Noise loss on every pixel, at full
size, with no sub-sampling and no regulariser. At restoration the net sees N itself (noise std sqrt(1 +
alpha^2) times lower than in training: a range-trained net covers it; no Monte-Carlo averaging).

The price: the per-pixel noise variance Sigma must be known or estimated. ``alpha`` = 1 by default (R2R's
paper uses 0.5): at 15 CPU-minutes on gauss5_50 it scored 31.67 dB against 31.55 for 0.5, and 31.66 for the
supervised Baseline_R, 31.03 for SelfIR (``benchmarks/results/selfir_table_half15.md``).

* Synthetic pairs (``--synthetic --noise gauss5_50 | poisson5_50``): the level drawn for each image is
  recorded with it and used (known noise level).
* Real pairs with a single-level ``--noise`` (e.g. ``gauss25``, ``poisson30``): that level.
* Real pairs without ``--noise``, or with a range (``gauss5_50``: no one level fits every image): a
  noise-level function var = a * signal + b is estimated from each noisy image alone
  (:func:`estimated_noise_levels`). The level must be right: with the block-based noise-level function
  alone (std 1.09x the truth at the median, 1.42x at the 90th percentile on the 400 BSDS500 gauss5_50
  pairs: texture; ``benchmarks/results/noise_level_accuracy.md``) SelfIR-R2R scored 30.44 dB instead of
  31.67 with the true levels; the level now comes from patch PCA (0.99-1.01x there), and it scores 31.43 dB
  (``selfir_table_half15.md``, row selfir_r2r_est).

Signal-dependent variances (Poisson) need the clean intensity; the blurry shot B stands in for it: it is
nearly noise-free and, unlike N, its noise is independent of n, so the recorruption stays independent of n
(a variance built from N itself would correlate the target with the input).

The sharp-area auxiliary loss of SelfIR (paper eq. 6-7) is kept, computed at full resolution with patches
of ``2 * mask_patch`` pixels (the same image area as SelfIR's ``mask_patch`` on its half-size sub-images).
"""
from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from ..corruption import Corruption
from ..corruption.base import per_image
from ..corruption.noise import Impulse
from ..errors import UserError
from ..registry import METHODS
from .selfir import SelfIR, masked_mse, sharp_area_mask

#: the noise-level-function parameters of real pairs whose level was estimated (noise var = a * signal + b)
NLF_KEYS = ("nlf_a", "nlf_b")


@METHODS.register("selfir_r2r")
class SelfIRRecorrupted(SelfIR):
    name: ClassVar[str] = "selfir_r2r"
    patch_multiple: ClassVar[int] = 1  # full-size training: no sub-sampling
    noise_when_not_given: ClassVar[str] = "estimated from each noisy image (a noise-level function a * signal + b)"
    cli_options: ClassVar[dict[str, dict[str, Any]]] = {
        "aux": SelfIR.cli_options["aux"],
        "eps_s": SelfIR.cli_options["eps_s"],
        "eps_v": SelfIR.cli_options["eps_v"],
        "mask_patch": SelfIR.cli_options["mask_patch"],
        "aux_weight": SelfIR.cli_options["aux_weight"],
        "alpha": {"type": float, "default": 1.0,
                  "help": "selfir_r2r: recorruption strength: input N + alpha s z, target N - s z / alpha "
                          "(1: 0.1 dB better than R2R's 0.5 in selfir_table_half15)"},
    }

    def __init__(self, noise: Corruption | None = None, alpha: float = 1.0, **options: Any):
        if not alpha > 0:
            raise UserError(f"selfir_r2r: alpha must be > 0, got {alpha}")
        if isinstance(noise, Impulse):
            raise UserError("selfir_r2r recorrupts with Gaussian noise of the same variance: it needs Gaussian, "
                            "Poisson or Poisson-Gaussian noise, not impulse noise")
        options.pop("gamma_reg", None)  # no sub-sampling, so no regulariser
        super().__init__(noise, gamma_reg=0.0, **options)
        self.options.pop("gamma_reg", None)
        self.options["alpha"] = float(alpha)
        self.alpha = float(alpha)

    def describe(self) -> str:
        return f"selfir_r2r (alpha {self.alpha:g}" + (")" if self.aux else ", no L_aux)")

    def noise_variance(self, batch: dict[str, Any], blurry: Tensor) -> Tensor:
        """Per-pixel variance of the short exposure's noise, broadcastable to the batch."""
        params = batch.get("noise_params") or {}
        signal = blurry.float().clamp(0, 1)  # the nearly noise-free long exposure stands in for the intensity
        if all(k in params for k in NLF_KEYS):
            a, b = (per_image(torch.as_tensor(params[k]), signal) for k in NLF_KEYS)
            return (a * signal + b).clamp_min(0)
        if self.noise is None:
            raise UserError("selfir_r2r needs the noise level of the noisy shots: give --noise (e.g. gauss25) or "
                            "let it be estimated from real pairs (--blurry DIR --noisy DIR without --noise)")
        return self.noise.variance(signal, params or None).clamp_min(0)

    def loss(self, net: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        blurry, noisy = batch["blurry"], batch["noisy"]
        self.check_patch(net, noisy)
        noisy_in, target = recorrupted_pair(noisy, self.noise_variance(batch, blurry).sqrt(), self.alpha)
        out = net(self.net_input(blurry, noisy_in)).float()
        rec = torch.mean((out - target.float()) ** 2)
        total, aux = rec, torch.zeros(())
        if self.aux and self.aux_weight > 0:
            with torch.no_grad():
                mask = sharp_area_mask(out.detach(), blurry, 2 * self.mask_patch, self.eps_s, self.eps_v)
            aux = masked_mse(out, blurry, mask)
            total = total + self.aux_weight * aux
            self.last_terms["mask_fraction"] = float(mask.mean())
        self.last_terms.update(rec=float(rec.detach()), aux=float(aux.detach()))
        return total

    def make_source(self, args: Any, noise: Corruption | None) -> Any:
        """As SelfIR; real pairs without ``--noise``, or with a range of levels, get a noise-level function
        estimated per noisy image."""
        source = super().make_source(args, noise)
        single_level = noise is not None and getattr(noise, "low", None) == getattr(noise, "high", None)
        if not single_level and not source.params:
            noisy = source.fields["noisy"]
            source.params = estimated_noise_levels(noisy)
            if not getattr(args, "quiet", False):
                std = [math.sqrt(a * float(np.clip(np.mean(image), 0, 1)) + b) * 255 for image, a, b
                       in zip(noisy, source.params["nlf_a"], source.params["nlf_b"])]
                print(f"selfir_r2r: noise std measured on the {len(std)} noisy images (patch PCA, at their mean "
                      f"brightness): median {np.median(std):.1f}/255, from {min(std):.1f} to {max(std):.1f}; "
                      f"a single-level --noise sets it instead")
        return source


def recorrupted_pair(noisy: Tensor, std: Tensor, alpha: float, generator: torch.Generator | None = None
                     ) -> tuple[Tensor, Tensor]:
    """(N + alpha s z, N - s z / alpha), z ~ N(0, I): given the clean image, the two carry independent
    noise when ``std`` s is the std of N's Gaussian noise (their covariance is s^2 - s^2 = 0)."""
    z = torch.randn(noisy.shape, generator=generator, dtype=noisy.dtype, device=noisy.device)
    z = z * std.to(noisy.dtype)
    return noisy + alpha * z, noisy - z / alpha


def estimated_noise_levels(noisy_images: list) -> dict[str, list[float]]:
    """{"nlf_a": [...], "nlf_b": [...]}: noise variance a * signal + b of each image, from the image alone.

    The level comes from the patch-PCA estimator (:func:`~selfrestore.noise_check.noise_sigma_pca`: the
    image's mean noise variance, little affected by texture); the split between shot (a) and read (b) noise
    from the noise-level function (:func:`~selfrestore.noise_check.noise_level_function`, whose own level
    reads high on textured images), scaled so that its mean variance over the image equals the PCA one.
    Where the function cannot be measured (clipped) the noise is taken as signal-independent; an image too
    small to measure at all gets the median of the others."""
    from ..noise_check import noise_level_function, noise_sigma_pca

    levels: list[tuple[float, float] | None] = []
    for image in noisy_images:
        try:
            variance = noise_sigma_pca(image) ** 2
        except ValueError:
            levels.append(None)
            continue
        shape = noise_level_function(image)
        a, b = shape if shape is not None else (0.0, 1.0)
        mean_level = a * float(np.clip(np.mean(image), 0.0, 1.0)) + b
        if mean_level <= 0:  # the function saw no noise at all: signal-independent at the PCA level
            a, b, mean_level = 0.0, 1.0, 1.0
        scale = variance / mean_level
        levels.append((max(a * scale, 0.0), max(b * scale, 0.0)))
    measured = [level for level in levels if level is not None]
    if not measured:
        raise UserError("selfir_r2r: the noisy images are too small to measure their noise level; give it "
                        "with --noise (e.g. gauss25 or poisson30)")
    fallback = (float(np.median([a for a, _ in measured])), float(np.median([b for _, b in measured])))
    chosen = [level if level is not None else fallback for level in levels]
    return {"nlf_a": [float(a) for a, _ in chosen], "nlf_b": [float(b) for _, b in chosen]}
