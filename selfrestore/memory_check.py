"""Whether the work fits in this machine's memory, checked before it starts (from the images' headers alone):
a too-large input is a one-line error naming what to do, rather than the system killing the process half-way."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import UserError
from .io import FITS_SUFFIXES, TIFF_SUFFIXES, astropy_fits, pil_image


def physical_memory() -> int | None:
    """This machine's RAM in bytes (None where the platform does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def decoded_bytes(paths: Sequence[Path], channels: int | None = None) -> int:
    """Memory the images take once decoded to float32, from their headers alone (unreadable ones count 0)."""
    Image = pil_image()

    total = 0
    for path in paths:
        try:
            if path.suffix.lower() in FITS_SUFFIXES:
                header = astropy_fits().getheader(str(path))
                shape = tuple(int(header.get(f"NAXIS{i}", 1)) for i in range(1, int(header.get("NAXIS", 0)) + 1))
                pixels, bands = int(np.prod(shape)) if shape else 0, channels or 1
            elif path.suffix.lower() in TIFF_SUFFIXES:
                import tifffile

                with tifffile.TiffFile(str(path)) as tif:
                    shape = tif.series[0].shape
                stored = (shape[-1] if len(shape) >= 3 and shape[-1] in (3, 4) else  # (..., H, W, C)
                          shape[0] if len(shape) == 3 and shape[0] in (3, 4) else 1)  # planar (C, H, W)
                # every plane of a stack counts; a given channel count replaces the stored one
                pixels, bands = (int(np.prod(shape)), 1) if channels is None else (int(np.prod(shape)) // stored,
                                                                                   channels)
            else:
                with Image.open(path) as img:
                    pixels, bands = img.size[0] * img.size[1], channels or min(3, len(img.getbands()))
        except Exception:
            continue
        total += pixels * bands * 4
    return total


TRAINING_ADVICE = ("train on fewer or smaller images (a folder holding a subset; a few hundred photos give plenty "
                   "of training patches)")


def refuse_over_memory(need: int, what: str, advice: str) -> None:
    """UserError "WHAT: about X GB of memory, more than this machine's Y GB allows: ADVICE" when ``need`` bytes
    exceed 80% of this machine's memory (checked before the work: the system would kill the process half-way
    instead)."""
    memory = physical_memory()
    if memory and need > 0.8 * memory:
        raise UserError(f"{what}: about {need / 2**30:.1f} GB of memory, more than this machine's "
                        f"{memory / 2**30:.1f} GB allows: {advice}")


def check_fits_in_memory(paths: Sequence[Path], channels: int | None = None, copies: int = 1,
                         advice: str = TRAINING_ADVICE) -> None:
    """UserError, before anything is decoded, when ``copies`` float32 versions of every image would not fit
    in this machine's memory (instead of the system killing the process half-way through loading)."""
    if not physical_memory():
        return  # the platform does not say: nothing to compare with (and the headers need not be read)
    what = f"{paths[0]} needs" if len(paths) == 1 else f"{len(paths)} images need"
    refuse_over_memory(decoded_bytes(paths, channels) * copies,
                       f"{what}, as float32 ({copies} cop{'ies' if copies > 1 else 'y'})", advice)
