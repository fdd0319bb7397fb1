"""The intensity map of float counts and dim data: one affine map that brings a group of images (a training set,
a burst, a video) to the [0, 1] range the networks are made for (restored values are mapped back by it)."""
from __future__ import annotations

import warnings
from typing import Any, Iterable

import numpy as np

DIM_LIMIT = 1 / 4  #: data whose bright end lies below this share of [0, 1] is mapped (intensity_mapping's ``dim``)
#: a map that leaves the noise under half a Gaussian model's lowest level is narrowed (:func:`noise_aware`) so that
#: the noise reaches the network at this many times that level (at most the highest): benchmarks/star_field_map.py
NOISE_AWARE_FACTOR = 2.5
#: float data in about [0, 1] with at least this share of its values below 0 (a bias-subtracted sky) is shifted
NEGATIVE_SHARE = 1 / 4
#: the narrowing of :func:`noise_aware` stops where this percentile of the image would go past 1: only images that
#: are mostly background with a few bright outliers (stars) are narrowed fully; dense, textured counts went far past 1
#: and came back biased (a review: 12-bit data of noise 15 counts lost 5.4 dB against the map before)
BULK_PERCENTILE = 95


def intensity_mapping(images: Iterable[np.ndarray], seed: int = 0, per_image: int = 20000, dim: bool = False
                      ) -> dict[str, float] | None:
    """For float data far outside [0, 1] (microscope or telescope counts kept as float): the affine map
    ``x' = (x - offset) / scale`` that sends the 0.1th..99.9th percentile of all pixels to [0, 1], the range
    the networks, learning rates and noise levels are made for: one map for the whole group (a burst, a
    video, a training set), whose items mapped apart would no longer agree. None when the data already lies in
    about [0, 1] (every 8/16-bit file, and float files scaled like them), or for no images. Whether it does is
    judged on the means of 4x4 blocks of each (H, W[, C]) image: strong noise on [0, 1] data reaches past
    1.5 (sigma 50/255 mapped 11 of 124 Kodak24 / BSD300 images, 75/255 nearly all), its signal does not.
    Non-finite (blank) pixels are left out. ``images`` may be lazy (frames read one at a time): only up to
    ``per_image`` samples of each are kept (:func:`mapping_samples`), and each image is let go before the next.
    ``dim``: also map data that uses only a sliver of [0, 1] (:func:`mapping_from_samples`)."""
    rng = np.random.default_rng(seed)
    raw, signal = [], []
    for image in images:
        pixels, means = mapping_samples(image, rng, per_image)
        raw.append(pixels)
        signal.append(means)
        del image  # a frame read lazily goes before the next one is read
    return mapping_from_samples(np.concatenate(raw), np.concatenate(signal), dim=dim) if raw else None


def training_map(images: Iterable[np.ndarray], mapped: bool = True, dim: bool = False, seed: int = 0,
                 quiet: bool = True) -> dict[str, float] | None:
    """The one :func:`intensity_mapping` of a method's whole training data (every field and frame alike: the
    fields stay on one scale), said (:func:`mapped_data_line`) unless ``quiet``; None when not ``mapped``
    (``--resume`` of a run begun before that kind of data was mapped). ``restore`` then maps its inputs by the
    map the model records, the scale the network trained on."""
    if not mapped:
        return None
    mapping = intensity_mapping(images, seed=seed, dim=dim)
    if mapping and not quiet:
        print(mapped_data_line(mapping))
    return mapping


def apply_mapping(values: Any, mapping: dict[str, float] | None) -> Any:
    """``values`` (an array or a tensor) mapped by ``x' = (x - offset) / scale``, in float32; as they are for
    no map."""
    if not mapping:
        return values
    mapped = (values - mapping["offset"]) / mapping["scale"]
    return mapped.astype(np.float32) if isinstance(mapped, np.ndarray) else mapped.float()


def mapped_data_line(mapping: dict[str, float]) -> str:
    """What ``fit`` says when its data is mapped to [0, 1] for training."""
    offset, scale = mapping["offset"], mapping["scale"]
    units = ", on the 0-1 scale of its type" if scale < 1 else ""
    return (f"data from {offset:.4g} to {offset + scale:.4g} (0.1-99.9th percentile{units}) is mapped to [0, 1] "
            "for training; restoring maps back (noise levels given with --noise refer to [0, 1])")


def _on_8_bit_steps(values: np.ndarray) -> bool:
    """Whether every value is a multiple of 1/255 (8-bit data, or 16-bit data made from it)."""
    scaled = np.asarray(values, np.float64) * 255.0
    return bool(np.all(np.abs(scaled - np.round(scaled)) < 1e-3))


def mapping_samples(image: np.ndarray, rng: np.random.Generator, count: int = 20000) -> tuple[np.ndarray, np.ndarray]:
    """(pixel values, 4x4 block means) of one (H, W[, C]) image, up to ``count`` of each at random, finite ones
    only: what :func:`mapping_from_samples` decides on (:func:`intensity_mapping` of many images)."""

    def sample_of(values: np.ndarray) -> np.ndarray:
        flat = values.reshape(-1)
        flat = flat[np.isfinite(flat)]
        return flat[rng.integers(0, flat.size, min(flat.size, count))] if flat.size else flat

    image = np.asarray(image)
    return sample_of(image), sample_of(_block_means(image))


def mapping_from_samples(raw: np.ndarray, signal: np.ndarray, dim: bool = False) -> dict[str, float] | None:
    """The map of :func:`intensity_mapping` from samples of the pixel values (``raw``) and of 4x4 block means
    (``signal``): None unless the signal's 0.1th..99.9th percentiles leave [-0.5, 1.5]; else the raw ones'.
    ``dim``: also when the signal's 99.9th percentile is below ``DIM_LIMIT`` (data of 14 bits or fewer kept
    as 16-bit, a dim sensor's counts: on the 0..65535 scale their noise and detail are far below anything a
    network trained on [0, 1] images has seen, and the default model shifted such an image by +150 of 65535),
    unless the values are 8-bit ones (multiples of 1/255: a dark 8-bit photo, whose coarse steps mapping
    would magnify)."""
    if not raw.size:
        return None
    signal = signal if signal.size else raw
    low, high = (float(v) for v in np.percentile(signal, [0.1, 99.9]))
    dark = dim and high < DIM_LIMIT and not _on_8_bit_steps(raw)
    if low >= -0.5 and high <= 1.5 and not dark:
        return None
    low, high = (float(v) for v in np.percentile(raw, [0.1, 99.9]))
    return {"offset": low, "scale": max(high - low, 1e-12)}


def sampled_percentiles(values: np.ndarray, percentiles: list[float], count: int = 100000) -> list[float]:
    """The ``percentiles`` of the finite ones of ``values`` (any shape), from up to ``count`` of them drawn with a
    fixed seed (a large image need not be sorted whole); NaN for each where none is finite."""
    flat = np.asarray(values).reshape(-1)
    if flat.size > count:
        flat = flat[np.random.default_rng(0).integers(0, flat.size, count)]
    flat = flat[np.isfinite(flat)]
    return [float(v) for v in np.percentile(flat, percentiles)] if flat.size else [float("nan")] * len(percentiles)


def noise_aware(mapping: dict[str, float], measured: float, levels: tuple[float, float], bulk: float = 0.0
                ) -> dict[str, float]:
    """``mapping`` narrowed where the noise it leaves (``measured``, std on the mapped scale) is under half the
    lowest of a Gaussian model's ``levels`` (low, high; where ``Restorer.mapped_level_low`` warned, and only
    there: data whose noise the map leaves in or near the model's levels is mapped as before): the scale
    shrinks so that the noise becomes ``NOISE_AWARE_FACTOR`` x low (at most high), the offset (the low end)
    is kept, so a flat background sits a few noise stds above 0 and bright outliers (stars) go past 1. A star
    field mapped by its range (stars set it) left the sky's noise at ~0.2/255 and the default model raised the
    sky by ~3 sigma, its noise not reduced (``benchmarks/results/star_field_map.md``). ``bulk``: the image's
    ``BULK_PERCENTILE``th percentile on ``mapping``'s scale: the narrowing stops where it would reach 1 (an image
    that is not mostly background keeps most of its map). ``mapping`` as it is otherwise (and where the noise
    could not be measured, or is 0)."""
    low, high = levels
    if not (np.isfinite(measured) and 0 < measured < low / 2):
        return mapping
    factor = max(measured / min(NOISE_AWARE_FACTOR * low, high), bulk if np.isfinite(bulk) else 1.0)
    return mapping if factor >= 1 else {"offset": mapping["offset"], "scale": mapping["scale"] * factor}


def negative_background_mapping(image: np.ndarray) -> dict[str, float] | None:
    """For float data in about [0, 1] whose background lies at or below 0 (bias-subtracted data: at least
    ``NEGATIVE_SHARE`` of its finite values negative, which 8/16-bit data never is): the shift
    ``offset`` = its 0.1th percentile, ``scale`` 1, that puts the background a few noise stds above 0, as the
    networks' training images are (unshifted, the default model pulled such a sky of noise 0.08 up by 0.1
    sigma: ``benchmarks/results/star_field_map.md``); else None."""
    values = np.asarray(image).reshape(-1)
    if values.size == 0 or not np.fmin.reduce(values) < 0:  # no negative value (every photo): no copy made
        return None
    values = values[np.isfinite(values)].astype(np.float32)
    if not values.size or np.count_nonzero(values < 0) < NEGATIVE_SHARE * values.size:
        return None
    return {"offset": float(np.percentile(values, 0.1)), "scale": 1.0}


def _block_means(image: np.ndarray, block: int = 4) -> np.ndarray:
    """The means of ``block`` x ``block`` pixel blocks of an (H, W[, C]) image, per channel (noise / 4, the
    signal kept; blank pixels left out, an all-blank block NaN); the values themselves for flat samples or
    images smaller than a block."""
    h, w = (image.shape[0] // block * block, image.shape[1] // block * block) if image.ndim >= 2 else (0, 0)
    if h == 0 or w == 0:
        return image
    cut = image[:h, :w].reshape(h // block, block, w // block, block, -1)
    if np.isfinite(cut).all():
        return cut.mean(axis=(1, 3))
    with warnings.catch_warnings():  # an all-blank block: NaN, dropped by the caller
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(cut, axis=(1, 3))
