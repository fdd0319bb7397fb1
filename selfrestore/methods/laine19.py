"""Laine, Karras, Lehtinen & Aila 2019, "High-Quality Self-Supervised Deep Image Denoising".

A blind-spot network (:mod:`selfrestore.nets.blindspot`) predicts, for every pixel, a Gaussian prior
N(mu, Sigma_x) over the clean colour from the neighbourhood alone. Training maximises the likelihood of the
observed noisy pixel under that prior convolved with the noise model (no clean data); restoration combines
the prior with the observed pixel in closed form (the posterior mean), and the posterior covariance gives a
per-pixel uncertainty for free.

Heads (``head``): "mu" (mean only: trained by L2 to the noisy pixel, restores to mu, no Bayesian step),
"diag" (per-channel variances), "full" (full colour covariance Sigma_x = A^T A, A upper triangular).

Noise models and how they enter (``noise`` is a :class:`~selfrestore.corruption.Corruption`):

* Gaussian sigma: Sigma_y = Sigma_x + sigma^2 I. sigma known (fixed or per image, from the batch's
  ``noise_params``) or unknown.
* Poisson lambda: Gaussian approximation with signal-dependent variance max(mu, 1e-3) / lambda per channel
  (the prior mean stands in for the unknown clean value).
* Poisson-Gaussian (a, b): variance a max(mu, 1e-3) + b^2 (known only).
* Impulse alpha (random-valued, uniform in [0, 1]^C): training fits the moment-matched Gaussian of the
  mixture (1 - alpha) N(mu, Sigma_x) + alpha U; restoration uses the exact mixture posterior
  E[x | y] = w y + (1 - w) mu with w = (1 - alpha) N(y; mu, Sigma_x) / ((1 - alpha) N(y; mu, Sigma_x) + alpha).
  The "mu" head uses the paper's annealed L_p loss |mu - y|^p, p from 2 down to 0.5.

Unknown noise level (``noise_level``): "unknown" = a separate non-blind network estimates the level per
image (its output averaged over the image); "global" = one learned level for the whole data set. The raw
value r becomes softplus(r - 4) + 1e-3 (sigma for Gaussian, 1/lambda for Poisson, alpha for impulse).
The likelihood alone cannot tell prior variance from noise variance, so, as in the paper, the loss gets
the regulariser -0.1 * (noise std), which tips the balance towards explaining variance as noise.

Noise level at restoration (Gaussian and Poisson families): given explicitly (``sigma=`` / ``lam=``, the
CLI's --noise-sigma / --noise-lambda) it is used as is. Otherwise, when the level is not a single known
value (an estimated level, or a model trained on a range such as gauss5_50), it is estimated for each image
by maximum likelihood under the network's own prior: the sigma (or 1/lambda) that maximises
mean log N(y; mu, Sigma_x + Sigma_n) over the image (:func:`.gaussian_posterior.ml_noise_level`). This uses
nothing but the noisy image and the trained prior, and matches the posterior's noise term to the image at
hand: a gauss5_50 model restores a sigma=10 image with sigma near 10, not the range's middle. The level
learned in training (unknown/global) only serves training; ``ml_level=False`` restores with it instead.
"""
from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..corruption import Corruption
from ..corruption.noise import Gaussian, Impulse, Poisson, PoissonGaussian
from ..errors import UserError
from ..nets.blindspot import HEADS, head_channels, split_head
from ..registry import METHODS
from . import gaussian_posterior as gp
from .base import Method

NOISE_LEVELS = ("known", "unknown", "global")
STD_FLOOR = 1e-3          # smallest noise std / signal used in variances (keeps Sigma_y invertible)
REGULARISATION = 0.1      # weight of the -noise_std term for unknown noise levels (paper)
#: where an estimated noise level starts (sigma, 1/lambda, alpha): deliberately ABOVE typical levels. From
#: above, the likelihood itself pulls the level down within a few hundred steps (the prior variance cannot
#: go below zero to compensate); from below (the paper starts near 0) the prior variance first absorbs the
#: noise and only the weak regulariser moves the level up, which takes far longer than a CPU budget.
NOISE_START = {"gauss": 0.2, "poisson": 0.2, "impulse": 0.5}
ML_PIXELS = 65536         #: the per-image noise level is estimated on a regular subsample of at most this many pixels
NOISE_GAIN = 10.0         # the estimator's raw output is multiplied by this (10x faster Adam steps)
#: the posterior std (``restore --uncertainty``) is computed with the prior variance raised by this fraction of
#: the noise variance. Where the prior is far narrower than the noise, the noisy data cannot tell how narrow
#: (a prior variance of 0.3% or 1% of the noise variance changes the predicted spread of y by under 1%), and
#: there the shipped models' prior is overconfident. On Kodak24 crops (benchmarks/uncertainty_calibration.py)
#: the default model had 0.31-0.72% of its errors beyond 4 std at sigma 10-50 without it (a Gaussian: 0.006%),
#: 0.09-0.13% with it, median |z| within 7% of a Gaussian's; laine19-gauss25 and laine19-poisson30 become
#: slightly conservative (median |z| 0.85 / 0.90 of a Gaussian's). The posterior mean does not use it.
PRIOR_VARIANCE_FLOOR = 0.01


def noise_family(noise: Corruption | None) -> str:
    """The family (gauss, poisson, pg, impulse) of a noise model, which picks laine19's likelihood; a UserError
    for any other model, which laine19 cannot score."""
    if isinstance(noise, Gaussian):
        return "gauss"
    if isinstance(noise, Poisson):
        return "poisson"
    if isinstance(noise, PoissonGaussian):
        return "pg"
    if isinstance(noise, Impulse):
        return "impulse"
    name = getattr(noise, "name", None)
    given = "no --noise was given" if noise is None else f"got {name!r}"
    raise UserError(f"laine19 needs a Gaussian, Poisson, Poisson-Gaussian or impulse noise model "
                    f"(--noise gauss25 | poisson30 | pg0.01_0.02 | impulse0.5): {given}")


def raw_to_level(raw: Tensor) -> Tensor:
    """The paper's positive map softplus(r - 4) + 1e-3, capped at 1 (a noise std / 1/lambda / alpha above 1
    is meaningless on [0, 1] images, and the -0.1 sigma regulariser is unbounded below as sigma grows)."""
    return (F.softplus(raw - 4.0) + 1e-3).clamp(max=1.0)


def level_to_raw(level: float) -> float:
    """Inverse of :func:`raw_to_level` (below the cap)."""
    return math.log(math.expm1(level - 1e-3)) + 4.0


def _per_image(value: Any, n: int, device: torch.device) -> Tensor:
    """A float, (N,) or (1,) tensor -> (N, 1, 1, 1) float32."""
    t = torch.as_tensor(value, dtype=torch.float32, device=device).reshape(-1)
    return t.expand(n).reshape(n, 1, 1, 1) if t.numel() == 1 else t.reshape(n, 1, 1, 1)


@METHODS.register("laine19")
class Laine19(Method):
    name: ClassVar[str] = "laine19"
    batch_kind: ClassVar[str] = "single"
    corrects_clipped_noise: ClassVar[bool] = True
    default_net: ClassVar[str] = "blindspot"
    supports_adaptation: ClassVar[bool] = True  # trains on noisy images alone, so the test image is fair game
    needs_independent_noise: ClassVar[bool] = True  # the blind spot's neighbours must say nothing of its noise
    cli_options: ClassVar[dict[str, dict[str, Any]]] = {
        "head": {"choices": HEADS, "default": "full",
                 "help": "laine19 prior: mu (mean only), diag (per-channel variance), full (colour covariance)"},
        "noise_level": {"choices": NOISE_LEVELS, "default": "known",
                        "help": "laine19: noise level known (from --noise), unknown (estimated per image) "
                                "or global (one learned level for the data set)"},
    }

    def __init__(self, noise: Corruption | None = None, head: str = "full", noise_level: str = "known",
                 width: int | None = None, depth: int | None = None, ml_level: bool = True, **options: Any):
        if head not in HEADS:
            raise UserError(f"laine19: head must be one of {', '.join(HEADS)}, not {head!r}")
        if noise_level not in NOISE_LEVELS:
            raise UserError(f"laine19: noise level must be one of {', '.join(NOISE_LEVELS)}, not {noise_level!r}")
        self.family = noise_family(noise)
        if self.family == "pg" and noise_level != "known" and head != "mu":
            raise UserError("laine19: the Poisson-Gaussian model is supported with a known noise level only")
        net_size = {k: v for k, v in (("width", width), ("depth", depth)) if v is not None}
        super().__init__(noise, head=head, noise_level=noise_level, **net_size, **options)
        if not ml_level:
            self.options["ml_level"] = False
        self.head, self.noise_level, self.net_size, self.ml_level = head, noise_level, net_size, bool(ml_level)
        self.progress = 0.0  #: fraction of training done; the driver may set it (impulse "mu" annealing)
        #: the posterior std's prior variance floor, as a fraction of the noise variance (0: exact Bayes)
        self.std_floor = PRIOR_VARIANCE_FLOOR

    @property
    def estimates_noise(self) -> bool:
        return self.head != "mu" and self.noise_level != "known"

    # --- network -----------------------------------------------------------------------------------
    def net_kwargs(self, channels: int) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"in_channels": channels, "out_channels": head_channels(self.head, channels),
                                  **self.net_size}
        if self.estimates_noise:
            kwargs["noise_outputs"] = 1
            kwargs["noise_estimator"] = "global" if self.noise_level == "global" else "per_image"
            kwargs["noise_init"] = level_to_raw(NOISE_START[self.family])
            kwargs["noise_gain"] = NOISE_GAIN
        return kwargs

    # --- the noise model, per family ---------------------------------------------------------------
    def _level(self, out: Tensor, channels: int, params: dict[str, Any] | None, key: str) -> Tensor:
        """The noise parameter per image (N, 1, 1, 1): estimated by the net or known."""
        n = out.shape[0]
        if self.estimates_noise:
            raw = out[:, head_channels(self.head, channels)].float().mean(dim=(1, 2)).view(n, 1, 1, 1)
            return raw_to_level(raw)
        if params and key in params:
            return _per_image(params[key], n, out.device)
        return _per_image(self.noise.nominal_params(n, out.device)[key], n, out.device)

    def _noise_variance(self, out: Tensor, mu: Tensor, params: dict[str, Any] | None,
                        use_params: bool = False) -> Tensor:
        """Per-pixel noise variance (broadcastable to (N, C, H, W)) for the additive-Gaussian families.
        ``use_params``: levels given in ``params`` win over the net's own estimate (restoration)."""
        c = mu.shape[1]
        given = use_params and bool(params)
        if self.family == "gauss":
            sigma = _per_image(params["sigma"], mu.shape[0], mu.device) if given and "sigma" in params \
                else self._level(out, c, params, "sigma")
            return sigma.clamp_min(STD_FLOOR) ** 2
        signal = mu.clamp_min(STD_FLOOR)
        if self.family == "poisson":
            if given and "lam" in params:
                return signal / _per_image(params["lam"], mu.shape[0], mu.device)
            if self.estimates_noise:
                return signal * self._level(out, c, params, "lam")  # the estimate is 1 / lambda
            return signal / self._level(out, c, params, "lam")
        noise: PoissonGaussian = self.noise  # type: ignore[assignment]
        return noise.a * signal + max(noise.b, STD_FLOOR) ** 2

    def _alpha(self, out: Tensor, channels: int, params: dict[str, Any] | None) -> Tensor:
        return self._level(out, channels, params, "alpha").clamp(1e-3, 1 - 1e-3)

    # --- training ----------------------------------------------------------------------------------
    def loss(self, net: nn.Module, batch: dict[str, Tensor]) -> Tensor:
        out = net(batch["noisy"])
        with torch.autocast(out.device.type, enabled=False):  # likelihood and Cholesky math in float32
            return self._loss(out, batch)

    def _loss(self, out: Tensor, batch: dict[str, Tensor]) -> Tensor:
        y = batch["noisy"]
        c = y.shape[1]
        params = batch.get("noise_params")
        if self.head == "mu":
            return self._mu_only_loss(out[:, :c].float(), y.float())
        y = y.float()
        mu, prior_cov = split_head(out, self.head, c)
        if self.family == "impulse":
            alpha = self._alpha(out, c, params)                              # (N, 1, 1, 1)
            mean_y = (1 - alpha) * mu + alpha * 0.5
            a = alpha.view(-1, 1, 1, 1, 1)
            cov_y = (1 - a) * prior_cov + a * (1 - a) * gp.outer(mu - 0.5)   # mixture covariance
            cov_y = gp.add_diagonal(cov_y, (alpha / 12.0 + 1e-6).expand(-1, c, *y.shape[2:]))
            return gp.gaussian_nll(y, mean_y, cov_y).mean()
        noise_var = self._noise_variance(out, mu, params)
        nll = gp.gaussian_nll(y, mu, gp.add_diagonal(prior_cov, noise_var.expand_as(mu)))
        if self.estimates_noise:
            nll = nll - REGULARISATION * noise_var.expand_as(mu).sqrt().mean(dim=1)
        return nll.mean()

    def _mu_only_loss(self, mu: Tensor, y: Tensor) -> Tensor:
        if self.family == "impulse":  # the median-seeking annealed L_p loss of the paper
            p = max(0.5, 2.0 - 2.0 * float(self.progress))
            return ((mu - y).abs() + 1e-8).pow(p).mean()
        return torch.mean((mu - y) ** 2)

    # --- inference ---------------------------------------------------------------------------------
    def restore(self, net: nn.Module, obs: Tensor, return_std: bool = False,
                **extra: Any) -> Tensor | tuple[Tensor, Tensor]:
        """Posterior mean (N, C, H, W); with ``return_std`` also the posterior standard deviation.
        Known noise parameters may be passed as ``sigma=`` / ``lam=`` / ``alpha=`` (float or (N,));
        otherwise the level is estimated per image (estimated-level and range models, Gaussian/Poisson:
        see the module docstring) or the noise model's single value is used."""
        mean, std = self._posterior(net, obs, extra, want_std=return_std)
        return (mean, std) if return_std else mean

    def accepted_noise_params(self) -> tuple[str, ...]:
        """Noise parameters ``restore`` takes instead of its own estimate or nominal value."""
        if self.head == "mu":
            return ()
        if self.estimates_noise:  # an explicit level overrides the estimate (not for impulse: see _alpha)
            return {"gauss": ("sigma",), "poisson": ("lam",)}.get(self.family, ())
        return {"gauss": ("sigma",), "poisson": ("lam",), "impulse": ("alpha",)}.get(self.family, ())

    def restore_with_uncertainty(self, net: nn.Module, obs: Tensor, **extra: Any) -> tuple[Tensor, Tensor]:
        """(posterior mean, posterior std), both (N, C, H, W); ``channel_mean=True``: the std is that of the
        mean of the channels (a gray value), the same in every channel (Gaussian and Poisson families)."""
        return self._posterior(net, obs, extra, want_std=True)  # type: ignore[return-value]

    def prior(self, net: nn.Module, obs: Tensor) -> tuple[Tensor, Tensor | None]:
        """The network's prior (mu, Sigma_x) for every pixel, from the neighbourhood only."""
        return split_head(net(obs), self.head, obs.shape[1])

    def _posterior(self, net: nn.Module, obs: Tensor, extra: dict[str, Any], want_std: bool):
        out = net(obs)
        with torch.autocast(out.device.type, enabled=False):  # posterior math in float32
            return self._posterior_from_output(out, obs, extra, want_std)

    def _posterior_from_output(self, out: Tensor, obs: Tensor, extra: dict[str, Any], want_std: bool):
        c = obs.shape[1]
        mu, prior_cov = split_head(out, self.head, c)
        if prior_cov is None:
            if want_std:
                raise UserError("laine19: uncertainty needs a covariance head (--head diag or full), "
                                "the 'mu' head predicts no distribution")
            return mu.to(obs.dtype), None
        params = {k: v for k, v in extra.items() if k in ("sigma", "lam", "alpha")} or None
        y = obs.float()
        if self.family == "impulse":
            alpha = self._alpha(out, c, params)
            nll = gp.gaussian_nll(y, mu, gp.add_diagonal(prior_cov, torch.full_like(mu, 1e-6)))
            # w = h / (h + alpha), h = (1 - alpha) N(y; mu, Sigma_x); uniform density 1 on [0, 1]^C
            w = torch.sigmoid(torch.log1p(-alpha) - nll[:, None] - torch.log(alpha))
            mean = w * y + (1 - w) * mu
            var = (1 - w) * torch.diagonal(prior_cov, dim1=1, dim2=2).permute(0, 3, 1, 2) \
                + w * (1 - w) * (y - mu) ** 2
        else:
            gray = gray_projection(y, mu, prior_cov)
            if params is None and self.restore_estimates_level:
                params = self._ml_params(*(gray or (y, mu, prior_cov)))
            noise_var = self._noise_variance(out, mu, params, use_params=True).expand_as(mu)
            if gray is not None:  # one noise value shared by the channels: the posterior of the gray value
                y, mu, prior_cov = gray
                noise_var = noise_var.mean(dim=1, keepdim=True)
            mean, var = gp.posterior(y, mu, prior_cov, noise_var)
            if want_std and self.std_floor:  # the same mean with or without --uncertainty; the floored std
                var = gp.posterior(y, mu, gp.add_diagonal(prior_cov, self.std_floor * noise_var), noise_var)[1]
            if want_std and extra.get("channel_mean") and gray is None and c > 1:  # the std of the channel mean
                floored = gp.add_diagonal(prior_cov, self.std_floor * noise_var) if self.std_floor else prior_cov
                var = gp.posterior_variance_of_mean(floored, noise_var).expand(-1, c, -1, -1)
            if gray is not None:
                mean, var = mean.expand(-1, c, -1, -1), var.expand(-1, c, -1, -1)
        std = var.clamp_min(0).sqrt() if want_std else None
        return mean, std

    @property
    def restore_estimates_level(self) -> bool:
        """Whether restoration estimates the level per image (no single known value to use; a covariance head)."""
        if not self.ml_level or self.head == "mu" or self.family not in ("gauss", "poisson"):
            return False
        return self.estimates_noise or self.noise.low != self.noise.high

    def level_from_output(self, out: Tensor, obs: Tensor) -> dict[str, Tensor]:
        """The level :meth:`restore` would estimate on the whole of ``obs`` (N, C, H, W) (see
        :attr:`restore_estimates_level`), from the net's output ``out`` for it (N, K, H, W, assembled tile by
        tile if need be), as ``restore`` parameters. Only a regular subsample of at most ML_PIXELS pixels is
        read, so the prior is never expanded for the whole image. :func:`selfrestore.restore.restore_array`
        estimates the level once per image this way, so that tiles never disagree on it."""
        stride = gp.subsample_stride(obs.shape[-2], obs.shape[-1], ML_PIXELS)
        out, obs = out[..., ::stride, ::stride], obs[..., ::stride, ::stride]
        with torch.autocast(out.device.type, enabled=False):
            mu, prior_cov = split_head(out, self.head, obs.shape[1])
            y = obs.float()
            return self._ml_params(*(gray_projection(y, mu, prior_cov) or (y, mu, prior_cov)),
                                   max_pixels=obs.shape[-2] * obs.shape[-1])

    def restore_from_output(self, out: Tensor, obs: Tensor, want_std: bool = False,
                            **extra: Any) -> Tensor | tuple[Tensor, Tensor]:
        """:meth:`restore` (``want_std``: :meth:`restore_with_uncertainty`) given the net's output ``out`` for
        ``obs`` instead of the net: the posterior of any part of an image, with that image's level."""
        with torch.autocast(out.device.type, enabled=False):
            mean, std = self._posterior_from_output(out, obs, extra, want_std)
        return (mean, std) if want_std else mean

    def _ml_params(self, y: Tensor, mu: Tensor, prior_cov: Tensor, max_pixels: int = ML_PIXELS
                   ) -> dict[str, Tensor]:
        """The per-image maximum-likelihood level as restore parameters (``sigma`` or ``lam``)."""
        if self.family == "gauss":  # sigma in [0.5, 127.5] / 255, or around a trained range
            low, high = (0.5 / 255, 0.5) if self.estimates_noise else (self.noise.low / 2, self.noise.high * 2)
            sigma = gp.ml_noise_level(y, mu, prior_cov, lambda level, m: level**2, max(low, 1e-4), high,
                                      max_pixels=max_pixels)
            return {"sigma": sigma.view(-1)}
        low, high = (1.0, 1000.0) if self.estimates_noise else (self.noise.low / 2, self.noise.high * 2)
        inv_lam = gp.ml_noise_level(y, mu, prior_cov, lambda level, m: m.clamp_min(STD_FLOOR) * level,
                                    1.0 / high, 1.0 / low, max_pixels=max_pixels)
        return {"lam": 1.0 / inv_lam.view(-1)}

    def describe(self) -> str:
        head = {"mu": "mean only", "diag": "diagonal covariance", "full": "full covariance"}[self.head]
        level = "" if self.head == "mu" else f", noise level {self.noise_level}"
        if self.head != "mu" and self.restore_estimates_level:  # a range of levels: each image's is measured
            level = ", noise level known in training, estimated per image"
        return f"laine19 ({head}{level}, {getattr(self.noise, 'name', self.noise)})"


def gray_projection(y: Tensor, mu: Tensor, prior_cov: Tensor) -> tuple[Tensor, Tensor, Tensor] | None:
    """For an observation whose channels are all equal (a gray image given to a colour model, as restore
    does: one noise value repeated, not independent noise per channel), the scalar problem of the gray value
    g = a^T x, a = (1/C, ..., 1/C): (y_g, prior mean a^T mu, prior variance a^T Sigma_x a) as (N, 1, H, W),
    (N, 1, H, W), (N, 1, 1, H, W); None for any other observation. The colour posterior with independent
    noise per channel saw no noise across channels and let the level estimate collapse: the default model
    returned a noisy gray image almost unchanged (RMSE 24.9 for 25.0 at sigma 25; an audit)."""
    c = y.shape[1]
    if c == 1 or prior_cov is None or not all(torch.equal(y[:, 0], y[:, k]) for k in range(1, c)):
        return None
    return y[:, :1], mu.float().mean(dim=1, keepdim=True), prior_cov.float().mean(dim=(1, 2))[:, None, None]
