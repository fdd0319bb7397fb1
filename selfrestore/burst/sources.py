"""Data sources of batch kind ``"burst"``: synthetic bursts from clean images, and one real burst.

Batches hold ``frames`` (B, T, C, p, p), ``affines`` (B, T, 2, 3) estimated by registering the *noisy*
frames (never the true motion), and, for synthetic data only, ``clean`` (B, C, s p, s p) the reference frame's
ground truth (read only by supervised twins and validation). Following the project's honest default, every
synthetic burst is drawn once with a fixed seed and registered once; batches are random aligned crops.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from ..errors import UserError
from .geometry import translate_affine
from .registration import register_burst
from .synthesis import BurstConfig, synthesize_burst


def _as_tensor(image: np.ndarray | Tensor) -> Tensor:
    """(H, W, C) array or (C, H, W) tensor -> (C, H, W) float32 tensor."""
    if isinstance(image, np.ndarray):
        array = image if image.ndim == 3 else image[..., None]
        return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1))).float()
    return image.float()


def crop_burst(frames: Tensor, affines: Tensor, top: int, left: int, size: int) -> tuple[Tensor, Tensor]:
    """Crop (T, C, H, W) frames at (top, left) and re-express the affines in the crop's coordinates."""
    return (frames[..., top:top + size, left:left + size],
            translate_affine(affines, float(left), float(top)))


class _CroppingSource:
    kind = "burst"
    channels: int
    scale: int = 1
    raw: bool = False
    bursts: list[dict[str, Tensor]]

    def batch(self, rng: np.random.Generator, batch_size: int, patch_size: int) -> dict[str, Tensor]:
        step = 2 if self.raw else 1
        patch = patch_size - patch_size % (4 if self.raw else 1)
        out: dict[str, list[Tensor]] = {"frames": [], "affines": [], "clean": []}
        for _ in range(batch_size):
            burst = self.bursts[int(rng.integers(len(self.bursts)))]
            h, w = burst["frames"].shape[-2:]
            if h < patch or w < patch:
                raise UserError(f"patch size {patch} is larger than a burst frame ({h}x{w})")
            top = int(rng.integers(0, (h - patch) // step + 1)) * step
            left = int(rng.integers(0, (w - patch) // step + 1)) * step
            frames, affines = crop_burst(burst["frames"], burst["affines"], top, left, patch)
            out["frames"].append(frames)
            out["affines"].append(affines)
            if "clean" in burst:
                s = self.scale
                out["clean"].append(burst["clean"][..., s * top:s * (top + patch), s * left:s * (left + patch)])
        return {k: torch.stack(v) for k, v in out.items() if v}


class SyntheticBursts(_CroppingSource):
    """Bursts synthesised once (fixed seed) from clean images (H, W, C arrays in [0, 1]) and registered once.

    ``registration`` is the motion model used on the noisy frames ("affine", "euclidean", "translation").
    """

    def __init__(self, clean_images: Sequence[np.ndarray | Tensor], config: BurstConfig, seed: int = 0,
                 registration: str = "affine"):
        if not clean_images:
            raise UserError("no training images for the burst source")
        self.config, self.scale, self.raw = config, config.scale, config.mosaic
        generator = torch.Generator().manual_seed(seed)
        self.bursts = []
        for image in clean_images:
            clean = _as_tensor(image)[None]
            burst = synthesize_burst(clean, config, generator)
            frames = burst["frames"][0]
            self.bursts.append({"frames": frames, "clean": burst["clean"][0], "true_motion": burst["motion"][0],
                                "affines": register_burst(frames, model=registration, raw=config.mosaic)})
        self.channels = 1 if config.mosaic else self.bursts[0]["frames"].shape[1]


class BurstFrames(_CroppingSource):
    """One real burst (T, C, H, W) (frame 0 is the reference), registered once; no clean data."""

    def __init__(self, frames: Tensor, raw: bool = False, registration: str = "affine"):
        if frames.dim() != 4 or frames.shape[0] < 2:
            raise UserError(f"a burst needs at least 2 frames of shape (C, H, W), got {tuple(frames.shape)}")
        self.raw, self.scale, self.channels = raw, 1, frames.shape[1]
        self.bursts = [{"frames": frames.float(), "affines": register_burst(frames.float(), model=registration,
                                                                            raw=raw)}]
