"""Data sources for deblurring: batch kind ``"blurry"``.

A ``"blurry"`` batch holds ``blurry`` (N, C, p, p) and, for supervised training only, the aligned sharp
``clean`` (N, C, p, p). Three sources:

* :class:`SyntheticBlurPairs`: sharp images blurred on the fly with a :class:`~selfrestore.corruption.blur.Blur`
  model (a fresh kernel and noise draw per patch: this is supervised training, where re-drawing the blur is
  plain data augmentation). The patch is blurred with a 'valid' convolution of a larger crop, so no
  padding artefact ever enters a training pair.
* :class:`BlurryImages`: random crops of blurry images alone (``{"blurry"}``), for self-supervised
  test-time adaptation and for training on a user's own blurry photos.
* :class:`RealBlurPairs`: real blurry / sharp pairs from two folders, matched by file name.

:class:`~selfrestore.corruption.blur.CameraShake` is the training blur model: recorded kernels mixed with
random camera-shake trajectories whose length and curliness are set explicitly, so the training blur can
be matched to the blur a test set holds (:func:`~selfrestore.corruption.blur.kernel_moments` measures both).

Every batch is a pure function of the NumPy generator the driver passes (see :mod:`selfrestore.data.base`).
"""
from __future__ import annotations

import os
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from ..corruption.blur import Blur, blur
from ..errors import UserError

BATCH_KIND = "blurry"


def _as_hwc(image: np.ndarray) -> np.ndarray:
    a = np.asarray(image, dtype=np.float32)
    return a[..., None] if a.ndim == 2 else a


def _channels(images: Sequence[np.ndarray], what: str) -> int:
    if not images:
        raise UserError(f"{what}: no images")
    channels = {img.shape[2] for img in images}
    if len(channels) != 1:
        raise UserError(f"{what}: images mix {sorted(channels)} channels; give --channels 1 or 3 to convert "
                        "them to one")
    return channels.pop()


def _check_pair(blurry: np.ndarray, sharp: np.ndarray, b_path: os.PathLike, s_path: os.PathLike) -> None:
    """A UserError for a pair whose images differ in size, or in channels alone (a gray blurry shot of a colour
    sharp one: ``--channels`` converts both)."""
    if blurry.shape[:2] != sharp.shape[:2]:
        raise UserError(f"{b_path}: size {blurry.shape[1]}x{blurry.shape[0]} differs from {s_path} "
                        f"({sharp.shape[1]}x{sharp.shape[0]})")
    if blurry.shape[2] != sharp.shape[2]:
        raise UserError(f"{b_path} has {blurry.shape[2]} channel(s), {s_path} {sharp.shape[2]}: give --channels 3 "
                        "(or 1) to convert both")


def unit_range_map(images: Sequence[np.ndarray], mapped: bool = True, dim: bool = False, seed: int = 0,
                   quiet: bool = True) -> dict[str, float] | None:
    """One :func:`~selfrestore.intensity_map.intensity_mapping` of all the training ``images`` (blurry and sharp
    alike: the pair stays on one scale), as ``fit`` maps its other data: float counts far outside [0, 1], and
    (``dim``) dim 16-bit data; None for data in about [0, 1] (8/16-bit files in full range), and when not
    ``mapped`` (``--resume`` of a run begun before deblurring data was mapped). ``restore`` then maps the inputs
    by the map the model records, the scale the network trained on (each image's own percentiles were another)."""
    if not mapped:
        return None
    from ..intensity_map import intensity_mapping, mapped_data_line

    mapping = intensity_mapping(images, seed=seed, dim=dim)
    if mapping and not quiet:
        print(mapped_data_line(mapping))
    return mapping


def _mapped(image: np.ndarray, mapping: dict[str, float] | None) -> np.ndarray:
    """``image`` mapped by ``x' = (x - offset) / scale`` (as it is for no map)."""
    return image if mapping is None else ((image - mapping["offset"]) / mapping["scale"]).astype(np.float32)


def _augment(patches: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """The same random flip / 90-degree rotation applied to every array of one sample."""
    k, flip = int(rng.integers(4)), bool(rng.integers(2))
    out = []
    for p in patches:
        q = np.rot90(p, k, axes=(0, 1))
        out.append(q[:, ::-1] if flip else q)
    return out


def _crop(image: np.ndarray, size: int, rng: np.random.Generator, top_left: tuple[int, int] | None = None
          ) -> tuple[np.ndarray, tuple[int, int]]:
    """A size x size crop (reflect-padded first when the image is smaller)."""
    h, w = image.shape[:2]
    if h < size or w < size:
        ph, pw = max(0, size - h), max(0, size - w)
        image = np.pad(image, ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)), mode="reflect")
        h, w = image.shape[:2]
    if top_left is None:
        top_left = (int(rng.integers(h - size + 1)), int(rng.integers(w - size + 1)))
    y, x = top_left
    return image[y:y + size, x:x + size], top_left


def _stack(patches: list[np.ndarray]) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(np.stack(patches).transpose(0, 3, 1, 2))).float()


class SyntheticBlurPairs:
    """Sharp images -> (blurry, clean) training patches with a fresh kernel and noise per patch.

    ``with_clean=False`` drops the sharp patch (a self-supervised view of the same data).
    """

    kind = BATCH_KIND

    def __init__(self, clean_images: Sequence[np.ndarray], corruption: Blur | None = None,
                 with_clean: bool = True, augment: bool = True, mapped: bool = True, dim: bool = False,
                 quiet: bool = True, seed: int = 0):
        """``mapped``, ``dim``, ``quiet``, ``seed``: the sharp images' map to [0, 1] (:func:`unit_range_map`,
        :attr:`intensity`), before they are blurred."""
        self.images = [_as_hwc(img) for img in clean_images]
        self.channels = _channels(self.images, "synthetic blur pairs")
        self.intensity = unit_range_map(self.images, mapped, dim, seed, quiet)
        self.images = [_mapped(img, self.intensity) for img in self.images]
        self.corruption = corruption if corruption is not None else Blur()
        if not isinstance(self.corruption, Blur):
            raise UserError(f"synthetic blur pairs need a blur model, got {self.corruption!r}")
        self.with_clean = with_clean
        self.augment = augment

    def batch(self, rng: np.random.Generator, batch_size: int, patch_size: int) -> dict[str, Tensor]:
        k = self.corruption.kernel_size
        margin = k // 2
        sharp, kernels, sigmas = [], [], []
        for _ in range(batch_size):
            image = self.images[int(rng.integers(len(self.images)))]
            crop, _ = _crop(image, patch_size + 2 * margin, rng)
            if self.augment:
                crop = _augment([crop], rng)[0]
            sharp.append(crop)
            kernels.append(self.corruption.draw_kernel(rng))
            sigmas.append(self.corruption.draw_sigma(rng))
        big = _stack(sharp)
        blurry = blur(big, torch.from_numpy(np.stack(kernels)), padding="valid")
        noise = torch.from_numpy(rng.standard_normal(blurry.shape).astype(np.float32))
        sigma = torch.tensor(sigmas, dtype=torch.float32)
        blurry = blurry + sigma.view(-1, 1, 1, 1) * noise
        batch = {"blurry": blurry, "noise_params": {"sigma": sigma}}
        if self.with_clean:
            batch["clean"] = big[:, :, margin:margin + patch_size, margin:margin + patch_size].contiguous()
        return batch


class BlurryImages:
    """Random crops of blurry images only: ``{"blurry"}`` (self-supervised adaptation, real photos)."""

    kind = BATCH_KIND

    def __init__(self, images: Sequence[np.ndarray], augment: bool = True):
        self.images = [_as_hwc(img) for img in images]
        self.channels = _channels(self.images, "blurry images")
        self.augment = augment

    def batch(self, rng: np.random.Generator, batch_size: int, patch_size: int) -> dict[str, Tensor]:
        patches = []
        for _ in range(batch_size):
            patch, _ = _crop(self.images[int(rng.integers(len(self.images)))], patch_size, rng)
            patches.append(_augment([patch], rng)[0] if self.augment else patch)
        return {"blurry": _stack(patches)}


class RealBlurPairs:
    """Aligned real (blurry, sharp) pairs read from two folders matched by name; crops at the same place."""

    kind = BATCH_KIND

    def __init__(self, blurry_dir: str | os.PathLike, sharp_dir: str | os.PathLike, with_clean: bool = True,
                 augment: bool = True, channels: int | None = None, warn: Callable[[str], None] | None = None,
                 mapped: bool = True, dim: bool = False, quiet: bool = True, seed: int = 0):
        """``channels``: 1 or 3, every image converted (``fit --channels``); ``warn``: told of a pair with an
        unreadable file, which is left out (the others still train; default: stderr). ``mapped``, ``dim``,
        ``quiet``, ``seed``: one map to [0, 1] for both images of every pair (:func:`unit_range_map`,
        :attr:`intensity`)."""
        from ..data.blurry_noisy import _to_stderr
        from ..errors import ImageReadError
        from ..file_lists import match_all_by_name
        from ..io import read_image, to_channels
        from ..memory_check import check_fits_in_memory

        matched = match_all_by_name(blurry_dir, sharp_dir, ("blurry", "sharp"))
        check_fits_in_memory([path for pair in matched for path in pair], channels)
        self.pairs = []
        for b_path, s_path in matched:
            try:
                b, s = _as_hwc(read_image(b_path)[0]), _as_hwc(read_image(s_path)[0])
            except ImageReadError as exc:
                (warn or _to_stderr)(f"skipped the pair {b_path} / {s_path}: {exc}")
                continue
            if channels:
                b, s = to_channels(b, channels), to_channels(s, channels)
            _check_pair(b, s, b_path, s_path)
            self.pairs.append((b, s))
        self.channels = _channels([b for b, _ in self.pairs], f"{blurry_dir}")
        self.intensity = unit_range_map([image for pair in self.pairs for image in pair], mapped, dim, seed, quiet)
        self.pairs = [(_mapped(b, self.intensity), _mapped(s, self.intensity)) for b, s in self.pairs]
        self.with_clean = with_clean
        self.augment = augment

    def batch(self, rng: np.random.Generator, batch_size: int, patch_size: int) -> dict[str, Tensor]:
        blurry, sharp = [], []
        for _ in range(batch_size):
            b, s = self.pairs[int(rng.integers(len(self.pairs)))]
            pb, corner = _crop(b, patch_size, rng)
            ps, _ = _crop(s, patch_size, rng, top_left=corner)
            if self.augment:
                pb, ps = _augment([pb, ps], rng)
            blurry.append(pb)
            sharp.append(ps)
        batch = {"blurry": _stack(blurry)}
        if self.with_clean:
            batch["clean"] = _stack(sharp)
        return batch
