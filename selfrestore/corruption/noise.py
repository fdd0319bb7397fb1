"""Pixel-wise noise models: Gaussian, Poisson, Poisson-Gaussian, impulse, Bernoulli.

Observations are not clipped (``clip = False``): clipping changes the noise statistics that the
likelihood-based methods rely on. Sampling draws on the given CPU generator and moves results to x's device.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from .base import Corruption, Params, draw_level, per_image, register_corruption


def _randn_like(x: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.randn(x.shape, generator=generator, dtype=torch.float32).to(x.device, x.dtype)


def _rand_like(x: Tensor, generator: torch.Generator | None) -> Tensor:
    return torch.rand(x.shape, generator=generator, dtype=torch.float32).to(x.device, x.dtype)


class Gaussian(Corruption):
    """y = x + sigma * n, n ~ N(0, 1). sigma in 8-bit units (25 means 25/255), fixed or per image in a range."""

    def __init__(self, sigma_low: float, sigma_high: float | None = None):
        self.low = float(sigma_low) / 255.0
        self.high = float(sigma_high if sigma_high is not None else sigma_low) / 255.0
        if not 0 <= self.low <= self.high:
            raise ValueError("need 0 <= sigma_low <= sigma_high")

    def sample_with_params(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Params]:
        sigma = draw_level(self.low, self.high, x.shape[0], generator)
        y = x + per_image(sigma, x) * _randn_like(x, generator)
        return y, {"sigma": sigma.to(x.device)}

    def _sigma(self, x: Tensor, params: Params | None) -> Tensor:
        if params and "sigma" in params:
            return per_image(params["sigma"], x)
        return torch.full((1,) * x.dim(), (self.low + self.high) / 2, device=x.device, dtype=x.dtype)

    def variance(self, x: Tensor, params: Params | None = None) -> Tensor:
        return self._sigma(x, params) ** 2 * torch.ones_like(x)

    def log_likelihood(self, y: Tensor, x: Tensor, params: Params | None = None) -> Tensor:
        var = self.variance(x, params)
        return -0.5 * ((y - x) ** 2 / var + torch.log(2 * math.pi * var))

    def nominal_params(self, batch: int, device: torch.device | str = "cpu") -> Params:
        return {"sigma": torch.full((batch,), (self.low + self.high) / 2, device=device)}


class Poisson(Corruption):
    """y = Poisson(lam * x) / lam; lam fixed or per image in a range. Var(y | x) = x / lam."""

    def __init__(self, lam_low: float, lam_high: float | None = None):
        self.low = float(lam_low)
        self.high = float(lam_high if lam_high is not None else lam_low)
        if not 0 < self.low <= self.high:
            raise ValueError("need 0 < lambda_low <= lambda_high")

    def sample_with_params(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Params]:
        lam = draw_level(self.low, self.high, x.shape[0], generator)
        rate = (per_image(lam, x).cpu() * x.detach().float().cpu().clamp_min(0))
        counts = torch.poisson(rate, generator=generator)
        y = (counts / per_image(lam, counts)).to(x.device, x.dtype)
        return y, {"lam": lam.to(x.device)}

    def _lam(self, x: Tensor, params: Params | None) -> Tensor:
        if params and "lam" in params:
            return per_image(params["lam"], x)
        return torch.full((1,) * x.dim(), (self.low + self.high) / 2, device=x.device, dtype=x.dtype)

    def variance(self, x: Tensor, params: Params | None = None) -> Tensor:
        return x.clamp_min(0) / self._lam(x, params)

    def log_likelihood(self, y: Tensor, x: Tensor, params: Params | None = None) -> Tensor:
        lam = self._lam(x, params)
        k = (y * lam).round()
        rate = (lam * x).clamp_min(1e-8)
        return k * torch.log(rate) - rate - torch.lgamma(k + 1)

    def nominal_params(self, batch: int, device: torch.device | str = "cpu") -> Params:
        return {"lam": torch.full((batch,), (self.low + self.high) / 2, device=device)}


class PoissonGaussian(Corruption):
    """Sensor noise y = a * Poisson(x / a) + b * n. Var(y | x) = a x + b^2 (a, b on the [0, 1] scale)."""

    def __init__(self, a: float, b: float):
        self.a, self.b = float(a), float(b)
        if self.a <= 0 or self.b < 0:
            raise ValueError("need a > 0 and b >= 0")

    def sample_with_params(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Params]:
        counts = torch.poisson((x.detach().float().cpu().clamp_min(0) / self.a), generator=generator)
        y = self.a * counts.to(x.device, x.dtype) + self.b * _randn_like(x, generator)
        return y, {}

    def variance(self, x: Tensor, params: Params | None = None) -> Tensor:
        return self.a * x.clamp_min(0) + self.b**2

    def log_likelihood(self, y: Tensor, x: Tensor,
                       params: Params | None = None) -> Tensor:  # Gaussian approximation of the mixture
        var = self.variance(x).clamp_min(1e-10)
        return -0.5 * ((y - x) ** 2 / var + torch.log(2 * math.pi * var))


class Impulse(Corruption):
    """Random-valued impulse noise: each pixel (all channels together) is replaced, with probability alpha,
    by a uniformly random colour. p(y | x) = (1 - alpha) delta(y - x) + alpha U[0, 1]^C."""

    def __init__(self, alpha_low: float, alpha_high: float | None = None):
        self.low = float(alpha_low)
        self.high = float(alpha_high if alpha_high is not None else alpha_low)
        if not 0 <= self.low <= self.high <= 1:
            raise ValueError("need 0 <= alpha <= 1")

    def sample_with_params(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Params]:
        alpha = draw_level(self.low, self.high, x.shape[0], generator)
        n, _, h, w = x.shape
        hit = torch.rand((n, 1, h, w), generator=generator) < alpha.view(-1, 1, 1, 1)
        values = _rand_like(x, generator)
        y = torch.where(hit.to(x.device), values, x)
        return y, {"alpha": alpha.to(x.device)}

    def _alpha(self, x: Tensor, params: Params | None) -> Tensor:
        if params and "alpha" in params:
            return per_image(params["alpha"], x)
        return torch.full((1,) * x.dim(), (self.low + self.high) / 2, device=x.device, dtype=x.dtype)

    def variance(self, x: Tensor, params: Params | None = None) -> Tensor:
        # E[(y - x)^2 | x] = alpha * E[(u - x)^2] = alpha * (1/3 - x + x^2)
        return self._alpha(x, params) * (1.0 / 3.0 - x + x**2)

    def log_likelihood(self, y: Tensor, x: Tensor, params: Params | None = None) -> Tensor:
        alpha = self._alpha(x, params)
        same = (y - x).abs() < 1e-6
        return torch.where(same, torch.log(1 - alpha + alpha), torch.log(alpha).expand_as(y))

    def nominal_params(self, batch: int, device: torch.device | str = "cpu") -> Params:
        return {"alpha": torch.full((batch,), (self.low + self.high) / 2, device=device)}


class Bernoulli(Corruption):
    """Multiplicative Bernoulli noise: each pixel (all channels) is dropped to 0 with probability p,
    kept otherwise. y = m * x with m ~ Bernoulli(1 - p)."""

    def __init__(self, p: float):
        self.p = float(p)
        if not 0 <= self.p < 1:
            raise ValueError("need 0 <= p < 1")

    def sample_with_params(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Params]:
        n, _, h, w = x.shape
        keep = (torch.rand((n, 1, h, w), generator=generator) >= self.p).to(x.device, x.dtype)
        return x * keep, {}

    def variance(self, x: Tensor, params: Params | None = None) -> Tensor:
        return self.p * (1 - self.p) * x**2

    def log_likelihood(self, y: Tensor, x: Tensor, params: Params | None = None) -> Tensor:
        dropped = y.abs() < 1e-6
        return torch.where(dropped, torch.full_like(y, math.log(max(self.p, 1e-12))),
                           torch.full_like(y, math.log(1 - self.p)))


_NUM = r"(\d+(?:\.\d+)?)"


@register_corruption(rf"gauss(?:ian)?{_NUM}(?:_{_NUM})?", "gauss25 | gauss5_50")
def _gauss(low, high=None):
    return Gaussian(float(low), float(high) if high else None)


@register_corruption(rf"poisson{_NUM}(?:_{_NUM})?", "poisson30 | poisson5_50")
def _poisson(low, high=None):
    return Poisson(float(low), float(high) if high else None)


@register_corruption(rf"pg{_NUM}_{_NUM}", "pg0.01_0.02 (Poisson-Gaussian a_b)")
def _poisson_gaussian(a, b):
    return PoissonGaussian(float(a), float(b))


@register_corruption(rf"impulse{_NUM}(?:_{_NUM})?", "impulse0.5")
def _impulse(low, high=None):
    return Impulse(float(low), float(high) if high else None)


@register_corruption(rf"bernoulli{_NUM}", "bernoulli0.5")
def _bernoulli(p):
    return Bernoulli(float(p))
