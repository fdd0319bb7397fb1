"""Inference on images of any size: tiling with an overlap derived from the receptive field, optional
x8 self-ensemble, and the user-facing :class:`Restorer`.

When the stitched result equals the untiled one (``context="full"``): the image is (virtually) padded to a
multiple of the network's ``size_multiple`` m, tiles start on multiples of m (so pooling grids line up) and
carry a context margin, a multiple of m, at least the receptive-field radius; each tile contributes only its
core, whose outputs never see the tile's artificial border. That margin is wide (224 px for the U-Nets, 384 for
the blind-spot nets): a 512 px tile then computes 3.5-6x its own area (automatic tiles are larger:
:func:`auto_tile`; the blind-spot net leaves out of each rotated branch the context it never looks at).
``context="auto"`` (the default)
caps it at AUTO_CONTEXT pixels (a net may state its own ``auto_context``: 256 for the blind-spot nets, whose
four half-plane branches reach further): what lies further out barely reaches a pixel, and tiled images restore
faster (benchmarks/results/tile_context.md). Images up to AUTO_SINGLE_TILE_PIXELS are one tile either way. A model
that estimates the noise level as it restores (Laine19 over a range of levels) estimates it once on the whole
image from its tiles' outputs (:func:`restore_array`). Tiles are cut from the input by
index arrays, so no padded copy of a huge image is ever made: peak memory is the input, the output and one tile
(and, for a model that estimates the level, its assembled outputs).
"""
from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import torch
from torch import Tensor, nn

from .corruption.clipping import clipping_of, clipping_of_planes, plane_groups, unclip
from .shipped_defaults import DEFAULT_MODEL
from .train import autocast, pick_device

if TYPE_CHECKING:
    from .methods.base import Method

DEFAULT_TILE = 0           #: 0 = automatic: one tile up to AUTO_SINGLE_TILE_PIXELS, else :func:`auto_tile`
AUTO_SINGLE_TILE_PIXELS = 1_500_000
AUTO_TILE = 512            #: the smallest automatic tile: a 40 MP image restored in ~2.4 GB (full context)
MIN_TILE = 64              #: smaller tiles would spend nearly all their time on the context margin each carries
TILE_CONTEXTS = ("auto", "full")  #: as ``--tile-context``
POSTERIOR_BAND_PIXELS = 262144  #: the posterior of an image whose noise level is estimated: bands of this many pixels
AUTO_CONTEXT = 128         #: the context margin of ``--tile-context auto``, at most (rounded up to the net's multiple)
PRECISIONS = ("fp32", "bf16")  #: as ``--precision``
CLIPPING_MODES = ("auto", "off")  #: as ``--clipping``
MIN_BLIND_SPOT_PIXELS = 16   #: smaller images are refused by blind-spot models (their prior would be mostly padding)
_PER_IMAGE: Any = object()  #: ``clipping_decision`` of :meth:`Restorer.restore` left out: decided on the image
#: the noise parameters a Bayesian model takes (:attr:`Restorer.noise_params`): open range, and what they mean
NOISE_PARAM_RANGES = {"sigma": (0.0, 1.0, "a Gaussian std on the [0, 1] scale (25/255 for gauss25)"),
                      "lam": (0.0, math.inf, "a Poisson photon count at white"),
                      "alpha": (0.0, 1.0, "a fraction of replaced pixels")}


def reflect_indices(start: int, stop: int, size: int) -> np.ndarray:
    """Indices start..stop-1 mapped into [0, size) by mirror reflection (no edge repeat)."""
    idx = np.arange(start, stop)
    if size == 1:
        return np.zeros_like(idx)
    period = 2 * (size - 1)
    idx = np.mod(idx, period)
    return np.where(idx < size, idx, period - idx)


def receptive_margin(net: nn.Module) -> int:
    """The context margin that makes tiled outputs equal untiled ones: the net's receptive field (64 if
    unknown) rounded up to a multiple of its ``size_multiple``."""
    m = int(getattr(net, "size_multiple", 1))
    rf = int(getattr(net, "receptive_field", 64))
    return int(math.ceil(rf / m) * m)


def tile_margin(net: nn.Module, context: str = "auto") -> int:
    """The context margin each tile carries: the whole receptive field (``"full"``: tiled == untiled), or at
    most the net's ``auto_context`` pixels (AUTO_CONTEXT where it states none; ``"auto"``), rounded up to the
    net's ``size_multiple``."""
    if context not in TILE_CONTEXTS:
        raise ValueError(f"tile context must be one of {TILE_CONTEXTS}, not {context!r}")
    full = receptive_margin(net)
    if context == "full":
        return full
    m = int(getattr(net, "size_multiple", 1))
    return min(full, int(math.ceil(int(getattr(net, "auto_context", AUTO_CONTEXT)) / m) * m))


def _d4(x: Tensor, k: int) -> Tensor:
    x = torch.rot90(x, k % 4, dims=(-2, -1))
    return torch.flip(x, dims=(-1,)) if k >= 4 else x


def _d4_inverse(x: Tensor, k: int) -> Tensor:
    if k >= 4:
        x = torch.flip(x, dims=(-1,))
    return torch.rot90(x, -(k % 4), dims=(-2, -1))


def _d4_trim(trim: tuple[int, int, int, int], height: int, width: int, k: int) -> tuple[int, int, int, int]:
    """The (top, bottom, left, right) trim of ``_d4(x, k)`` for the ``trim`` of an x of ``height`` x ``width``:
    the same kept pixels, seen through the flip / rotation (found by turning a mask of them)."""
    top, bottom, left, right = trim
    kept = torch.zeros(height, width, dtype=torch.bool)
    kept[top:height - bottom, left:width - right] = True
    kept = _d4(kept, k)
    rows, cols = kept.any(dim=1).nonzero()[:, 0], kept.any(dim=0).nonzero()[:, 0]
    return (int(rows[0]), kept.shape[0] - 1 - int(rows[-1]), int(cols[0]), kept.shape[1] - 1 - int(cols[-1]))


def self_ensemble(fn: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """Average of fn over the 8 flips/rotations (each undone before averaging). For a trimming ``fn(x, trim)``
    (:func:`tiled_apply`'s ``trims``), ``ensembled(x, trim)``: each pass is given the trim turned with its x."""

    def ensembled(x: Tensor, *trim: tuple[int, int, int, int]) -> Tensor:
        def turned(k: int) -> Tensor:
            return fn(_d4(x, k), *(_d4_trim(t, *x.shape[-2:], k) for t in trim))

        return sum(_d4_inverse(turned(k), k) for k in range(8)) / 8.0

    return ensembled


def auto_tile(height: int, width: int, multiple: int, margin: int) -> tuple[int, int]:
    """The automatic tile (height, width) for an image over AUTO_SINGLE_TILE_PIXELS. The largest side is that
    of the largest square tile whose context (``margin`` on each side) brings it to no more pixels than one whole
    image of that limit (so peak memory stays that of such an image), or AUTO_TILE if larger; each axis gets the
    tiles that side needs, evened out, so the tiles of a row or column are about equal (no thin last tile whose
    context costs as much as a whole one). Multiples of ``multiple``. Fewer, larger tiles carry less context in
    all (benchmarks/results/tile_speed.md)."""
    m = max(1, int(multiple))
    largest = max(AUTO_TILE, (math.isqrt(AUTO_SINGLE_TILE_PIXELS) - 2 * margin) // m * m)
    even = (math.ceil(side / math.ceil(side / largest)) for side in (height, width))
    tile_height, tile_width = (int(math.ceil(side / m) * m) for side in even)
    return tile_height, tile_width


def tiled_apply(fn: Callable[..., Tensor], image: np.ndarray, multiple: int = 1, margin: int = 0,
                tile: int = DEFAULT_TILE, device: torch.device | str = "cpu", progress: bool = False,
                pad: str = "reflect", trims: bool = False) -> np.ndarray:
    """Apply a size-preserving ``fn`` ((1, C, h, w) -> (1, C', h, w)) to an (H, W, C) array tile by tile.

    ``pad`` fills the virtual border up to a multiple of ``multiple``: "reflect" (mirror) or "zero" (for
    blind-spot networks, where a mirrored copy of a pixel would fall inside its own receptive field).
    ``trims``: ``fn(x, trim)`` gives only the part of its result that a tile keeps, ``trim`` (top, bottom, left,
    right) rows and columns in from x's borders (whole multiples of ``multiple``; the blind-spot net's
    ``forward``): the context is then not carried through the computations that do not need it.
    """
    height, width = image.shape[:2]
    m = max(1, int(multiple))
    margin = int(math.ceil(margin / m) * m)
    if tile:
        sides = (int(tile), int(tile))
    elif height * width <= AUTO_SINGLE_TILE_PIXELS:  # automatic: whole image when small (fastest) ...
        sides = (height + m, width + m)
    else:  # ... bounded tiles when large (bounded memory)
        sides = auto_tile(height, width, m, margin)
    tile_h, tile_w = (max(m, int(math.ceil(side / m) * m)) for side in sides)
    hp, wp = int(math.ceil(height / m) * m), int(math.ceil(width / m) * m)
    ys, xs = list(range(0, hp, tile_h)), list(range(0, wp, tile_w))
    out: np.ndarray | None = None
    bar = None
    if progress and len(ys) * len(xs) > 1:
        from tqdm import tqdm

        bar = tqdm(total=len(ys) * len(xs), desc="tiles", leave=False)
    for y0 in ys:
        for x0 in xs:
            cy0, cy1 = max(0, y0 - margin), min(hp, y0 + tile_h + margin)
            cx0, cx1 = max(0, x0 - margin), min(wp, x0 + tile_w + margin)
            crop = image[np.ix_(reflect_indices(cy0, cy1, height), reflect_indices(cx0, cx1, width))]
            if pad == "zero":
                crop = crop.copy()
                crop[max(0, height - cy0):] = 0
                crop[:, max(0, width - cx0):] = 0
            x = torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1)))[None].float().to(device)
            trim = (y0 - cy0, cy1 - min(y0 + tile_h, hp), x0 - cx0, cx1 - min(x0 + tile_w, wp))
            with torch.no_grad():
                x = x.contiguous(memory_format=torch.channels_last)
                y = fn(x, trim) if trims else fn(x)
            y = y[0].float().cpu().numpy()
            ry1, rx1 = min(y0 + tile_h, height), min(x0 + tile_w, width)
            if ry1 <= y0 or rx1 <= x0:
                continue
            if out is None:
                out = np.empty((height, width, y.shape[0]), np.float32)
            top, left = (0, 0) if trims else trim[::2]  # where the tile's own pixels start in y
            out[y0:ry1, x0:rx1] = y[:, top:top + ry1 - y0, left:left + rx1 - x0].transpose(1, 2, 0)
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    assert out is not None
    return out


def restore_array(method: Method | None, net: nn.Module, image: np.ndarray, tile: int = DEFAULT_TILE,
                  ensemble: bool = False, precision: str = "fp32", device: torch.device | str | None = None,
                  progress: bool = False, fn: Callable[[Tensor], Tensor] | None = None,
                  context: str = "auto", params: Mapping[str, Any] | None = None,
                  uncertainty: bool = False, channel_mean: bool = False) -> np.ndarray:
    """Restore one (H, W, C) array with ``method.restore`` (``params``: its noise parameters; ``uncertainty``:
    ``method.restore_with_uncertainty``, returning the C posterior means then the C variances; with
    ``channel_mean`` each variance is that of the mean of the channels) or a given ``fn``, tiled
    (``context``: the margin of :func:`tile_margin`).

    A method that estimates the noise level of each image from its own prior (``restore_estimates_level``:
    Laine19 over a range of levels) estimates it once, on the whole image: the net's outputs are assembled
    tile by tile (K maps, e.g. 9 for a colour full-covariance prior), the level is found on them, and the
    posterior is computed from them in bands. The net runs once, as for any model; tiles never disagree on the
    level, so with ``context="full"`` tiled equals untiled. The assembled outputs cost K float32 per pixel
    (about 1.4 GB at 40 MP) beyond what ``tile`` bounds. With ``ensemble`` that level is then given to the eight
    passes (nine net passes in all)."""
    if fn is not None and (params or uncertainty):
        raise ValueError("restore_array: give fn, or params / uncertainty for the method, not both")
    device = pick_device("auto" if device is None else device, option="device")
    net.eval()
    params = dict(params or {})
    tiling = dict(multiple=getattr(net, "size_multiple", 1), margin=tile_margin(net, context), tile=tile,
                  device=device, progress=progress, pad="zero" if getattr(net, "blind_spot", False) else "reflect")

    def in_precision(f: Callable[..., Tensor]) -> Callable[..., Tensor]:
        def run(x: Tensor, *trim: Any) -> Tensor:
            with autocast(device, precision == "bf16"):
                return f(x, *trim).float()

        return run

    # the net leaves out a tile's context itself, where the method restores from the net's output
    trims = bool(getattr(net, "takes_trim", False)) and hasattr(method, "restore_from_output")
    if fn is None and not params and getattr(method, "restore_estimates_level", False):
        out = torch.from_numpy(tiled_apply(in_precision(net), image, **tiling, trims=trims).transpose(2, 0, 1))[None]
        obs = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32).transpose(2, 0, 1))[None]
        params = {key: float(value) for key, value in method.level_from_output(out, obs).items()}
        if not ensemble:
            return _posterior_in_bands(method, out, obs, params, uncertainty, channel_mean)
        del out, obs
    trims = trims and fn is None
    fn = fn or _method_fn(method, net, params, uncertainty, channel_mean, trims)
    return tiled_apply((self_ensemble if ensemble else lambda f: f)(in_precision(fn)), image, **tiling, trims=trims)


def _method_fn(method: Method, net: nn.Module, params: Mapping[str, Any], uncertainty: bool,
               channel_mean: bool = False, trims: bool = False) -> Callable[..., Tensor]:
    """The method's restoration of a (1, C, h, w) tile: the mean, or the means then the variances. ``trims``:
    of the tile's kept pixels only, ``fn(x, trim)`` (:func:`tiled_apply`), from the net's trimmed output and
    those pixels of x (``method.restore_from_output``)."""
    if trims:
        extra = {"channel_mean": True} if channel_mean and uncertainty else {}

        def kept(x: Tensor, trim: tuple[int, int, int, int]) -> Tensor:
            top, bottom, left, right = trim
            obs = x[..., top:x.shape[-2] - bottom, left:x.shape[-1] - right]
            result = method.restore_from_output(net(x, trim), obs, want_std=uncertainty, **params, **extra)
            return torch.cat([result[0], result[1].square()], dim=1) if uncertainty else result

        return kept
    if not uncertainty:
        return lambda x: method.restore(net, x, **params)

    def mean_and_variance(x: Tensor) -> Tensor:
        mean, std = method.restore_with_uncertainty(net, x, **params, **({"channel_mean": True} if channel_mean
                                                                          else {}))
        return torch.cat([mean, std.square()], dim=1)

    return mean_and_variance


def _posterior_in_bands(method: Method, out: Tensor, obs: Tensor, params: Mapping[str, Any],
                        uncertainty: bool, channel_mean: bool = False) -> np.ndarray:
    """``method.restore_from_output`` over bands of rows of an assembled net output (1, K, H, W) and its
    input (1, C, H, W): the per-pixel posterior algebra holds about 30 floats per pixel, never the whole
    image's. Returns (H, W, C), or (H, W, 2C) means then variances with ``uncertainty``."""
    height, width = obs.shape[-2:]
    rows = max(1, POSTERIOR_BAND_PIXELS // max(1, width))
    result = np.empty((height, width, obs.shape[1] * (2 if uncertainty else 1)), np.float32)
    for top in range(0, height, rows):
        band = method.restore_from_output(out[..., top:top + rows, :], obs[..., top:top + rows, :],
                                          want_std=uncertainty, **params,
                                          **({"channel_mean": True} if channel_mean and uncertainty else {}))
        if uncertainty:
            band = torch.cat([band[0], band[1].square()], dim=1)
        result[top:top + rows] = band[0].float().numpy().transpose(1, 2, 0)
    return result


def restore_tensor(method: Method | None, net: nn.Module, x: Tensor, **kwargs: Any) -> Tensor:
    """(N, C, H, W) -> (N, C, H, W) on the CPU, tiled, in fp32 by default."""
    outs = [restore_array(method, net, img.detach().float().cpu().numpy().transpose(1, 2, 0), **kwargs)
            for img in x]
    return torch.from_numpy(np.stack(outs).transpose(0, 3, 1, 2).copy())


def _as_numpy(image: Any) -> np.ndarray:
    """``image`` as a numpy array; a torch tensor too, where ``np.asarray`` fails (one that needs grad, lives on
    a GPU or holds bfloat16); a PIL image as :func:`selfrestore.io.pil_pixels` reads it. A masked array's masked
    pixels are NaN, as blank pixels (its values there are fill values, not pixels); a file name or None is a
    UserError that says what to pass."""
    from .errors import UserError

    if torch.is_tensor(image):
        image = image.detach().cpu()
        return (image.float() if image.dtype == torch.bfloat16 else image).numpy()
    if image is None or isinstance(image, (str, bytes, os.PathLike)):
        raise UserError(f"{image!r} is not an image array: give the pixels (numpy or torch); for a file use "
                        "Restorer.restore_file(source, target) or selfrestore.io.read_image")
    if type(image).__module__.startswith("PIL.") and hasattr(image, "mode") and hasattr(image, "convert"):
        from .io import pil_pixels  # a PIL image: its pixels as a file of it is read (a palette's colours, not
        # its indices; CMYK as RGB, not as RGB + alpha)
        return pil_pixels(image)
    if np.ma.isMaskedArray(image) and np.ma.getmaskarray(image).any():
        if image.dtype.kind == "u":
            raise UserError(f"a masked {image.dtype} image array: masked pixels are kept aside (as NaN) in float "
                            f"data only; pass image.astype(np.float32) / {np.iinfo(image.dtype).max}")
        if image.dtype.kind == "f":
            return np.ma.filled(image, np.nan)
    return np.asarray(image)


def _checked_mapping(mapping: Any) -> dict[str, float] | None:
    """A ``mapping`` given to :meth:`Restorer.restore`: None or ``{"offset": o, "scale": s}`` with finite o and
    s > 0 (as :meth:`Restorer.mapping_for` and :meth:`Restorer.stack_mappings` give); else a UserError (an
    audit: a KeyError deep inside, or an all-NaN image for a zero scale)."""
    from .errors import UserError, short_repr

    if mapping is None:
        return None
    values = (mapping.get("offset"), mapping.get("scale")) if isinstance(mapping, dict) else (None, None)
    if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) for v in values) \
            or values[1] <= 0:
        raise UserError(f"mapping {short_repr(mapping)}: give None (the model's own map) or one that "
                        "Restorer.mapping_for / stack_mappings returns, {'offset': o, 'scale': s} with s > 0")
    return mapping


class _PlanesAsIn(Sequence):
    """Planes ``indices`` of a stack as :meth:`Restorer.clipping_correction` sees them (:func:`_seen`), each
    read and converted when indexed (no copy of the stack; ``planes`` may be lazy itself)."""

    def __init__(self, planes: Sequence[Any], indices: Sequence[int], channels: int | None,
                 blanks: Sequence[np.ndarray | None] | None = None) -> None:
        self.planes, self.indices, self.channels, self.blanks = planes, list(indices), channels, blanks

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> np.ndarray:  # type: ignore[override]
        k = self.indices[index]
        plane, blank = self.planes[k], None if self.blanks is None else self.blanks[k]
        if blank is not None and blank.any():  # blank pixels a reader filled: NaN again
            plane = np.where(blank.reshape(np.shape(plane)), np.float32(np.nan), plane)
        return _seen(*_array_in(plane, self.channels))


def _plane_seen(plane: Any, channels: int | None, blanks: Sequence[np.ndarray | None] | None, index: int
                ) -> np.ndarray:
    """A stack's plane as :func:`_array_in` gives it, with its blank pixels NaN: those the array holds, and those a
    reader filled (``blanks[index]``, :attr:`selfrestore.io.ImageInfo.blank`)."""
    values, back = _array_in(plane, channels)
    values = _seen(values, back)
    blank = None if blanks is None or index >= len(blanks) else blanks[index]
    if blank is not None and np.shape(blank) == values.shape:
        values = np.where(blank, np.float32(np.nan), values)
    return values


def _measured_plane(planes: Sequence[Any], group: Sequence[int], channels: int | None,
                    blanks: Sequence[np.ndarray | None] | None) -> np.ndarray:
    """The plane of a group its map is fitted on (:meth:`Restorer._fitted_map`): the middle one, or, where it is
    mostly blank, the nearest of up to 8 others with at least half its pixels finite (else the middle one)."""
    middle = len(group) // 2
    order = [group[k] for k in sorted(range(len(group)), key=lambda k: abs(k - middle))[:9]]
    first = None
    for index in order:
        seen = _plane_seen(planes[index], channels, blanks, index)
        first = seen if first is None else first
        if np.count_nonzero(np.isfinite(seen)) >= seen.size / 2:
            return seen
    return first


def _seen(values: np.ndarray, back: Callable[..., np.ndarray]) -> np.ndarray:
    """What the clipped-noise decision looks at: the values :func:`_array_in` gives, with blank pixels NaN
    again (filled with the median for the network, they would count as flat, noiseless patches)."""
    blank = getattr(back, "blank", None)
    return values if blank is None else np.where(blank, np.float32(np.nan), values)


def _gray_noise_sigma(gray: np.ndarray) -> float:
    """The noise std of a gray (H, W) image on its own scale: the lower of the patch-PCA estimate
    (:func:`selfrestore.noise_check.noise_sigma_pca`) and the finest-scale Haar one
    (:func:`~selfrestore.noise_check.noise_sigma`). Both read texture as noise when there is little noise (on
    noise-free photos PCA read 2-8/255, Haar 1.2-4.4), PCA the more; above ~10/255 both are within a few % of
    the level. NaN if neither can measure it (PCA needs an image of a few patches)."""
    from .noise_check import noise_sigma, noise_sigma_pca

    haar = float(noise_sigma(gray))
    try:
        return min(float(noise_sigma_pca(gray)), haar) if np.isfinite(haar) else float(noise_sigma_pca(gray))
    except ValueError:
        return haar


def central_noise_sigma(image: np.ndarray, alpha: np.ndarray | None = None) -> float:
    """The noise std of an (H, W[, C]) image on the [0, 1] scale, measured on the image alone
    (:func:`selfrestore.noise_check.noise_sigma`) on the opaque, unclipped 2x2 blocks of a central crop of at
    most 2048 px a side; NaN where too little can be measured."""
    from .noise_check import noise_sigma

    top, left = max(0, (image.shape[0] - 2048) // 2), max(0, (image.shape[1] - 2048) // 2)
    crop = np.s_[top:top + 2048, left:left + 2048]
    pixels = np.asarray(image[crop], dtype=np.float32)
    pixels = pixels[:, :, None] if pixels.ndim == 2 else pixels
    usable = ((pixels > 0) & (pixels < 1)).all(axis=2)  # clipped values read low
    if alpha is not None and alpha.shape == image.shape[:2]:
        usable &= alpha[crop] >= 1  # transparent pixels are no image
    return noise_sigma(pixels, usable, min_blocks=256)


def _array_in(image: Any, channels: int | None = None) -> tuple[np.ndarray, Callable[..., np.ndarray]]:
    """``image`` as an (H, W, C) float32 array on the [0, 1] scale of its type, and the function that gives a
    result back in the caller's form: (H, W) for (H, W), the integer type for uint8 / uint16 (rounded and
    clipped), float32 otherwise; ``spread=True`` (a standard deviation) stays float32 in the input's units.

    As :func:`selfrestore.io.read_image` does for files: an alpha channel (gray + alpha, RGB + alpha, as
    ``np.asarray`` of a PIL image gives; where the model's ``channels`` differ) is set aside and given back
    unchanged (a std of 0), and non-finite values (NaN blank pixels) are filled with the median for the
    network, which would spread them over the whole image, and put back."""
    from .errors import UserError
    from .io import float_pixels, quantize

    array = _as_numpy(image)
    values, integer = float_pixels(array)
    full = {"uint8": 255.0, "uint16": 65535.0}.get(integer, 1.0)
    flat = array.ndim == 2
    have = values.shape[2]
    alpha = None
    if channels is not None and have != channels:
        if have in (2, 4):
            values, alpha = values[:, :, :-1], values[:, :, -1:]
        elif have not in (1, 3):
            turn = "permute" if isinstance(image, torch.Tensor) else "transpose"
            hint = (f" (it looks like (C, H, W): pass image.{turn}(1, 2, 0))"
                    if array.ndim == 3 and array.shape[0] in (1, 2, 3, 4) else "")
            raise UserError(f"an image array of shape {array.shape} has {have} channels; this model restores "
                            f"gray or colour images, (H, W), (H, W, 1) or (H, W, 3), with an optional alpha "
                            f"channel{hint}")
    blank = None
    if integer is None and not np.isfinite(values).all():
        blank, raw = ~np.isfinite(values), values
        finite = values[~blank]
        values = np.where(blank, np.median(finite) if finite.size else 0.0, values).astype(np.float32)

    def back(result: np.ndarray, spread: bool = False) -> np.ndarray:
        if blank is not None and result.shape == blank.shape:
            result = np.where(blank, np.float32(np.nan) if spread else raw, result)
        if alpha is not None and result.ndim == 3:
            result = np.concatenate([result, np.zeros_like(alpha) if spread else alpha], axis=2)
        result = result[:, :, 0] if flat and result.ndim == 3 else result
        if spread or integer is None:
            return (result * np.float32(full)).astype(np.float32)
        return quantize(result, integer)

    back.blank = blank  # type: ignore[attr-defined]  # for _seen
    back.alpha = None if alpha is None else alpha[:, :, 0]  # type: ignore[attr-defined]  # for the level warning
    return values, back


def _is_clipping_decision(value: Any) -> bool:
    """A value :meth:`Restorer.stack_clipping` returns for a plane that is corrected: (sigma > 0, low end
    clipped, high end clipped)."""
    if not (isinstance(value, tuple) and len(value) == 3):
        return False
    sigma, low, high = value
    return isinstance(sigma, numbers.Real) and not isinstance(sigma, bool) and math.isfinite(sigma) and sigma > 0 \
        and all(isinstance(end, (bool, np.bool_)) for end in (low, high))


def _number_pair(value: Any, name: str, meaning: str) -> tuple[float, float]:
    """``value`` as two floats (a tuple, a list, an array); a UserError for anything else (a str included)."""
    from .errors import UserError

    try:
        if isinstance(value, (str, bytes)):
            raise TypeError(name)
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise UserError(f"{name} {value!r}: give two numbers (a, b), {meaning}") from None
    return a, b


class Restorer:
    """The one object a user calls: load a model (file or shipped name), restore arrays or files.

    >>> r = Restorer("my_model.safetensors")       # doctest: +SKIP
    >>> clean = r.restore(noisy_array)              # (H, W[, C]) float in [0, 1], or uint8 / uint16
    >>> r.restore_file("in.png", "out/in.png")      # keeps bit depth and alpha

    Options as those of ``selfrestore restore`` (same defaults), checked here: a mistake is a UserError.
    """

    def __init__(self, model: str | os.PathLike = DEFAULT_MODEL, device: str | torch.device = "auto",
                 tile: int = DEFAULT_TILE, ensemble: bool = False, precision: str = "fp32",
                 noise_params: dict[str, float] | None = None, sensor_noise: tuple[float, float] | None = None,
                 clipping: str = "auto", tile_context: str = "auto", subsample: int = 1) -> None:
        """``model``: a model file or a shipped model's name (``selfrestore models``); by default, as ``restore``'s,
        :data:`DEFAULT_MODEL`. ``tile``: 0 (automatic) or a side of at least 64 pixels, as ``--tile``;
        ``tile_context``: "auto" or "full" (tiled == untiled), as ``--tile-context``; ``precision``: "fp32" or
        "bf16". ``noise_params``: the noise level of the images to restore when it differs from the model's
        nominal one (``sigma`` / ``lam`` / ``alpha`` in [0, 1] image units), for Bayesian models that
        take it (Laine19 with a known level). ``sensor_noise``: (a, b) of Poisson-Gaussian noise
        (Var = a x + b^2, in the data's units) to restore with a Gaussian model that takes a noise level,
        through the generalised Anscombe transform (see :meth:`restore`). ``clipping``: "auto" undoes the bias
        of Gaussian noise clipped at 0 and 1 (:meth:`clipping_correction`); "off". ``subsample``: 2 restores
        each image's 2 x 2 sub-images apart (:mod:`selfrestore.subimages`: for noise correlated between
        neighbouring pixels, as in demosaicked or JPEG photos), as ``--subsample``; 1 (default) the image."""
        from .checkpoint import load_model
        from .errors import UserError

        model = DEFAULT_MODEL if model is None else model  # (as api.restore(model=None) and restore without --model)
        if precision not in PRECISIONS:
            raise UserError(f"precision {precision!r}: use one of {', '.join(PRECISIONS)}")
        if clipping not in CLIPPING_MODES:
            raise UserError(f"clipping {clipping!r}: use one of {', '.join(CLIPPING_MODES)}")
        if tile_context not in TILE_CONTEXTS:
            raise UserError(f"tile_context {tile_context!r}: use one of {', '.join(TILE_CONTEXTS)}")
        from .subimages import SUBSAMPLE_STRIDES

        if isinstance(subsample, bool) or subsample not in SUBSAMPLE_STRIDES:
            raise UserError(f"subsample {subsample!r}: use one of {', '.join(map(str, SUBSAMPLE_STRIDES))}")
        if isinstance(tile, bool) or not isinstance(tile, numbers.Integral) or (tile != 0 and tile < MIN_TILE):
            raise UserError(f"tile {tile!r}: use 0 (automatic) or a whole number of at least {MIN_TILE} pixels")
        if not (isinstance(ensemble, (bool, np.bool_, type(None)))  # ensemble="no" was true: 9x slower
                or (isinstance(ensemble, numbers.Integral) and ensemble in (0, 1))):  # 0 / 1, as the api flags
            raise UserError(f"ensemble {ensemble!r}: use True or False")
        if noise_params is not None and not (isinstance(noise_params, Mapping) or hasattr(noise_params, "keys")):
            raise UserError(f"noise_params {noise_params!r}: give a dict such as {{'sigma': 25 / 255}}")
        if sensor_noise is not None:
            sensor_noise = _number_pair(sensor_noise, "sensor_noise", "the noise variance a x + b^2")
        self.device = pick_device("auto" if device is None else device, option="device")
        self.method, self.net, self.header = load_model(model, self.device)
        self.model = model  #: the model as given (a file or a shipped name)
        if self.method.batch_kind == "burst" or getattr(self.net, "frames", 1) > 1:
            from .errors import UserError

            verb = "burst" if self.method.batch_kind == "burst" else "video"
            raise UserError(f"{model}: a multi-frame ({self.method.name}) model restores frame sequences, "
                            f"not single images; use `selfrestore {verb}`")
        self.channels = self.header.get("channels") or 3
        #: float data trained on after mapping it to [0, 1] (``fit`` on far-out-of-range floats): map alike
        self.intensity = self.header.get("intensity")
        #: whether images using only a sliver of [0, 1] (dim 16-bit data) are mapped too: for the shipped models
        #: and those of ``fit`` that map such training data alike (older ones may have been trained on it as is)
        from .checkpoint import is_shipped

        self.shipped = is_shipped(model)  #: a model shipped inside the package (not a user's file)
        self.maps_dim_data = bool(self.header.get("maps_dim_data")) or self.shipped
        self.tile, self.ensemble, self.precision, self.clipping = tile, bool(ensemble), precision, clipping
        self.tile_context = tile_context
        self.subsample = int(subsample)
        if self.subsample > 1 and not getattr(self.method, "corrects_clipped_noise", False):
            raise UserError(f"{model}: subsample {subsample} is for denoising models (method {self.method.name!r} "
                            "is not one: its sub-images would not be what it was trained on)")
        #: warn (once) when an image's noise is far from the level a single-level model was trained for
        self.warn_level_mismatch = True
        #: warn (once, at the first image) of what :meth:`model_problems` finds; the command line says it itself
        self.warn_model_problems = True
        #: a gray image (or one whose colour channels are all equal) reaches a colour model as the colour image
        #: it was trained on (:mod:`selfrestore.gray_as_colour`); False: its channel repeated
        self.gray_as_colour = True
        #: (sigma, low end, high end) of the clipped-noise correction of the last image restored, or None
        self.last_clipping: tuple[float, bool, bool] | None = None
        self.noise_params = dict(noise_params or {})
        if self.noise_params:
            from .errors import UserError

            accepts = getattr(self.method, "accepted_noise_params", lambda: ())()
            unused = sorted(repr(key) if not isinstance(key, str) else key
                            for key in set(self.noise_params) - set(accepts))  # a key may be any object
            if unused:
                raise UserError(f"{model}: method {self.method.describe()} does not take the noise parameter(s) "
                                f"{', '.join(unused)}" + (f" (it takes: {', '.join(accepts)})" if accepts else
                                                         " (it has no noise model to set)"))
            for key, value in list(self.noise_params.items()):
                low, high, meaning = NOISE_PARAM_RANGES.get(key, (-math.inf, math.inf, "a number"))
                if getattr(value, "ndim", None) == 0 and getattr(value, "dtype", None) is not None \
                        and str(value.dtype) != "bool":  # a 0-d numpy array or torch tensor: its number
                    value = self.noise_params[key] = value.item()
                if isinstance(value, bool) or not isinstance(value, numbers.Real) or not low < value < high:
                    raise UserError(f"noise parameter {key}={value!r}: expected {meaning}, "
                                    + ("above 0" if high == math.inf else f"in ({low:g}, {high:g})"))
        self.sensor_noise = sensor_noise
        if sensor_noise is not None:
            from .errors import UserError

            a, b = sensor_noise
            if not (math.isfinite(a) and math.isfinite(b) and a > 0 and b >= 0):
                raise UserError(f"Poisson-Gaussian noise needs a finite gain a > 0 and read noise b >= 0, got {a:g}, "
                                f"{b:g} (selfrestore inspect measures them)")
            if self.noise_params:
                raise UserError("give the noise as Poisson-Gaussian (a, b) or as a level, not both")
            if "sigma" not in getattr(self.method, "accepted_noise_params", lambda: ())():
                raise UserError(f"{model}: Poisson-Gaussian noise is restored with a Gaussian model that takes the "
                                f"noise level (e.g. the shipped laine19-gauss5_50); this one uses method "
                                f"{self.method.describe()}")

    def given_level_far(self) -> tuple[float, float, float] | None:
        """(given, lowest, highest) Gaussian noise std on the [0, 1] scale when the level given in
        ``noise_params`` lies well outside the levels the model was trained on (under 0.8 x the lowest or over
        1.25 x the highest): such noise may be restored poorly (an audit's sigma 100/255 for the 5-50 default
        model lost 9.5 dB). None otherwise, and for models without a Gaussian level."""
        from .corruption.noise import Gaussian

        noise, given = getattr(self.method, "noise", None), self.noise_params.get("sigma")
        if given is None or not isinstance(noise, Gaussian) or noise.high <= 0:
            return None
        if 0.8 * noise.low <= given <= 1.25 * noise.high:
            return None
        return float(given), float(noise.low), float(noise.high)

    def far_level_message(self, given_as: str) -> str | None:
        """``"<given_as> is far from the noise the model was trained on (std 5-50 on the 0-255 scale) ..."``
        when :meth:`given_level_far`, else None: one wording for the Python warning and the command line's."""
        if not (far := self.given_level_far()):
            return None
        low, high = (255 * value for value in far[1:])
        trained = f"{low:g}" if low == high else f"{low:g}-{high:g}"
        return (f"{given_as} is far from the noise the model was trained on (std {trained} on the 0-255 scale): "
                f"it may restore such noise poorly")

    def model_problems(self) -> list[str]:
        """What a user of this Restorer should know before trusting its output: the model's training was
        stopped before its end (:func:`selfrestore.checkpoint.unfinished_training`), the given noise level is
        far from the model's (:meth:`given_level_far`). Said once as Python warnings at the first image
        (:attr:`warn_model_problems`)."""
        from .checkpoint import unfinished_training

        problems = [f"{self.model}: {unfinished}"] if (unfinished := unfinished_training(self.header)) else []
        sigma = self.noise_params.get("sigma")
        if far := self.far_level_message(f"noise_params sigma {255 * (sigma or 0):.3g}/255"):
            problems.append(far)
        return problems

    def _warn_model_problems(self) -> None:
        """:meth:`model_problems` as Python warnings, once per Restorer."""
        if self.warn_model_problems:
            import warnings

            self.warn_model_problems = False
            for problem in self.model_problems():
                warnings.warn(problem, stacklevel=3)  # the caller of restore / restore_with_uncertainty

    def level_mismatch(self, image: np.ndarray, alpha: np.ndarray | None = None) -> tuple[float, float] | None:
        """(measured, trained) noise std on the [0, 1] scale when a model trained for one Gaussian level (unet-gauss25,
        laine19-gauss25, ``fit --noise gauss25`` ...) meets an image (H, W, C) in [0, 1] whose noise std, measured on
        the image alone (:func:`selfrestore.noise_check.noise_sigma` on the opaque, unclipped 2x2 blocks of a central
        crop of at most 2048 px a side), is under half or over twice that level, and no level was given: such a
        model then smooths too much or leaves noise. None otherwise, and where too little can be measured."""
        from .corruption.noise import Gaussian

        noise = getattr(self.method, "noise", None)
        if not isinstance(noise, Gaussian) or noise.low != noise.high or noise.low == 0 or self.noise_params \
                or self.sensor_noise is not None:
            return None
        measured, trained = central_noise_sigma(image, alpha), noise.low
        if not np.isfinite(measured) or trained / 2 <= measured <= 2 * trained:
            return None
        if measured > trained and self.takes_gray_as_colour(image):  # its colour view has the model's level
            return None
        return float(measured), float(trained)

    def single_noise_level(self) -> bool:
        """Whether the model was trained for one Gaussian noise level (unet-gauss25, laine19-gauss25 ...)."""
        from .corruption.noise import Gaussian

        noise = getattr(self.method, "noise", None)
        return isinstance(noise, Gaussian) and noise.low == noise.high

    def mapped_level_low(self, image: Any, mapping: dict[str, float] | None, alpha: np.ndarray | None = None,
                         seen: bool = False) -> tuple[float, float] | None:
        """(measured, lowest) noise std on the network's scale when ``image`` (as given to :meth:`restore`, or
        ``seen`` as it sees it) is mapped to [0, 1] (float counts, dim data: ``mapping``) and its noise there is
        under half the lowest Gaussian level the model was trained on (bright outliers such as stars widen a
        map's range and leave the rest almost noise-free to the model, which may then bias it: an audit's star
        field came back with its sky ~100 counts up, its noise not reduced). An image's own map
        (:meth:`mapping_for`, :meth:`stack_mappings`) is narrowed to avoid this (:meth:`_fitted_map`): what is
        left is a model's recorded map, a map given to :meth:`restore`, or noise that could not be measured
        there. None otherwise, where a level is given, and for models without a Gaussian level."""
        from .corruption.noise import Gaussian

        noise = getattr(self.method, "noise", None)
        if not mapping or not isinstance(noise, Gaussian) or noise.low <= 0 or self.noise_params \
                or self.sensor_noise is not None:
            return None
        values = image if seen else _seen(*_array_in(image, self.channels))
        measured = central_noise_sigma(self.to_model_scale(values, _checked_mapping(mapping)), alpha)
        if not np.isfinite(measured) or measured >= noise.low / 2:
            return None
        return float(measured), float(noise.low)

    def weak_mapped_noise(self, image: Any, mapping: dict[str, float] | None, alpha: np.ndarray | None = None,
                          seen: bool = False) -> str | None:
        """What to say of :meth:`mapped_level_low`'s finding (the command line's and Python's words), or None;
        for a model of one level, the default model, which measures the level, is the first advice."""
        if not (low := self.mapped_level_low(image, mapping, alpha, seen)):
            return None
        (measured, lowest), single = low, self.single_noise_level()
        advice = ("use laine19-gauss5_50 (the default), which measures each image's level, or fit a model on your "
                  "own data (selfrestore fit)") if single else "check the result, or fit a model on your own data " \
            "(selfrestore fit)"
        whose = "the model's recorded map" if self.intensity and mapping == self.intensity else \
            f"their map (offset {mapping['offset']:.4g}, scale {mapping['scale']:.4g})"
        return (f"its values are mapped to [0, 1] by {whose}, where the noise is about "
                f"{255 * measured:.2g}/255, under half the {'level' if single else 'lowest level'} the model was "
                f"trained on ({255 * lowest:g}/255): it may smooth away faint detail and bias faint areas and the "
                f"background (bright outliers such as stars or hot pixels widen the range and make the noise weaker "
                f"there); {advice}")

    def beyond_recorded_map(self, image: Any, mapping: dict[str, float] | None) -> str | None:
        """What to say when ``image`` (as given to :meth:`restore`) goes to the network through the map the model
        recorded in training (``fit`` on float counts or dim data) and lands far outside [0, 1] there (its
        0.1-99.9th percentiles beyond -0.5 .. 1.5): brighter (or another kind of) data than the model was trained
        on, which it restores badly (an audit: a model fitted on 12-bit data took a 14-bit exposure of the
        same scene from error 1646 to 2993, an 8-bit photo to saturation). None otherwise."""
        if not self.intensity or mapping != self.intensity:
            return None
        from .intensity_map import sampled_percentiles

        low, high = sampled_percentiles(self.to_model_scale(_array_in(image, self.channels)[0], mapping), [0.1, 99.9])
        if not (low < -0.5 or high > 1.5):  # (NaN: nothing finite to tell)
            return None
        top = mapping["offset"] + mapping["scale"]
        return (f"its values reach {low:.2g} .. {high:.2g} on the network's scale through the map the model was "
                f"trained with (data from {mapping['offset']:.4g} to {top:.4g} on the 0-1 scale of its type, or in "
                "its units for float data, went to [0, 1]): far from what it was trained on, it may restore badly; "
                "fit a model on such images (or on data that spans both)")

    def _warn_level_mismatch(self, image: np.ndarray, mapping: dict[str, float] | None,
                             alpha: np.ndarray | None) -> None:
        """A Python warning, once per Restorer, for the first image whose noise level is far from the model's
        (:meth:`level_mismatch`, on the opaque, non-blank pixels; the command line says it in its own words:
        ``warn_level_mismatch`` False)."""
        if not self.warn_level_mismatch:
            return
        if mapping:
            if beyond := self.beyond_recorded_map(image, mapping):
                import warnings

                self.warn_level_mismatch = False
                warnings.warn(beyond, stacklevel=3)
            elif weak := self.weak_mapped_noise(image, mapping, alpha, seen=True):
                import warnings

                self.warn_level_mismatch = False
                warnings.warn(weak, stacklevel=3)
            return
        found = self.level_mismatch(image, alpha)
        if found is not None:
            import warnings

            self.warn_level_mismatch = False
            measured, trained = found
            effect = "smooth away detail" if measured < trained else "leave noise"
            given = (f"give the level (noise_params={{'sigma': {max(measured, 0.5 / 255):.4f}}}), or " if "sigma" in
                     getattr(self.method, "accepted_noise_params", lambda: ())() else "")
            warnings.warn(f"noise std about {measured * 255:.1f}/255 measured on the image, but the model was "
                          f"trained for {trained * 255:g}/255: it may {effect}; {given}use laine19-gauss5_50, which "
                          "measures each image's level", stacklevel=3)

    def mapping_for(self, image: np.ndarray) -> dict[str, float] | None:
        """How ``image``'s values go to the network's range: the model's recorded map; for a model trained on
        [0, 1] data, an image far outside it (float counts), or (:attr:`maps_dim_data`) using only a sliver of
        it (dim 16-bit counts), is mapped by its own percentiles; else None."""
        from .intensity_map import intensity_mapping

        if self.intensity:  # what the model was trained on, as it was
            return self.intensity
        found = intensity_mapping([image], dim=self.maps_dim_data)
        return self._fitted_map(image, found if self._dim_map_fits(image, found) else None)

    def _fitted_map(self, image: np.ndarray, mapping: dict[str, float] | None) -> dict[str, float] | None:
        """``mapping`` (an image's or a group's own, not a model's recorded one) made to suit the model: an
        unmapped image with a background at or below 0 is shifted (shipped models only: a user's model may have
        been trained on such data as it is; :func:`~selfrestore.intensity_map.negative_background_mapping`); a
        map whose noise on the network's scale (measured on ``image`` as :meth:`mapped_level_low`) is under half
        the lowest level of a Gaussian model is narrowed (:func:`~selfrestore.intensity_map.noise_aware`: as far
        as the bulk of the image stays under 1), unless a level is given. Other images that are not mapped stay
        unmapped. ``image``: with its blank pixels NaN (:func:`_seen`), which are left out."""
        from .corruption.noise import Gaussian
        from .intensity_map import BULK_PERCENTILE, negative_background_mapping, noise_aware, sampled_percentiles

        if mapping is None and self.shipped and self.sensor_noise is None:
            mapping = negative_background_mapping(image)
        noise = getattr(self.method, "noise", None)
        if not mapping or not isinstance(noise, Gaussian) or noise.low <= 0 or self.noise_params \
                or self.sensor_noise is not None:
            return mapping
        scaled = self.to_model_scale(image, mapping)  # blank pixels NaN: left out of both measures
        bulk = sampled_percentiles(scaled, [BULK_PERCENTILE])[0]
        return noise_aware(mapping, central_noise_sigma(scaled), (float(noise.low), float(noise.high)), bulk)

    def _dim_map_fits(self, image: np.ndarray, mapping: dict[str, float] | None) -> bool:
        """False when ``mapping`` is a dim map (``scale`` < 1, data on the [0, 1] scale) that would take the
        noise further from the Gaussian model's level or range (in ratio) than it is unmapped (a dark 16-bit
        photo with strong noise: a map's scale of 0.41 took noise of 25/255 to 61/255, 6 dB lost with
        unet-gauss25; the review): such an image is restored as it is. The level is the given one, else
        measured on the image as :meth:`level_mismatch`."""
        from .corruption.noise import Gaussian

        noise = getattr(self.method, "noise", None)
        if not mapping or mapping["scale"] >= 1 or not isinstance(noise, Gaussian) or self.sensor_noise is not None:
            return True
        low, high = max(noise.low, 1e-6), max(noise.high, 1e-6)
        sigma = self.noise_params.get("sigma")
        if sigma is None:
            sigma = central_noise_sigma(image)
        if not np.isfinite(sigma) or sigma <= 0:
            return True

        def off(level: float) -> float:  # how far (log ratio) a level lies outside [low, high]
            return abs(float(np.log(level / min(max(level, low), high))))

        return off(sigma / mapping["scale"]) <= off(sigma)

    def _scaled_params(self, mapping: dict[str, float] | None) -> dict[str, float]:
        """The given noise level on the scale the network sees: a sigma on the [0, 1] scale of dim 16-bit data
        (mapped from under 1/4 of that scale: ``scale`` < 1) is divided by the map's scale; float counts far
        outside [0, 1] have no such scale, and their sigma is taken on the mapped [0, 1] scale, as fit's is."""
        params = self.noise_params
        if mapping and mapping["scale"] < 1 and "sigma" in params:
            return {**params, "sigma": params["sigma"] / mapping["scale"]}
        return params

    def to_model_scale(self, image: np.ndarray, mapping: dict[str, float] | None = None) -> np.ndarray:
        """The values the network works on (``mapping``: from :meth:`mapping_for`; default the model's)."""
        from .intensity_map import apply_mapping

        return apply_mapping(image, mapping or self.intensity)

    def from_model_scale(self, image: np.ndarray, spread: bool = False,
                         mapping: dict[str, float] | None = None) -> np.ndarray:
        """Back to the data's values; ``spread``: a standard deviation (scaled, not shifted)."""
        mapping = mapping or self.intensity
        if not mapping:
            return image
        scaled = image * mapping["scale"]
        return (scaled if spread else scaled + mapping["offset"]).astype(np.float32)

    def restore(self, image: np.ndarray, progress: bool = False, clipping_decision: Any = _PER_IMAGE,
                mapping: Any = _PER_IMAGE) -> np.ndarray:
        """Restore one (H, W, C) or (H, W) image (any channel count the model can take, in the data's own
        values): float in, float32 out; uint8 / uint16 in (0..255 / 0..65535), the same type out. A torch
        tensor (H, W[, C]) gives a numpy array. An alpha channel is given back unchanged; NaN pixels (and a masked
        float array's masked ones) stay NaN (the network sees the image's median there); the caller's array is
        never modified. Noise clipped at black and white is accounted for as ``clipping`` says
        (:meth:`clipping_correction`; a plane of a stack: ``clipping_decision``, from :meth:`stack_clipping`).
        ``mapping``: a plane of a stack, its group's map from :meth:`stack_mappings` (default: the image's own,
        :meth:`mapping_for`)."""
        image, back = _array_in(image, self.channels)
        self._warn_model_problems()
        self.last_clipping = None
        if self.sensor_noise is not None:
            stabilised, inverse, params = self._stabilise(image)
            return back(inverse(self._subsampled(self._restore, stabilised, progress, params)))
        mapping = self.mapping_for(_seen(image, back)) if mapping is _PER_IMAGE else _checked_mapping(mapping)
        self._warn_level_mismatch(_seen(image, back), mapping, back.alpha)  # type: ignore[attr-defined]
        restored = self._subsampled(self._restore, self.to_model_scale(image, mapping), progress,
                                    self._scaled_params(mapping))
        correction = self.last_clipping = self.clipping_correction(_seen(image, back), mapping, clipping_decision)
        if correction is not None:
            restored = unclip(restored, *correction, in_place=True)[0]
        return back(self.from_model_scale(restored, mapping=mapping))

    def clipping_correction(self, image: np.ndarray, mapping: dict[str, float] | None,
                            decision: Any = _PER_IMAGE) -> tuple[float, bool, bool] | None:
        """(sigma, low end clipped, high end clipped) when the bias of clipped noise is undone for ``image``
        (on the [0, 1] scale, unmapped), else None: ``clipping`` "auto", a denoiser of Gaussian noise
        (``method.corrects_clipped_noise`` and a Gaussian noise model, or a given ``sigma``), values sitting
        on 0 or 1 (:func:`~selfrestore.corruption.clipping.clipped_bounds`), and the noise the image has:
        the given ``sigma``, else measured on the image (:func:`~selfrestore.corruption.clipping.
        clipped_noise_level`; the model's training level may not be the image's). ``decision``: a stack's
        (:meth:`stack_clipping`), taken instead of deciding on this image alone."""
        from .errors import UserError, short_repr

        if not (decision is _PER_IMAGE or decision is None or _is_clipping_decision(decision)):
            raise UserError(f"clipping_decision {short_repr(decision)}: give one of the values Restorer.stack_clipping "
                            "returns (None, or (sigma > 0, low end clipped, high end clipped))")
        if mapping or not self._may_correct_clipping():
            return None
        if decision is not _PER_IMAGE:
            return decision
        return clipping_of(image, self.noise_params.get("sigma"))

    def _may_correct_clipping(self) -> bool:
        """``clipping`` "auto" and a denoiser of Gaussian noise (see :meth:`clipping_correction`)."""
        from .corruption.noise import Gaussian

        if self.clipping == "off" or self.sensor_noise is not None or self.intensity \
                or not getattr(self.method, "corrects_clipped_noise", False):
            return False
        return "sigma" in self.noise_params or isinstance(getattr(self.method, "noise", None), Gaussian)

    def stack_mappings(self, planes: Sequence[Any], stack_shape: Sequence[int] = (), stack_axes: str = "",
                       blanks: Sequence[np.ndarray | None] | None = None) -> list[Any]:
        """The intensity map of each plane of a stack, to pass to :meth:`restore` as ``mapping``: one per group
        of planes that differ only in time or depth (as :meth:`stack_clipping`), made on all the group's
        values (read one at a time), as ``video`` makes one for all its frames. Mapped plane by plane, a
        fading time-lapse of dim 16-bit data switched between mapped and not from one plane to the next
        (the review: a bias of +2150 of 65535 in some planes, -6 in others). A model's recorded map for every
        plane; a single image its own (:meth:`mapping_for`, as :meth:`restore` would make it); with
        ``sensor_noise`` None (the Anscombe path maps no values)."""
        from .intensity_map import intensity_mapping
        from .video_io import samples_per_frame

        if self.sensor_noise is not None or self.intensity:
            return [None if self.sensor_noise is not None else self.intensity] * len(planes)
        if len(planes) < 2:
            return [self.mapping_for(_plane_seen(plane, self.channels, blanks, i)) for i, plane in enumerate(planes)]
        maps: list[Any] = [None] * len(planes)
        for group in plane_groups(len(planes), stack_shape, stack_axes):
            found = intensity_mapping(iter(_PlanesAsIn(planes, group, self.channels, blanks)),
                                      per_image=samples_per_frame(len(group)), dim=self.maps_dim_data)
            middle = _measured_plane(planes, group, self.channels, blanks)
            found = self._fitted_map(middle, found if self._dim_map_fits(middle, found) else None)
            for i in group:
                maps[i] = found
        return maps

    def stack_clipping(self, planes: Sequence[Any], stack_shape: Sequence[int] = (), stack_axes: str = "",
                       blanks: Sequence[np.ndarray | None] | None = None,
                       mappings: Sequence[Any] | None = None) -> list[Any]:
        """The clipped-noise decision for each plane of a stack, to pass to :meth:`restore` as
        ``clipping_decision``: one decision per group of planes that differ only in time or depth
        (:func:`~selfrestore.corruption.clipping.plane_groups`; channels, bands, pages and unknown axes decide
        apart), made on the group (:func:`~selfrestore.corruption.clipping.clipping_of_planes`: the ends over
        all its planes, read one at a time, so ``planes`` may be lazy; the level on up to 8 of them). Decided
        plane by plane, a time-lapse could be corrected in one frame and not the next (flicker near black).
        A group of float counts (mapped by their percentiles, never corrected) gets None. ``blanks``: each
        plane's blank pixels where a reader filled them (``ImageInfo.blank``), left out. ``mappings``: from
        :meth:`stack_mappings` (default: the first plane's own)."""
        from .errors import UserError, short_repr

        if isinstance(planes, (str, bytes, np.ndarray)) or not hasattr(planes, "__len__") \
                or not hasattr(planes, "__getitem__"):
            raise UserError(f"planes {short_repr(planes)}: give a sequence (list or tuple) of the stack's planes, "
                            "arrays of (H, W[, C])")
        decisions: list[Any] = [None] * len(planes)
        if not self._may_correct_clipping():
            return decisions
        for group in plane_groups(len(planes), stack_shape, stack_axes):
            seen = _PlanesAsIn(planes, group, self.channels, blanks)
            mapped = mappings[group[0]] if mappings is not None else \
                self.mapping_for(_array_in(planes[group[0]], self.channels)[0])
            if mapped:
                continue
            decision = clipping_of_planes(seen, self.noise_params.get("sigma"))
            for i in group:
                decisions[i] = decision
        return decisions

    def restore_with_uncertainty(self, image: np.ndarray, progress: bool = False, clipping_decision: Any = _PER_IMAGE,
                                 mapping: Any = _PER_IMAGE) -> tuple[np.ndarray, np.ndarray]:
        """(posterior mean, per-pixel posterior standard deviation) of one (H, W, C) image, both in the data's
        own values and channels, for Bayesian models (``method.restore_with_uncertainty``). A colour model on
        a gray image gives the std of its gray value (through the colour view: the std of the channel mean,
        :attr:`gray_as_colour`); a gray model restores colour channel by channel. Input
        types as :meth:`restore` (``clipping_decision`` too); the std is float32, 0 for an alpha channel, NaN at
        NaN pixels."""
        from .errors import UserError

        if not hasattr(self.method, "restore_with_uncertainty"):
            raise UserError(f"uncertainty needs a Bayesian model; this one uses method {self.method.name!r}")
        image, back = _array_in(image, self.channels)
        self._warn_model_problems()
        self.last_clipping = None
        if self.sensor_noise is not None:
            stabilised, inverse, params = self._stabilise(image)
            mean, std = self._subsampled(self._mean_and_std, stabilised, progress, params)
            return back(inverse(mean)), back(inverse(mean, std), spread=True)
        mapping = self.mapping_for(_seen(image, back)) if mapping is _PER_IMAGE else _checked_mapping(mapping)
        self._warn_level_mismatch(_seen(image, back), mapping, back.alpha)  # type: ignore[attr-defined]
        mean, std = self._subsampled(self._mean_and_std, self.to_model_scale(image, mapping), progress,
                                     self._scaled_params(mapping))
        correction = self.last_clipping = self.clipping_correction(_seen(image, back), mapping, clipping_decision)
        if correction is not None:
            mean, std = unclip(mean, *correction, std=std, in_place=True)
        return (back(self.from_model_scale(mean, mapping=mapping)),
                back(self.from_model_scale(std.astype(np.float32), spread=True, mapping=mapping), spread=True))

    def _subsampled(self, restore: Callable[..., Any], image: np.ndarray, progress: bool,
                    params: dict[str, float]) -> Any:
        """``restore`` (:meth:`_restore` or :meth:`_mean_and_std`) of ``image``, or of each of its sub-images
        (:attr:`subsample`)."""
        from .subimages import in_subimages

        self._refuse_too_small_to_subsample(image)
        return in_subimages(lambda part: restore(part, progress, params), image, self.subsample)

    def _mean_and_std(self, image: np.ndarray, progress: bool, params: dict[str, float]
                      ) -> tuple[np.ndarray, np.ndarray]:
        """The network's posterior mean and std of ``image`` (on the network's scale), in its channels. With
        the x8 ensemble, the mean of the eight posterior means and the root of the mean of their variances."""
        from .io import LUMA, to_channels

        self._refuse_single_pixel(image)
        have = image.shape[2]
        if self.channels == 1 and have > 1:  # channel by channel, as :meth:`_restore`
            parts = [self._mean_and_std(image[:, :, c:c + 1], progress, params) for c in range(have)]
            return np.concatenate([m for m, _ in parts], axis=2), np.concatenate([d for _, d in parts], axis=2)
        view, params = self._colour_view(image, params)
        both = restore_array(self.method, self.net, to_channels(image, self.channels) if view is None else
                             view.colour, tile=self.tile, ensemble=self.ensemble, precision=self.precision,
                             device=self.device, progress=progress, context=self.tile_context, params=params,
                             uncertainty=True, channel_mean=view is not None)
        mean, std = both[:, :, :self.channels], np.sqrt(np.maximum(both[:, :, self.channels:], 0.0))
        if view is not None:  # a gray image (or equal channels) through a colour model, as a colour image
            return to_channels(view.gray_of(mean), have), to_channels(view.gray_std_of(std), have)
        if have != self.channels:  # a gray image through a colour model (gray_as_colour off)
            mean = to_channels(mean, have)
            same = all(np.array_equal(std[:, :, 0], std[:, :, k]) for k in range(1, std.shape[2]))
            # one std in every channel: the posterior of the gray value (laine19.gray_projection), whose
            # channels are one variable; else independent channels mixed by the luma weights
            std = std[:, :, :1] if same else np.sqrt((std**2) @ (np.array(LUMA, np.float32) ** 2))[:, :, None]
        return mean, std

    def _stabilise(self, image: np.ndarray
                   ) -> tuple[np.ndarray, Callable[..., np.ndarray], dict[str, float]]:
        """Poisson-Gaussian data for a Gaussian model: the generalised Anscombe transform makes the noise
        Gaussian with unit std; mapped to [0, 1] (signals 0 .. the image's 99.9th percentile) its std is known,
        1 / range, and is given to the model. The range is the image's own, not the data type's: 12-bit counts
        in a 16-bit file on the 0-1 scale of 65535 took a fixed 0 .. 1 range, so the signal filled 1/16 of it
        and the model, told of noise 16x below what it saw, left it almost as it was. The range is widened
        where the signal spans so few noise stds that the level would exceed the model's highest.
        Returns (stabilised image, ``back``, the model's noise level):
        ``back(estimate)`` is the Makitalo-Foi unbiased inverse of an estimate, ``back(estimate, std)`` its
        std mapped by the delta method (first order: it grows like the shot noise)."""
        from .corruption.noise import Gaussian
        from .corruption.stabilise import anscombe, anscombe_range, inverse_anscombe, inverse_anscombe_std

        a, b = self.sensor_noise
        finite = image[np.isfinite(image)]
        top = float(np.percentile(finite, 99.9)) if finite.size else 1.0
        top = top if top > 0 else 1.0
        try:
            low, high = anscombe_range(a, b, 0.0, top)
        except OverflowError:
            low = high = math.nan
        if not 1e-6 < high - low < 1e7:  # float32 arithmetic on the way back, and nan, stay in range
            from .errors import ImageRefused

            raise ImageRefused(f"Poisson-Gaussian noise (a, b) = ({a:g}, {b:g}) is out of proportion with this "
                               f"image's values (0 .. {top:g}): give a and b in the data's own units (selfrestore "
                               "inspect)")
        noise = getattr(self.method, "noise", None)
        highest_level = noise.high if isinstance(noise, Gaussian) and noise.high > 0 else 50 / 255
        high = max(high, low + 1.0 / highest_level)
        stabilised = (anscombe(torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)), a, b) - low) \
            / (high - low)

        def back(estimate: np.ndarray, std: np.ndarray | None = None) -> np.ndarray:
            d = torch.from_numpy(estimate) * (high - low) + low
            out = inverse_anscombe(d, a, b) if std is None else \
                inverse_anscombe_std(d, torch.from_numpy(std) * (high - low), a, b)
            return out.numpy().astype(np.float32)

        return stabilised.numpy(), back, {"sigma": 1.0 / (high - low)}

    def _refuse_too_small_to_subsample(self, image: np.ndarray) -> None:
        """A blind-spot model restores an image as sub-images (:attr:`subsample` 2) only when each holds
        ``MIN_BLIND_SPOT_PIXELS``: said of the image, not of its sub-images."""
        h, w = image.shape[:2]
        s = self.subsample
        if s > 1 and getattr(self.net, "blind_spot", False) and (-(-h // s)) * (-(-w // s)) < MIN_BLIND_SPOT_PIXELS:
            from .errors import ImageRefused

            raise ImageRefused(f"a {h} x {w} image is too small to restore as {s} x {s} sub-images with a blind-spot "
                               f"model ({self.method.name}): each needs at least {MIN_BLIND_SPOT_PIXELS} pixels; "
                               "restore it without --subsample")

    def _refuse_single_pixel(self, image: np.ndarray) -> None:
        """A blind-spot network predicts each pixel from its neighbours alone: a 1 x 1 image has none, and its
        prior is the zero padding's (a mid-grey pixel came back near black); with a few more its prior is still
        mostly padding, and a level-estimating model measures the noise on those few values (a noisy mid-grey
        1 x 2 or 1 x 3 image came back at 73 / 79 of 255). Images of ``MIN_BLIND_SPOT_PIXELS`` or more restore."""
        h, w = image.shape[:2]
        if getattr(self.net, "blind_spot", False) and h * w < MIN_BLIND_SPOT_PIXELS:
            from .errors import ImageRefused

            raise ImageRefused(f"a {h} x {w} image: a blind-spot model ({self.method.name}) predicts each pixel "
                               f"from its neighbours, and needs at least {MIN_BLIND_SPOT_PIXELS} pixels; use "
                               "another model (e.g. unet-gauss25)")

    def _restore(self, image: np.ndarray, progress: bool, params: dict[str, float] | None = None) -> np.ndarray:
        """The network's restoration, with ``params`` (default: the restorer's ``noise_params``)."""
        from .io import to_channels

        self._refuse_single_pixel(image)
        have = image.shape[2]
        if self.channels == 1 and have > 1:  # a gray model restores colour channel by channel (colour kept)
            return np.concatenate([self._restore(image[:, :, c:c + 1], progress, params) for c in range(have)],
                                  axis=2)
        params = self.noise_params if params is None else params
        view, params = self._colour_view(image, params)
        out = restore_array(self.method, self.net, to_channels(image, self.channels) if view is None else view.colour,
                            tile=self.tile, ensemble=self.ensemble, precision=self.precision, device=self.device,
                            progress=progress, context=self.tile_context, params=params)
        if view is not None:
            return to_channels(view.gray_of(out), have)
        return to_channels(out, have) if have != self.channels else out

    def takes_gray_as_colour(self, image: np.ndarray) -> bool:
        """Whether ``image`` (H, W, C) may reach the model as a colour view (:mod:`selfrestore.gray_as_colour`):
        :attr:`gray_as_colour`, a colour denoiser (``method.corrects_clipped_noise``: not a deblurring net) of
        Gaussian (or unknown) noise, and a gray image or one whose three channels are all equal."""
        from .corruption.noise import Gaussian

        noise = getattr(self.method, "noise", None)
        if not self.gray_as_colour or self.channels != 3 or not getattr(self.method, "corrects_clipped_noise", False) \
                or not (noise is None or isinstance(noise, Gaussian)):
            return False
        return image.shape[2] == 1 or (image.shape[2] == 3 and np.array_equal(image[:, :, 0], image[:, :, 1])
                                       and np.array_equal(image[:, :, 0], image[:, :, 2]))

    def _colour_view(self, image: np.ndarray, params: Mapping[str, Any]) -> tuple[Any, Mapping[str, Any]]:
        """(:class:`~selfrestore.gray_as_colour.ColourView`, the noise parameters to restore it with) when
        :meth:`takes_gray_as_colour`; else (None, ``params``). The gray image's noise: the given ``sigma``, else
        measured on it (:func:`_gray_noise_sigma`). Not taken (the channel repeated, which Laine19 models
        restore by the exact posterior of the gray value) where the view would be wrong or worse: a measured
        level under the low end of a range model's levels (that estimate is mostly texture: the default model
        lost 6 dB on noise-free photos, 1.3 on sigma 2; a review), a given level under a single-level model's
        luma noise (the view's luma would keep the given level while the posterior assumed the model's), a
        model of level 0."""
        from .gray_as_colour import colour_view, target_level

        if not self.takes_gray_as_colour(image):
            return None, params
        noise = getattr(self.method, "noise", None)
        levels = None if noise is None else (noise.low, noise.high)
        given = params.get("sigma")
        sigma = _gray_noise_sigma(image[:, :, 0]) if given is None else given
        if not (np.isfinite(sigma) and sigma > 0) or (levels is not None and levels[1] <= 0):
            return None, params
        if levels is not None and given is None and levels[0] < levels[1] and sigma < levels[0]:
            return None, params
        if levels is not None and given is not None and levels[0] == levels[1] \
                and math.sqrt(3) * given < target_level(given, levels):
            return None, params
        view = colour_view(image[:, :, :1], float(sigma), levels)
        return view, ({**params, "sigma": view.level} if "sigma" in params else params)

    def model_input(self, image: np.ndarray, mapping: dict[str, float] | None = None) -> np.ndarray:
        """What the network is given for ``image`` (H, W, C, the data's values; ``mapping`` as
        :meth:`to_model_scale`): on the model's scale, in its channels; a gray image through a colour model,
        its colour view (what ``restore --adapt`` trains on, so that it trains on what it restores); with
        ``sensor_noise``, the Anscombe-stabilised image (``mapping`` unused), as :meth:`restore` restores."""
        from .io import to_channels

        if self.sensor_noise is not None:
            scaled, _, params = self._stabilise(image)
        else:
            scaled, params = self.to_model_scale(image, mapping), self._scaled_params(mapping)
        view, _ = self._colour_view(scaled, params)
        return view.colour if view is not None else to_channels(scaled, self.channels)

    def restore_file(self, source: str | os.PathLike, target: str | os.PathLike) -> Path:
        """Restore the image file ``source`` into ``target`` in the input's form (bit depth, alpha ...; a TIFF
        stack plane by plane, into a TIFF or FITS of the same layout). Checked before the work, as by
        ``selfrestore restore``: a ``target`` that is ``source`` itself, a folder or no image format, and float
        values that ``target``'s format would clip, are a UserError. An existing ``target`` is replaced."""
        from .errors import UserError, short_repr
        from .atomic_files import refuse_folder
        from .file_lists import same_entry
        from .io import IMAGE_SUFFIXES, read_frames, refuse_clipping, stack_target_problem, write_frames

        for name, value in (("source", source), ("target", target)):
            if not isinstance(value, (str, os.PathLike)):  # (an array: its repr would be many lines)
                raise UserError(f"{name} {short_repr(value)}: give a file name (a str or pathlib.Path), not "
                                f"{type(value).__name__}")
        source, target = Path(source), refuse_folder(target)
        if same_entry(target, source):  # any spelling of it (a hard link is another entry: written atomically)
            raise UserError(f"{target}: the output would overwrite the input; choose another file name")
        if target.suffix.lower() not in IMAGE_SUFFIXES:
            raise UserError(f"{target}: not an image file name; its suffix picks the format "
                            f"({', '.join(IMAGE_SUFFIXES)})")
        frames, info = read_frames(source)
        problem = stack_target_problem(source, info, len(frames), target)
        if problem:
            raise UserError(problem)
        if info.dtype == "float32":
            refuse_clipping(target, frames)
        maps = self.stack_mappings(frames, info.stack_shape, info.stack_axes, info.frame_blanks)
        decisions = self.stack_clipping(frames, info.stack_shape, info.stack_axes, info.frame_blanks, maps)
        return write_frames(target, [self.restore(frame, clipping_decision=decision, mapping=mapping)
                                     for frame, decision, mapping in zip(frames, decisions, maps)], info)
