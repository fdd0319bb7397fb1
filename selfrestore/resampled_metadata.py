"""Metadata of an image resampled onto a grid ``scale`` times finer (burst super-resolution): the pixel size
that the input file records (TIFF resolution, a FITS WCS, GeoTIFF georeferencing) is divided by ``scale``, so
that every output pixel keeps its place in the world; copied unchanged, it would say the output covers
``scale`` times the area of the input.

The grids are edge-aligned, as :func:`selfrestore.burst.synthesis.lr_offset` makes them: input pixel ``i``
(0-based) covers output pixels ``s*i .. s*i + s - 1``, so its centre is at output coordinate
``s*i + (s - 1)/2`` (FITS, 1-based: ``x' = s*(x - 0.5) + 0.5``).
"""
from __future__ import annotations

import dataclasses
from fractions import Fraction

from .io import ImageInfo

#: GeoTIFF tags: pixel size, tie points, affine transformation, key directory
MODEL_PIXEL_SCALE, MODEL_TIEPOINT, MODEL_TRANSFORMATION, GEO_KEY_DIRECTORY = 33550, 33922, 34264, 34735
#: GTRasterTypeGeoKey and its PixelIsPoint value (the default, PixelIsArea, puts raster (0, 0) at a corner)
RASTER_TYPE_KEY, PIXEL_IS_POINT = 1025, 2


def upscaled_info(info: ImageInfo, scale: int) -> ImageInfo:
    """A copy of ``info`` describing the same scene on a grid ``scale`` times finer (without its XMP packet,
    whose pixel dimensions and raw-development settings describe the frame as it was)."""
    if scale == 1:
        return info
    return dataclasses.replace(info, tiff_resolution=_resolution(info.tiff_resolution, scale),
                               fits_header=_fits_header(info.fits_header, scale),
                               tiff_tags=_geotiff_tags(info.tiff_tags, scale), xmp=None)


def _resolution(resolution: tuple | None, scale: int) -> tuple | None:
    """TIFF X/Y resolution (pixels per unit, rationals) times ``scale``."""
    if resolution is None:
        return None
    x, y, unit = resolution

    def finer(value) -> tuple[int, int]:
        ratio = Fraction(*value) if isinstance(value, tuple) else Fraction(value).limit_denominator(10**6)
        ratio *= scale
        return ratio.numerator, ratio.denominator

    return finer(x), finer(y), unit


def _fits_header(text: str | None, scale: int) -> str | None:
    """A FITS header whose WCS (CRPIXi, CDELTi or CDi_j) describes the finer grid; PCi_j is unitless and kept."""
    if not text:
        return text
    from astropy.io import fits

    header = fits.Header.fromstring(text)
    for axis in (1, 2):
        if f"CRPIX{axis}" in header:
            header[f"CRPIX{axis}"] = scale * (float(header[f"CRPIX{axis}"]) - 0.5) + 0.5
        if f"CDELT{axis}" in header:
            header[f"CDELT{axis}"] = float(header[f"CDELT{axis}"]) / scale
        for other in (1, 2):
            if f"CD{axis}_{other}" in header:
                header[f"CD{axis}_{other}"] = float(header[f"CD{axis}_{other}"]) / scale
    return header.tostring()


def _geotiff_tags(tags: tuple, scale: int) -> tuple:
    """GeoTIFF tags for the finer grid: pixel scale / ``scale``; tie points' raster coordinates and the
    transformation's raster columns mapped as in the module docstring (centre or corner, per the raster type)."""
    if not tags:
        return tags
    point = _raster_type(tags) == PIXEL_IS_POINT
    offset = (scale - 1) / 2 if point else 0.0  # output coordinate of input raster coordinate 0
    out = []
    for code, dtype, count, value in tags:
        if code == MODEL_PIXEL_SCALE:
            value = (value[0] / scale, value[1] / scale, *value[2:])
        elif code == MODEL_TIEPOINT:  # (I, J, K, X, Y, Z) per tie point
            value = tuple(v * scale + offset if i % 6 in (0, 1) else v for i, v in enumerate(value))
        elif code == MODEL_TRANSFORMATION:  # row-major 4x4: world = M @ (I, J, K, 1)
            m = [list(value[4 * r:4 * r + 4]) for r in range(4)]
            for row in m[:3]:
                row[3] -= (row[0] + row[1]) * offset / scale
                row[0], row[1] = row[0] / scale, row[1] / scale
            value = tuple(v for row in m for v in row)
        out.append((code, dtype, count, value))
    return tuple(out)


def _raster_type(tags: tuple) -> int:
    """GTRasterTypeGeoKey from the GeoKeyDirectory (header of 4 shorts, then keys of 4: id, location, count,
    value); 1 (PixelIsArea) when absent."""
    for code, _, _, value in tags:
        if code == GEO_KEY_DIRECTORY:
            keys = list(value)
            for i in range(4, len(keys) - 3, 4):
                if keys[i] == RASTER_TYPE_KEY and keys[i + 1] == 0:
                    return int(keys[i + 3])
    return 1
