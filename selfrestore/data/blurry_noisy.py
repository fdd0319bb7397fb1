"""Data sources for blurry + noisy pairs (SelfIR, Zhang et al. 2022): batch kind ``"blurry_noisy"``.

A batch holds ``blurry`` (a long exposure: camera-shake blur + light noise) and ``noisy`` (a short exposure
of the same scene: strong noise), both (N, C, p, p) and cropped at the same place; ``clean`` (the sharp
scene, aligned with ``noisy``) is added only for the supervised baselines (``keep_clean=True``).

* :class:`SyntheticBlurryNoisy`: clean images -> one (blurry, noisy) pair each, drawn ONCE with a fixed
  per-image seed (:func:`~selfrestore.data.images.image_generator`) and reused every epoch (the honest
  single-realisation protocol). The blurry image is the 'valid' part of the blur, so no padding artefact
  enters the data; ``misalign_px`` shifts the noisy shot by up to that many pixels (hand shake between
  the two exposures).
* :class:`RealBlurryNoisy`: real pairs from two folders matched by file name.

The blur of the long exposure is any :class:`~selfrestore.corruption.blur.Blur`; the CLI and the benchmark
use :class:`~selfrestore.corruption.blur.CameraShake` with every kernel centred on its centroid, so that
the blurry shot is aligned with the sharp scene, as real long / short exposures are at the middle of the
long one.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from ..corruption import Corruption
from ..corruption.blur import Blur, blur
from ..errors import UserError
from .images import PatchSource, image_generator

BATCH_KIND = "blurry_noisy"


def _to_stderr(message: str) -> None:
    print(f"selfrestore: {message}", file=sys.stderr)


def _as_hwc(image: np.ndarray) -> np.ndarray:
    a = np.asarray(image, dtype=np.float32)
    return a[..., None] if a.ndim == 2 else a


def _chw(array: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))[None].float()


def _hwc(tensor: Tensor) -> np.ndarray:
    return tensor[0].numpy().transpose(1, 2, 0).copy()


def make_blurry_noisy(clean: np.ndarray, blur_model: Blur, noise: Corruption, generator: torch.Generator,
                      misalign_px: int = 0, noise_params: dict[str, float] | None = None) -> dict[str, np.ndarray]:
    """One (blurry, noisy, clean) triple from an (H, W, C) clean image, all of size (H - 2m, W - 2m) with
    m = kernel radius + ``misalign_px``. ``clean`` is the sharp scene aligned with ``noisy``. The noise
    level drawn for the short exposure (e.g. {"sigma": ...}) is written into ``noise_params`` when given."""
    image = _as_hwc(clean)
    rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=generator).item()))
    radius = blur_model.kernel_size // 2
    margin = radius + int(misalign_px)
    h, w = image.shape[:2]
    if h <= 2 * margin or w <= 2 * margin:
        raise UserError(f"image of {w}x{h} is too small for blur kernels of {blur_model.kernel_size} px"
                        f" (+{misalign_px} px misalignment)")
    kernel = torch.from_numpy(blur_model.draw_kernel(rng))
    sigma_blur = blur_model.draw_sigma(rng)
    dy, dx = (rng.integers(-misalign_px, misalign_px + 1, size=2) if misalign_px else (0, 0))
    oh, ow = h - 2 * margin, w - 2 * margin
    # the blurry image is the 'valid' blur of the window centred on the output region
    region = image[margin - radius:margin - radius + oh + 2 * radius, margin - radius:margin - radius + ow + 2 * radius]
    blurry = blur(_chw(region), kernel, padding="valid")
    blurry = blurry + sigma_blur * torch.from_numpy(rng.standard_normal(blurry.shape).astype(np.float32))
    sharp = image[margin + dy:margin + dy + oh, margin + dx:margin + dx + ow]
    noisy, params = noise.sample_with_params(_chw(sharp), generator)
    if noise_params is not None:
        noise_params.update({k: float(torch.as_tensor(v).reshape(-1)[0]) for k, v in params.items()})
    return {"blurry": _hwc(blurry), "noisy": _hwc(noisy), "clean": np.ascontiguousarray(sharp)}


class SyntheticBlurryNoisy(PatchSource):
    """Clean images -> fixed (blurry, noisy) pairs, each image corrupted once (seeded per image).

    Patches of all keys are cut at the same place with the same flip/rotation (PatchSource).
    """

    kind = BATCH_KIND

    def __init__(self, clean_images: Sequence[np.ndarray], blur_model: Blur | None, noise: Corruption,
                 seed: int = 0, misalign_px: int = 0, keep_clean: bool = False):
        blur_model = blur_model if blur_model is not None else Blur()
        if not isinstance(blur_model, Blur):
            raise UserError(f"blurry+noisy pairs need a blur model, got {blur_model!r}")
        if noise is None:
            raise UserError("blurry+noisy pairs need a noise model for the short exposure (e.g. --noise gauss5_50)")
        fields: dict[str, list[np.ndarray]] = {"blurry": [], "noisy": []}
        if keep_clean:
            fields["clean"] = []
        params: dict[str, list[float]] = {}
        for i, image in enumerate(clean_images):
            drawn: dict[str, float] = {}
            triple = make_blurry_noisy(image, blur_model, noise, image_generator(seed, i), misalign_px, drawn)
            for key in fields:
                fields[key].append(triple[key])
            for key, value in drawn.items():
                params.setdefault(key, []).append(value)
        if not fields["blurry"]:
            raise UserError("no training images")
        super().__init__(fields, params)  # the drawn levels: methods that need the noise level read them
        self.blur_model, self.noise, self.seed, self.misalign_px = blur_model, noise, seed, misalign_px


class PairSizeMismatch(UserError):
    """The two images of a blurry + noisy pair differ in size."""


def read_blurry_noisy(blurry_path: Path, noisy_path: Path, channels: int | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Both images of a pair, same size and channels, or a one-line UserError naming the files."""
    from ..io import read_image, to_channels

    b, _ = read_image(blurry_path)
    n, _ = read_image(noisy_path)
    if b.shape[:2] != n.shape[:2]:
        raise PairSizeMismatch(f"{blurry_path}: size {b.shape[1]}x{b.shape[0]} differs from {noisy_path} "
                               f"({n.shape[1]}x{n.shape[0]})")
    c = channels or max(b.shape[2], n.shape[2])
    return to_channels(b, c), to_channels(n, c)


class RealBlurryNoisy(PatchSource):
    """Real (blurry, noisy) pairs from two folders matched by file name, or one pair of files; no clean key.
    A pair that cannot be read, or whose two images differ in size, is reported through ``warn`` and left
    out (the others still train). With ``mapped``, float counts far outside [0, 1], and (``dim``) dim 16-bit
    data, are mapped to [0, 1] by one map for both shots (:func:`selfrestore.intensity_map.intensity_mapping`;
    :attr:`intensity`; not on ``--resume`` of a run begun before pairs were mapped)."""

    kind = BATCH_KIND

    def __init__(self, blurry_dir: str | os.PathLike, noisy_dir: str | os.PathLike, channels: int | None = None,
                 warn: Callable[[str], None] = _to_stderr, mapped: bool = True, dim: bool = False,
                 quiet: bool = True, seed: int = 0):
        from ..errors import ImageReadError
        from ..file_lists import file_or_folder_pairs
        from ..memory_check import check_fits_in_memory

        matched = file_or_folder_pairs(blurry_dir, noisy_dir, ("blurry", "noisy"), ("--blurry", "--noisy"))
        check_fits_in_memory([path for pair in matched for path in pair], channels)
        blurry, noisy = [], []
        for b_path, n_path in matched:
            try:
                b, n = read_blurry_noisy(b_path, n_path, channels)
            except (ImageReadError, PairSizeMismatch) as exc:
                warn(f"skipped the pair {b_path.name}: {exc}")
                continue
            blurry.append(b)
            noisy.append(n)
        if not blurry:
            raise UserError(f"no readable blurry / noisy pair in {blurry_dir} and {noisy_dir}")
        if channels is None:  # a mixed folder trains in colour
            from ..io import to_channels

            c = max(b.shape[2] for b in blurry)
            blurry = [to_channels(b, c) for b in blurry]
            noisy = [to_channels(n, c) for n in noisy]
        super().__init__({"blurry": blurry, "noisy": noisy})
        from ..intensity_map import training_map

        if mapping := training_map(blurry + noisy, mapped, dim, seed, quiet):
            self.map_to_unit_range(mapping)
