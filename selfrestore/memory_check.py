"""Whether the work fits in this machine's memory, checked before it starts (from the images' headers alone):
a too-large input is a one-line error naming what to do, rather than the system killing the process half-way."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import UserError
from .io import TIFF_SUFFIXES, astropy_fits, is_fits_file, pil_image


def physical_memory() -> int | None:
    """This machine's RAM in bytes (None where the platform does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def decoded_bytes(paths: Sequence[Path], channels: int | None = None) -> int:
    """Memory the images take once decoded to float32, from their headers alone (unreadable ones count 0)."""
    return sum(decoded_sizes(paths, channels))


def decoded_sizes(paths: Sequence[Path], channels: int | None = None) -> list[int]:
    """:func:`decoded_bytes` of each image, in the order of ``paths``: to name the largest of a refused set."""
    Image = pil_image()

    sizes = []
    for path in paths:
        sizes.append(0)
        try:
            if path.suffix.lower() not in TIFF_SUFFIXES and is_fits_file(path):  # .fits.fz too (its image: an
                with astropy_fits().open(str(path)) as hdus:  # extension) ; headers only, the data is not read
                    header = next((hdu.header for hdu in hdus if hdu.is_image
                                   and int(hdu.header.get("NAXIS", 0)) >= 2), {})
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
        sizes[-1] = pixels * bands * 4
    return sizes


TRAINING_ADVICE = ("train on fewer or smaller images (a folder holding a subset; a few hundred photos give plenty "
                   "of training patches)")


#: what to do with one image too large for this machine's memory (a decompression bomb: a tiny file, a huge image)
ONE_IMAGE_ADVICE = "check the file (its header claims that many pixels), or split it into smaller images"


def refuse_over_memory(need: int, what: str, advice: str, error: type[UserError] = UserError) -> None:
    """UserError "WHAT: about X GB of memory, more than this machine's Y GB allows: ADVICE" when ``need`` bytes
    exceed 80% of this machine's memory (checked before the work: the system would kill the process half-way
    instead). ``error``: the UserError kind raised (ImageReadError: one image a command skips, going on with the
    others)."""
    memory = physical_memory()
    if memory and need > 0.8 * memory:
        raise error(f"{what}: about {need / 2**30:.1f} GB of memory, more than this machine's "
                    f"{memory / 2**30:.1f} GB allows: {advice}")


def check_fits_in_memory(paths: Sequence[Path], channels: int | None = None, copies: int = 1,
                         advice: str = TRAINING_ADVICE, error: type[UserError] = UserError) -> None:
    """UserError (of kind ``error``), before anything is decoded, when ``copies`` float32 versions of every image
    would not fit in this machine's memory (instead of the system killing the process half-way through loading:
    a 10 kB PNG may hold 100000 x 100000 pixels)."""
    if not physical_memory() or not paths:
        return  # the platform does not say: nothing to compare with (and the headers need not be read)
    sizes = decoded_sizes(paths, channels)
    largest = max(range(len(sizes)), key=sizes.__getitem__, default=0)
    what = f"{paths[0]} needs" if len(paths) == 1 else \
        f"{len(paths)} images (the largest {paths[largest]}: {sizes[largest] / 2**30:.1f} GB) need"
    refuse_over_memory(sum(sizes) * copies,
                       f"{what}, as float32 ({copies} cop{'ies' if copies > 1 else 'y'})", advice, error)
