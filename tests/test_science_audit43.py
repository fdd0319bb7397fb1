"""Defects a microscopist or astronomer met (an audit at stop 43): dim 16-bit time-lapses through `video`,
negative sky values through `--noise-pg`, fpack-compressed FITS read as an 8-bit image."""
import numpy as np
import tifffile
from PIL import Image

from selfrestore.cli import main


def _time_lapse(scale: float = 1.0) -> np.ndarray:
    """6 frames of a bright blob on a 12-bit scale (100..4000 counts) with shot + read noise, uint16."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[:64, :64]
    clean = 100 + 3900 * np.exp(-((y - 32) ** 2 + (x - 32) ** 2) / (2 * 12 ** 2))
    frames = [np.clip(rng.poisson(clean / 2) * 2 + rng.normal(0, 5, clean.shape), 0, 4095) * scale for _ in range(6)]
    return np.stack(frames).astype(np.uint16)


def test_video_refuses_dim_16_bit_frames_it_would_return_far_off(tmp_path, capsys):
    """12-bit counts in 16-bit files came back at 5x their mean, without a word; as a stack and as a folder."""
    tifffile.imwrite(tmp_path / "tl.tif", _time_lapse(), imagej=True, metadata={"axes": "TYX"})
    (tmp_path / "frames").mkdir()
    for i, frame in enumerate(_time_lapse()):
        Image.fromarray(frame).save(tmp_path / "frames" / f"{i:03d}.png")
    for source in ("tl.tif", "frames"):
        code = main(["video", str(tmp_path / source), "-o", str(tmp_path / f"out_{source}.tif"), "--method", "f2f",
                     "--offline", "--passes", "1", "--quiet"])
        err = capsys.readouterr().err
        assert code == 2 and "small part of the 16-bit range" in err and "float32 TIFF" in err, err
        assert not (tmp_path / f"out_{source}.tif").exists()


def test_video_takes_16_bit_frames_that_use_their_range(tmp_path, capsys):
    tifffile.imwrite(tmp_path / "full.tif", _time_lapse(16.0), imagej=True, metadata={"axes": "TYX"})
    code = main(["video", str(tmp_path / "full.tif"), "-o", str(tmp_path / "out.tif"), "--method", "f2f",
                 "--offline", "--passes", "1", "--crop", "32", "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert tifffile.imread(tmp_path / "out.tif").dtype == np.uint16


def test_inspect_does_not_advise_video_for_dim_16_bit_time_series(tmp_path, capsys):
    tifffile.imwrite(tmp_path / "tl.tif", _time_lapse(), imagej=True, metadata={"axes": "TYX"})
    tifffile.imwrite(tmp_path / "full.tif", _time_lapse(16.0), imagej=True, metadata={"axes": "TYX"})
    main(["inspect", str(tmp_path / "tl.tif")])
    assert "selfrestore video" not in capsys.readouterr().out
    main(["inspect", str(tmp_path / "full.tif")])
    assert "selfrestore video" in capsys.readouterr().out


def test_noise_pg_keeps_a_bias_subtracted_sky_below_zero(tmp_path):
    """A sky of 200 e- with its bias subtracted (Var = x + 216 around 0) came back clamped at 0: no negative
    value left and its mean raised by half a sigma. Now negative values stay and the mean holds."""
    from astropy.io import fits

    rng = np.random.default_rng(1)
    sky = (rng.poisson(200.0, (96, 96)) + rng.normal(0, 4, (96, 96)) - 200).astype(np.float32)
    fits.writeto(tmp_path / "sky.fits", sky)
    assert main(["restore", str(tmp_path / "sky.fits"), "--noise-pg", "1", "14.7", "-o",
                 str(tmp_path / "out.fits"), "--quiet"]) == 0
    out = fits.getdata(tmp_path / "out.fits")
    assert (out < 0).mean() > 0.3
    assert abs(float(out.mean()) - float(sky.mean())) < 0.1 * float(sky.std())


def test_the_inverse_anscombe_goes_on_below_the_transform_of_zero_continuously():
    """Below f(0) the inverse follows its tangent there (no clamp at 0, no jump), down to the transform's domain."""
    import torch

    from selfrestore.corruption.stabilise import anscombe, inverse_anscombe

    for a, b in ((1.0, 14.7), (0.01, 0.0), (0.004, 0.02)):
        zero = float(anscombe(torch.tensor(0.0, dtype=torch.float64), a, b))
        d = torch.linspace(zero - 0.5, zero + 0.5, 2001, dtype=torch.float64)
        x = inverse_anscombe(d, a, b)
        assert (x[1:] >= x[:-1]).all() and float(x.min()) < 0  # increasing, and below zero below f(0)
        ends = inverse_anscombe(torch.tensor([zero - 1e-9, zero + 1e-9], dtype=torch.float64), a, b)
        assert float(ends[1] - ends[0]) < 1e-6 * a  # no jump at f(0)
        assert float(inverse_anscombe(torch.tensor(-1e6, dtype=torch.float64), a, b)) >= -(3 * a / 8 + b * b / a) - 1e-9


def _sky_header():
    from astropy.io import fits

    header = fits.Header()
    header["EXPTIME"], header["BUNIT"], header["CTYPE1"], header["CTYPE2"] = 30.0, "adu", "RA---TAN", "DEC--TAN"
    return header


def test_an_fpack_compressed_fits_is_read_as_fits_and_restored_into_name_fits(tmp_path, capsys):
    """A .fits.fz was decoded by Pillow's FITS plugin as an 8-bit image of its binary table (128 x 32), its header
    lost; into a folder it then failed for want of a .fz format."""
    from astropy.io import fits

    from selfrestore.io import read_image

    image = (np.random.default_rng(1).poisson(200.0, (64, 96)) + 0.0).astype(np.float32)
    fits.HDUList([fits.PrimaryHDU(header=_sky_header()),
                  fits.CompImageHDU(image, header=_sky_header())]).writeto(tmp_path / "sky.fits.fz")
    pixels, info = read_image(tmp_path / "sky.fits.fz")
    assert pixels.shape[:2] == (64, 96) and info.dtype == "float32" and "EXPTIME" in info.fits_header
    assert main(["restore", str(tmp_path / "sky.fits.fz"), "-o", str(tmp_path / "out"), "--quiet"]) == 0
    restored = tmp_path / "out" / "sky.fits"
    assert fits.getdata(restored).shape == (64, 96) and fits.getheader(restored)["EXPTIME"] == 30.0


def test_uncertainty_of_a_fits_image_is_a_fits_file_with_its_header(tmp_path):
    """It was NAME.std.tif, without the WCS or units an astronomer overlays it with."""
    from astropy.io import fits

    image = (np.random.default_rng(1).poisson(200.0, (64, 64)) + 0.0).astype(np.float32)
    fits.writeto(tmp_path / "sky.fits", image, _sky_header())
    assert main(["restore", str(tmp_path / "sky.fits"), "-o", str(tmp_path / "out"), "--uncertainty",
                 "--quiet"]) == 0
    std = tmp_path / "out" / "sky.std.fits"
    header = fits.getheader(std)
    assert fits.getdata(std).dtype.kind == "f" and header["BUNIT"] == "adu" and header["CTYPE1"] == "RA---TAN"
    assert not (tmp_path / "out" / "sky.std.tif").exists()


def test_a_folder_lists_compressed_fits_files_but_not_other_gzipped_files(tmp_path):
    from selfrestore.file_lists import list_images
    from selfrestore.io import uncompressed_fits_name

    for name in ("a.fits.fz", "b.fz", "c.fits.gz", "notes.txt.gz", "d.png"):
        (tmp_path / name).write_bytes(b"")
    paths, _ = list_images([tmp_path])
    assert sorted(p.name for p in paths) == ["a.fits.fz", "b.fz", "c.fits.gz", "d.png"]
    assert [uncompressed_fits_name(n) for n in ("a.fits.fz", "b.fz", "c.FITS.gz", "d.png")] == [
        "a.fits", "b.fits", "c.FITS", "d.png"]


def test_compressed_fits_are_sized_from_their_image_header_and_counted_by_fit_resume(tmp_path):
    """The memory check sized an fpack file by its binary table (Pillow): a large .fz would pass unchecked; fit's
    data fingerprint (which --resume compares) counted no .fz file."""
    from astropy.io import fits

    from selfrestore.commands.fit import data_fingerprint
    from selfrestore.memory_check import decoded_sizes

    image = np.zeros((3, 64, 80), np.float32)
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(image)]).writeto(tmp_path / "cube.fits.fz")
    fits.writeto(tmp_path / "cube.fits", image)
    assert decoded_sizes([tmp_path / "cube.fits.fz"]) == decoded_sizes([tmp_path / "cube.fits"]) == [3 * 64 * 80 * 4]
    (tmp_path / "cube.fits").unlink()
    assert data_fingerprint([tmp_path])["files"] == 1


def test_inspect_measures_each_channel_of_a_stack_whatever_the_axis_order(tmp_path, capsys):
    """It measured the middle plane only: channel 0 of a ZCYX stack, channel 1 of the same data as CZYX, so its
    levels and advice depended on the axis order; each channel is now measured (its middle plane)."""
    import json

    rng = np.random.default_rng(0)
    y, x = np.mgrid[:64, :64]
    clean = 100 + 3900 * np.exp(-((y - 32) ** 2 + (x - 32) ** 2) / (2 * 12 ** 2))
    stack = np.stack([np.stack([np.clip(rng.poisson(clean * s / 2) * 2 + rng.normal(0, 5, clean.shape), 0, 4095)
                                for s in (1.0, 0.1)]) for _ in range(3)]).astype(np.uint16)  # Z, C, Y, X
    tifffile.imwrite(tmp_path / "zcyx.tif", stack, imagej=True, metadata={"axes": "ZCYX"})
    tifffile.imwrite(tmp_path / "czyx.ome.tif", stack.transpose(1, 0, 2, 3).copy(), ome=True,
                     metadata={"axes": "CZYX"})
    reports = []
    for name in ("zcyx.tif", "czyx.ome.tif"):
        assert main(["inspect", str(tmp_path / name), "--json", str(tmp_path / f"{name}.json")]) == 0
        reports.append(json.loads((tmp_path / f"{name}.json").read_text()))
    levels = [[row["noise_sigma"] for row in report["images"]] for report in reports]
    assert len(levels[0]) == 2 and np.allclose(levels[0], levels[1])
    assert [row["channel"] for report in reports for row in report["images"]] == [1, 2, 1, 2]  # (stop 44: a field)
    assert "channels apart" in capsys.readouterr().out


def test_video_refuses_a_compressed_fits_output_before_any_work(tmp_path, capsys):
    """`-o out.fits.fz` was taken as a stack and refused by the writer after the fine-tuning."""
    tifffile.imwrite(tmp_path / "full.tif", _time_lapse(16.0), imagej=True, metadata={"axes": "TYX"})
    assert main(["video", str(tmp_path / "full.tif"), "-o", str(tmp_path / "out.fits.fz"), "--quiet"]) == 2
    assert "choose out.fits" in capsys.readouterr().err and not (tmp_path / "out.fits.fz").exists()
