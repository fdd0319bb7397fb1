"""Image data sources: clean images corrupted once (synthetic benchmarks), real noisy images, real pairs; and
:func:`load_images`, which reads the images they are made from.

"Single noisy realisation" is the honest default: every training image is corrupted ONCE with a fixed
seed (per image, so adding images does not change the others) and reused every epoch. ``redraw=True``
draws fresh noise for every patch instead; it quietly turns a single-image method into Noise2Noise and
must be labelled as such in any table.
"""
from __future__ import annotations

import os
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from ..corruption import Corruption
from ..errors import ImageReadError, UserError
from ..file_lists import list_images
from ..io import read_frames, to_channels
from ..memory_check import check_fits_in_memory
from .base import DataSource

D4 = 8  # the eight flips/rotations of the square


def image_generator(seed: int, index: int) -> torch.Generator:
    """The generator that corrupts image ``index``: a pure function of (seed, index)."""
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + int(index))


def random_patch(rng: np.random.Generator, arrays: Sequence[np.ndarray], patch: int) -> list[np.ndarray]:
    """The same random crop (padded symmetrically if the image is smaller) and D4 transform of aligned arrays."""
    h, w = arrays[0].shape[:2]
    if h < patch or w < patch:
        ph, pw = max(0, patch - h), max(0, patch - w)
        arrays = [np.pad(a, ((0, ph), (0, pw), (0, 0)), mode="symmetric") for a in arrays]
        h, w = arrays[0].shape[:2]
    y = int(rng.integers(0, h - patch + 1))
    x = int(rng.integers(0, w - patch + 1))
    k, flip = int(rng.integers(0, 4)), bool(rng.integers(0, 2))
    out = []
    for a in arrays:
        p = np.rot90(a[y:y + patch, x:x + patch], k)
        out.append(np.ascontiguousarray(p[:, ::-1] if flip else p))
    return out


def stack(patches: Sequence[np.ndarray]) -> Tensor:
    """List of (H, W, C) arrays -> (N, C, H, W) float32 tensor."""
    return torch.from_numpy(np.stack(patches).transpose(0, 3, 1, 2).copy()).float()


def load_images(inputs: Sequence[str | os.PathLike], channels: int | None = None,
                warn: Callable[[str], None] = print, copies: int = 1, progress: bool = False) -> list[np.ndarray]:
    """Read every image that can be read (every plane of a TIFF stack), report the others through ``warn``
    and go on.

    ``channels`` (1 or 3) converts gray <-> RGB so a mixed folder gives uniform arrays. ``copies``: how many
    float32 versions of each image the caller will hold (e.g. 2 for clean + noisy), for
    :func:`~selfrestore.memory_check.check_fits_in_memory`. ``progress``: a progress bar while reading (for more
    than 20 files).
    Raises :class:`UserError` when nothing at all could be read.
    """
    from tqdm import tqdm

    notes: list[str] = []
    paths, problems = list_images(inputs, notes=notes)
    check_fits_in_memory(paths, channels, copies)
    for problem in problems:
        warn(f"skipped {problem}")
    for note in notes:
        warn(note)
    images = []
    for path in tqdm(paths, desc="reading", unit="img", leave=False, disable=not progress or len(paths) <= 20):
        try:
            frames, info = read_frames(path)  # a TIFF stack gives each of its planes
        except ImageReadError as exc:
            warn(f"skipped {exc}")
            continue
        if info.blank is not None:  # blank pixels are read as a stand-in value: nothing to learn from
            blanks = info.blank if len(frames) > 1 else [info.blank]  # (a stack's: one per plane)
            whole = [frame for frame, blank in zip(frames, blanks) if not blank.all()]
            if not whole:
                warn(f"skipped {path}: every pixel blank (NaN or infinite)")
                continue
            if len(whole) < len(frames):
                warn(f"{path}: {len(frames) - len(whole)} of its {len(frames)} planes left out: every pixel of "
                     "them blank (NaN or infinite)")
            frames = whole
        images.extend(to_channels(image, channels) if channels else image for image in frames)
    if not images:
        raise UserError(f"no readable images in {', '.join(map(str, inputs))}")
    return images


class PatchSource:
    """Random patches from lists of aligned arrays: ``fields[name][i]`` are the arrays of image i."""

    kind = "single"
    #: how the stored values were mapped to [0, 1] for training (float data far outside it; see
    #: :func:`selfrestore.intensity_map.intensity_mapping`), recorded in the model so restoring maps alike;
    #: None: as read
    intensity: dict[str, float] | None = None

    def __init__(self, fields: dict[str, list[np.ndarray]], params: dict[str, list[float]] | None = None):
        names = list(fields)
        if not names or not fields[names[0]]:
            raise UserError("no training images")
        self.fields = fields
        self.params = params or {}
        self.channels = fields[names[0]][0].shape[2]

    def __len__(self) -> int:
        return len(next(iter(self.fields.values())))

    def map_to_unit_range(self, mapping: dict[str, float]) -> None:
        """Map every field's arrays by ``x' = (x - offset) / scale`` (one map for all: the fields stay on one
        scale) and record it in :attr:`intensity`, so that restoring maps alike."""
        from ..intensity_map import apply_mapping

        for name, arrays in self.fields.items():
            self.fields[name] = [apply_mapping(a, mapping) for a in arrays]
        self.intensity = mapping

    def subset(self, keep: Callable[[int], bool]) -> PatchSource:
        """A shallow copy holding the images ``i`` for which ``keep(i)``, every field and parameter alike."""
        import copy

        part = copy.copy(self)
        part.fields = {name: [a for i, a in enumerate(arrays) if keep(i)] for name, arrays in self.fields.items()}
        part.params = {name: [v for i, v in enumerate(values) if keep(i)] for name, values in self.params.items()}
        return part

    def batch(self, rng: np.random.Generator, batch_size: int, patch_size: int) -> dict[str, Tensor]:
        names = list(self.fields)
        picks = rng.integers(0, len(self), size=batch_size)
        crops: dict[str, list[np.ndarray]] = {n: [] for n in names}
        for i in picks:
            for name, crop in zip(names, random_patch(rng, [self.fields[n][i] for n in names], patch_size)):
                crops[name].append(crop)
        batch: dict = {n: stack(c) for n, c in crops.items()}
        if self.params:
            batch["noise_params"] = {k: torch.tensor([v[i] for i in picks], dtype=torch.float32)
                                     for k, v in self.params.items()}
        return batch


def split_holdout(source: DataSource, fraction: float, seed: int = 0) -> tuple[PatchSource, PatchSource] | None:
    """(training source, held-out source): a ``fraction`` of the images (at least one, never all) set
    aside, chosen at random with ``seed``, so a self-supervised loss can be measured on images the network
    does not train on. None for sources that are not image lists (video, bursts, deblurring pairs) or have one
    image (:func:`selfrestore.commands.fit.holdout_ignored` says which)."""
    if not isinstance(source, PatchSource) or len(source) < 2:
        return None
    count = min(len(source) - 1, max(1, round(fraction * len(source))))
    held = set(np.random.default_rng(seed).choice(len(source), size=count, replace=False).tolist())
    return source.subset(lambda i: i not in held), source.subset(lambda i: i in held)


class NoisyImages(PatchSource):
    """Real noisy images, no clean ones: batch kind "single"."""

    kind = "single"

    def __init__(self, images: Sequence[np.ndarray]):
        super().__init__({"noisy": list(images)})


class PairedImages(PatchSource):
    """Real pairs of independent noisy shots of the same scenes: batch kind "pair"."""

    kind = "pair"

    def __init__(self, first: Sequence[np.ndarray], second: Sequence[np.ndarray]):
        for i, (a, b) in enumerate(zip(first, second)):
            if a.shape != b.shape:
                raise UserError(f"pair {i}: shapes differ {a.shape} vs {b.shape}")
        super().__init__({"noisy": list(first), "noisy2": list(second)})


class CorruptedImages(PatchSource):
    """Clean images corrupted by a model, once, with a fixed seed (or ``redraw`` per patch).

    kind "single" yields ``noisy`` (+ ``clean``, used only by the supervised reference and never by a
    self-supervised loss); kind "pair" yields two independent corruptions ``noisy`` and ``noisy2``.
    """

    def __init__(self, clean: Sequence[np.ndarray], corruption: Corruption, kind: str = "single",
                 seed: int = 0, redraw: bool = False, keep_clean: bool = True):
        if kind not in ("single", "pair"):
            raise ValueError(f"CorruptedImages cannot make batch kind {kind!r}")
        self.kind, self.corruption, self.redraw, self.seed = kind, corruption, redraw, seed
        fields: dict[str, list[np.ndarray]] = {}
        params: dict[str, list[float]] = {}
        if keep_clean or redraw:
            fields["clean"] = list(clean)
        if not redraw:
            copies = ("noisy", "noisy2") if kind == "pair" else ("noisy",)
            for copy_index, name in enumerate(copies):
                fields[name] = []
                for i, image in enumerate(clean):
                    gen = image_generator(seed + 7919 * copy_index, i)
                    y, p = corruption.sample_with_params(torch.from_numpy(image.transpose(2, 0, 1))[None], gen)
                    fields[name].append(y[0].numpy().transpose(1, 2, 0).copy())
                    if copy_index == 0:
                        for key, value in p.items():
                            params.setdefault(key, []).append(float(value[0]))
        super().__init__(fields, params)

    def batch(self, rng: np.random.Generator, batch_size: int, patch_size: int) -> dict[str, Tensor]:
        batch = super().batch(rng, batch_size, patch_size)
        if self.redraw:
            gen = torch.Generator().manual_seed(int(rng.integers(0, 2**62)))
            batch["noisy"], batch["noise_params"] = self.corruption.sample_with_params(batch["clean"], gen)
            if self.kind == "pair":
                batch["noisy2"] = self.corruption.sample(batch["clean"], gen)
        return batch
