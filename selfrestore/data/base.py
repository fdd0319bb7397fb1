"""The data-source interface: something that yields training batches of one batch kind.

The training driver calls ``source.batch(rng, batch_size, patch_size)`` with a NumPy generator seeded
from (seed, step, rank), so every step's data is a pure function of the step: resuming after a kill
reproduces the uninterrupted run exactly, with no sampler state to save.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
from torch import Tensor


@runtime_checkable
class DataSource(Protocol):
    kind: str       #: the batch kind it yields ("single", "pair", "blurry_noisy", "frames", "burst")
    channels: int   #: image channels

    def batch(self, rng: np.random.Generator, batch_size: int, patch_size: int) -> dict[str, Tensor]:
        """A batch dict as described in :mod:`selfrestore.methods.base`."""
        ...
