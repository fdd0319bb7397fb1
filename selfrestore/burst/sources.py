"""Data sources of batch kind ``"burst"``: synthetic bursts from clean images, and one real burst.

Batches hold ``frames`` (B, T, C, p, p), ``affines`` (B, T, 2, 3) estimated by registering the *noisy*
frames (never the true motion), and, for synthetic data only, ``clean`` (B, C, s p, s p) the reference frame's
ground truth (read only by supervised twins and validation). Following the project's honest default, every
synthetic burst is drawn once with a fixed seed and registered once; batches are random aligned crops.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch
from torch import Tensor

from ..errors import UserError
from .geometry import translate_affine
from .registration import register_burst
from .synthesis import BurstConfig, synthesize_burst

if TYPE_CHECKING:
    import argparse

    from ..methods.base import Method


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
    frames: int  #: frames per batch sample; longer bursts give their reference and a random subset of the rest
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
            frames, affines = burst["frames"], burst["affines"]
            if frames.shape[0] > self.frames:  # a longer burst: its reference and a random subset of the rest
                keep = torch.from_numpy(np.concatenate([[0], 1 + np.sort(rng.permutation(frames.shape[0] - 1)
                                                                         [: self.frames - 1])]))
                frames, affines = frames[keep], affines[keep]
            frames, affines = crop_burst(frames, affines, top, left, patch)
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
        self.frames = int(self.bursts[0]["frames"].shape[0])


class RealBursts(_CroppingSource):
    """Several real bursts (each (T, C, H, W), frame 0 the reference), each registered once; no clean data.
    Batches stack bursts, so every sample has the shortest burst's frame count (``frames``): a longer burst
    gives its reference and a fresh random subset of its other frames each time, so no frame goes unused."""

    def __init__(self, bursts: Sequence[Tensor], raw: bool = False, registration: str = "affine",
                 min_frames: int = 2):
        if not bursts:
            raise UserError("no training bursts")
        self.frames = min(int(b.shape[0]) for b in bursts)
        if self.frames < min_frames:
            raise UserError(f"every training burst needs at least {min_frames} frames; the shortest has "
                            f"{self.frames}")
        sizes = {tuple(b.shape[1:2]) for b in bursts}
        if len(sizes) > 1:
            raise UserError(f"the bursts have different channel counts ({sorted(sizes)})")
        self.raw, self.scale, self.channels = raw, 1, int(bursts[0].shape[1])
        self.bursts = []
        for burst in bursts:
            frames = burst.float()
            self.bursts.append({"frames": frames, "affines": register_burst(frames, model=registration, raw=raw)})


class BurstFrames(RealBursts):
    """One real burst (T, C, H, W) (frame 0 is the reference), registered once; no clean data."""

    def __init__(self, frames: Tensor, raw: bool = False, registration: str = "affine"):
        if frames.dim() != 4 or frames.shape[0] < 2:
            raise UserError(f"a burst needs at least 2 frames of shape (C, H, W), got {tuple(frames.shape)}")
        super().__init__([frames], raw=raw, registration=registration)


def burst_source(args: argparse.Namespace, method: Method) -> RealBursts:
    """``fit``'s training source for a self-supervised burst method: the bursts under DATA (folders of
    frames); raw (RGGB) bursts for mosaic-to-mosaic."""
    from .frames_io import load_bursts

    raw = bool(getattr(method, "raw_bursts", False))
    if method.needs_clean:
        raise UserError(f"method {method.name} is a supervised twin (it needs the clean reference); it trains in "
                        "benchmarks/burst_table.py on synthetic bursts")
    if getattr(args, "synthetic", False):
        raise UserError("burst methods train on real bursts (folders of frames); --synthetic does not apply "
                        "(benchmarks/burst_table.py trains on synthetic bursts)")
    if not getattr(args, "data", None):
        raise UserError("no training bursts: give a folder of burst frames, or a folder of such folders")
    bursts = load_bursts(args.data, "demosaic" if raw else "superres")
    source = RealBursts(bursts, raw=raw, min_frames=method.min_training_frames)
    if not getattr(args, "quiet", False) and any(b.shape[0] > source.frames for b in bursts):
        print(f"training on {source.frames} frames at a time (the shortest burst's count): longer bursts give "
              f"their first frame and a random subset of the others at each draw")
    return source
