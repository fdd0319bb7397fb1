"""Corruption models: how a clean signal becomes what was observed.

Each model samples (for synthetic data) and scores (variance as a function of the signal, a log-likelihood)
for the methods that need a likelihood. ``parse_corruption("gauss25")`` turns a short name into a model.
"""
from .base import Corruption, parse_corruption, CORRUPTIONS
from . import noise as _noise  # noqa: F401  (registers the noise models)
from . import blur as _blur  # noqa: F401  (registers the blur models)

__all__ = ["Corruption", "parse_corruption", "CORRUPTIONS"]
