"""Restoring noise that is correlated between neighbouring pixels by restoring sub-images (pixel-shuffle
down-sampling, Zhou et al. 2020, "When AWGN-based Denoiser Meets Real Noises"; as at test time in AP-BSN,
Lee et al. 2022).

A denoiser trained for independent noise per pixel (every shipped model, and the blind-spot ones by their
very principle) keeps noise that demosaicking, JPEG or in-camera processing spread over neighbouring
pixels. The s x s sub-images of an image (every s-th pixel, from each of the s^2 offsets) hold pixels s apart,
whose noise is far less correlated; each is restored alone and the results interleaved back. The price is
detail: each sub-image is an aliased, half-resolution view, so on independent noise, or on nearly noise-free
images, this is worse. It is asked for, not automatic: on one image, noise correlated between neighbours and fine
texture look alike (the neighbour correlation of :mod:`selfrestore.noise_check` read 0.15-0.57 on noise-free
Kodak crops, 0.45-0.57 on demosaicked noise). With the default model (laine19-gauss5_50) it gained +1.4 / +1.75
dB on box-filtered / demosaicked noise of std 40 / 30, +0.16 at demosaicked std 15, nothing on JPEG'd noise, and
lost 2.3-4.1 dB on white noise and clean crops; the U-Net (unet-gauss25) gained only at demosaicked std 30
(benchmarks/results/subsample_correlated.md).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

SUBSAMPLE_STRIDES = (1, 2)  #: as ``--subsample``: 1 the image as it is; 2 its 2 x 2 sub-images


def in_subimages(fn: Callable[[np.ndarray], np.ndarray | tuple[np.ndarray, ...]], image: np.ndarray, stride: int
                 ) -> np.ndarray | tuple[np.ndarray, ...]:
    """``fn`` applied to each of the ``stride`` x ``stride`` sub-images of the (H, W, C) ``image`` and its
    results (an array, or a tuple of arrays, each (h, w, C') for an (h, w, C) sub-image) interleaved back to
    (H, W, C'). Sides that are not a multiple of ``stride`` are padded by reflection and cropped after, so every
    sub-image has one size. ``stride`` 1: ``fn(image)``."""
    if stride <= 1:
        return fn(image)
    h, w = image.shape[:2]
    padded_h, padded_w = -(-h // stride) * stride, -(-w // stride) * stride
    pad = ((0, padded_h - h), (0, padded_w - w)) + ((0, 0),) * (image.ndim - 2)
    padded = np.pad(image, pad, mode="reflect" if min(h, w) > 1 else "edge")
    outputs: list[np.ndarray] | None = None
    single = True
    for dy in range(stride):
        for dx in range(stride):
            result = fn(np.ascontiguousarray(padded[dy::stride, dx::stride]))
            single = not isinstance(result, tuple)
            parts = (result,) if single else result
            if outputs is None:
                outputs = [np.empty((padded_h, padded_w) + part.shape[2:], part.dtype) for part in parts]
            for out, part in zip(outputs, parts):
                out[dy::stride, dx::stride] = part
    assert outputs is not None
    cropped = tuple(out[:h, :w] for out in outputs)
    return cropped[0] if single else cropped

