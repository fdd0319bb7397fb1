"""The corruption-model interface and the short-name parser."""
from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import Callable

import torch
from torch import Tensor

from ..errors import UserError

Params = dict[str, Tensor]


class Corruption(ABC):
    """A model of the observation process y ~ p(y | x) on [0, 1] images of shape (N, C, H, W).

    ``sample`` draws an observation with an explicit generator (reproducible); ``sample_with_params``
    also returns the per-image parameters it drew (e.g. ``{"sigma": tensor of shape (N,)}``) so that a
    method told the noise level "is known" can read it. ``variance`` is the per-pixel noise variance as a
    function of the clean signal; ``log_likelihood`` scores an observation.
    """

    name: str = "corruption"
    clip: bool = False  #: whether observations are clipped to [0, 1] after corruption

    @abstractmethod
    def sample_with_params(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Params]:
        """Return (y, params) for clean images x of shape (N, C, H, W)."""

    def sample(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return self.sample_with_params(x, generator)[0]

    @abstractmethod
    def variance(self, x: Tensor, params: Params | None = None) -> Tensor:
        """Per-pixel variance of y given x (broadcastable to x); ``params`` as returned by sampling."""

    @abstractmethod
    def log_likelihood(self, y: Tensor, x: Tensor, params: Params | None = None) -> Tensor:
        """Per-pixel log p(y | x) (same shape as y)."""

    def nominal_params(self, batch: int, device: torch.device | str = "cpu") -> Params:
        """Parameters to assume when they were not recorded (the middle of a range)."""
        return {}

    def __repr__(self) -> str:
        return self.name


_PARSERS: list[tuple[re.Pattern, Callable[..., Corruption]]] = []
CORRUPTIONS: list[str] = []  # human-readable list of accepted forms, for --help and errors


def register_corruption(pattern: str, example: str) -> Callable:
    """Register a factory for names matching ``pattern`` (a regex with groups passed as strings)."""

    def decorator(factory: Callable[..., Corruption]) -> Callable[..., Corruption]:
        _PARSERS.append((re.compile(pattern + r"$"), factory))
        CORRUPTIONS.append(example)
        return factory

    return decorator


def parse_corruption(name: str) -> Corruption:
    """``gauss25`` -> Gaussian(sigma=25/255); ``poisson5_50`` -> Poisson(lambda in [5, 50]); etc."""
    text = name.strip().lower()
    for pattern, factory in _PARSERS:
        match = pattern.match(text)
        if match:
            try:
                model = factory(*match.groups())
            except ValueError as exc:
                raise UserError(f"noise model {name!r}: {exc}") from None
            model.name = text
            return model
    raise UserError(f"unknown noise model {name!r}; use one of: {', '.join(CORRUPTIONS)}")


def per_image(values: Tensor, like: Tensor) -> Tensor:
    """Reshape a (N,) tensor so it broadcasts over (N, C, H, W)."""
    return values.to(like.device, like.dtype).view(-1, *([1] * (like.dim() - 1)))


def draw_level(low: float, high: float, n: int, generator: torch.Generator | None) -> Tensor:
    """Per-image parameter: fixed if low == high, else uniform in [low, high]."""
    if low == high:
        return torch.full((n,), float(low))
    return low + (high - low) * torch.rand(n, generator=generator)
