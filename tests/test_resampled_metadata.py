"""Metadata of an image on a grid `scale` times finer: every input pixel keeps its world position."""
import numpy as np
import pytest

from selfrestore.io import ImageInfo
from selfrestore.resampled_metadata import upscaled_info


def _world(matrix, i, j):
    m = np.asarray(matrix, float).reshape(4, 4)
    return (m @ np.array([i, j, 0.0, 1.0]))[:2]


@pytest.mark.parametrize("raster_type", [1, 2])  # PixelIsArea (corner at raster 0), PixelIsPoint (centre)
@pytest.mark.parametrize("scale", [2, 3])
def test_geotiff_transformation_and_tie_points_follow_the_finer_grid(raster_type, scale):
    """A rotated affine ModelTransformation and a tie point: the world position of input raster coordinates
    equals that of their image on the finer grid (corners scale; centres go to s*i + (s-1)/2)."""
    matrix = (2.0, 0.5, 0.0, 1000.0, 0.3, -2.0, 0.0, 5000.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0)
    keys = (1, 1, 0, 2, 1024, 0, 1, 1, 1025, 0, 1, raster_type)
    tags = ((34264, 12, 16, matrix), (33922, 12, 6, (3.0, 4.0, 0.0, 10.0, 20.0, 0.0)), (34735, 3, len(keys), keys))
    info = upscaled_info(ImageInfo(tiff_tags=tags), scale)
    new = dict((code, value) for code, _, _, value in info.tiff_tags)
    offset = (scale - 1) / 2 if raster_type == 2 else 0.0
    for i, j in ((0.0, 0.0), (3.0, 7.0), (10.5, 2.25)):
        assert np.allclose(_world(new[34264], scale * i + offset, scale * j + offset), _world(matrix, i, j))
    assert new[33922] == (3.0 * scale + offset, 4.0 * scale + offset, 0.0, 10.0, 20.0, 0.0)
    assert new[34735] == keys


def test_resolution_and_fits_cd_matrix():
    from astropy.io import fits
    from astropy.wcs import WCS

    header = fits.Header({"NAXIS": 2, "NAXIS1": 40, "NAXIS2": 30, "CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN",
                          "CRPIX1": 12.5, "CRPIX2": 3.0, "CRVAL1": 10.0, "CRVAL2": -30.0, "CD1_1": -1e-4,
                          "CD1_2": 2e-5, "CD2_1": 3e-5, "CD2_2": 1e-4})
    info = upscaled_info(ImageInfo(fits_header=header.tostring(), tiff_resolution=((300, 1), (600, 7), 3)), 4)
    assert info.tiff_resolution == ((1200, 1), (2400, 7), 3)
    after = WCS(fits.Header.fromstring(info.fits_header))
    for x, y in ((1.0, 1.0), (20.0, 11.0)):
        assert np.allclose(after.all_pix2world([[4 * (x - 0.5) + 0.5, 4 * (y - 0.5) + 0.5]], 1),
                           WCS(header).all_pix2world([[x, y]], 1))
    assert upscaled_info(info, 1) is info


def test_an_upscaled_image_leaves_out_its_xmp():
    """XMP holds the frame's pixel dimensions and raw-development settings: stale on a grid twice as fine."""
    from selfrestore.io import ImageInfo
    from selfrestore.resampled_metadata import upscaled_info

    info = ImageInfo(dtype="uint8", channels=3, xmp=b"<x:xmpmeta/>")
    assert upscaled_info(info, 2).xmp is None and upscaled_info(info, 1).xmp == b"<x:xmpmeta/>"
