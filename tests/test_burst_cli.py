"""`selfrestore burst`: classical restoration of a frame folder, and one-line errors for bad input."""
import numpy as np
import torch
import torch.nn.functional as F

from selfrestore.burst.synthesis import BurstConfig, synthesize_burst
from selfrestore.cli import main
from selfrestore.io import read_image, write_image
from selfrestore.metrics import psnr


def _clean(size=96):
    base = torch.rand(1, 3, size // 8, size // 8, generator=torch.Generator().manual_seed(0))
    return F.interpolate(base, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)


def _write_burst(folder, config):
    burst = synthesize_burst(_clean(), config, torch.Generator().manual_seed(1))
    folder.mkdir()
    for t, frame in enumerate(burst["frames"][0]):
        write_image(folder / f"{t:03d}.png", frame.clamp(0, 1).permute(1, 2, 0).numpy(), dtype="uint16")
    return burst["clean"][0].permute(1, 2, 0).numpy()


def test_demosaic_burst_folder(tmp_path):
    clean = _write_burst(tmp_path / "raw", BurstConfig(frames=5, mosaic=True))
    out = tmp_path / "out.png"
    assert main(["burst", str(tmp_path / "raw"), "--task", "demosaic", "-o", str(out)]) == 0
    image, _ = read_image(out)
    assert image.shape == clean.shape
    assert psnr(image, clean) > 27


def test_superres_burst_files(tmp_path, capsys):
    clean = _write_burst(tmp_path / "lr", BurstConfig(frames=4, scale=2, blur_sigma=0.5))
    out = tmp_path / "sr.png"
    files = sorted(str(p) for p in (tmp_path / "lr").iterdir())
    assert main(["burst", *files, "--task", "superres", "--scale", "2", "-o", str(out)]) == 0
    image, _ = read_image(out)
    assert image.shape == clean.shape and psnr(image, clean) > 24


def test_bad_inputs_give_one_line_errors(tmp_path, capsys):
    (tmp_path / "rgb").mkdir()
    for t in range(2):
        write_image(tmp_path / "rgb" / f"{t}.png", np.random.rand(16, 16, 3).astype(np.float32))
    assert main(["burst", str(tmp_path / "rgb"), "--task", "demosaic", "-o", str(tmp_path / "o.png")]) == 2
    err = capsys.readouterr().err
    assert "single-channel" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    write_image(tmp_path / "one.png", np.random.rand(16, 16, 1).astype(np.float32))
    assert main(["burst", str(tmp_path / "one.png"), "--task", "demosaic", "-o", str(tmp_path / "o.png")]) == 2
    assert "at least 2 frames" in capsys.readouterr().err
    assert main(["burst", str(tmp_path / "missing"), "--task", "superres", "-o", str(tmp_path / "o.png")]) == 2
    assert "missing" in capsys.readouterr().err
    # Deep Shift-and-Add holds one frame out as its target: adapting on 2 frames is refused before training
    assert main(["burst", str(tmp_path / "rgb"), "--task", "superres", "--adapt", "2",
                 "-o", str(tmp_path / "o.png")]) == 2
    err = capsys.readouterr().err
    assert "at least 3 frames" in err and "fit dsa" not in err and len(err.strip().splitlines()) == 1, err


def test_shipped_mosaic_to_mosaic_model_demosaics_and_denoises_a_raw_frame(tmp_path):
    """The shipped self-supervised M2M net, on a raw burst of a photo it never saw (scikit-image's cat) with
    its training noise, beats bilinear demosaicking of the same frame by a wide margin."""
    from skimage import data

    from selfrestore.checkpoint import shipped_models
    from selfrestore.corruption.mosaic import bilinear_demosaic

    name = "m2m-pg0.004_0.02"
    assert name in shipped_models()
    clean = torch.from_numpy(data.chelsea()[60:220, 120:280].astype(np.float32) / 255).permute(2, 0, 1)[None]
    burst = synthesize_burst(clean, BurstConfig(frames=2, mosaic=True, noise="pg0.004_0.02"),
                             torch.Generator().manual_seed(1))
    (tmp_path / "raw").mkdir()
    for t, frame in enumerate(burst["frames"][0]):
        write_image(tmp_path / "raw" / f"{t:03d}.png", frame.clamp(0, 1).permute(1, 2, 0).numpy(), dtype="uint16")
    truth = burst["clean"][0].permute(1, 2, 0).numpy()
    out = tmp_path / "out.png"
    assert main(["burst", str(tmp_path / "raw"), "--task", "demosaic", "--model", name, "-o", str(out)]) == 0
    bilinear = bilinear_demosaic(burst["frames"][:, 0].clamp(0, 1))[0].permute(1, 2, 0).numpy()
    assert psnr(read_image(out)[0], truth) > psnr(bilinear, truth) + 2
    # one raw frame is enough for the model (the classical method needs a burst)
    single = tmp_path / "single.png"
    assert main(["burst", str(tmp_path / "raw" / "000.png"), "--task", "demosaic", "--model", name, "-o",
                 str(single)]) == 0
    assert np.array_equal(read_image(single)[0], read_image(out)[0])
    assert main(["burst", str(tmp_path / "raw" / "000.png"), "--task", "demosaic", "-o", str(single)]) == 2


def test_fit_trains_a_burst_method_on_a_folder_of_real_bursts(tmp_path, capsys):
    """`fit --method m2m BURSTS/` (a folder of burst folders, no clean data) trains a model that `burst`
    then uses; DSA likewise on low-resolution bursts; supervised twins and --synthetic are refused."""
    for index in range(2):
        burst = synthesize_burst(_clean(), BurstConfig(frames=3 + index, mosaic=True),
                                 torch.Generator().manual_seed(index))
        for t, frame in enumerate(burst["frames"][0]):
            write_image(tmp_path / "raw" / f"b{index}" / f"{t:03d}.png", frame.clamp(0, 1).permute(1, 2, 0).numpy(),
                        dtype="uint16")
    model = tmp_path / "m2m.safetensors"
    assert main(["fit", str(tmp_path / "raw"), "--method", "m2m", "--steps", "2", "--batch-size", "2",
                 "--patch-size", "32", "--quiet", "-o", str(model)]) == 0
    assert main(["burst", str(tmp_path / "raw" / "b1"), "--task", "demosaic", "--model", str(model), "-o",
                 str(tmp_path / "out.png")]) == 0
    assert read_image(tmp_path / "out.png")[0].shape[2] == 3
    _write_burst(tmp_path / "lr", BurstConfig(frames=4, scale=2, blur_sigma=0.5))
    assert main(["fit", str(tmp_path / "lr"), "--method", "dsa", "--steps", "1", "--batch-size", "2",
                 "--patch-size", "32", "--quiet", "-o", str(tmp_path / "dsa.safetensors")]) == 0
    assert main(["fit", str(tmp_path / "raw"), "--method", "m2m_supervised", "--steps", "1", "-o",
                 str(tmp_path / "x")]) == 2
    assert main(["fit", str(tmp_path / "raw"), "--method", "m2m", "--synthetic", "--noise", "gauss25", "--steps",
                 "1", "-o", str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err
    assert "supervised twin" in err and "--synthetic does not apply" in err and "Traceback" not in err


def test_shipped_deep_shift_and_add_model_super_resolves_a_burst(tmp_path):
    """The shipped self-supervised DSA (x2), on a low-resolution burst of a photo it never saw (scikit-image's
    cat) with its training noise and blur, beats the classical shift-and-add of the same burst."""
    from skimage import data

    name = "dsa-x2-pg0.004_0.02"
    clean = torch.from_numpy(data.chelsea()[40:232, 100:292].astype(np.float32) / 255).permute(2, 0, 1)[None]
    burst = synthesize_burst(clean, BurstConfig(frames=8, scale=2, blur_sigma=0.5, noise="pg0.004_0.02"),
                             torch.Generator().manual_seed(3))
    (tmp_path / "lr").mkdir()
    for t, frame in enumerate(burst["frames"][0]):
        write_image(tmp_path / "lr" / f"{t:03d}.png", frame.clamp(0, 1).permute(1, 2, 0).numpy(), dtype="uint16")
    truth = burst["clean"][0].permute(1, 2, 0).numpy()
    assert main(["burst", str(tmp_path / "lr"), "--task", "superres", "--model", name, "-o",
                 str(tmp_path / "dsa.png")]) == 0
    assert main(["burst", str(tmp_path / "lr"), "--task", "superres", "-o", str(tmp_path / "saa.png")]) == 0
    assert psnr(read_image(tmp_path / "dsa.png")[0], truth) > psnr(read_image(tmp_path / "saa.png")[0], truth) + 0.5


def _tiny_burst(folder, frames=4, size=(24, 32), channels=3, alpha=False):
    """A tiny burst: shifted crops of a smooth image (frame 0 the reference), gray or RGB, optionally with an
    alpha ramp; returns the frame paths."""
    scene = _clean(64)[0].permute(1, 2, 0).numpy()
    folder.mkdir()
    paths = []
    for t in range(frames):
        frame = scene[t:t + size[0], 2 * t:2 * t + size[1]]
        frame = frame.mean(axis=2, keepdims=True) if channels == 1 else frame
        if alpha:
            ramp = np.linspace(0, 1, size[0] * size[1], dtype=np.float32).reshape(*size, 1)
            frame = np.concatenate([frame, ramp], axis=2)
        paths.append(folder / f"{t}.png")
        write_image(paths[-1], frame)
    return paths


def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert all(needle in err for needle in needles), err
    return err


def test_output_is_checked_before_any_computing(tmp_path, capsys, monkeypatch):
    """-o an input frame, an existing file without --overwrite, or a name that is no image file are refused
    before the burst is registered; an input frame is never replaced."""
    import selfrestore.burst.registration as registration

    paths = _tiny_burst(tmp_path / "b")
    before = paths[0].read_bytes()

    def refuse(*args, **kwargs):
        raise AssertionError("computed before the output was checked")

    with monkeypatch.context() as patch:
        patch.setattr(registration, "register_burst", refuse)
        for output in (paths[0], paths[2]):  # also with --overwrite: an input is never an output
            for extra in ([], ["--overwrite"]):
                assert main(["burst", str(tmp_path / "b"), "--task", "superres", "-o", str(output), *extra]) == 2
                _one_line_error(capsys, "would overwrite the input frame")
        assert paths[0].read_bytes() == before
        cases = (("b.txt", "'.txt' is not an image format"), ("noext", "no suffix"), ("b", "is a folder"))
        for output, needle in cases:
            assert main(["burst", str(tmp_path / "b"), "--task", "superres", "-o", str(tmp_path / output)]) == 2
            err = _one_line_error(capsys, needle, ".png")
            assert ".tmp" not in err
        (tmp_path / "old.png").write_bytes(b"keep")
        assert main(["burst", str(tmp_path / "b"), "--task", "superres", "-o", str(tmp_path / "old.png")]) == 2
        _one_line_error(capsys, "exists (pass --overwrite to replace it)")
        assert (tmp_path / "old.png").read_bytes() == b"keep"
    assert main(["burst", str(tmp_path / "b"), "--task", "superres", "-o", str(tmp_path / "old.png"),
                 "--overwrite"]) == 0
    assert read_image(tmp_path / "old.png")[0].shape == (48, 64, 3)


def test_model_scale_is_checked_and_is_the_default(tmp_path, capsys):
    """A DSA model super-resolves by its own factor: another --scale is refused; without --scale the output is
    at the model's factor (and the classical default stays x2)."""
    _tiny_burst(tmp_path / "b")
    name = "dsa-x2-pg0.004_0.02"
    assert main(["burst", str(tmp_path / "b"), "--task", "superres", "--model", name, "--scale", "3",
                 "-o", str(tmp_path / "x3.png")]) == 2
    _one_line_error(capsys, "--scale 3", "x2")
    assert not (tmp_path / "x3.png").exists()
    assert main(["burst", str(tmp_path / "b"), "--task", "superres", "--model", name,
                 "-o", str(tmp_path / "m.png")]) == 0
    assert read_image(tmp_path / "m.png")[0].shape == (48, 64, 3)
    assert main(["burst", str(tmp_path / "b"), "--task", "superres", "--scale", "3",
                 "-o", str(tmp_path / "c.png")]) == 0
    assert read_image(tmp_path / "c.png")[0].shape == (72, 96, 3)


def test_gray_frames_with_a_colour_model_come_back_gray(tmp_path, capsys):
    """Gray frames go through an RGB DSA model as RGB and come back gray (as `restore` does); RGB frames and a
    gray model are refused in one line."""
    from selfrestore.checkpoint import build_net, save_checkpoint
    from selfrestore.registry import METHODS

    _tiny_burst(tmp_path / "gray", channels=1)
    assert main(["burst", str(tmp_path / "gray"), "--task", "superres", "--model", "dsa-x2-pg0.004_0.02",
                 "-o", str(tmp_path / "g.png")]) == 0
    image, info = read_image(tmp_path / "g.png")
    assert image.shape == (48, 64, 1) and info.channels == 1
    method = METHODS.get("dsa")(scale=2)
    save_checkpoint(tmp_path / "gray.safetensors", build_net("dsa", **method.net_kwargs(1)),
                    {"method": method.config(), "channels": 1})
    _tiny_burst(tmp_path / "rgb")
    assert main(["burst", str(tmp_path / "rgb"), "--task", "superres", "--model", str(tmp_path / "gray.safetensors"),
                 "-o", str(tmp_path / "r.png")]) == 2
    _one_line_error(capsys, "1-channel", "3")


def test_mixed_gray_and_rgb_frames_name_the_channels(tmp_path, capsys):
    _tiny_burst(tmp_path / "b")
    write_image(tmp_path / "b" / "0.png", read_image(tmp_path / "b" / "0.png")[0].mean(axis=2, keepdims=True))
    assert main(["burst", str(tmp_path / "b"), "--task", "superres", "-o", str(tmp_path / "o.png")]) == 2
    _one_line_error(capsys, "1.png", "3 channels", "1 channel")


def test_alpha_of_the_reference_frame_is_kept_on_the_output_grid(tmp_path):
    """The reference frame's alpha, resized bilinearly to the x2 output (not a constant or a flipped ramp)."""
    paths = _tiny_burst(tmp_path / "b", alpha=True)
    assert main(["burst", str(tmp_path / "b"), "--task", "superres", "-o", str(tmp_path / "o.png")]) == 0
    _, info = read_image(tmp_path / "o.png")
    assert info.alpha is not None and info.alpha.shape == (48, 64)
    reference = torch.from_numpy(read_image(paths[0])[1].alpha)[None, None]  # as stored (8-bit)
    expected = F.interpolate(reference, size=(48, 64), mode="bilinear", align_corners=False)[0, 0].numpy()
    assert np.abs(info.alpha - expected).max() < 1 / 255


def test_numeric_options_are_checked_first(tmp_path, capsys):
    _tiny_burst(tmp_path / "b")
    for option, needle in ((["--adapt", "-3"], "--adapt -3"), (["--scale", "100"], "from 1 to 8"),
                           (["--scale", "0"], "from 1 to 8")):
        assert main(["burst", str(tmp_path / "b"), "--task", "superres", *option, "-o", str(tmp_path / "o.png")]) == 2
        _one_line_error(capsys, needle)


def test_adapt_on_frames_too_small_for_the_loss_is_refused(tmp_path, capsys):
    """DSA's loss leaves out a 4 px border: --adapt on 8x8 frames is refused up front (it used to report a NaN
    loss and advise a --lr that burst does not have); demosaicking frames under 4x4 px is refused too."""
    _tiny_burst(tmp_path / "b", size=(8, 8))
    for model in (["--model", "dsa-x2-pg0.004_0.02"], []):
        assert main(["burst", str(tmp_path / "b"), "--task", "superres", *model, "--adapt", "2",
                     "-o", str(tmp_path / "o.png")]) == 2
        err = _one_line_error(capsys, "9x9", "8x8")
        assert "--lr" not in err
    _tiny_burst(tmp_path / "raw", frames=2, size=(3, 3), channels=1)
    assert main(["burst", str(tmp_path / "raw"), "--task", "demosaic", "-o", str(tmp_path / "r.png")]) == 2
    _one_line_error(capsys, "too small to demosaic")
    _tiny_burst(tmp_path / "dots", frames=3, size=(1, 1))  # a traceback from the splat before
    for model in (["--model", "dsa-x2-pg0.004_0.02"], []):
        assert main(["burst", str(tmp_path / "dots"), "--task", "superres", *model, "-o", str(tmp_path / "d.png")]) == 2
        _one_line_error(capsys, "1x1 px are too small for super-resolution")


def test_super_resolution_keeps_every_output_pixel_where_it_is_in_the_world(tmp_path):
    """The input's pixel size went to the x2 output unchanged (a FITS WCS, TIFF resolution and GeoTIFF tags
    then said it covers 4x the area): now it is halved and the reference points moved onto the finer grid, so
    that an input pixel's centre has the same sky / map coordinates in the output (edge-aligned grids)."""
    from astropy.io import fits
    from astropy.wcs import WCS

    from selfrestore.io import ImageInfo

    burst = synthesize_burst(_clean(), BurstConfig(frames=4, scale=2, blur_sigma=0.5), torch.Generator().manual_seed(1))
    header = fits.Header({"CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRPIX1": 10.0, "CRPIX2": 20.0,
                          "CRVAL1": 150.0, "CRVAL2": 2.0, "CDELT1": -0.001, "CDELT2": 0.001, "EXPTIME": 30.0})
    geo = ((33550, 12, 3, (30.0, 30.0, 0.0)), (33922, 12, 6, (0.0, 0.0, 0.0, 500000.0, 4000000.0, 0.0)))
    fits_info = ImageInfo(dtype="float32", channels=1, fits_header=header.tostring())  # gray: 3 planes = a cube
    tiff_info = ImageInfo(dtype="uint16", channels=3, tiff_resolution=((72, 1), (72, 1), 2), tiff_tags=geo)
    for folder in ("fits", "tif"):
        (tmp_path / folder).mkdir()
    for t, frame in enumerate(burst["frames"][0]):
        pixels = frame.clamp(0, 1).permute(1, 2, 0).numpy()
        write_image(tmp_path / "fits" / f"{t}.fits", pixels[:, :, :1], fits_info)
        write_image(tmp_path / "tif" / f"{t}.tif", pixels, tiff_info)
    for folder in ("fits", "tif"):
        assert main(["burst", str(tmp_path / folder), "--task", "superres", "--scale", "2",
                     "-o", str(tmp_path / f"sr.{folder}")]) == 0
    before, after = WCS(header), WCS(fits.getheader(tmp_path / "sr.fits"))
    for x, y in ((1.0, 1.0), (5.0, 7.0), (24.0, 24.0)):  # 1-based pixel centres of the input
        expected = before.all_pix2world([[x, y]], 1)
        assert np.allclose(after.all_pix2world([[2 * (x - 0.5) + 0.5, 2 * (y - 0.5) + 0.5]], 1), expected)
    assert fits.getheader(tmp_path / "sr.fits")["EXPTIME"] == 30.0
    import tifffile

    with tifffile.TiffFile(tmp_path / "sr.tif") as tif:
        tags = tif.pages[0].tags
        assert tags[282].value == (144, 1) and tags[283].value == (144, 1)
        assert tags[33550].value == (15.0, 15.0, 0.0) and tags[33922].value[:2] == (0.0, 0.0)


def test_quiet_burst_prints_nothing(tmp_path, capsys):
    """api.burst(..., quiet=True) was refused (no --quiet) and every run printed 'wrote ...' on stdout."""
    _write_burst(tmp_path / "lr", BurstConfig(frames=3, scale=2, blur_sigma=0.5))
    assert main(["burst", str(tmp_path / "lr"), "--task", "superres", "-o", str(tmp_path / "sr.png"), "--quiet"]) == 0
    assert capsys.readouterr().out == "" and (tmp_path / "sr.png").is_file()
