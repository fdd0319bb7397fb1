"""Data sources of batch kind ``"burst"``: synthetic bursts from clean images, and one real burst.

Batches hold ``frames`` (B, T, C, p, p), ``affines`` (B, T, 2, 3) estimated by registering the *noisy*
frames (never the true motion), and, for synthetic data only, ``clean`` (B, C, s p, s p) the reference frame's
ground truth (read only by supervised twins and validation). Following the project's honest default, every
synthetic burst is drawn once with a fixed seed and registered once; batches are random aligned crops.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

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
    names: list[str] | None = None  #: where each burst came from (its folder), for messages

    def batch(self, rng: np.random.Generator, batch_size: int, patch_size: int) -> dict[str, Tensor]:
        step = 2 if self.raw else 1
        patch = patch_size - patch_size % (4 if self.raw else 1)
        out: dict[str, list[Tensor]] = {"frames": [], "affines": [], "clean": []}
        for _ in range(batch_size):
            index = int(rng.integers(len(self.bursts)))
            burst = self.bursts[index]
            h, w = burst["frames"].shape[-2:]
            if h < patch or w < patch:
                named = f" of {self.names[index]}" if self.names else ""
                raise UserError(f"patch size {patch} is larger than a burst frame{named} ({h}x{w})")
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
    bursts, folders = load_bursts(args.data, "demosaic" if raw else "superres",
                                  minimum=max(2, int(method.min_training_frames)), with_folders=True)
    for burst, folder in zip(bursts, folders):  # RealBursts would refuse them without naming one
        if burst.shape[1] != bursts[0].shape[1]:
            raise UserError(f"training burst {folder} has {burst.shape[1]}-channel frames, {folders[0]} "
                            f"{bursts[0].shape[1]}-channel ones; train on bursts of one kind (gray or RGB)")
    check_patch_fits(args, bursts, folders, raw)
    from .frames_io import RAW_SUFFIXES

    camera_raw = any(p.suffix.lower() in RAW_SUFFIXES for folder in folders for p in folder.iterdir())
    mapping = _map_bursts(bursts, args, camera_raw)
    if mapping:  # one map for all frames of all bursts: bursts mapped apart would no longer agree
        from ..intensity_map import apply_mapping

        bursts = [apply_mapping(b, mapping) for b in bursts]
    source = RealBursts(bursts, raw=raw, min_frames=method.min_training_frames)
    source.names = [str(folder) for folder in folders]
    source.intensity = mapping  # fit records it in the model: `burst --model` maps the frames alike
    if not getattr(args, "quiet", False) and any(b.shape[0] > source.frames for b in bursts):
        print(f"training on {source.frames} frames at a time (the shortest burst's count): longer bursts give "
              f"their first frame and a random subset of the others at each draw")
    return source


def _map_bursts(bursts: Sequence[Tensor], args: argparse.Namespace, camera_raw: bool = False
                ) -> dict[str, float] | None:
    """One :func:`~selfrestore.intensity_map.intensity_mapping` of every frame of every training burst, as ``fit``
    maps its other training data: float counts far outside [0, 1], and (``args.maps_dim_data``, default True) data
    using only a sliver of it (12/14-bit counts in 16-bit files; not ``camera_raw`` files, which their white level
    scales, as ``burst`` reads them); None for data in about [0, 1], and on ``--resume`` of a run begun before
    bursts were mapped (``args.maps_method_data`` False)."""
    from ..intensity_map import training_map

    frames = (frame.permute(1, 2, 0).numpy() for burst in bursts for frame in burst)
    return training_map(frames, mapped=getattr(args, "maps_method_data", True),
                        dim=bool(getattr(args, "maps_dim_data", True)) and not camera_raw,
                        seed=int(getattr(args, "seed", 0) or 0), quiet=getattr(args, "quiet", False))


def _largest_patch(args: argparse.Namespace, raw: bool) -> tuple[int, str]:
    """The largest training patch side ``fit`` will crop (as the source crops it: raw patches in whole 4-px
    steps) and the option that sets it."""
    patch = int(getattr(args, "patch_size", None) or 128)
    option = f"--patch-size {patch}"
    text = str(getattr(args, "patch_sizes", None) or "")
    sizes = [int(t) for t in text.replace(" ", "").split(",") if t.isdigit()]
    if sizes and max(sizes) > patch:
        patch, option = max(sizes), f"--patch-sizes {text}"
    return (patch - patch % 4 if raw else patch), option


def check_patch_fits(args: argparse.Namespace, bursts: Sequence[Tensor], folders: Sequence[Any], raw: bool) -> None:
    """A UserError, before training starts, naming the first burst whose frames are smaller than the training
    patches (each patch is a crop of one burst) and the --patch-size that every burst holds."""
    patch, option = _largest_patch(args, raw)
    for burst, folder in zip(bursts, folders):
        h, w = burst.shape[-2:]
        if min(h, w) >= patch:
            continue
        side = min(min(b.shape[-2:]) for b in bursts)
        side = side - side % 4 if raw else side
        off = " --patch-sizes off" if option.startswith("--patch-sizes") else ""
        advice = (f"give --patch-size {side} (or less){off}, or leave it out of the training data"
                  if side >= (4 if raw else 2) else "leave it out of the training data")
        raise UserError(f"training burst {folder}: frames of {h}x{w} px are smaller than the {patch} px training "
                        f"patches ({option}): {advice}")
