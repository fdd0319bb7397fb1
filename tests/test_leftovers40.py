"""Stop 39's leftovers: `fit`'s next step for burst and blurry+noisy models, and the unfinished-model warning of
the commands that read those models (burst, restore --blurry --noisy, video), which no test covered."""
import numpy as np

from selfrestore.checkpoint import read_checkpoint, update_header
from selfrestore.cli import main
from selfrestore.io import write_image
from test_burst_audit38 import _raw_burst, _write_frames  # noqa: E402 (tests/ is on the path)
from test_selfir import _pair_folders  # noqa: E402

UNFINISHED = "its training stopped at step 1 of a planned 2 steps"


def _cut_short(model) -> None:
    """Record ``model`` as a run stopped at step 1 of its 2 (as Ctrl-C leaves it)."""
    header = read_checkpoint(model)[1]
    assert header["train_config"]["steps"] == 2 and header["step"] == 2, header.get("step")
    update_header(model, step=1)


def test_a_burst_model_says_its_next_step_and_burst_says_it_is_unfinished(tmp_path, capsys):
    for index in range(2):
        _write_frames(tmp_path / "bursts" / f"b{index}", _raw_burst(frames=3, size=32, seed=index)[0])
    model = tmp_path / "m2m.safetensors"
    capsys.readouterr()
    assert main(["fit", str(tmp_path / "bursts"), "--method", "m2m", "--steps", "2", "--batch-size", "1",
                 "--patch-size", "16", "-o", str(model)]) == 0
    assert f"next: selfrestore burst FRAMES/ --task demosaic --model {model}" in capsys.readouterr().out
    burst = ["burst", str(tmp_path / "bursts" / "b0"), "--task", "demosaic", "--model", str(model), "--quiet"]
    assert main([*burst, "-o", str(tmp_path / "a.png")]) == 0
    assert UNFINISHED not in capsys.readouterr().err  # a finished run: not a word
    _cut_short(model)
    assert main([*burst, "-o", str(tmp_path / "b.png")]) == 0
    assert UNFINISHED in capsys.readouterr().err


def test_a_pair_model_says_its_next_step_and_restore_says_it_is_unfinished(tmp_path, rgb_image, capsys):
    blurry, noisy = _pair_folders(tmp_path / "train", rgb_image)
    model = tmp_path / "selfir.safetensors"
    capsys.readouterr()
    assert main(["fit", "--blurry", str(blurry), "--noisy", str(noisy), "--method", "selfir", "--width", "8",
                 "--depth", "2", "--steps", "2", "--patch-size", "32", "--batch-size", "2", "--mask-patch", "8",
                 "--no-amp", "-o", str(model)]) == 0
    assert f"next: selfrestore restore --blurry B --noisy N --model {model}" in capsys.readouterr().out
    restore = ["restore", "--blurry", str(blurry), "--noisy", str(noisy), "--model", str(model), "--quiet"]
    assert main([*restore, "-o", str(tmp_path / "a")]) == 0
    assert UNFINISHED not in capsys.readouterr().err
    _cut_short(model)
    assert main([*restore, "-o", str(tmp_path / "b")]) == 0
    assert UNFINISHED in capsys.readouterr().err


def test_video_says_its_start_model_is_unfinished(tmp_path, tiny_model, capsys):
    rng = np.random.default_rng(0)
    for t in range(3):
        write_image(tmp_path / "clip" / f"{t:03d}.png", rng.random((40, 40, 3)).astype(np.float32))
    model = tmp_path / "start.safetensors"
    model.write_bytes(tiny_model.read_bytes())
    video = ["video", str(tmp_path / "clip"), "--method", "f2f", "--model", str(model), "--steps-per-frame", "1",
             "--crop", "16", "--quiet"]
    update_header(model, step=2, train_config={"steps": 2})
    capsys.readouterr()
    assert main([*video, "-o", str(tmp_path / "a")]) == 0
    assert UNFINISHED not in capsys.readouterr().err
    update_header(model, step=1)
    assert main([*video, "-o", str(tmp_path / "b")]) == 0
    assert UNFINISHED in capsys.readouterr().err


# ------------------------------------------------------------------ stop 40's audit of video / burst (and parsers)
def _clip(folder, names=("000", "001", "002"), dtype="uint8", size=40):
    rng = np.random.default_rng(0)
    for name in names:
        write_image(folder / f"{name}.png", rng.random((size, size, 3)).astype(np.float32), dtype=dtype)
    return folder


def _one_line(capsys, needle):
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_video_refuses_a_video_format_it_cannot_write_instead_of_making_a_folder_of_that_name(
        tmp_path, tiny_model, capsys):
    clip = _clip(tmp_path / "clip")
    for name in ("x.gif", "x.wmv", "x.ts"):
        assert main(["video", str(clip), "-o", str(tmp_path / name), "--model", str(tiny_model), "--method", "f2f",
                     "--steps-per-frame", "0", "--quiet"]) == 2
        _one_line(capsys, "output of a video must be a folder")
        assert not (tmp_path / name).exists()


def test_video_and_burst_say_when_16_bit_frames_go_to_an_8_bit_format(tmp_path, tiny_model, capsys):
    clip = _clip(tmp_path / "clip", dtype="uint16")
    assert main(["video", str(clip), "-o", str(tmp_path / "out" / "%03d.jpg"), "--model", str(tiny_model),
                 "--method", "f2f", "--steps-per-frame", "0", "--quiet"]) == 0
    assert ".jpg holds 8 bits per channel; the 16-bit" in capsys.readouterr().err
    assert main(["burst", str(clip), "--task", "superres", "-o", str(tmp_path / "sr.jpg"), "--quiet"]) == 0
    assert ".jpg holds 8 bits per channel; the 16-bit burst" in capsys.readouterr().err
    assert main(["burst", str(clip), "--task", "superres", "-o", str(tmp_path / "sr.png"), "--quiet"]) == 0
    assert "8 bits" not in capsys.readouterr().err


def test_video_says_which_options_change_nothing_and_a_gap_in_a_folders_frame_numbers(tmp_path, tiny_model, capsys):
    clip = _clip(tmp_path / "clip", names=("000", "001", "003", "004"))
    video = ["video", str(clip), "--model", str(tiny_model), "--method", "f2f", "--quiet"]
    assert main([*video, "-o", str(tmp_path / "a"), "--steps-per-frame", "0", "--lr", "1", "--crop", "7"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "--lr and --crop: --steps-per-frame 0 fine-tunes nothing" in err, err
    assert "frame numbers skip" not in err, err  # each frame restored alone: no motion across the gap (review)
    assert main([*video, "-o", str(tmp_path / "b"), "--steps-per-frame", "1", "--crop", "16",
                 "--stack", "dilated"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "--stack: an option of --method mf2f" in err and "fine-tunes nothing" not in err, err
    assert "the frame numbers skip (001.png is followed by 003.png)" in err, err
    assert main([*video, "-o", str(tmp_path / "c"), "--offline", "--passes", "0", "--lr-schedule", "constant"]) == 0
    assert "--lr-schedule: --passes 0 fine-tunes nothing" in " ".join(capsys.readouterr().err.split())


def test_a_mosaic_to_mosaic_model_without_adapt_says_it_reads_the_first_frame_alone(tmp_path, capsys):
    from selfrestore.io import read_image

    _write_frames(tmp_path / "burst", _raw_burst(frames=3, size=40, seed=0)[0])
    burst = ["burst", "--task", "demosaic", "--model", "m2m-pg0.004_0.02", "--quiet"]
    assert main([*burst, str(tmp_path / "burst"), "-o", str(tmp_path / "all.png"), "--registration",
                 "translation"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "restores the first frame from that frame alone: the other 2 frame(s)" in err, err
    assert "--registration is not used" in err, err
    assert main([*burst, str(tmp_path / "burst" / "f00.png"), "-o", str(tmp_path / "one.png")]) == 0
    assert "from that frame alone" not in capsys.readouterr().err
    assert np.array_equal(read_image(tmp_path / "all.png")[0], read_image(tmp_path / "one.png")[0])


def test_an_option_value_error_is_one_line_that_points_to_help(capsys):
    import pytest

    for argv, needle in ((["video", "x", "-o", "y", "--crop", "0"], "argument --crop: 0: must be at least 1"),
                         (["fit", "x", "--lr", "nan", "-o", "m.safetensors"], "argument --lr: nan"),
                         (["restor", "x"], "invalid choice: 'restor'"),
                         (["restore", "x", "-o", "y", "--bogus"], "--bogus (options: selfrestore restore --help)")):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        _one_line(capsys, needle)
        capsys.readouterr()


# --------------------------------------------------------------------- stop 40's audit of the Python interface
def test_a_pil_image_is_restored_as_its_file_would_be_read(rgb_image):
    """A palette image gave back denoised palette indices, a CMYK one its K plane as "alpha" (np.asarray)."""
    from PIL import Image

    from selfrestore.restore import Restorer

    picture = Image.fromarray((255 * rgb_image[:64, :64]).astype(np.uint8))
    restorer = Restorer("unet-gauss25", clipping="off")
    expected = restorer.restore(np.asarray(picture))
    cmyk = restorer.restore(picture.convert("CMYK"))
    assert cmyk.shape == expected.shape == (64, 64, 3) and cmyk.dtype == np.uint8
    assert np.abs(cmyk.astype(int) - expected).max() <= 2  # CMYK -> RGB is PIL's own round trip
    palette = picture.convert("P")
    assert np.array_equal(restorer.restore(palette), restorer.restore(np.asarray(palette.convert("RGB"))))


def test_bad_python_arguments_are_user_errors_and_advice_is_valid(rgb_image):
    """A bad ``mapping`` gave a KeyError or an all-NaN image; a non-text noise_params key a TypeError while the
    error was written; a flat image's warning advised noise_params={'sigma': 0.0000}, which is refused."""
    import warnings

    import pytest

    from selfrestore import api
    from selfrestore.errors import UserError
    from selfrestore.restore import Restorer

    restorer = Restorer("unet-gauss25")
    for mapping in ({"foo": 1}, 5, {"offset": 0, "scale": 0}, {"offset": float("nan"), "scale": 1}):
        with pytest.raises(UserError, match="mapping"):
            restorer.restore(rgb_image[:32, :32], mapping=mapping)
    with pytest.raises(UserError, match="does not take the noise parameter"):
        Restorer("laine19-gauss25", noise_params={1: 0.1})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Restorer("laine19-gauss25").restore(np.full((64, 64, 3), 0.5, np.float32))
    advice = [str(w.message) for w in caught if "noise_params=" in str(w.message)]
    assert advice and "'sigma': 0.0000" not in advice[0], advice
    with pytest.raises(UserError, match="--steps takes a value"):
        api.command_line("fit", ["x"], {"steps": True})
    with pytest.raises(UserError, match=r"--pairs takes values \(DIR_A DIR_B\)"):
        api.command_line("fit", ["x"], {"pairs": True})
    assert api.command_line("restore", ["x"], {"noise_pg": np.array([0.004, 0.02])})[:3] == \
        ["restore", "--noise-pg", "0.004"]


def test_a_real_pairs_model_that_recorded_ignored_synthetic_options_still_resumes(tmp_path, rgb_image):
    """Before stop 40, `fit --pairs B S --kernels k.npy` ignored --kernels but recorded it (and counted the file in
    the data fingerprint): such a model could not be resumed by any command line once these were refused (review)."""
    from selfrestore.commands.fit import data_fingerprint

    for folder in ("blurry", "sharp"):
        for i in range(2):
            write_image(tmp_path / folder / f"{i}.png", np.roll(rgb_image[:64, :64], i, axis=0))
    kernels = tmp_path / "k.npy"
    np.save(kernels, np.ones((1, 5, 5), np.float32) / 25)
    model = tmp_path / "deblur.safetensors"
    fit = ["fit", "--pairs", str(tmp_path / "blurry"), str(tmp_path / "sharp"), "-o", str(model), "--quiet"]
    assert main([*fit, "--method", "deblur_l1", "--steps", "2", "--patch-size", "32", "--patch-sizes", "off",
                 "--batch-size", "1", "--width", "4", "--depth", "2", "--no-amp"]) == 0
    options = read_checkpoint(model)[1]["data_options"]
    update_header(model, data_options={**options, "kernels": str(kernels), "blur_noise": 2.0},
                  data_fingerprint=data_fingerprint([tmp_path / "blurry", tmp_path / "sharp", kernels]))
    assert main([*fit, "--resume", "--steps", "3"]) == 0
    assert read_checkpoint(model)[1]["step"] == 3


def test_a_star_field_whose_range_leaves_its_noise_below_the_models_is_mapped_by_its_noise(tmp_path, capsys,
                                                                                            monkeypatch):
    """An audit (science data): float counts with one bright star are mapped to [0, 1] by a range the star sets,
    where the sky's noise (20 counts) is 0.2/255, far under the default model's lowest level (5/255): its sky
    came back ~100 counts up, its noise not reduced, without a word. It was then said (command line and
    Python); now the map is narrowed to the noise (tests/test_star_field_map.py), so there is nothing to say, in
    memory or streamed; a map given that leaves the noise that low is still said."""
    import warnings

    import tifffile

    from selfrestore.intensity_map import intensity_mapping
    from selfrestore.restore import Restorer

    sky = np.random.default_rng(0).normal(0, 20, (96, 96)).astype(np.float32)
    y, x = np.mgrid[0:96, 0:96]
    star = sky + (40000 * np.exp(-((y - 48) ** 2 + (x - 48) ** 2) / 32.0)).astype(np.float32)
    tifffile.imwrite(tmp_path / "star.tif", star)
    tifffile.imwrite(tmp_path / "sky.tif", sky)
    for name in ("star", "sky"):
        capsys.readouterr()
        assert main(["restore", str(tmp_path / f"{name}.tif"), "--model", "laine19-gauss5_50", "-o",
                     str(tmp_path / f"out_{name}.tif"), "--quiet"]) == 0
        assert "under half the lowest level the model was trained on" not in capsys.readouterr().err, name
    restored = tifffile.imread(tmp_path / "out_star.tif")
    far = (y - 48) ** 2 + (x - 48) ** 2 > 30 ** 2
    assert abs(float(np.mean(restored[far] - 0))) < 0.5 * 20 and float(np.std(restored[far])) < 0.7 * 20
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Restorer("laine19-gauss5_50").restore(star)
        assert not any("under half the lowest level" in str(w.message) for w in caught)
        Restorer("laine19-gauss5_50").restore(star, mapping=intensity_mapping([star[:, :, None]]))
    assert any("under half the lowest level" in str(w.message) for w in caught), [str(w.message) for w in caught]
    # a stack of such planes too large for memory, streamed plane by plane (the review: not checked there)
    from selfrestore import memory_check

    tifffile.imwrite(tmp_path / "stars.tif", np.stack([star, star[::-1], star[:, ::-1]]), photometric="minisblack")
    monkeypatch.setattr(memory_check, "physical_memory", lambda: 10**4)
    capsys.readouterr()
    assert main(["restore", str(tmp_path / "stars.tif"), "--model", "laine19-gauss5_50", "-o",
                 str(tmp_path / "streamed.tif"), "--quiet"]) == 0
    assert "under half the lowest level the model was trained on" not in capsys.readouterr().err
    streamed = tifffile.imread(tmp_path / "streamed.tif")
    assert abs(float(np.mean(streamed[0][far]))) < 0.5 * 20


def test_the_std_image_is_in_the_datas_units_and_keeps_blank_pixels_and_pixel_size(tmp_path, rgb_image):
    """An audit (science data): an 8 / 16-bit image's NAME.std.tif was on the 0-1 scale (a float image's in its
    own values), and a single image's std lost its blank (NaN) pixels and its pixel size. Now in the data's
    units (levels of the type, as the Python Restorer gives it), with both kept."""
    import tifffile

    from selfrestore.restore import Restorer

    rng = np.random.default_rng(0)
    noisy = np.clip(rgb_image[:64, :64] + rng.normal(0, 20 / 255, (64, 64, 3)), 0, 1).astype(np.float32)
    eight = np.round(255 * noisy).astype(np.uint8)
    write_image(tmp_path / "a.png", eight)
    run = ["restore", "--model", "laine19-gauss5_50", "--uncertainty", "--quiet", "-o", str(tmp_path / "out")]
    assert main([*run[:1], str(tmp_path / "a.png"), *run[1:]]) == 0
    expected = Restorer("laine19-gauss5_50").restore_with_uncertainty(eight)[1]
    std = tifffile.imread(tmp_path / "out" / "a.std.tif")
    assert 1 < float(np.median(std)) < 20 and np.allclose(std, expected, rtol=1e-3, atol=1e-3)
    blank = noisy.copy()
    blank[5:9, 7:12] = np.nan
    tifffile.imwrite(tmp_path / "b.tif", blank, photometric="rgb", resolution=(10, 10))
    assert main([*run[:1], str(tmp_path / "b.tif"), *run[1:]]) == 0
    with tifffile.TiffFile(tmp_path / "out" / "b.std.tif") as tif:
        std = tif.asarray()
        assert tuple(tif.pages[0].tags["XResolution"].value) == (10, 1)
    assert np.isnan(std[5:9, 7:12]).all() and np.isfinite(std[20:, 20:]).all()


def test_a_fits_output_does_not_carry_the_inputs_checksum_or_value_range(tmp_path):
    """An audit: CHECKSUM / DATASUM were copied from the input, so astropy reported the restored file corrupt,
    and DATAMIN / DATAMAX stated the noisy input's range; the other keywords (EXPTIME ...) are kept."""
    import warnings

    from astropy.io import fits

    rng = np.random.default_rng(0)
    data = (100 + 20 * rng.standard_normal((64, 64))).astype(np.float32)
    header = fits.Header({"EXPTIME": 30.0, "DATAMIN": float(data.min()), "DATAMAX": float(data.max())})
    fits.PrimaryHDU(data=data, header=header).writeto(tmp_path / "a.fits", checksum=True)
    assert main(["restore", str(tmp_path / "a.fits"), "--model", "laine19-gauss5_50", "-o",
                 str(tmp_path / "out.fits"), "--quiet"]) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a checksum that does not match is an astropy warning
        with fits.open(tmp_path / "out.fits", checksum=True) as hdus:
            out = hdus[0].header
    assert out["EXPTIME"] == 30.0 and not {"CHECKSUM", "DATASUM", "DATAMIN", "DATAMAX"} & set(out)


def test_an_ome_tiff_keeps_its_pixel_sizes_and_channel_names(tmp_path, monkeypatch):
    """An audit: a restored OME-TIFF came back a plain TIFF, its pixel sizes, units and channel names lost. Now
    they are written back as OME metadata (a stack too large for memory, streamed, is still written, without
    them)."""
    import tifffile

    from selfrestore import memory_check

    rng = np.random.default_rng(0)
    tifffile.imwrite(tmp_path / "z.ome.tif", (rng.random((3, 48, 48)) * 4000 + 100).astype(np.uint16), ome=True,
                     metadata={"axes": "ZYX", "PhysicalSizeX": 0.1, "PhysicalSizeXUnit": "µm", "PhysicalSizeZ": 0.5})
    tifffile.imwrite(tmp_path / "c.ome.tif", rng.random((2, 2, 48, 48)).astype(np.float32), ome=True,
                     metadata={"axes": "CZYX", "PhysicalSizeY": 0.2, "Channel": {"Name": ["GFP", "RFP"]}})
    assert main(["restore", str(tmp_path / "z.ome.tif"), str(tmp_path / "c.ome.tif"), "--model", "unet-gauss25",
                 "-o", str(tmp_path / "out"), "--quiet"]) == 0
    for name, wanted in (("z.ome.tif", ('PhysicalSizeX="0.1"', 'PhysicalSizeXUnit="µm"', 'PhysicalSizeZ="0.5"')),
                         ("c.ome.tif", ('PhysicalSizeY="0.2"', 'Name="GFP"', 'Name="RFP"'))):
        with tifffile.TiffFile(tmp_path / "out" / name) as tif:
            assert tif.is_ome and all(text in tif.ome_metadata for text in wanted), (name, tif.ome_metadata)
    monkeypatch.setattr(memory_check, "physical_memory", lambda: 10**4)
    assert main(["restore", str(tmp_path / "z.ome.tif"), "--model", "unet-gauss25", "-o",
                 str(tmp_path / "streamed.tif"), "--quiet"]) == 0
    assert tifffile.imread(tmp_path / "streamed.tif").shape == (3, 48, 48)


def test_a_multi_extension_fits_keeps_its_primary_keywords_and_says_what_is_not_written(tmp_path, capsys):
    """An audit: a FITS file with an empty primary HDU (EXPTIME, TELESCOP), a SCI image and a DQ mask came back as
    one HDU without the primary's keywords, and the mask was dropped unsaid."""
    from astropy.io import fits

    rng = np.random.default_rng(0)
    sci = (100 + 20 * rng.standard_normal((64, 64))).astype(np.float32)
    primary = fits.Header({"EXPTIME": 30.0, "TELESCOP": "T1", "CD1_1": 1e-4, "CD2_2": 1e-4})
    primary.add_history("h1")
    science = fits.Header({"BUNIT": "adu", "CDELT1": 2e-4, "CDELT2": 2e-4})
    science.add_history("h2")
    hdus = fits.HDUList([fits.PrimaryHDU(header=primary), fits.ImageHDU(sci, name="SCI", header=science),
                         fits.ImageHDU(np.zeros((64, 64), np.int16), name="DQ")])
    hdus.writeto(tmp_path / "m.fits")
    capsys.readouterr()
    assert main(["restore", str(tmp_path / "m.fits"), "--model", "laine19-gauss5_50", "-o",
                 str(tmp_path / "out.fits"), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "its other HDUs (DQ (2)) are not in" in err, err  # (the empty primary HDU is not one to miss)
    with fits.open(tmp_path / "out.fits") as out:
        header = out[0].header
        assert header["EXPTIME"] == 30.0 and header["TELESCOP"] == "T1" and header["BUNIT"] == "adu"
        # (the review: the primary's WCS is not mixed into the image's own, and both histories are kept)
        assert "CD1_1" not in header and header["CDELT1"] == 2e-4 and {"h1", "h2"} <= set(header["HISTORY"])
