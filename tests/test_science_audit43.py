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
        assert float((x[1:] - x[:-1]).abs().max()) < 0.01 * a * zero + 1e-9  # no jump at f(0)
        assert float(inverse_anscombe(torch.tensor(-1e6, dtype=torch.float64), a, b)) >= -(3 * a / 8 + b * b / a) - 1e-9
