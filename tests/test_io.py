import os
import stat

import numpy as np
import pytest
import torch
from PIL import Image

from selfrestore.errors import ImageReadError, UserError
from selfrestore.file_lists import list_images
from selfrestore.io import ImageInfo, read_image, write_image


@pytest.mark.parametrize("suffix,dtype,tol", [(".png", "uint8", 0.5 / 255), (".png", "uint16", 0.5 / 65535),
                                              (".tif", "uint16", 0.5 / 65535), (".tif", "float32", 0.0),
                                              (".tif", "uint8", 0.5 / 255)])
def test_round_trip_keeps_bit_depth(tmp_path, rgb_image, suffix, dtype, tol):
    path = write_image(tmp_path / f"x{suffix}", rgb_image, dtype=dtype)
    back, info = read_image(path)
    assert info.dtype == dtype
    assert back.shape == rgb_image.shape
    assert np.abs(back - rgb_image).max() <= tol + 1e-7


def test_16bit_input_gives_16bit_output(tmp_path):
    ramp = np.linspace(0, 1, 64 * 100, dtype=np.float32).reshape(64, 100, 1).repeat(3, axis=2)
    write_image(tmp_path / "in.png", ramp, dtype="uint16")
    image, info = read_image(tmp_path / "in.png")
    write_image(tmp_path / "out.png", image * 0.5, info)
    raw = __import__("cv2").imread(str(tmp_path / "out.png"), -1)
    assert raw.dtype == np.uint16
    assert len(np.unique(raw)) > 256  # really 16-bit levels, not 8-bit values scaled up


def test_gray_and_alpha_are_kept(tmp_path):
    rgba = (np.random.default_rng(0).random((10, 12, 4)) * 255).astype(np.uint8)
    Image.fromarray(rgba).save(tmp_path / "a.png")
    image, info = read_image(tmp_path / "a.png")
    assert image.shape == (10, 12, 3) and info.alpha is not None
    write_image(tmp_path / "b.png", image, info)
    back = np.asarray(Image.open(tmp_path / "b.png"))
    assert back.shape == (10, 12, 4) and np.array_equal(back[:, :, 3], rgba[:, :, 3])
    gray = (np.random.default_rng(1).random((9, 7)) * 255).astype(np.uint8)
    Image.fromarray(gray).save(tmp_path / "g.png")
    image, info = read_image(tmp_path / "g.png")
    assert image.shape == (9, 7, 1) and info.channels == 1


def test_one_pixel_image(tmp_path):
    Image.fromarray(np.array([[[10, 20, 30]]], np.uint8)).save(tmp_path / "p.png")
    image, _ = read_image(tmp_path / "p.png")
    assert image.shape == (1, 1, 3)


@pytest.mark.parametrize("name,content,reason", [
    ("empty.png", b"", "empty file"),
    ("text.png", b"this is not an image\n", "not an image"),
    ("truncated.jpg", None, "cannot read"),
    ("clip.mp4", b"\x00\x00\x00\x18ftypmp42", "a video, not an image: `selfrestore video"),  # says what reads it
])
def test_bad_files_give_one_line_errors(tmp_path, rgb_image, name, content, reason):
    path = tmp_path / name
    if content is None:
        write_image(tmp_path / "good.jpg", rgb_image)
        data = (tmp_path / "good.jpg").read_bytes()
        path.write_bytes(data[: len(data) // 3])
    else:
        path.write_bytes(content)
    with pytest.raises(ImageReadError) as err:
        read_image(path)
    message = str(err.value)
    assert name in message and reason in message and "\n" not in message


def test_missing_file_and_listing(tmp_path, rgb_image):
    with pytest.raises(ImageReadError, match="no such file"):
        read_image(tmp_path / "nope.png")
    write_image(tmp_path / "d" / "a.png", rgb_image)
    (tmp_path / "d" / "notes.txt").write_text("x")
    paths, problems = list_images([tmp_path / "d", tmp_path / "missing.png"])
    assert [p.name for p in paths] == ["a.png"]
    assert len(problems) == 1 and "missing.png" in problems[0]



def test_hidden_files_in_a_folder_are_not_data(tmp_path, rgb_image):
    """A killed write's `.a.png.x1y2z3w4.tmp.png`, macOS `._a.png` and a video spool `.clip.mp4.frames/` in an
    input folder were restored / trained on (or failed as unreadable); a hidden file named itself is read."""
    write_image(tmp_path / "d" / "a.png", rgb_image)
    (tmp_path / "d" / "._a.png").write_bytes(b"\x00\x05\x16\x07 resource fork")
    write_image(tmp_path / "d" / ".a.png.x1y2z3w4.tmp.png", rgb_image)
    write_image(tmp_path / "d" / ".clip.mp4.frames" / "000000.png", rgb_image)
    write_image(tmp_path / "d" / "sub" / "b.png", rgb_image)
    paths, problems = list_images([tmp_path / "d", tmp_path / "d" / "._a.png"])
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == ["d/a.png", "d/sub/b.png", "d/._a.png"]
    assert not problems


def test_atomic_write_leaves_no_temporary_files(tmp_path, rgb_image):
    write_image(tmp_path / "x.png", rgb_image, ImageInfo())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png"]


FAKE_ICC = b"\x00\x00\x02\x0cappl\x02\x10\x00\x00mntrRGB XYZ " + bytes(range(256)) * 2  # opaque bytes: only carried


def _orientation(path) -> int | None:
    with Image.open(path) as img:
        return img.getexif().get(274)


@pytest.mark.parametrize("source,target,dtype", [(".jpg", ".jpg", "uint8"), (".jpg", ".png", "uint8"),
                                                 (".png", ".png", "uint16"), (".tif", ".tif", "uint16"),
                                                 (".png", ".tif", "uint16")])
def test_colour_profile_and_exif_orientation_are_carried_to_the_output(tmp_path, rgb_image, source, target, dtype):
    """A phone photo keeps its colour space and orientation tag: restored pixels are written as stored, with
    the input's ICC profile and EXIF, so the output displays as the input did (16-bit colour PNG included)."""
    exif = Image.Exif()
    exif[274] = 6  # "rotate 90 degrees clockwise to display"
    meta = ImageInfo(dtype=dtype, icc_profile=FAKE_ICC, exif=exif.tobytes())
    src = write_image(tmp_path / f"in{source}", rgb_image, meta)
    image, info = read_image(src)
    assert info.icc_profile == FAKE_ICC and info.dtype == dtype
    if source != ".tif":
        assert _orientation(src) == 6 and info.exif is not None
    out = write_image(tmp_path / f"out{target}", 1 - image, info)
    back, back_info = read_image(out)
    assert back_info.icc_profile == FAKE_ICC and back_info.dtype == dtype
    assert back.shape == rgb_image.shape  # not rotated: the tag says how to display it
    if source != ".tif" and target != ".tif":
        assert _orientation(out) == 6
    with Image.open(out) as img:  # the file stays readable by a standard decoder
        img.load()


def test_image_without_metadata_gets_none(tmp_path, rgb_image):
    _, info = read_image(write_image(tmp_path / "plain.png", rgb_image))
    assert info.icc_profile is None and info.exif is None


def test_training_data_that_cannot_fit_in_memory_is_refused_before_decoding(tmp_path, rgb_image, monkeypatch,
                                                                            capsys):
    import selfrestore.memory_check as memory_check
    from selfrestore.cli import main
    from selfrestore.data.images import load_images

    write_image(tmp_path / "d" / "a.png", rgb_image)
    write_image(tmp_path / "d" / "b.tif", rgb_image, dtype="uint16")
    h, w = rgb_image.shape[:2]
    paths = sorted((tmp_path / "d").iterdir())
    assert memory_check.decoded_bytes(paths) == 2 * h * w * 3 * 4
    assert memory_check.decoded_bytes(paths, channels=1) == 2 * h * w * 4
    assert len(load_images([tmp_path / "d"])) == 2  # fits
    monkeypatch.setattr(memory_check, "physical_memory", lambda: 2 * h * w * 3 * 4)  # room for one copy only (< 80%)
    with pytest.raises(UserError, match="GB of memory"):
        load_images([tmp_path / "d"])
    assert main(["fit", str(tmp_path / "d"), "--method", "n2v", "--steps", "1", "-o", str(tmp_path / "m")]) == 2
    # the pair loaders (two noisy shots; blurry + noisy; blurry + sharp) check before decoding too
    import shutil

    shutil.copytree(tmp_path / "d", tmp_path / "d2")  # the other shots (one folder given twice is refused)
    for argv in (["--method", "n2n", "--pairs", str(tmp_path / "d"), str(tmp_path / "d2")],
                 ["--method", "selfir", "--blurry", str(tmp_path / "d"), "--noisy", str(tmp_path / "d2")],
                 ["--method", "reblur", "--pairs", str(tmp_path / "d"), str(tmp_path / "d2")]):
        assert main(["fit", *argv, "--steps", "1", "-o", str(tmp_path / "m")]) == 2, argv
        assert "GB of memory" in capsys.readouterr().err, argv
    assert main(["restore", str(tmp_path / "d"), "--model", "unet-gauss25", "--adapt", "2", "-o",
                 str(tmp_path / "out")]) == 2  # test-time adaptation holds every input at once
    assert "GB of memory" in capsys.readouterr().err
    # restoring goes file by file: a file too large for memory is reported and the batch goes on
    assert main(["restore", str(tmp_path / "d"), "--model", "unet-gauss25", "-o", str(tmp_path / "out2")]) == 1
    err = capsys.readouterr().err
    assert err.count("GB of memory") == 2 and "split it into smaller files" in err


def test_noisy_pairs_are_matched_by_name_and_unmatched_files_skipped(tmp_path, rgb_image, capsys):
    from selfrestore.cli import main

    rng = np.random.default_rng(0)
    for name in ("a", "b", "only_first"):
        write_image(tmp_path / "first" / f"{name}.png", np.clip(rgb_image + rng.normal(0, .1, rgb_image.shape), 0, 1))
    for name in ("a", "b", "only_second"):
        write_image(tmp_path / "second" / f"{name}.png", np.clip(rgb_image + rng.normal(0, .1, rgb_image.shape), 0, 1))
    argv = ["fit", "--method", "n2n", "--pairs", str(tmp_path / "first"), str(tmp_path / "second"), "--steps", "1",
            "--width", "8", "--depth", "2", "--patch-size", "32", "--quiet"]
    assert main([*argv, "-o", str(tmp_path / "m")]) == 0
    err = capsys.readouterr().err
    assert "only_first" in err and "only_second" in err and "Traceback" not in err
    write_image(tmp_path / "first" / "b.png", rgb_image[:40])  # a size mismatch is skipped too
    assert main([*argv, "-o", str(tmp_path / "m2")]) == 0
    assert "differs from" in capsys.readouterr().err
    for name in ("a", "b"):
        (tmp_path / "second" / f"{name}.png").unlink()
    assert main([*argv, "-o", str(tmp_path / "m3")]) == 2
    assert "no pairs matched" in capsys.readouterr().err


def test_tiff_stacks_are_read_plane_by_plane_and_written_back_in_their_layout(tmp_path, rgb_image, capsys):
    """A microscope stack (z, time or channel planes) restores plane by plane into a TIFF of the same axes,
    shape and bit depth; fit trains on its planes; single-image readers say what the file is."""
    import tifffile

    from selfrestore.cli import main
    from selfrestore.data.images import load_images
    from selfrestore.io import quantize, read_frames
    from selfrestore.memory_check import decoded_bytes
    from selfrestore.restore import Restorer

    gray = rgb_image.mean(axis=2)
    planes = np.stack([np.roll(gray, 7 * k, axis=1) for k in range(6)]).reshape(2, 3, *gray.shape)
    stack = tmp_path / "stack.tif"
    tifffile.imwrite(stack, np.round(planes * 65535).astype(np.uint16), imagej=True, metadata={"axes": "ZCYX"})
    frames, info = read_frames(stack)
    assert len(frames) == 6 and info.stack_shape == (2, 3) and info.stack_axes == "ZC" and info.dtype == "uint16"
    np.testing.assert_allclose(frames[4][:, :, 0], planes[1, 1], atol=1 / 65535)
    with pytest.raises(ImageReadError, match="a stack of 6 images"):
        read_image(stack)
    assert len(load_images([stack])) == 6
    assert decoded_bytes([stack], channels=3) == 6 * gray.size * 3 * 4  # every plane counts

    model = "unet-gauss25"  # shipped: a real denoiser, so a plane put in the wrong place would show
    assert main(["restore", str(stack), "--model", str(model), "-o", str(tmp_path / "out"), "--quiet"]) == 0
    with tifffile.TiffFile(tmp_path / "out" / "stack.tif") as tif:
        assert tif.series[0].axes == "ZCYX" and tif.series[0].shape == planes.shape
        restored = tif.asarray()
    assert restored.dtype == np.uint16
    restorer = Restorer(model)  # each plane restored as if alone, but for one clipping decision per channel
    decisions = restorer.stack_clipping(frames, info.stack_shape, info.stack_axes)
    alone = restorer.restore(frames[4], clipping_decision=decisions[4])
    assert 0.2 < alone.mean() < 0.8
    np.testing.assert_array_equal(restored[1, 1], quantize(alone[:, :, 0], "uint16"))
    assert main(["restore", str(stack), "--model", str(model), "-o", str(tmp_path / "x.png"), "--quiet"]) == 1
    assert f"only be written as TIFF or FITS; choose {tmp_path / 'x.tif'}" in capsys.readouterr().err  # as restore_file


def test_fits_images_keep_their_header_type_stack_and_blank_pixels(tmp_path, rgb_image):
    """Astronomy: a FITS file (16-bit counts with BZERO, or float with NaN blanks; one image or a cube)
    restores into a FITS file with the same header keywords (WCS ...), the same pixel type and shape, and
    NaN where the input had them (the network saw finite values)."""
    fits = pytest.importorskip("astropy.io.fits")
    from selfrestore.cli import main
    from selfrestore.io import read_frames

    gray = rgb_image.mean(axis=2)
    counts = np.round(gray * 60000).astype(np.uint16)
    header = fits.Header({"OBJECT": "M31", "CRVAL1": 10.68, "EXPTIME": 30.0})
    fits.PrimaryHDU(counts, header=header).writeto(tmp_path / "counts.fits")
    cube = np.stack([gray, gray[:, ::-1]]).astype(np.float32) * 1000 - 200  # float, negative values too
    cube[1, 5:9, 7:11] = np.nan
    fits.PrimaryHDU(cube, header=header).writeto(tmp_path / "cube.fits")
    frames, info = read_frames(tmp_path / "cube.fits")
    assert len(frames) == 2 and info.stack_shape == (2,) and info.dtype == "float32"
    assert all(np.isfinite(f).all() for f in frames) and info.blank.sum() == 16

    model = "unet-gauss25"
    for name in ("counts.fits", "cube.fits"):
        assert main(["restore", str(tmp_path / name), "--model", model, "-o", str(tmp_path / "out"), "--quiet"]) == 0
    with fits.open(tmp_path / "out" / "counts.fits") as hdus:
        out = hdus[0]
        assert out.header["OBJECT"] == "M31" and out.header["CRVAL1"] == 10.68 and out.header["BITPIX"] == 16
        assert out.data.dtype == np.uint16 and out.data.shape == counts.shape
        assert np.abs(out.data.astype(float) - counts).mean() < 2000  # restored, not garbage
    with fits.open(tmp_path / "out" / "cube.fits") as hdus:
        out = hdus[0]
        assert out.header["EXPTIME"] == 30.0 and out.header["BITPIX"] == -32 and out.data.shape == cube.shape
        assert np.array_equal(np.isnan(out.data), np.isnan(cube))


def test_float_data_far_outside_0_1_is_mapped_for_training_and_back_for_restoring(tmp_path, rgb_image, capsys):
    """Microscope counts kept as float (here 100..4100): fit maps them to [0, 1] by percentiles and records
    the map; training on them equals training on the mapped data, and restore answers on the data's own
    scale; data already in [0, 1] is left as read."""
    import tifffile

    from selfrestore.checkpoint import read_checkpoint
    from selfrestore.cli import main
    from selfrestore.intensity_map import intensity_mapping
    from selfrestore.restore import Restorer

    gray = rgb_image.mean(axis=2)
    rng = np.random.default_rng(0)
    counts = (100 + 4000 * np.clip(gray + rng.normal(0, 0.05, gray.shape), 0, 1)).astype(np.float32)
    assert intensity_mapping([gray]) is None
    mapping = intensity_mapping([counts])
    assert 90 < mapping["offset"] < 200 and 3700 < mapping["scale"] < 4100
    mapped = ((counts - mapping["offset"]) / mapping["scale"]).astype(np.float32)
    for name, data in (("raw", counts), ("mapped", mapped)):
        (tmp_path / name).mkdir()
        tifffile.imwrite(tmp_path / name / "cells.tif", data)
        assert main(["fit", str(tmp_path / name), "--method", "nb2nb", "--width", "8", "--depth", "2", "--steps",
                     "5", "--patch-size", "32", "--no-amp", "-o", str(tmp_path / f"{name}.safetensors"),
                     "--quiet"]) == 0
    assert read_checkpoint(tmp_path / "raw.safetensors")[1]["intensity"] == mapping
    assert "intensity" not in read_checkpoint(tmp_path / "mapped.safetensors")[1]
    assert main(["models", str(tmp_path / "raw.safetensors")]) == 0 and "mapped to [0, 1]" in capsys.readouterr().out
    on_raw = Restorer(tmp_path / "raw.safetensors").restore(counts[:, :, None])
    on_mapped = Restorer(tmp_path / "mapped.safetensors").restore(mapped[:, :, None])
    np.testing.assert_allclose(on_raw, on_mapped * mapping["scale"] + mapping["offset"], rtol=1e-5, atol=1e-2)
    assert main(["restore", str(tmp_path / "raw" / "cells.tif"), "--model", str(tmp_path / "raw.safetensors"),
                 "-o", str(tmp_path / "out.tif"), "--quiet"]) == 0
    np.testing.assert_allclose(tifffile.imread(tmp_path / "out.tif"), on_raw[:, :, 0], rtol=1e-6)
    # a model trained on [0, 1] data (a shipped one) maps such an image by its own percentiles (with the
    # clipped-noise correction off: these counts were clipped, so the [0, 1] copy has values on 0 and 1 and
    # would be corrected, while mapped counts never are: their ends are percentiles, not clipping points)
    shipped = Restorer("unet-gauss25", clipping="off")
    own = intensity_mapping([counts[:, :, None]])
    on_counts = shipped.restore(counts[:, :, None])
    on_unit = shipped.restore(((counts[:, :, None] - own["offset"]) / own["scale"]).astype(np.float32))
    np.testing.assert_allclose(on_counts, on_unit * own["scale"] + own["offset"], rtol=1e-4, atol=0.5)


def test_multispectral_geotiff_keeps_its_bands_georeference_and_resolution(tmp_path, rgb_image):
    """Satellite: a 5-band 16-bit GeoTIFF restores band by band into a GeoTIFF with the same bands, pixel
    type, georeferencing tags and resolution (they were dropped, and more than 4 samples was an error)."""
    import tifffile

    from selfrestore.cli import main
    from selfrestore.io import quantize, read_frames
    from selfrestore.restore import Restorer

    bands = np.stack([np.roll(rgb_image.mean(axis=2), 9 * k, axis=0) for k in range(5)], axis=2)
    geo = [(33550, "d", 3, (0.5, 0.5, 0.0), True), (33922, "d", 6, (0, 0, 0, 350000.0, 5000000.0, 0), True),
           (34735, "H", 8, (1, 1, 0, 1, 1024, 0, 1, 1), True)]
    src = tmp_path / "scene.tif"
    tifffile.imwrite(src, quantize(bands, "uint16"), photometric="minisblack", planarconfig="contig",
                     extratags=geo, resolution=(72, 72))
    frames, info = read_frames(src)
    assert len(frames) == 5 and info.stack_axes == "B" and info.dtype == "uint16"
    assert main(["restore", str(src), "--model", "unet-gauss25", "-o", str(tmp_path / "out"), "--quiet"]) == 0
    with tifffile.TiffFile(tmp_path / "out" / "scene.tif") as tif:
        page, restored = tif.pages[0], tif.asarray()
        assert tif.series[0].axes == "YXS" and restored.shape == bands.shape and restored.dtype == np.uint16
        for code, _, _, value, _ in geo:
            assert tuple(page.tags[code].value) == value, code
        assert page.tags[282].value == (72, 1)
    alone = Restorer("unet-gauss25").restore(frames[3])
    np.testing.assert_array_equal(restored[:, :, 3], quantize(alone[:, :, 0], "uint16"))


@pytest.mark.parametrize("kind", ["uint16-gray", "uint8-colour-zlib", "float-nan", "imagej", "imagej-lzw",
                                  "uint16-zstd-big"])
def test_a_stack_too_large_for_memory_is_restored_plane_by_plane_to_the_same_file(tmp_path, monkeypatch, capsys,
                                                                                   kind):
    """`restore` on a TIFF stack that would not fit in memory streams it (memory-mapped planes in, restored
    planes out in order) and writes exactly what the in-memory path writes: values, axes, bit depth,
    resolution, blank pixels, an ImageJ file's metadata (z spacing, unit: the streamed output had lost them),
    and the codec (the streamed output was uncompressed: a compressed stack came back several times larger).
    Past 4 GB (here: past a lowered limit) both write BigTIFF, or an uncompressed file for ImageJ."""
    import tifffile
    import torch

    from selfrestore.checkpoint import build_net, save_checkpoint
    from selfrestore.cli import main

    rng = np.random.default_rng(0)
    if kind == "uint16-gray":
        stack = (rng.random((2, 3, 40, 48)) * 65535).astype(np.uint16)
        options = {"photometric": "minisblack", "metadata": {"axes": "ZCYX"}}
    elif kind == "uint8-colour-zlib":
        stack = (rng.random((3, 40, 48, 3)) * 255).astype(np.uint8)
        options = {"photometric": "rgb", "compression": "zlib", "metadata": {"axes": "TYXS"}}
    elif kind.startswith("imagej"):
        stack = (rng.random((3, 2, 40, 48)) * 65535).astype(np.uint16)
        options = {"imagej": True, "metadata": {"axes": "ZCYX", "spacing": 2.5, "unit": "um"},
                   **({"compression": "lzw", "predictor": True} if kind == "imagej-lzw" else {})}
    elif kind == "uint16-zstd-big":
        stack = (rng.random((4, 40, 48)) * 65535).astype(np.uint16)
        options = {"photometric": "minisblack", "compression": "zstd", "metadata": {"axes": "TYX"}}
    else:
        stack = (rng.random((3, 40, 48)) * 500).astype(np.float32)
        stack[1, 5:9, 7:12] = np.nan
        options = {"photometric": "minisblack", "metadata": {"axes": "ZYX"}}
    source = tmp_path / "stack.tif"
    tifffile.imwrite(source, stack, resolution=(2.0, 2.0), resolutionunit=3, **options)
    channels = 3 if kind == "uint8-colour-zlib" else 1
    torch.manual_seed(0)
    model = tmp_path / "m.safetensors"
    save_checkpoint(model, build_net("unet", in_channels=channels, out_channels=channels, width=4, depth=2),
                    {"method": {"name": "n2n", "noise": "gauss25"}, "channels": channels, "step": 0})
    base = ["restore", str(source), "--model", str(model), "--quiet"]
    import selfrestore.io as io
    import selfrestore.memory_check as memory_check

    if kind in ("uint16-zstd-big", "imagej-lzw"):  # "past 4 GB": a 4-plane (ImageJ: 6-plane) stack here
        monkeypatch.setattr(io, "TIFF_CLASSIC_LIMIT", stack.nbytes - 1 if kind == "uint16-zstd-big" else 10**9)
    assert main([*base, "-o", str(tmp_path / "in_memory.tif")]) == 0

    monkeypatch.setattr(memory_check, "physical_memory", lambda: 10**4)  # 10 kB: the stack "does not fit"
    assert main([*base[:-1], "-o", str(tmp_path / "streamed.tif")]) == 0
    assert "plane by plane" in capsys.readouterr().err
    assert not list(tmp_path.glob(".*"))  # no partial or decoded scratch file left
    with tifffile.TiffFile(tmp_path / "in_memory.tif") as a, tifffile.TiffFile(tmp_path / "streamed.tif") as b:
        assert a.series[0].axes == b.series[0].axes and a.series[0].shape == b.series[0].shape
        assert a.series[0].dtype == b.series[0].dtype == stack.dtype
        assert a.pages[0].tags[282].value == b.pages[0].tags[282].value
        assert np.array_equal(a.asarray(), b.asarray(), equal_nan=True)
        stored = tifffile.TiffFile(source).pages[0].compression.name
        assert a.pages[0].compression.name == b.pages[0].compression.name == stored
        assert a.pages[0].predictor == b.pages[0].predictor and a.is_bigtiff == b.is_bigtiff
        assert b.is_bigtiff == (kind == "uint16-zstd-big")
        if kind.startswith("imagej"):
            assert b.is_imagej and b.imagej_metadata["spacing"] == 2.5 and b.imagej_metadata["unit"] == "um"
            assert a.imagej_metadata == b.imagej_metadata
    if kind == "imagej-lzw":  # past 4 GB an ImageJ file is stored uncompressed (ImageJ reads no BigTIFF)
        monkeypatch.setattr(io, "TIFF_CLASSIC_LIMIT", stack.nbytes - 1)
        for name, on in (("in_memory_big.tif", 10**12), ("streamed_big.tif", 10**4)):
            monkeypatch.setattr(memory_check, "physical_memory", lambda: on)
            assert main([*base[:-1], "--quiet", "-o", str(tmp_path / name)]) == 0
            with tifffile.TiffFile(tmp_path / name) as big:
                assert big.is_imagej and not big.is_bigtiff and big.pages[0].compression.name == "NONE"
                assert np.array_equal(big.asarray(), tifffile.imread(tmp_path / "in_memory.tif"))
    if kind == "float-nan":
        assert np.isnan(tifffile.imread(tmp_path / "streamed.tif")[1, 5:9, 7:12]).all()


@pytest.mark.parametrize("kind", ["uint16-gray", "float-nan", "uint16-lzw"])
def test_a_stack_too_large_for_memory_gets_its_uncertainty_plane_by_plane(tmp_path, monkeypatch, kind):
    """--uncertainty on a stack that does not fit in memory: the streamed mean and std stacks equal the
    in-memory ones (float32 std, same axes and shape, blank pixels blank, the same codec: the streamed std
    stack of a compressed input came back uncompressed)."""
    import tifffile

    import selfrestore.memory_check as memory_check
    from selfrestore.cli import main

    rng = np.random.default_rng(1)
    stack = (rng.random((2, 2, 32, 40)) * 65535).astype(np.uint16) if kind == "uint16-gray" else \
        (rng.random((3, 32, 40)) * 0.8 + 0.1).astype(np.float32)
    if kind == "float-nan":
        stack[1, 5:9, 7:12] = np.nan
    source = tmp_path / "stack.tif"
    tifffile.imwrite(source, stack, photometric="minisblack", metadata={"axes": "ZCYX" if stack.ndim == 4 else "ZYX"},
                     compression="lzw" if kind == "uint16-lzw" else None)
    base = ["restore", str(source), "--model", "laine19-gauss5_50", "--uncertainty", "--quiet"]
    assert main([*base, "-o", str(tmp_path / "memory.tif")]) == 0
    monkeypatch.setattr(memory_check, "physical_memory", lambda: 10**4)
    assert main([*base, "-o", str(tmp_path / "streamed.tif")]) == 0
    assert not list(tmp_path.glob(".*"))
    for name in ("{}.tif", "{}.std.tif"):
        with tifffile.TiffFile(tmp_path / name.format("memory")) as a, \
                tifffile.TiffFile(tmp_path / name.format("streamed")) as b:
            assert a.series[0].axes == b.series[0].axes and a.series[0].shape == b.series[0].shape == stack.shape
            assert a.series[0].dtype == b.series[0].dtype
            assert np.array_equal(a.asarray(), b.asarray(), equal_nan=True)
            assert a.pages[0].compression == b.pages[0].compression and a.pages[0].predictor == b.pages[0].predictor
            assert (b.pages[0].compression.name == "LZW") == (kind == "uint16-lzw")
    std = tifffile.imread(tmp_path / "streamed.std.tif")
    assert std.dtype == np.float32 and (std[np.isfinite(std)] > 0).all()
    if kind == "float-nan":
        assert np.isnan(std[1, 5:9, 7:12]).all()


def test_atomic_writes_get_normal_permissions_and_refuse_a_folder(tmp_path, rgb_image):
    """Images and model files come out with the umask's permissions (mkstemp makes 0600, and safetensors
    re-creates the temporary file), and writing onto a folder names the folder, not a hidden temporary file."""
    from selfrestore.checkpoint import _write
    from selfrestore.atomic_files import atomic_path

    old = os.umask(0o022)
    try:
        image = write_image(tmp_path / "a.png", rgb_image)
        model = _write(tmp_path / "m.safetensors", {"w": torch.zeros(2)}, {"format": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE(image.stat().st_mode) == 0o644
    assert stat.S_IMODE(model.stat().st_mode) == 0o644
    (tmp_path / "dir").mkdir()
    with pytest.raises(UserError, match=r"dir is a folder; give a file name"):
        with atomic_path(tmp_path / "dir"):
            pass
    assert [p.name for p in (tmp_path / "dir").iterdir()] == [] and not list(tmp_path.glob(".*tmp*"))


@pytest.mark.parametrize("kind", ["gray", "imagej", "imagej-tzcyx", "rgb"])
def test_tiff_stacks_are_written_back_page_for_page(tmp_path, kind):
    """A gray stack comes back as one (H, W) page per plane (it was one page H planes high with W samples per
    pixel, which PIL could not open), a colour stack as contiguous RGB pages, and an ImageJ file keeps its
    ImageJ metadata (hyperstack axes, spacing, unit)."""
    import tifffile

    from selfrestore.io import read_frames, write_frames

    rng = np.random.default_rng(0)
    shape, axes = {"gray": ((4, 40, 56), "ZYX"), "imagej": ((4, 40, 56), "ZYX"),
                   "imagej-tzcyx": ((2, 2, 2, 40, 56), "TZCYX"), "rgb": ((3, 40, 56, 3), "ZYXS")}[kind]
    data = (rng.random(shape) * (255 if kind == "rgb" else 65535)).astype(np.uint8 if kind == "rgb" else np.uint16)
    options = ({"imagej": True, "metadata": {"axes": axes, "spacing": 0.5, "unit": "um"}} if kind.startswith("imagej")
               else {"photometric": "rgb" if kind == "rgb" else "minisblack", "metadata": {"axes": axes}})
    tifffile.imwrite(tmp_path / "in.tif", data, **options)
    frames, info = read_frames(tmp_path / "in.tif")
    write_frames(tmp_path / "out.tif", frames, info)
    with tifffile.TiffFile(tmp_path / "in.tif") as a, tifffile.TiffFile(tmp_path / "out.tif") as b:
        assert len(b.pages) == len(a.pages) and b.pages[0].shape == a.pages[0].shape
        assert b.series[0].axes == a.series[0].axes and np.array_equal(b.asarray(), a.asarray())
        assert b.is_imagej == a.is_imagej
        if a.is_imagej:
            assert b.imagej_metadata == a.imagej_metadata
    with Image.open(tmp_path / "out.tif") as img:
        assert img.n_frames == len(frames) and img.size == (56, 40)


def test_16bit_gray_alpha_stays_16bit_gray_alpha(tmp_path):
    """Gray + alpha, 16 bits: a PNG reads back 16-bit gray with its alpha (it came back 8-bit RGBA), a TIFF
    (ExtraSamples: alpha) is written as one page of two samples (it became 40 pages 56 x 2) and to PNG (the
    writer crashed: OpenCV takes 1, 3 or 4 channels)."""
    import tifffile

    rng = np.random.default_rng(0)
    gray_alpha = (rng.random((40, 56, 2)) * 65535).astype(np.uint16)
    tifffile.imwrite(tmp_path / "in.tif", gray_alpha, photometric="minisblack", planarconfig="contig",
                     extrasamples=[2])
    image, info = read_image(tmp_path / "in.tif")
    assert image.shape == (40, 56, 1) and info.dtype == "uint16" and info.alpha is not None
    write_image(tmp_path / "out.tif", image, info)
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        assert len(tif.pages) == 1 and tif.pages[0].shape == (40, 56, 2) and tif.pages[0].extrasamples == (2,)
        assert np.array_equal(tif.asarray(), gray_alpha)
    write_image(tmp_path / "out.png", image, info)
    assert (tmp_path / "out.png").read_bytes()[24:26] == bytes([16, 4])  # 16 bits, colour type 4: gray + alpha
    with Image.open(tmp_path / "out.png") as img:
        img.load()  # a valid PNG for other readers too
    back, back_info = read_image(tmp_path / "out.png")
    assert back.shape == (40, 56, 1) and back_info.dtype == "uint16" and back_info.channels == 1
    assert np.array_equal(np.round(back[:, :, 0] * 65535), gray_alpha[:, :, 0])
    assert np.array_equal(np.round(back_info.alpha * 65535), gray_alpha[:, :, 1])


def test_a_two_band_tiff_is_two_bands_not_gray_and_alpha(tmp_path):
    """Two samples whose ExtraSamples says "unspecified" (a 2-channel microscope image) are two bands,
    restored one by one like multispectral ones (the 2nd was taken for alpha and came out unchanged), and
    are written back as one page of two contiguous samples."""
    import tifffile

    from selfrestore.io import read_frames, write_frames

    bands = (np.random.default_rng(0).random((40, 56, 2)) * 65535).astype(np.uint16)
    tifffile.imwrite(tmp_path / "in.tif", bands, photometric="minisblack", planarconfig="contig")
    frames, info = read_frames(tmp_path / "in.tif")
    assert len(frames) == 2 and info.stack_axes == "B" and info.alpha is None and frames[1].shape == (40, 56, 1)
    write_frames(tmp_path / "out.tif", [1 - f for f in frames], info)
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        assert len(tif.pages) == 1 and tif.pages[0].shape == (40, 56, 2) and tif.pages[0].extrasamples == (0,)
        assert np.array_equal(tif.asarray(), 65535 - bands)


def test_strong_noise_on_0_1_data_is_not_taken_for_counts(rgb_image):
    """Unclipped noise of std 75/255 on a [0, 1] photo reaches well past 1.5 (the raw percentiles mapped it, so
    restore and evaluate rescaled the noisy image); its 4x4 block means do not. Counts are still mapped."""
    from selfrestore.intensity_map import intensity_mapping
    from selfrestore.io import refuse_clipping

    bright = np.clip(rgb_image + 0.4, 0, 1)  # much of it white
    noisy = bright + 75 / 255 * np.random.default_rng(0).standard_normal(bright.shape)
    assert np.percentile(noisy, 99.9) > 1.5
    assert intensity_mapping([noisy]) is None
    mapping = intensity_mapping([100 + 4000 * noisy])
    assert mapping is not None and mapping["scale"] > 4000  # from the raw percentiles, noise included
    assert intensity_mapping([np.linspace(0, 3, 5000)]) is not None  # flat samples: as they are
    refuse_clipping("out.png", [noisy])  # on [0, 1]: an 8/16-bit output is fine (it refused, by raw percentiles)
    counts = 1000 + 3000 * bright
    counts[::4, ::4] = np.nan  # a blank pixel in every 4x4 block: still counts
    assert intensity_mapping([counts]) is not None
    with pytest.raises(UserError, match="needs a .tif"):
        refuse_clipping("out.png", [100 + 4000 * noisy])


def test_float_data_far_outside_0_1_is_not_clipped_into_an_integer_format(tmp_path):
    """Float counts (0..1000) to PNG were clipped to [0, 1] silently (98 % of the pixels white); float data
    in [0, 1], a restoration's slight overshoot included, still goes to PNG."""
    ramp = np.linspace(0, 1, 32 * 32, dtype=np.float32).reshape(32, 32, 1)
    info = ImageInfo(dtype="float32", channels=1)
    with pytest.raises(UserError, match=r"out\.png: data outside \[0, 1\] .* needs a \.tif/\.tiff or \.fits"):
        write_image(tmp_path / "out.png", ramp * 1000, info)
    assert not list(tmp_path.iterdir())
    write_image(tmp_path / "out.tif", ramp * 1000, info)
    write_image(tmp_path / "ok.png", ramp * 1.02 - 0.01, info)
    assert np.asarray(Image.open(tmp_path / "ok.png")).dtype == np.uint16


def test_an_unwritable_target_names_itself_and_the_reason(tmp_path, monkeypatch):
    """The OS error of a file that cannot be written (no permission, a full disk) names the file asked for
    and the reason in one line, not the hidden temporary file next to it."""
    import tempfile

    from selfrestore.atomic_files import atomic_path

    with pytest.raises(UserError, match=r"^\S*y\.bin: cannot write: No space left on device$"):
        with atomic_path(tmp_path / "y.bin") as tmp:
            raise OSError(28, "No space left on device", str(tmp))
    assert not list(tmp_path.iterdir())
    if os.path.isdir("/proc/self"):  # no file can be made there, whoever we are
        with pytest.raises(UserError, match=r"^/proc/x\.safetensors: cannot write: No such file or directory$"):
            with atomic_path("/proc/x.safetensors"):
                pass

    def refused(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / ".z.png.abc.tmp.png"))

    monkeypatch.setattr(tempfile, "mkstemp", refused)
    with pytest.raises(UserError, match=r"^\S*/z\.png: cannot write: Permission denied$"):
        write_image(tmp_path / "z.png", np.zeros((4, 4, 3), np.float32))


def test_write_image_takes_integer_arrays_and_refuses_what_is_no_image(tmp_path, rgb_image):
    """A uint8 array was taken as floats in [0, 1] and written white; (C, H, W), 1-D or int32 arrays and an
    unknown dtype raised PIL / numpy errors or wrote something else. Integers now keep their values and
    depth; the rest is a one-line UserError naming the file."""
    from selfrestore.errors import UserError

    pixels8 = np.round(rgb_image * 255).astype(np.uint8)
    write_image(tmp_path / "a.png", pixels8)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "a.png")), pixels8)
    pixels16 = np.round(rgb_image[:, :, 0] * 65535).astype(np.uint16)
    write_image(tmp_path / "b.png", pixels16)
    assert np.array_equal(read_image(tmp_path / "b.png")[0][:, :, 0], pixels16 / np.float32(65535))
    for bad, match in ((np.moveaxis(rgb_image, 2, 0), "transpose"), (rgb_image[0, :, 0], "shape"),
                       (pixels8.astype(np.int32), "int32")):
        with pytest.raises(UserError, match=match):
            write_image(tmp_path / "c.png", bad)
    with pytest.raises(UserError, match="float64"):
        write_image(tmp_path / "c.png", rgb_image, dtype="float64")
    assert not (tmp_path / "c.png").exists()
    for not_a_name in (None, [tmp_path / "a.png"]):  # raised TypeErrors
        with pytest.raises(UserError, match="expected an image file name"):
            read_image(not_a_name)


def test_a_loss_plot_beside_its_model_is_no_image_of_the_folder(tmp_path, rgb_image):
    """fit may save its model inside the data folder: the plot beside it is left out of the folder's images
    (and of a burst collection), a user's image of that name alone is not."""
    from selfrestore.burst.frames_io import burst_folders
    from selfrestore.file_lists import list_images

    for name in ("b1", "b2"):
        write_image(tmp_path / name / "f1.png", rgb_image)
    write_image(tmp_path / "m.training.png", rgb_image)
    assert (tmp_path / "m.training.png") in list_images([tmp_path])[0]  # no model beside it: data
    (tmp_path / "m.safetensors").write_bytes(b"model")
    assert (tmp_path / "m.training.png") not in list_images([tmp_path])[0]
    assert burst_folders([str(tmp_path)]) == [tmp_path / "b1", tmp_path / "b2"]


def test_signed_16_bit_data_is_read_in_its_own_units(tmp_path):
    """An int16 TIFF (or FITS) whose values happened to be >= 0 was read as 16-bit on the 0..65535 scale and
    written back as uint16, unlike the same camera's frames with a negative value (float, own units), and
    unlike what the README says of signed data: now every signed 8/16-bit file is float data in its own units,
    mapped to [0, 1] for the network by its percentiles and written back in its own type (int16, stop 41)."""
    import tifffile

    from selfrestore.cli import main

    values = np.round(500 + 1000 * np.random.default_rng(0).random((40, 56))).astype(np.int16)
    tifffile.imwrite(tmp_path / "i16.tif", values)
    pixels, info = read_image(tmp_path / "i16.tif")
    assert info.dtype == "float32" and pixels.dtype == np.float32
    np.testing.assert_array_equal(pixels[:, :, 0], values)
    assert main(["restore", str(tmp_path / "i16.tif"), "--model", "unet-gauss25", "-o", str(tmp_path / "o.tif"),
                 "--quiet"]) == 0
    out = tifffile.imread(tmp_path / "o.tif")
    assert out.dtype == np.int16 and 400 < np.median(out) < 1600


def test_dim_16_bit_data_is_restored_like_the_same_counts_as_float(tmp_path):
    """A 16-bit image using a sliver of 0..65535 (a 12-bit camera, a dim sensor: here 1000..1800 counts, noise
    40) came back from the default model shifted by +150 and worse than its input (RMSE 171 vs 40), while the
    same values as a float TIFF (counts, mapped by their percentiles) restored well (an audit). Now such data is
    mapped alike by shipped models and new fit models (recorded), and the two files restore the same; a dark
    8-bit image and old fit models (trained on such data as is) are left unmapped."""
    import tifffile

    from selfrestore.checkpoint import build_net, read_checkpoint, save_checkpoint
    from selfrestore.cli import main
    from selfrestore.intensity_map import intensity_mapping
    from selfrestore.restore import Restorer

    y, x = np.mgrid[:64, :64]
    clean = 1000 + 800 * np.exp(-((y - 32) ** 2 + (x - 32) ** 2) / 200)
    noisy = np.round(clean + np.random.default_rng(2).normal(0, 40, clean.shape))
    tifffile.imwrite(tmp_path / "u16.tif", noisy.astype(np.uint16))
    tifffile.imwrite(tmp_path / "f32.tif", noisy.astype(np.float32))
    assert main(["restore", str(tmp_path / "u16.tif"), str(tmp_path / "f32.tif"), "-o", str(tmp_path / "out"),
                 "--quiet"]) == 0
    from16, from_float = (tifffile.imread(tmp_path / "out" / f).astype(np.float64) for f in ("u16.tif", "f32.tif"))
    assert np.abs(from16 - from_float).max() <= 1.0  # the same, up to rounding to 16 bits
    assert abs((from16 - clean).mean()) < 5 and np.sqrt(((from16 - clean) ** 2).mean()) < 40
    # a level given on the file's 0-1 scale means the same after the map (the review: it reached the network
    # unchanged, 16-50 times too small for mapped dim data)
    given = Restorer("laine19-gauss5_50", noise_params={"sigma": 40 / 65535}, clipping="off")
    with_level = given.restore(noisy.astype(np.uint16)).astype(np.float64)
    assert np.sqrt(((with_level - clean) ** 2).mean()) < 30
    dark8 = np.round(np.random.default_rng(0).random((64, 64)) * 12) / 255  # an 8-bit image below 12/255
    assert intensity_mapping([dark8], dim=True) is None and intensity_mapping([noisy / 65535]) is None
    # fit maps dim training data and records it; an older fit model (no record) restores such data as is
    assert main(["fit", str(tmp_path / "u16.tif"), "--method", "nb2nb", "--width", "8", "--depth", "2", "--steps",
                 "2", "--patch-size", "32", "--no-amp", "-o", str(tmp_path / "m.safetensors"), "--quiet"]) == 0
    header = read_checkpoint(tmp_path / "m.safetensors")[1]
    assert header["maps_dim_data"] and 800 < header["intensity"]["offset"] * 65535 < 1000
    save_checkpoint(tmp_path / "old.safetensors", build_net("unet", in_channels=1, out_channels=1, width=4),
                    {"method": {"name": "n2n", "noise": "gauss25"}, "channels": 1, "step": 0})
    assert Restorer(tmp_path / "old.safetensors").mapping_for(noisy[:, :, None] / 65535) is None


def test_jpeg_sampling_xmp_and_png_text_are_carried(tmp_path):
    """An audit: a quality-100 4:4:4 JPEG came back 4:2:0 (colour detail halved), and a JPEG's XMP (ratings,
    edits) and a PNG's text chunks (author, comments) were dropped. Now kept, 16-bit colour PNGs included."""
    from PIL import JpegImagePlugin, PngImagePlugin

    pixels = (np.random.default_rng(0).random((40, 48, 3)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "q.jpg", quality=100, subsampling=0, xmp=b"<x:xmpmeta>5</x:xmpmeta>")
    text = PngImagePlugin.PngInfo()
    text.add_text("Author", "me")
    text.add_itxt("Comment", "caf\u00e9")
    Image.fromarray(pixels).save(tmp_path / "t.png", pnginfo=text)
    image, info = read_image(tmp_path / "q.jpg")
    write_image(tmp_path / "out.jpg", image, info)
    with Image.open(tmp_path / "out.jpg") as out:
        assert JpegImagePlugin.get_sampling(out) == 0 and out.info["xmp"] == b"<x:xmpmeta>5</x:xmpmeta>"
    info.xmp = b"<x:xmpmeta>" + b"x" * 70000 + b"</x:xmpmeta>"  # over a JPEG segment: left out, not a crash
    write_image(tmp_path / "big.jpg", image, info)
    with Image.open(tmp_path / "big.jpg") as out:
        assert "xmp" not in out.info
    image, info = read_image(tmp_path / "t.png")
    for name, dtype in (("out8.png", "uint8"), ("out16.png", "uint16")):
        write_image(tmp_path / name, image, info, dtype=dtype)
        with Image.open(tmp_path / name) as out:
            assert out.text == {"Author": "me", "Comment": "caf\u00e9"}, name
        assert read_image(tmp_path / name)[1].png_text == info.png_text


def test_a_fading_dim_time_lapse_gets_one_map_in_memory_and_streamed(tmp_path, monkeypatch):
    """A 16-bit time-lapse fading from above 1/16 of the range to below it was mapped plane by plane: the
    bright planes not at all (unet-gauss25 then shifted them by +2150 of 65535), the dim ones by their
    own percentiles (the review). Now one map for the time series, and the same whether the file is restored
    in memory or streamed plane by plane; a single image keeps its own map."""
    import tifffile

    import selfrestore.memory_check as memory_check
    from selfrestore.cli import main
    from selfrestore.restore import Restorer

    y, x = np.mgrid[:48, :48]
    bump = np.exp(-((y - 24) ** 2 + (x - 24) ** 2) / 150)
    clean = np.stack([500 + peak * bump for peak in (8000, 7000, 5000, 3500)])
    noisy = np.round(clean + np.random.default_rng(0).normal(0, 150, clean.shape)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "t.tif", noisy, photometric="minisblack", metadata={"axes": "TYX"})
    restorer = Restorer("laine19-gauss5_50", clipping="off")
    maps = restorer.stack_mappings(list(noisy / 65535.0), (4,), "T")
    assert maps[0] == maps[3] and maps[0] is not None
    assert main(["restore", str(tmp_path / "t.tif"), "--model", "laine19-gauss5_50", "--clipping", "off", "-o",
                 str(tmp_path / "a.tif"), "--quiet"]) == 0
    restored = tifffile.imread(tmp_path / "a.tif").astype(np.float64)
    for plane, truth in zip(restored, clean):
        assert abs((plane - truth).mean()) < 40 and np.sqrt(((plane - truth) ** 2).mean()) < 150
    monkeypatch.setattr(memory_check, "physical_memory", lambda: 10**4)  # streamed plane by plane
    assert main(["restore", str(tmp_path / "t.tif"), "--model", "laine19-gauss5_50", "--clipping", "off", "-o",
                 str(tmp_path / "b.tif"), "--quiet"]) == 0
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "b.tif"), restored)


def test_a_dim_map_that_takes_the_noise_away_from_the_model_is_declined():
    """A dark 16-bit photo (values in [0, 0.2]) with noise of 25/255: its map (scale ~0.4) took the noise to
    ~60/255, far from unet-gauss25's level, 5-6 dB worse than restoring it as it is (the review). Such a map
    is declined; with weak noise (2/255, where the map helps by 15 dB) it is kept."""
    from skimage import data

    from selfrestore.restore import Restorer

    clean = data.astronaut()[:128, :128] / 255.0 * 0.2
    restorer = Restorer("unet-gauss25", clipping="off")
    for sigma, mapped in ((25, False), (2, True)):
        noisy = np.clip(clean + np.random.default_rng(0).normal(0, sigma / 255, clean.shape), 0, 1)
        image = np.round(noisy * 65535) / 65535
        assert (restorer.mapping_for(image.astype(np.float32)) is not None) == mapped, sigma


def test_adapt_trains_on_the_scale_each_plane_is_restored_on(tmp_path, monkeypatch):
    """The review: `restore --adapt` mapped each plane of a dim time-lapse by its own percentiles (scales 0.050
    .. 0.0076) while the planes are restored with their group's one map (0.056): the network was fine-tuned on
    planes stretched up to 7x more than those it then restored. Now it gets the group maps; so does the
    level-mismatch check."""
    import tifffile

    import selfrestore.commands.restore as command
    from selfrestore.cli import main
    from selfrestore.restore import Restorer

    y, x = np.mgrid[:48, :48]
    bump = np.exp(-((y - 24) ** 2 + (x - 24) ** 2) / 150)
    clean = np.stack([500 + peak * bump for peak in (3000, 2000, 1000, 500)])
    noisy = np.round(clean + np.random.default_rng(0).normal(0, 50, clean.shape)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "t.tif", noisy, photometric="minisblack", metadata={"axes": "TYX"})
    seen = {}
    monkeypatch.setattr(command, "adapt_model", lambda restorer, images, steps, quiet=False, maps=None:
                        seen.update(maps=maps))
    assert main(["restore", str(tmp_path / "t.tif"), "--model", "unet-gauss25", "--adapt", "1", "-o",
                 str(tmp_path / "a.tif"), "--quiet"]) == 0
    expected = Restorer("unet-gauss25").stack_mappings(list(noisy / 65535.0), (4,), "T")
    assert expected[0] is not None and expected[0] == expected[3]  # one map for the time series
    assert seen["maps"] == expected


def test_a_models_recorded_map_is_never_declined(tmp_path):
    """A model fitted on dim data records its map and was trained on mapped data: the check that declines a
    dim map taking the noise away from the model's level applies to maps made from an image, not to this one
    (the final read: a noisy dim image lost the recorded map and met the network unmapped)."""
    from selfrestore.checkpoint import build_net, save_checkpoint
    from selfrestore.restore import Restorer

    recorded = {"offset": 0.01, "scale": 0.03}
    save_checkpoint(tmp_path / "m.safetensors", build_net("unet", in_channels=1, out_channels=1, width=4),
                    {"method": {"name": "n2n", "noise": "gauss25"}, "channels": 1, "step": 0,
                     "intensity": recorded, "maps_dim_data": True})
    image = np.clip(0.025 + np.random.default_rng(0).normal(0, 20 / 255, (64, 64, 1)), 0, 1).astype(np.float32)
    restorer = Restorer(tmp_path / "m.safetensors")
    assert restorer.mapping_for(image) == recorded
    assert restorer.stack_mappings([image, image], (2,), "T") == [recorded, recorded]
