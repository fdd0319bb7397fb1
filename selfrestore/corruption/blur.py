"""Blur kernels and the blur corruption model  y = k * x + n.

Three sources of kernels:

* files: :func:`load_kernels` reads ``.mat`` files (MATLAB v5 through SciPy, v7.3 through h5py, e.g.
  Levin et al. 2009 ``Levin09.mat`` and the USRNet/DPIR ``kernels_12.mat``) and ``.npy`` / ``.npz`` arrays;
* random camera shake: :func:`random_motion_kernel` draws a random-walk trajectory with inertia (in the
  spirit of Boracchi & Foi 2012, "Modeling the performance of image restoration from motion blur") and
  renders it sub-pixel into a kernel; it is reproducible from a NumPy generator;
* anisotropic Gaussians: :func:`gaussian_kernel`.

:class:`CameraShake` mixes recorded kernels (optionally resampled: a milder shake) with random
trajectories of a set length, optionally centred on their centroids: the training blur of the deblurring
and blurry + noisy (SelfIR) data.

:class:`Blur` is the :class:`~selfrestore.corruption.Corruption` for synthetic deblurring data: each image
gets its own kernel (recorded in ``params["kernel"]``) and light Gaussian noise (``params["sigma"]``).
``variance`` and ``log_likelihood`` describe the noise part, around the blurred signal when the kernel is
known. Short names: ``blur`` (random motion kernels of 25 px, noise sigma 1/255), ``blur31``,
``blur_gauss2`` (noise sigma 2/255), ``blur31_gauss0`` (no noise).
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import UserError
from .base import Corruption, Params, per_image, register_corruption


# ------------------------------------------------------------------------------------------ kernels
def normalize_kernel(kernel: np.ndarray) -> np.ndarray:
    """Non-negative float32 kernel summing to one (tiny negative values from file round-off are dropped)."""
    k = np.clip(np.asarray(kernel, dtype=np.float64), 0.0, None)
    total = k.sum()
    if not np.isfinite(total) or total <= 0:
        raise ValueError("kernel has no positive mass")
    return (k / total).astype(np.float32)


def _mat_cells_scipy(path: Path, variable: str | None) -> list[np.ndarray]:
    import scipy.io

    data = scipy.io.loadmat(str(path))
    names = [n for n in data if not n.startswith("__")]
    name = variable or ("kernels" if "kernels" in names else (names[0] if names else None))
    if name is None or name not in data:
        raise UserError(f"{path}: no variable {variable or 'kernels'!r} (has: {', '.join(names) or 'none'})")
    value = data[name]
    if value.dtype == object:  # a cell array
        return [np.asarray(v, dtype=np.float64) for v in value.ravel(order="F")]
    return _split_stack(np.asarray(value, dtype=np.float64))


def _mat_cells_h5py(path: Path, variable: str | None) -> list[np.ndarray]:
    try:
        import h5py
    except ImportError:  # pragma: no cover - h5py is in the dev/bench extras
        raise UserError(f"{path}: MATLAB v7.3 file; install h5py to read it") from None
    with h5py.File(path, "r") as f:
        names = [n for n in f.keys() if not n.startswith("#")]
        name = variable or ("kernels" if "kernels" in names else (names[0] if names else None))
        if name is None or name not in f:
            raise UserError(f"{path}: no variable {variable or 'kernels'!r} (has: {', '.join(names) or 'none'})")
        node = f[name]
        if node.dtype == object:  # cell array of references; h5py sees MATLAB arrays transposed
            return [np.asarray(f[ref], dtype=np.float64).T for ref in node[()].ravel(order="F")]
        return _split_stack(np.asarray(node, dtype=np.float64).T)


def _is_hdf5(path: Path) -> bool:
    """MATLAB v7.3 files are HDF5 (signature after a 512-byte user block)."""
    with open(path, "rb") as f:
        head = f.read(2048)
    return any(head[o:o + 8] == b"\x89HDF\r\n\x1a\n" for o in (0, 512, 1024))


def _split_stack(array: np.ndarray) -> list[np.ndarray]:
    """One 2-D kernel, or a stack (k, k, n) as MATLAB writes it / (n, k, k) as NumPy does."""
    if array.ndim == 2:
        return [array]
    if array.ndim == 3:
        if array.shape[0] == array.shape[1] and array.shape[2] != array.shape[0]:
            return [array[:, :, i] for i in range(array.shape[2])]
        return [array[i] for i in range(array.shape[0])]
    raise ValueError(f"expected 2-D kernels or a 3-D stack, got shape {array.shape}")


def load_kernels(path: str | os.PathLike, variable: str | None = None) -> list[np.ndarray]:
    """Read blur kernels from a ``.mat`` (v5 or v7.3), ``.npy`` or ``.npz`` file, each normalised to sum 1.

    ``variable`` names the MATLAB variable / npz entry (default ``kernels``, else the first one).
    Raises :class:`UserError` naming the file when it is missing, unreadable or holds no usable kernel.
    """
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: no such kernel file")
    suffix = p.suffix.lower()
    try:
        if suffix == ".mat":
            raw = _mat_cells_h5py(p, variable) if _is_hdf5(p) else _mat_cells_scipy(p, variable)
        elif suffix == ".npy":
            raw = _split_stack(np.load(p, allow_pickle=False))
        elif suffix == ".npz":
            with np.load(p, allow_pickle=False) as data:
                name = variable or ("kernels" if "kernels" in data.files else data.files[0])
                raw = _split_stack(data[name])
        else:
            raise UserError(f"{p}: unsupported kernel file type {suffix!r} (use .mat, .npy or .npz)")
        kernels = [normalize_kernel(k) for k in raw]
    except UserError:
        raise
    except Exception as exc:  # corrupt file, wrong layout, empty kernel...
        reason = str(exc)
        if "pickle" in reason:  # numpy's words for any .npy / .npz that is not a plain array: advice not to take
            reason = f"not a {suffix} file of plain numeric arrays"
        raise UserError(f"{p}: cannot read blur kernels ({reason})") from None
    if not kernels:
        raise UserError(f"{p}: holds no kernels")
    for k in kernels:
        if k.ndim != 2:
            raise UserError(f"{p}: kernels must be 2-D, got shape {k.shape}")
    return kernels


def pad_kernel(kernel: np.ndarray, size: int) -> np.ndarray:
    """Zero-pad a kernel to ``size`` x ``size`` (odd), keeping its centre; crop if it is larger."""
    k = np.asarray(kernel, dtype=np.float32)
    if k.shape[0] % 2 == 0:
        k = np.pad(k, ((0, 1), (0, 0)))
    if k.shape[1] % 2 == 0:
        k = np.pad(k, ((0, 0), (0, 1)))
    out = np.zeros((size, size), np.float32)
    h, w = k.shape
    top, left = (size - h) // 2, (size - w) // 2
    src_top, src_left = max(0, -top), max(0, -left)
    dst_top, dst_left = max(0, top), max(0, left)
    hh, ww = min(h - src_top, size - dst_top), min(w - src_left, size - dst_left)
    out[dst_top:dst_top + hh, dst_left:dst_left + ww] = k[src_top:src_top + hh, src_left:src_left + ww]
    return normalize_kernel(out)


def kernel_centroid(kernel: np.ndarray) -> tuple[float, float]:
    """(y, x) of a kernel's centre of mass, in pixels from its top-left corner."""
    k = np.asarray(kernel, dtype=np.float64)
    ys, xs = np.mgrid[:k.shape[0], :k.shape[1]]
    total = k.sum()
    return float((k * ys).sum() / total), float((k * xs).sum() / total)


def kernel_offset(kernel: np.ndarray) -> tuple[float, float]:
    """(dy, dx): the kernel's centroid minus its centre pixel. Blurring with a kernel whose centroid is off
    the centre displaces the image by that much (a long exposure then sits off the short one)."""
    cy, cx = kernel_centroid(kernel)
    return cy - (kernel.shape[0] - 1) / 2, cx - (kernel.shape[1] - 1) / 2


def centre_on_centroid(kernel: np.ndarray) -> np.ndarray:
    """The kernel shifted by whole pixels so that its centroid is within half a pixel of its centre, grown
    (zero padding) so that no mass is lost. A blurry long exposure made with it is aligned with the sharp
    scene on average, as a real long exposure is with a short one taken at the middle of it. Sums to one."""
    k = normalize_kernel(kernel)
    dy, dx = (int(round(v)) for v in kernel_offset(k))
    if dy == 0 and dx == 0:
        return k
    # pad so the centroid pixel becomes the centre: 2|d| more rows/columns on the side opposite the mass
    pad = ((max(0, -2 * dy), max(0, 2 * dy)), (max(0, -2 * dx), max(0, 2 * dx)))
    return normalize_kernel(np.pad(k, pad))


def scale_kernel(kernel: np.ndarray, factor: float) -> np.ndarray:
    """Resample a blur kernel by ``factor`` (0.5: the same path at half the length), area-averaged so no
    mass is lost, odd-sized and normalised to sum 1."""
    k = torch.from_numpy(normalize_kernel(kernel))[None, None].double()
    size = [max(1, int(round(n * factor))) | 1 for n in k.shape[-2:]]
    if factor >= 1:
        out = torch.nn.functional.interpolate(k, size=size, mode="bilinear", align_corners=True)
    else:
        out = torch.nn.functional.adaptive_avg_pool2d(k, size)
    return normalize_kernel(out[0, 0].numpy())


def kernel_moments(kernel: np.ndarray) -> tuple[float, float]:
    """(major, minor) standard deviations in pixels of a kernel's mass: how far the blur spreads along and
    across its main direction."""
    k = normalize_kernel(kernel).astype(np.float64)
    ys, xs = np.mgrid[:k.shape[0], :k.shape[1]]
    my, mx = kernel_centroid(k)
    cyy, cxx, cxy = (k * (ys - my) ** 2).sum(), (k * (xs - mx) ** 2).sum(), (k * (ys - my) * (xs - mx)).sum()
    minor, major = np.sqrt(np.clip(np.linalg.eigvalsh(np.array([[cyy, cxy], [cxy, cxx]])), 0, None))
    return float(major), float(minor)


def random_trajectory(rng: np.random.Generator, steps: int = 64, anxiety: float | None = None,
                      centripetal: float | None = None, jerk_probability: float = 0.05) -> np.ndarray:
    """A camera-shake path sampled at equal time steps: (steps + 1, 2) points (x, y), total length 1
    (scale it to the blur length you want).

    A random walk with inertia: each step the heading changes by Gaussian noise (``anxiety``), an
    occasional jerk, and a pull back towards the start (``centripetal``); the speed drifts smoothly, so the
    hand lingers in places (bright spots of the kernel) and sweeps through others, as in real shake.
    """
    anxiety = rng.uniform(0.0, 0.6) if anxiety is None else anxiety
    centripetal = rng.uniform(0.0, 0.3) if centripetal is None else centripetal
    heading = rng.uniform(0.0, 2.0 * math.pi)
    direction = np.array([math.cos(heading), math.sin(heading)])
    log_speed = 0.0
    position = np.zeros(2)
    points = [position.copy()]
    for _ in range(steps):
        change = anxiety * rng.standard_normal(2) - centripetal * position * 4.0 / steps
        if rng.random() < jerk_probability:
            change += 2.0 * anxiety * rng.standard_normal(2)
        direction = direction + change
        direction /= max(np.linalg.norm(direction), 1e-12)
        log_speed = 0.8 * log_speed + 0.4 * rng.standard_normal()
        position = position + direction * math.exp(log_speed)
        points.append(position.copy())
    points = np.asarray(points)
    total = np.linalg.norm(np.diff(points, axis=0), axis=1).sum()
    return points / max(total, 1e-12)


def render_trajectory(points: np.ndarray, size: int, length: float, samples_per_px: int = 4) -> np.ndarray:
    """Rasterise a path (unit length, equal time per step, from :func:`random_trajectory`) scaled to
    ``length`` pixels into a ``size`` x ``size`` kernel by bilinear splatting; normalised to sum 1.

    The path is centred on its bounding box and shrunk, if needed, to fit inside the kernel.
    """
    pts = np.asarray(points, dtype=np.float64) * float(length)
    extent = pts.max(axis=0) - pts.min(axis=0)
    limit = size - 3.0
    if extent.max() > limit:
        pts *= limit / extent.max()
    pts -= (pts.max(axis=0) + pts.min(axis=0)) / 2.0
    pts += (size - 1) / 2.0
    # equal exposure time per path step: subdivide each step finely, each step carries the same mass
    xs_list, ys_list, mass_list = [], [], []
    for a, b in zip(pts[:-1], pts[1:]):
        m = int(np.ceil(np.linalg.norm(b - a) * samples_per_px)) + 1
        t = (np.arange(m) + 0.5) / m
        xs_list.append(a[0] + t * (b[0] - a[0]))
        ys_list.append(a[1] + t * (b[1] - a[1]))
        mass_list.append(np.full(m, 1.0 / m))
    xs, ys, mass = np.concatenate(xs_list), np.concatenate(ys_list), np.concatenate(mass_list)
    kernel = np.zeros((size, size), np.float64)
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    fx, fy = xs - x0, ys - y0
    for dx, dy, weight in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)),
                           (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        np.add.at(kernel, (np.clip(y0 + dy, 0, size - 1), np.clip(x0 + dx, 0, size - 1)), weight * mass)
    return normalize_kernel(kernel)


def random_motion_kernel(rng: np.random.Generator, size: int = 25, min_length: float | None = None,
                         max_length: float | None = None) -> np.ndarray:
    """A random camera-shake kernel of ``size`` x ``size`` (odd) whose path length is uniform in
    [min_length, max_length] pixels (default: size/5 to size - 3). Reproducible from ``rng``."""
    if size < 3 or size % 2 == 0:
        raise ValueError("motion kernel size must be odd and >= 3")
    low = max(1.0, size / 5.0) if min_length is None else min_length
    high = float(size - 3) if max_length is None else max_length
    return render_trajectory(random_trajectory(rng), size, rng.uniform(low, max(low, high)))


def gaussian_kernel(size: int, sigma_x: float, sigma_y: float | None = None, angle: float = 0.0) -> np.ndarray:
    """An (anisotropic, rotated by ``angle`` radians) Gaussian kernel of ``size`` x ``size``, sum 1."""
    sigma_y = sigma_x if sigma_y is None else sigma_y
    r = (size - 1) / 2.0
    y, x = np.mgrid[-r:r + 1, -r:r + 1]
    c, s = math.cos(angle), math.sin(angle)
    u, v = c * x + s * y, -s * x + c * y
    return normalize_kernel(np.exp(-0.5 * ((u / sigma_x) ** 2 + (v / sigma_y) ** 2)))


# ------------------------------------------------------------------------------------------ blurring
def blur(x: Tensor, kernel: Tensor, padding: str = "reflect") -> Tensor:
    """Convolve images x (N, C, H, W) with one kernel (k, k) or one kernel per image (N, k, k).

    A true convolution (the kernel is flipped for ``conv2d``). ``padding="reflect"`` keeps the size
    (falls back to replicate on images smaller than the kernel); ``"valid"`` returns the (H-k+1, W-k+1)
    part that does not depend on any padding (what synthetic training pairs should use).
    """
    n, c, h, w = x.shape
    k = kernel.to(x.device, x.dtype)
    if k.dim() == 2:
        k = k.expand(n, *k.shape)
    if k.shape[0] != n or k.shape[-1] % 2 == 0 or k.shape[-2] % 2 == 0:
        raise ValueError(f"need one odd-sized kernel per image, got {tuple(k.shape)} for {n} images")
    weight = torch.flip(k, dims=(-2, -1)).repeat_interleave(c, dim=0).unsqueeze(1)  # (N*C, 1, kh, kw)
    ph, pw = k.shape[-2] // 2, k.shape[-1] // 2
    inp = x.reshape(1, n * c, h, w)
    if padding != "valid":
        mode = "reflect" if (ph < h and pw < w and padding == "reflect") else "replicate"
        inp = F.pad(inp, (pw, pw, ph, ph), mode=mode)
    out = F.conv2d(inp, weight, groups=n * c)
    return out.reshape(n, c, out.shape[-2], out.shape[-1])


# ------------------------------------------------------------------------------------------ corruption
class Blur(Corruption):
    """y = k * x + sigma n: a per-image blur kernel, then light Gaussian noise (not clipped).

    Kernels come from ``kernels`` (a list of arrays, e.g. from :func:`load_kernels`) when given, else are
    fresh random camera-shake kernels of ``kernel_size`` px. ``sigma`` (8-bit units: 1 means 1/255) is the
    noise level, fixed or uniform in [sigma, sigma_high] per image.
    """

    def __init__(self, kernels: Sequence[np.ndarray] | None = None, kernel_size: int = 25,
                 sigma: float = 1.0, sigma_high: float | None = None):
        if kernel_size < 3 or kernel_size % 2 == 0:
            raise ValueError("kernel size must be odd and >= 3")
        self.kernels = [normalize_kernel(k) for k in kernels] if kernels is not None else None
        if self.kernels is not None and not self.kernels:
            raise ValueError("empty kernel list")
        sizes = [max(k.shape) | 1 for k in self.kernels] if self.kernels else [kernel_size]
        self.kernel_size = max(sizes)  #: every kernel is padded to this size (odd)
        self.low = float(sigma) / 255.0
        self.high = float(sigma if sigma_high is None else sigma_high) / 255.0
        if not 0 <= self.low <= self.high:
            raise ValueError("need 0 <= sigma <= sigma_high")
        self._name_from_size()

    def _name_from_size(self) -> None:
        """A parseable short name (a checkpoint stores it); a file kernel set is not part of the name, so a
        reloaded model reports random-motion kernels of the same size."""
        self.name = f"blur{self.kernel_size}_gauss{(self.low + self.high) / 2 * 255:g}"

    # --- drawing parameters (NumPy generator: data sources use these directly) ---------------------
    def draw_kernel(self, rng: np.random.Generator) -> np.ndarray:
        """One kernel, ``kernel_size`` x ``kernel_size``."""
        if self.kernels is not None:
            return pad_kernel(self.kernels[int(rng.integers(len(self.kernels)))], self.kernel_size)
        return random_motion_kernel(rng, self.kernel_size)

    def draw_sigma(self, rng: np.random.Generator) -> float:
        return float(self.low if self.low == self.high else rng.uniform(self.low, self.high))

    # --- Corruption interface ------------------------------------------------------------------------
    def sample_with_params(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Params]:
        seed = int(torch.randint(0, 2**62, (1,), generator=generator).item())
        rng = np.random.default_rng(seed)
        n = x.shape[0]
        kernels = torch.from_numpy(np.stack([self.draw_kernel(rng) for _ in range(n)]))
        sigma = torch.tensor([self.draw_sigma(rng) for _ in range(n)], dtype=torch.float32)
        noise = torch.from_numpy(rng.standard_normal(x.shape).astype(np.float32)).to(x.device, x.dtype)
        y = blur(x, kernels) + per_image(sigma, x) * noise
        return y, {"kernel": kernels.to(x.device), "sigma": sigma.to(x.device)}

    def _sigma(self, x: Tensor, params: Params | None) -> Tensor:
        if params and "sigma" in params:
            return per_image(params["sigma"], x)
        return torch.full((1,) * x.dim(), (self.low + self.high) / 2, device=x.device, dtype=x.dtype)

    def mean(self, x: Tensor, params: Params | None = None) -> Tensor:
        """E[y | x]: the blurred image when ``params`` holds the kernels, else x itself (already blurred)."""
        if params and "kernel" in params:
            return blur(x, params["kernel"])
        return x

    def variance(self, x: Tensor, params: Params | None = None) -> Tensor:
        return self._sigma(x, params) ** 2 * torch.ones_like(x)

    def log_likelihood(self, y: Tensor, x: Tensor, params: Params | None = None) -> Tensor:
        var = self.variance(x, params).clamp_min(1e-12)
        return -0.5 * ((y - self.mean(x, params)) ** 2 / var + torch.log(2 * math.pi * var))

    def nominal_params(self, batch: int, device: torch.device | str = "cpu") -> Params:
        return {"sigma": torch.full((batch,), (self.low + self.high) / 2, device=device)}


class CameraShake(Blur):
    """Camera-shake blur for training data: y = k * x + sigma n, with k a recorded kernel (probability
    ``file_fraction``, e.g. Levin et al. 2009) or a random trajectory (:func:`random_trajectory`, heading
    noise uniform in [0, ``anxiety``]) of length uniform in ``length`` px, rendered in ``kernel_size`` px.

    ``kernel_scale`` s resamples the recorded kernels (:func:`scale_kernel`: the same shake, s times as
    long); scale ``kernel_size`` and ``length`` with it to make the random ones match. ``centre=True`` moves
    every kernel's centroid to its centre (:func:`centre_on_centroid`): a blurry long exposure is then
    aligned with the sharp scene, as a real one is with a short exposure taken at its middle. The kernels
    then grow (zero padding) so that none is ever cut: ``self.kernel_size`` is the size of every drawn
    kernel.
    """

    def __init__(self, kernels: Sequence[np.ndarray] | None = None, kernel_size: int = 27,
                 length: tuple[float, float] = (8.0, 40.0), anxiety: float = 0.3, file_fraction: float = 0.5,
                 kernel_scale: float = 1.0, centre: bool = False, sigma: float = 1.0,
                 sigma_high: float | None = None):
        super().__init__(kernel_size=kernel_size, sigma=sigma, sigma_high=sigma_high)
        files = [scale_kernel(k, kernel_scale) if kernel_scale != 1 else k for k in kernels or []]
        if not 0 <= file_fraction <= 1 or (file_fraction > 0 and not files):
            raise ValueError("file_fraction must be in [0, 1], and > 0 only with kernel files")
        if not 0 < length[0] <= length[1]:
            raise ValueError("need 0 < length[0] <= length[1]")
        self.render_size = self.kernel_size  #: random trajectories are rendered at this size
        self.centre = bool(centre)
        if self.centre:
            files = [centre_on_centroid(k) for k in files]
            # a rendered path fits in render_size - 3 px, so its centroid is at most half that off centre
            grown = self.render_size + 2 * math.ceil((self.render_size - 3) / 2)
            self.kernel_size = max([grown] + [max(k.shape) | 1 for k in files])
        self.files = [pad_kernel(k, self.kernel_size) for k in files]
        self.length, self.anxiety, self.file_fraction = (float(length[0]), float(length[1])), float(anxiety), file_fraction
        self._name_from_size()  # the kernels may have grown

    def draw_kernel(self, rng: np.random.Generator) -> np.ndarray:
        if self.files and rng.random() < self.file_fraction:
            return self.files[int(rng.integers(len(self.files)))]
        path = random_trajectory(rng, anxiety=rng.uniform(0.0, self.anxiety))
        kernel = render_trajectory(path, self.render_size, rng.uniform(*self.length))
        return pad_kernel(centre_on_centroid(kernel), self.kernel_size) if self.centre else kernel


_NUM = r"(\d+(?:\.\d+)?)"


@register_corruption(rf"blur(\d+)?(?:_gauss{_NUM})?", "blur | blur31 | blur_gauss2 (motion blur + noise)")
def _blur(size=None, sigma=None):
    return Blur(kernel_size=int(size) if size else 25, sigma=float(sigma) if sigma is not None else 1.0)
