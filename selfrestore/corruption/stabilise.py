"""Variance stabilisation of Poisson-Gaussian noise (generalised Anscombe transform, GAT).

For y = a * Poisson(x / a) + b * n (Var(y | x) = a x + b^2, :class:`~.noise.PoissonGaussian`), the GAT

    f(y) = 2 * sqrt(y / a + 3/8 + (b / a)^2)

makes the noise approximately Gaussian with unit variance, whatever x, so a denoiser made for Gaussian noise
of a single level can restore sensor data (stabilise, denoise, invert). The inverse must be the *exact
unbiased* one, not the algebraic one: a denoiser estimates E[f(y) | x], and f^-1(E[f(y)]) != x (Jensen). We
use the closed-form approximation of the exact unbiased inverse of Makitalo & Foi (2013, IEEE TIP 22(1)):

    I(D) = D^2 / 4 + sqrt(3/2) / (4 D) - 11 / (8 D^2) + 5 sqrt(3/2) / (8 D^3) - 1/8 - (b / a)^2

in units of a (x = a * I(D)). Below f(0), the transform of a zero signal (where the closed form's 1 / D terms
stop describing it), I continues along its tangent at f(0), down to the transform's domain (y / a + 3/8 +
(b / a)^2 >= 0): an estimate of a dark or bias-subtracted sky below zero stays below zero, as the data's mean
does, where a clamp at 0 raised it. A standard deviation s_D of the estimate D goes back by the delta
method, s_x = a |I'(D)| s_D (:func:`inverse_anscombe_std`).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

_ROOT_3_2 = math.sqrt(1.5)


def _check(a: float, b: float) -> None:
    if a <= 0 or b < 0:
        raise ValueError(f"the Poisson-Gaussian model needs a > 0 and b >= 0, got a={a}, b={b}")


def anscombe(y: Tensor, a: float, b: float) -> Tensor:
    """Generalised Anscombe transform: Poisson-Gaussian y (Var = a x + b^2) -> unit-variance Gaussian noise."""
    _check(a, b)
    return 2 * torch.sqrt((y / a + 0.375 + (b / a) ** 2).clamp_min(0))


def _closed_form(d: Tensor, b_over_a: float) -> Tensor:
    return d**2 / 4 + _ROOT_3_2 / (4 * d) - 11 / (8 * d**2) + 5 * _ROOT_3_2 / (8 * d**3) - 0.125 - b_over_a**2


def _slope(d: Tensor) -> Tensor:
    return d / 2 - _ROOT_3_2 / (4 * d**2) + 11 / (4 * d**3) - 15 * _ROOT_3_2 / (8 * d**4)


def inverse_anscombe(d: Tensor, a: float, b: float) -> Tensor:
    """Closed-form approximately unbiased inverse of :func:`anscombe` (Makitalo & Foi 2013): ``d`` is a
    denoised, i.e. E[f(y) | x], estimate; returns x on the scale of y: below f(0) along the tangent there,
    down to the lowest y the transform takes, -(3 a / 8 + b^2 / a)."""
    _check(a, b)
    zero = torch.full_like(d, 2 * math.sqrt(0.375 + (b / a) ** 2))  # f(0)
    above = _closed_form(torch.maximum(d, zero), b / a)
    below = _closed_form(zero, b / a) + _slope(zero) * (d - zero)
    x = torch.where(d >= zero, above, below)
    return a * x.clamp_min(-(0.375 + (b / a) ** 2))


def inverse_anscombe_std(d: Tensor, std_d: Tensor, a: float, b: float) -> Tensor:
    """The standard deviation ``std_d`` of a stabilised estimate ``d`` mapped back through
    :func:`inverse_anscombe` to first order (delta method): a |I'(d)| std_d, with
    I'(D) = D / 2 - sqrt(3/2) / (4 D^2) + 11 / (4 D^3) - 15 sqrt(3/2) / (8 D^4). Below f(0), the transform
    of a zero signal, the slope at f(0) is used: a dark estimate (clamped at 0) keeps a finite, non-zero spread
    where the closed form's slope would blow up."""
    _check(a, b)
    d = d.clamp_min(2 * math.sqrt(0.375 + (b / a) ** 2))
    return a * _slope(d).abs() * std_d


def anscombe_range(a: float, b: float, low: float = 0.0, high: float = 1.0) -> tuple[float, float]:
    """(f(low), f(high)): where signals in [low, high] land after :func:`anscombe` (to map it back to [0, 1]
    for a denoiser trained on [0, 1] images: the unit noise then has std 1 / (f(high) - f(low)))."""
    ends = anscombe(torch.tensor([low, high], dtype=torch.float64), a, b)
    return float(ends[0]), float(ends[1])
