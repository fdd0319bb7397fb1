"""int16 / int32 / float64 inputs (read as float counts) come back in their own type in TIFF and FITS outputs,
where they came back float32 (a bit depth the user did not have)."""
import numpy as np
import pytest
import tifffile

from selfrestore.cli import main
from selfrestore.io import read_frames, write_frames


def _counts(rng, dtype, shape=(64, 64), low=-500, high=3000):
    return np.round(rng.uniform(low, high, shape)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.float64])
def test_a_tiff_of_another_type_is_written_back_in_it(tmp_path, dtype):
    rng = np.random.default_rng(0)
    data = _counts(rng, dtype)
    tifffile.imwrite(tmp_path / "in.tif", data)
    frames, info = read_frames(tmp_path / "in.tif")
    assert info.dtype == "float32" and info.stored_type == np.dtype(dtype).name
    write_frames(tmp_path / "out.tif", frames, info)
    back = tifffile.imread(tmp_path / "out.tif")
    assert back.dtype == dtype and np.array_equal(back, data)
    write_frames(tmp_path / "asked.tif", frames, info, dtype="float32")  # an asked type wins (NAME.std.tif)
    assert tifffile.imread(tmp_path / "asked.tif").dtype == np.float32


def test_integers_are_clipped_to_the_type_and_blank_pixels_keep_float32(tmp_path):
    rng = np.random.default_rng(1)
    data = _counts(rng, np.int16)
    tifffile.imwrite(tmp_path / "in.tif", data)
    frames, info = read_frames(tmp_path / "in.tif")
    write_frames(tmp_path / "wide.tif", [frames[0] * 100], info)
    wide = tifffile.imread(tmp_path / "wide.tif")
    assert wide.dtype == np.int16 and wide.max() == 32767 and wide.min() == -32768
    blank = frames[0].copy()
    blank[0, 0] = np.nan
    write_frames(tmp_path / "blank.tif", [blank], info)
    assert tifffile.imread(tmp_path / "blank.tif").dtype == np.float32  # NaN is no integer


def test_restore_keeps_an_int16_stack_and_fits_in_their_type(tmp_path):
    pytest.importorskip("astropy")
    from astropy.io import fits

    rng = np.random.default_rng(2)
    stack = _counts(rng, np.int16, (4, 64, 64), 900, 1100)
    tifffile.imwrite(tmp_path / "stack.tif", stack, photometric="minisblack")
    fits.PrimaryHDU(stack[0]).writeto(tmp_path / "one.fits")
    for name in ("stack.tif", "one.fits"):
        assert main(["restore", str(tmp_path / name), "-o", str(tmp_path / "out"), "--quiet"]) == 0
    restored = tifffile.imread(tmp_path / "out" / "stack.tif")
    assert restored.dtype == np.int16 and restored.shape == stack.shape
    with fits.open(tmp_path / "out" / "one.fits") as hdus:
        assert hdus[0].header["BITPIX"] == 16 and abs(float(hdus[0].data.mean()) - 1000) < 20


@pytest.mark.parametrize("dtype", [np.int64, np.uint64])
def test_64_bit_values_past_the_type_are_clipped_not_wrapped(tmp_path, dtype):
    """2**63 - 1 as a float64 rounds up to 2**63, which cast back to int64 wrapped to the minimum (a review)."""
    data = np.full((32, 32), 2 ** 62, dtype)
    tifffile.imwrite(tmp_path / "in.tif", data)
    frames, info = read_frames(tmp_path / "in.tif")
    write_frames(tmp_path / "out.tif", [frames[0] * 3], info)
    back = tifffile.imread(tmp_path / "out.tif")
    assert back.dtype == dtype and back.min() > 2 ** 62  # near the type's maximum, not wrapped to its minimum


def test_restore_says_when_values_are_clipped_to_the_input_type(tmp_path, capsys):
    """uint32 counts near 0 whose restored values go below 0 were clipped to 0 without a word (a review)."""
    rng = np.random.default_rng(3)
    data = np.clip(np.round(rng.normal(5, 40, (64, 64))), 0, None).astype(np.uint32)
    data[0, 0] = 70000  # beyond 16 bits: read as float counts, written back as uint32
    tifffile.imwrite(tmp_path / "in.tif", data)
    from selfrestore.io import stored_type_clipped_share

    frames, info = read_frames(tmp_path / "in.tif")
    assert stored_type_clipped_share(tmp_path / "o.tif", [frames[0] - 10], info) > 0.1
    assert stored_type_clipped_share(tmp_path / "o.tif", [frames[0]], info) == 0
    assert stored_type_clipped_share(tmp_path / "o.png", [frames[0] - 10], info) == 0
