"""Real-world image files read and written as a viewer shows them: CMYK, palette and MinIsWhite TIFFs (their
stored values are no RGB / gray to restore), a TIFF's orientation tag and a photo's EXIF orientation across
formats, a PNG's transparent colour, 16-bit PPM / PGM, lossless WebP, signed and 32-bit integer TIFFs, an EXIF
block too large for JPEG, and a scan's resolution (dpi)."""
import numpy as np
import pytest
import tifffile
from PIL import Image

from selfrestore.errors import UserError
from selfrestore.io import read_frames, read_image, write_frames, write_image


def _pattern(seed=0, shape=(24, 40, 3)):
    return (np.random.default_rng(seed).random(shape) * 255).astype(np.uint8)


def test_a_cmyk_tiff_is_read_as_rgb_not_as_rgb_plus_alpha(tmp_path):
    """The four inks were taken for R, G, B and alpha: the output was an RGBA TIFF of cyan, magenta, yellow
    and a black ink for transparency."""
    rgb = _pattern()
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "in.tif")
    image, info = read_image(tmp_path / "in.tif")
    assert image.shape == (24, 40, 3) and info.alpha is None and info.dtype == "uint8"
    expected = np.asarray(Image.open(tmp_path / "in.tif").convert("RGB"))
    assert np.array_equal(np.round(image * 255).astype(np.uint8), expected)
    write_image(tmp_path / "out.tif", image, info)
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        assert tif.pages[0].photometric == 2 and tif.pages[0].shape == (24, 40, 3)


def test_a_palette_tiff_is_read_through_its_colour_map(tmp_path):
    """The palette indices were restored as a gray image (values 0..15 of 255: nearly black)."""
    Image.fromarray(_pattern()).quantize(16).save(tmp_path / "in.tif")
    image, info = read_image(tmp_path / "in.tif")
    expected = np.asarray(Image.open(tmp_path / "in.tif").convert("RGB"))
    assert image.shape == (24, 40, 3) and info.dtype == "uint8"
    assert np.array_equal(np.round(image * 255).astype(np.uint8), expected)


def test_a_min_is_white_tiff_is_not_written_inverted(tmp_path):
    """MinIsWhite values were restored as they are stored and written as MinIsBlack: the output showed the
    negative of the input."""
    gray = _pattern(shape=(24, 40))
    tifffile.imwrite(tmp_path / "in.tif", gray, photometric="miniswhite")
    image, info = read_image(tmp_path / "in.tif")
    write_image(tmp_path / "out.tif", image, info)
    shown_in = np.asarray(Image.open(tmp_path / "in.tif").convert("L"))
    shown_out = np.asarray(Image.open(tmp_path / "out.tif").convert("L"))
    assert np.array_equal(shown_out, shown_in)


def _orientation(path):
    with tifffile.TiffFile(path) as tif:
        tag = tif.pages[0].tags.get(274)
        return None if tag is None else int(tag.value)


def test_orientation_goes_between_a_tiff_tag_and_exif(tmp_path):
    """A TIFF's Orientation tag was dropped (to TIFF, PNG or JPEG), and so was a phone photo's EXIF orientation
    written to TIFF: the output displayed turned by 90 degrees against the input."""
    rgb = _pattern()
    tifffile.imwrite(tmp_path / "in.tif", rgb, photometric="rgb", extratags=[(274, "H", 1, 6, True)])
    image, info = read_image(tmp_path / "in.tif")
    assert image.shape == (24, 40, 3)  # the pixels as stored; the tag says how to show them
    assert _orientation(write_image(tmp_path / "out.tif", image, info)) == 6
    with Image.open(write_image(tmp_path / "out.jpg", image, info)) as img:
        assert img.getexif().get(274) == 6
    exif = Image.Exif()
    exif[274] = 8
    Image.fromarray(rgb).save(tmp_path / "photo.jpg", exif=exif.tobytes())
    image, info = read_image(tmp_path / "photo.jpg")
    assert _orientation(write_image(tmp_path / "photo.tif", image, info)) == 8


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_a_png_transparent_colour_becomes_alpha(tmp_path, mode):
    """A PNG's tRNS colour key (RGB or gray) was dropped: the transparent background came out opaque."""
    pixels = _pattern(shape=(24, 40, 3) if mode == "RGB" else (24, 40))
    pixels[:6, :6] = 7
    key = (7, 7, 7) if mode == "RGB" else 7
    Image.fromarray(pixels).save(tmp_path / "in.png", transparency=key)
    image, info = read_image(tmp_path / "in.png")
    assert info.alpha is not None and image.shape[2] == (3 if mode == "RGB" else 1)
    assert (info.alpha[:6, :6] == 0).all() and info.alpha.sum() > 0
    write_image(tmp_path / "out.png", image, info)
    with Image.open(tmp_path / "out.png") as img:
        assert img.mode == ("RGBA" if mode == "RGB" else "LA")
        assert (np.asarray(img)[:6, :6, -1] == 0).all()


@pytest.mark.parametrize("suffix,shape", [(".ppm", (24, 40, 3)), (".pgm", (24, 40))])
def test_16_bit_ppm_and_pgm_keep_16_bits(tmp_path, suffix, shape):
    """A 16-bit PPM was read as 8 bits (PIL reduces it), and a 16-bit PGM, read as 16 bits, was written as 8."""
    pixels = (np.random.default_rng(0).random(shape) * 65535).astype(np.uint16)
    magic = b"P6" if len(shape) == 3 else b"P5"
    (tmp_path / f"in{suffix}").write_bytes(magic + b"\n# a comment\n40 24\n65535\n" + pixels.astype(">u2").tobytes())
    image, info = read_image(tmp_path / f"in{suffix}")
    assert info.dtype == "uint16"
    assert np.array_equal(np.round(image * 65535).astype(np.uint16).reshape(shape), pixels)
    back, back_info = read_image(write_image(tmp_path / f"out{suffix}", image, info))
    assert back_info.dtype == "uint16" and np.array_equal(back, image)
    with Image.open(tmp_path / f"out{suffix}") as img:  # a valid file for other readers too
        img.load()


def test_a_lossless_webp_is_written_lossless(tmp_path):
    """A lossless WebP was written back lossy (PIL's default quality 80): pixels off by up to 100 levels."""
    Image.fromarray(_pattern()).save(tmp_path / "in.webp", lossless=True)
    image, info = read_image(tmp_path / "in.webp")
    back, _ = read_image(write_image(tmp_path / "out.webp", image, info))
    assert np.array_equal(back, image)


def test_signed_and_32_bit_integer_tiffs_keep_their_values(tmp_path):
    """Integers beyond 16 bits were divided by the type's maximum: a signed 32-bit image of -1000..1000 became
    about +-5e-7, which the network restored into a flat image; now they are float data in their own units."""
    values = np.random.default_rng(0).integers(-1000, 1000, (24, 40)).astype(np.int32)
    tifffile.imwrite(tmp_path / "in.tif", values)
    image, info = read_image(tmp_path / "in.tif")
    assert info.dtype == "float32" and np.array_equal(image[:, :, 0], values.astype(np.float32))
    write_image(tmp_path / "out.tif", image, info)
    assert np.array_equal(tifffile.imread(tmp_path / "out.tif"), values.astype(np.float32))
    with pytest.raises(UserError, match=r"out\.png: data outside \[0, 1\] \(float, or integers beyond 16 bits"):
        write_image(tmp_path / "out.png", image, info)  # PNG would clip them: a one-line error instead


def test_an_integer_stack_gets_one_pixel_type_for_all_its_planes(tmp_path):
    """Each plane chose its own: an int32 stack with a plane in 0..1000 and one in 0..100000 read the first as
    16-bit (scaled to [0, 1]) and the second in counts, which the 16-bit output then clipped at 65535."""
    planes = np.stack([np.full((24, 40), 1000), np.full((24, 40), 100000)]).astype(np.int32)
    planes[:, 0, 0] = 0
    tifffile.imwrite(tmp_path / "in.tif", planes)
    frames, info = read_frames(tmp_path / "in.tif")
    assert info.dtype == "float32" and [float(f.max()) for f in frames] == [1000.0, 100000.0]


@pytest.mark.parametrize("dtype", ["int16", "uint32", "int32", "float32"])
def test_a_wide_or_signed_min_is_white_tiff_is_inverted_in_order(tmp_path, dtype):
    """The type's maximum minus a negative value overflowed: -1000..999 came back as -32767..32763, unordered;
    32-bit and float MinIsWhite images were restored as stored and written as MinIsBlack (shown inverted). They
    are float data in their own units: reversed, exactly, and written back as float (no white value to keep)."""
    values = np.arange(-1000, 1000).reshape(40, 50) + (100000 if dtype == "uint32" else 0)
    tifffile.imwrite(tmp_path / "in.tif", values.astype(dtype), photometric="miniswhite")
    image, info = read_image(tmp_path / "in.tif")
    assert np.all(np.diff(image[:, :, 0].ravel()) < 0)  # inverted: brighter where the stored value is lower
    if dtype != "int16":
        assert info.dtype == "float32" and np.array_equal(np.diff(image[:, :, 0].ravel()), -np.ones(1999))
        write_image(tmp_path / "out.tif", image, info)
        with tifffile.TiffFile(tmp_path / "out.tif") as tif:
            assert tif.pages[0].photometric == 1 and tif.pages[0].dtype == np.float32


def test_a_damaged_tiff_orientation_tag_does_not_block_the_pixels(tmp_path):
    tifffile.imwrite(tmp_path / "in.tif", _pattern(), photometric="rgb", extratags=[(274, "H", 2, (6, 6), True)])
    image, info = read_image(tmp_path / "in.tif")
    assert image.shape == (24, 40, 3) and not info.exif


def test_a_jpeg_without_a_resolution_does_not_gain_one(tmp_path):
    """PIL reports 72 dpi for a JPEG with EXIF but no resolution: the PNG output got a pHYs chunk it never had."""
    exif = Image.Exif()
    exif[274] = 1
    Image.fromarray(_pattern()).save(tmp_path / "in.jpg", exif=exif.tobytes())
    image, info = read_image(tmp_path / "in.jpg")
    write_image(tmp_path / "out.png", image, info)
    with Image.open(tmp_path / "out.png") as img:
        assert "dpi" not in img.info


def test_an_exif_block_too_large_for_jpeg_keeps_the_orientation_without_a_crash(tmp_path):
    """A PNG / WebP may hold more EXIF than a JPEG marker (64 kB): writing it to JPEG raised PIL's ValueError,
    a traceback from `restore`."""
    exif = Image.Exif()
    exif[274] = 6
    exif[0x010E] = "x" * 70000  # ImageDescription
    Image.fromarray(_pattern()).save(tmp_path / "in.png", exif=exif.tobytes())
    image, info = read_image(tmp_path / "in.png")
    write_image(tmp_path / "out.jpg", image, info)
    with Image.open(tmp_path / "out.jpg") as img:
        assert img.getexif().get(274) == 6


@pytest.mark.parametrize("source,target", [(".png", ".png"), (".jpg", ".jpg"), (".png", ".tif"), (".tif", ".png")])
def test_a_scan_keeps_its_resolution(tmp_path, source, target):
    """The dpi of a PNG or JPEG was dropped (a TIFF's was kept, but not to other formats): a 300 dpi scan came
    out without its print size."""
    if source == ".tif":
        tifffile.imwrite(tmp_path / "in.tif", _pattern(), photometric="rgb", resolution=(300, 300),
                         resolutionunit="INCH")
    else:
        Image.fromarray(_pattern()).save(tmp_path / f"in{source}", dpi=(300, 300))
    image, info = read_image(tmp_path / f"in{source}")
    write_image(tmp_path / f"out{target}", image, info)
    with Image.open(tmp_path / f"out{target}") as img:
        assert img.info.get("dpi") == pytest.approx((300, 300), abs=0.01)


@pytest.mark.parametrize("codec,predictor,expected", [("lzw", True, "LZW"), ("zstd", False, "ZSTD"),
                                                      ("jpeg", False, "ADOBE_DEFLATE")])
def test_a_compressed_tiff_comes_back_compressed(tmp_path, codec, predictor, expected):
    """LZW / JPEG TIFFs could not be read (no imagecodecs), and every TIFF output was uncompressed: a
    compressed microscope stack came back several times larger. Lossless codecs are kept; a lossy one gives
    Deflate, which adds no loss to the restored pixels."""
    stored = _pattern() if codec == "jpeg" else (np.random.default_rng(1).random((24, 40)) * 65535).astype(np.uint16)
    tifffile.imwrite(tmp_path / "in.tif", stored, compression=codec, predictor=predictor,
                     photometric="rgb" if stored.ndim == 3 else "minisblack")
    image, info = read_image(tmp_path / "in.tif")
    write_image(tmp_path / "out.tif", image, info)
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        page = tif.pages[0]
        assert page.compression.name == expected and (int(page.predictor) != 1) == predictor
        if codec != "jpeg":
            assert np.array_equal(tif.asarray(), stored)


def test_a_compressed_imagej_stack_stays_a_compressed_imagej_stack(tmp_path):
    planes = (np.random.default_rng(2).random((3, 24, 40)) * 65535).astype(np.uint16)
    tifffile.imwrite(tmp_path / "in.tif", planes, compression="lzw", imagej=True, metadata={"axes": "ZYX"})
    frames, info = read_frames(tmp_path / "in.tif")
    write_frames(tmp_path / "out.tif", frames, info)
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        assert tif.is_imagej and tif.pages[0].compression.name == "LZW"
        assert np.array_equal(tif.asarray(), planes)


def _frame_files(folder):
    """One file of each kind whose stored form is not what read_image returns."""
    folder.mkdir()
    rgb = _pattern()
    Image.fromarray(rgb).convert("CMYK").save(folder / "cmyk.tif")
    Image.fromarray(rgb).quantize(16).save(folder / "palette.tif")
    Image.fromarray(rgb[:, :, 0]).save(folder / "trns.png", transparency=0)
    write_image(folder / "deep.ppm", rgb.astype(np.float32) / 255, dtype="uint16")
    return sorted(folder.iterdir())


def test_a_video_frame_header_agrees_with_read_image(tmp_path):
    """The fast header of a video's frame files (size, channels, alpha, pixel type) read CMYK TIFF frames as
    RGB + alpha (a false 'alpha left out' warning), palette TIFFs as gray, a 16-bit PPM as 8-bit (written
    back in 8 bits) and a PNG's transparent colour as no alpha."""
    from selfrestore.video_io import _frame_header

    for path in _frame_files(tmp_path / "frames"):
        image, info = read_image(path)
        assert _frame_header(path) == (*image.shape, info.alpha is not None, info.dtype, info.stored_type), path.name


def test_an_integer_stack_restores_alike_in_memory_and_streamed(tmp_path, monkeypatch):
    """A stack too large for memory is restored plane by plane: there too one pixel type for all planes (the
    plane in 0..100000 was clipped at 65535), and a MinIsWhite stack is not restored inverted."""
    import selfrestore.memory_check as memory_check
    from selfrestore.restore import Restorer
    from selfrestore.cli import main

    monkeypatch.setattr(Restorer, "_restore", lambda self, image, progress, params=None: image)
    planes = np.stack([np.arange(24 * 40).reshape(24, 40) * 1, np.arange(24 * 40).reshape(24, 40) * 100])
    tifffile.imwrite(tmp_path / "int.tif", planes.astype(np.int32), metadata={"axes": "ZYX"})
    tifffile.imwrite(tmp_path / "white.tif", planes.astype(np.uint16), photometric="miniswhite",
                     metadata={"axes": "ZYX"})
    for name in ("int", "white"):
        base = ["restore", str(tmp_path / f"{name}.tif"), "--model", "unet-gauss25", "--clipping", "off", "--quiet"]
        assert main([*base, "-o", str(tmp_path / f"{name}_a.tif")]) == 0
        with monkeypatch.context() as patched:
            patched.setattr(memory_check, "physical_memory", lambda: 10**4)
            code = main([*base, "-o", str(tmp_path / f"{name}_b.tif")])
        if name == "int":
            assert code == 0
            for out in ("int_a.tif", "int_b.tif"):  # (through the intensity map and back: float rounding)
                np.testing.assert_allclose(tifffile.imread(tmp_path / out), planes, rtol=1e-6, atol=0.01)
        else:  # not streamable: the memory error, not an inverted stack
            assert code != 0 and not (tmp_path / "white_b.tif").exists()


@pytest.mark.parametrize("suffix", [".webp", ".png"])
def test_an_animation_is_refused_not_cut_to_its_first_frame(tmp_path, suffix):
    """An animated WebP / PNG was read as its first frame alone, silently: the output had one frame."""
    from selfrestore.errors import ImageReadError

    frames = [Image.fromarray(_pattern(seed)) for seed in range(3)]
    frames[0].save(tmp_path / f"in{suffix}", save_all=True, append_images=frames[1:], duration=40)
    with pytest.raises(ImageReadError, match=r"an animated (WEBP|PNG) of 3 frames.*selfrestore video"):
        read_image(tmp_path / f"in{suffix}")
    frames[0].save(tmp_path / f"still{suffix}")
    assert read_image(tmp_path / f"still{suffix}")[0].shape == (24, 40, 3)


def test_premultiplied_alpha_is_read_as_straight_colour(tmp_path):
    """A TIFF with associated (premultiplied) alpha was restored and written back with unassociated alpha as
    stored: half-transparent areas came out darker (at alpha 1/2, half as bright)."""
    straight = np.concatenate([_pattern(), np.full((24, 40, 1), 255, np.uint8)], axis=2)
    straight[:, :20, 3] = 128
    stored = straight.copy()
    stored[..., :3] = np.round(straight[..., :3] * (straight[..., 3:] / 255.0)).astype(np.uint8)
    tifffile.imwrite(tmp_path / "in.tif", stored, photometric="rgb", extrasamples=[1])
    image, info = read_image(tmp_path / "in.tif")
    assert np.abs(np.round(image * 255) - straight[..., :3]).max() <= 2  # (8-bit premultiplication rounding)
    write_image(tmp_path / "out.png", image, info)
    with Image.open(tmp_path / "out.png") as img:
        assert np.abs(np.asarray(img).astype(int) - straight).max() <= 2


def test_premultiplied_float_alpha_keeps_values_above_one(tmp_path):
    straight = np.random.default_rng(3).random((24, 40, 3)).astype(np.float32) * 4  # counts up to 4
    alpha = np.full((24, 40, 1), 0.5, np.float32)
    tifffile.imwrite(tmp_path / "in.tif", np.concatenate([straight * alpha, alpha], axis=2), photometric="rgb",
                     extrasamples=[1])
    image, _ = read_image(tmp_path / "in.tif")
    np.testing.assert_allclose(image, straight, rtol=1e-6)


@pytest.mark.parametrize("target", [".png", ".jpg"])
def test_a_resolution_beyond_the_format_is_left_out(tmp_path, target):
    """An electron micrograph's 5e7 pixels per cm ended a PNG output in an OverflowError (a traceback) and
    wrapped around in a JPEG's 16-bit density field (254000 dpi written as 57392)."""
    tifffile.imwrite(tmp_path / "in.tif", _pattern(), photometric="rgb", resolution=(5e7, 5e7),
                     resolutionunit="CENTIMETER")
    image, info = read_image(tmp_path / "in.tif")
    write_image(tmp_path / f"out{target}", image, info)
    with Image.open(tmp_path / f"out{target}") as img:
        assert "dpi" not in img.info  # (wrapped around, it had a value under 65536 that was not the file's)


def test_an_imagej_float_stack_gets_no_predictor_imagej_cannot_read(tmp_path):
    """A compressed ImageJ stack's float output (the --uncertainty map) got predictor 3, which ImageJ shows as
    garbage."""
    planes = (np.random.default_rng(2).random((3, 24, 40)) * 65535).astype(np.uint16)
    tifffile.imwrite(tmp_path / "in.tif", planes, compression="lzw", predictor=True, imagej=True,
                     metadata={"axes": "ZYX"})
    frames, info = read_frames(tmp_path / "in.tif")
    write_frames(tmp_path / "out.tif", frames, info, dtype="float32")
    write_frames(tmp_path / "out16.tif", frames, info)
    with tifffile.TiffFile(tmp_path / "out.tif") as tif, tifffile.TiffFile(tmp_path / "out16.tif") as tif16:
        assert tif.is_imagej and tif.pages[0].compression.name == "LZW" and int(tif.pages[0].predictor) == 1
        assert int(tif16.pages[0].predictor) == 2  # LZW on integers: ImageJ reads the horizontal predictor


def test_a_16_bit_palette_frame_header_says_16_bit(tmp_path):
    from selfrestore.video_io import _frame_header

    colours = np.random.default_rng(4).integers(0, 65536, (3, 256)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "p.tif", _pattern()[:, :, 0], photometric="palette", colormap=colours)
    image, info = read_image(tmp_path / "p.tif")
    assert info.dtype == "uint16" and _frame_header(tmp_path / "p.tif") == (24, 40, 3, False, "uint16", None)


def test_a_lossy_webp_is_written_at_jpeg_quality(tmp_path):
    """Restored pixels went to a lossy WebP at PIL's default quality 80 (JPEG outputs get 95)."""
    Image.fromarray(_pattern()).save(tmp_path / "in.webp", quality=90)
    image, info = read_image(tmp_path / "in.webp")
    assert not info.webp_lossless
    write_image(tmp_path / "out.webp", image, info)
    Image.fromarray(np.round(image * 255).astype(np.uint8)).save(tmp_path / "q95.webp", quality=95)
    assert (tmp_path / "out.webp").read_bytes() == (tmp_path / "q95.webp").read_bytes()


def test_an_animated_frame_stops_a_video_before_any_work(tmp_path):
    """An animated PNG among a video's frame files passed the check of every frame, then stopped the run when its
    turn came (after frames were written)."""
    from selfrestore.errors import ImageReadError
    from selfrestore.video_io import VideoReader

    (tmp_path / "frames").mkdir()
    for index in range(3):
        Image.fromarray(_pattern(index)).save(tmp_path / "frames" / f"{index:03d}.png")
    still = [Image.fromarray(_pattern(seed)) for seed in range(2)]
    still[0].save(tmp_path / "frames" / "002.png", save_all=True, append_images=still[1:])
    with pytest.raises(ImageReadError, match=r"002\.png: an animated PNG of 2 frames"):
        VideoReader(str(tmp_path / "frames"))


def test_a_16_bit_gray_png_transparent_value_becomes_alpha(tmp_path):
    """The 8-bit gray tRNS was read as alpha, the 16-bit one dropped (and the video frame header agreed)."""
    from selfrestore.video_io import _frame_header

    pixels = (np.arange(24 * 40).reshape(24, 40) * 60).astype(np.uint16)
    pixels[:6, :6] = 7
    Image.fromarray(pixels).save(tmp_path / "in.png", transparency=7)
    image, info = read_image(tmp_path / "in.png")
    assert info.dtype == "uint16" and image.shape == (24, 40, 1) and info.alpha is not None
    assert (info.alpha[:6, :6] == 0).all() and (info.alpha[6:] == 1).all()
    assert _frame_header(tmp_path / "in.png") == (24, 40, 1, True, "uint16", None)
    write_image(tmp_path / "out.png", image, info)
    back, back_info = read_image(tmp_path / "out.png")
    assert back_info.dtype == "uint16" and np.array_equal(back_info.alpha, info.alpha)


def test_a_premultiplied_stack_too_large_for_memory_is_not_streamed_as_stored(tmp_path, monkeypatch):
    """read_frames makes premultiplied colour straight; the plane-by-plane path (a stack too large for memory)
    restored the stored premultiplied values: it now refuses such a stack with the memory error."""
    import selfrestore.memory_check as memory_check
    from selfrestore.cli import main

    planes = np.concatenate([np.stack([_pattern(seed) for seed in range(2)]), np.full((2, 24, 40, 1), 128, np.uint8)],
                            axis=3)
    tifffile.imwrite(tmp_path / "in.tif", planes, photometric="rgb", extrasamples=[1], metadata={"axes": "ZYXS"})
    monkeypatch.setattr(memory_check, "physical_memory", lambda: 10**4)
    assert main(["restore", str(tmp_path / "in.tif"), "--model", "unet-gauss25", "-o", str(tmp_path / "out.tif"),
                 "--quiet"]) != 0
    assert not (tmp_path / "out.tif").exists()


@pytest.mark.parametrize("layout", ["imagej", "imagej-one-ifd", "zlib"])
def test_a_truncated_tiff_stack_is_an_error_not_its_first_pages(tmp_path, monkeypatch, capsys, layout):
    """A stack cut short (an interrupted copy) was read up to the damage: a 5-plane ImageJ stack was restored
    as one 64 x 64 image with exit code 0, and tifffile's raw log lines were the only sign. Now every reader
    (in memory, plane by plane) says the file is incomplete, in one line; a cut that leaves every plane
    readable (a shaped file's trailing page headers) is read whole, as before."""
    from selfrestore import memory_check
    from selfrestore.cli import main
    from selfrestore.errors import ImageReadError

    stack = (np.random.default_rng(0).random((5, 64, 64)) * 65535).astype(np.uint16)
    options = {"imagej": {"imagej": True}, "imagej-one-ifd": {"imagej": True, "truncate": True},
               "zlib": {"compression": "zlib"}}[layout]
    for name, kind in (("full", options), ("plain", {})):
        tifffile.imwrite(tmp_path / f"{name}.tif", stack, **kind, metadata={"axes": "ZYX"})
    (tmp_path / "cut").mkdir()
    for name, fraction in (("full", 0.6), ("plain", None)):
        stored = (tmp_path / f"{name}.tif").read_bytes()
        with tifffile.TiffFile(tmp_path / f"{name}.tif") as tif:  # zlib / plain: where the third page starts
            cut = int(len(stored) * fraction) if layout.startswith("imagej") and fraction else tif.pages[2].offset
        (tmp_path / "cut" if name == "full" else tmp_path).joinpath(f"cut_{name}.tif").write_bytes(stored[:cut])
    with pytest.raises(ImageReadError, match="cut_full.tif: (incomplete TIFF|cannot read)"):
        read_image(tmp_path / "cut" / "cut_full.tif")
    assert read_frames(tmp_path / "full.tif")[1].stack_shape == (5,)  # the whole file: read as before
    frames, info = read_frames(tmp_path / "cut_plain.tif")  # only trailing page headers cut: all planes there
    assert info.stack_shape == (5,) and np.array_equal(np.stack(frames)[..., 0], stack / np.float32(65535))
    for streamed in (False, True):
        if streamed:
            monkeypatch.setattr(memory_check, "physical_memory", lambda: 10**4)  # plane by plane
        capsys.readouterr()
        assert main(["restore", str(tmp_path / "cut"), "--model", "unet-gauss25", "--quiet",
                     "-o", str(tmp_path / f"out{streamed}")]) == 1
        err = capsys.readouterr().err
        assert "cut_full.tif: " in err and "tifffile" not in err and "Traceback" not in err
        assert not list((tmp_path / f"out{streamed}").rglob("*.tif"))


@pytest.mark.parametrize("options", [{}, {"bigtiff": True}, {"byteorder": ">"}])
def test_a_plain_multi_page_tiff_cut_between_pages_is_an_error(tmp_path, capsys, options):
    """A plain multi-page TIFF (no ImageJ or shaped description) states no page count: cut between two pages,
    it was read as the pages before the cut (3 of 5) with exit code 0. The last page read points past the end
    of the file: a one-line error, in memory and plane by plane; the whole file reads as before."""
    from selfrestore.cli import main
    from selfrestore.errors import ImageReadError

    stack = (np.random.default_rng(0).random((5, 32, 40)) * 255).astype(np.uint8)
    with tifffile.TiffWriter(tmp_path / "plain.tif", **options) as writer:
        for plane in stack:
            writer.write(plane, metadata=None, contiguous=False)
    assert read_frames(tmp_path / "plain.tif")[1].stack_shape == (5,)
    with tifffile.TiffFile(tmp_path / "plain.tif") as tif:
        cut = tif.pages[3].offset
    (tmp_path / "cut").mkdir()
    for inside in (1, 0):  # one byte into the fourth page's header (a review found it read silently), then before
        (tmp_path / "cut" / "cut.tif").write_bytes((tmp_path / "plain.tif").read_bytes()[:cut + inside])
        with pytest.raises(ImageReadError, match=r"cut.tif: incomplete TIFF: its last readable image \(3\)"):
            read_frames(tmp_path / "cut" / "cut.tif")
    capsys.readouterr()
    assert main(["restore", str(tmp_path / "cut"), "--model", "unet-gauss25", "--quiet",
                 "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "cut.tif: incomplete TIFF" in err and "Traceback" not in err and len(err.strip().splitlines()) <= 2
    assert not list((tmp_path / "out").rglob("*.tif"))


def test_a_tiff_of_separate_same_size_series_is_refused_not_read_as_its_first(tmp_path):
    """tifffile's writer makes one series per write() call: such a file of 4 planes was read as its first plane
    (exit code 0). Now a one-line error that says how to save a stack; a one-write stack reads whole."""
    from selfrestore.errors import ImageReadError

    planes = (np.random.default_rng(0).random((4, 20, 30)) * 255).astype(np.uint8)
    with tifffile.TiffWriter(tmp_path / "series.tif") as writer:
        for plane in planes:
            writer.write(plane)
    with pytest.raises(ImageReadError, match=r"series.tif: holds 4 separate images of 20x30 .* one stack"):
        read_frames(tmp_path / "series.tif")
    tifffile.imwrite(tmp_path / "stack.tif", planes, photometric="minisblack", metadata={"axes": "ZYX"})
    assert len(read_frames(tmp_path / "stack.tif")[0]) == 4


def test_a_tiff_whose_first_series_is_a_preview_is_refused_and_a_trailing_thumbnail_is_fine(tmp_path):
    """A TIFF of different-size series was read as its first series whatever it was: with a small preview
    stored first, the preview was restored and the real image silently dropped. Now refused, naming the series
    to save; an image followed by its thumbnail still reads as the image."""
    from selfrestore.errors import ImageReadError

    rng = np.random.default_rng(0)
    full, thumb = (rng.random((40, 60, 3)) * 255).astype(np.uint8), (rng.random((10, 15, 3)) * 255).astype(np.uint8)
    with tifffile.TiffWriter(tmp_path / "preview_first.tif") as writer:
        writer.write(thumb, photometric="rgb")
        writer.write(full, photometric="rgb")
    with pytest.raises(ImageReadError, match=r"preview_first.tif: holds 2 images of different sizes \(10x15x3, "
                                             r"40x60x3.* not the largest .*series=1"):
        read_image(tmp_path / "preview_first.tif")
    with tifffile.TiffWriter(tmp_path / "thumb_last.tif") as writer:
        writer.write(full, photometric="rgb")
        writer.write(thumb, photometric="rgb")
    assert np.array_equal(np.round(read_image(tmp_path / "thumb_last.tif")[0] * 255), full)


def test_the_alpha_of_a_tiff_stack_is_said_to_be_dropped(tmp_path, capsys, monkeypatch):
    """An RGBA TIFF stack came back RGB from `restore` and `video` without a word (a single RGBA image keeps its
    alpha): now both say so, even with --quiet, and so does a stack too large for memory, restored plane by plane."""
    import selfrestore.memory_check as memory_check
    from selfrestore.cli import main

    rng = np.random.default_rng(0)
    stack = (rng.random((3, 40, 48, 4)) * 255).astype(np.uint8)
    tifffile.imwrite(tmp_path / "rgba.tif", stack, photometric="rgb", extrasamples=["unassalpha"])
    assert read_frames(tmp_path / "rgba.tif")[1].stack_alpha_dropped
    assert main(["restore", str(tmp_path / "rgba.tif"), "--model", "unet-gauss25", "--quiet",
                 "-o", str(tmp_path / "out.tif")]) == 0
    assert "alpha channel of this stack's images is not restored" in capsys.readouterr().err
    from selfrestore.video_io import VideoReader

    assert VideoReader(str(tmp_path / "rgba.tif")).info.alpha  # `video` warns on it (as for PNG frames)
    monkeypatch.setattr(memory_check, "physical_memory", lambda: 60000)  # too large: streamed
    assert main(["restore", str(tmp_path / "rgba.tif"), "--model", "unet-gauss25", "--quiet",
                 "-o", str(tmp_path / "streamed.tif")]) == 0
    assert "alpha channel of this stack's images is not restored" in capsys.readouterr().err
    assert tifffile.imread(tmp_path / "streamed.tif").shape == (3, 40, 48, 3)


def test_float64_values_beyond_the_float32_range_are_refused_not_turned_to_inf(tmp_path, capsys):
    """A float64 TIFF of values around 1e40 became inf on reading: inspect gave a wrong reason and restore
    wrote an image all inf with exit 0 (an audit). Now a one-line refusal, from files and from arrays."""
    import tifffile

    from selfrestore.cli import main
    from selfrestore.errors import ImageReadError, UserError
    from selfrestore.io import read_image
    from selfrestore.restore import Restorer

    big = np.random.default_rng(0).normal(1e40, 1e39, (64, 64))
    tifffile.imwrite(tmp_path / "big.tif", big)
    with pytest.raises(ImageReadError, match="beyond the range of 32-bit floats"):
        read_image(tmp_path / "big.tif")
    assert main(["restore", str(tmp_path / "big.tif"), "--model", "unet-gauss25", "-o", str(tmp_path / "o.tif"),
                 "--quiet"]) != 0
    assert "beyond the range of 32-bit floats" in capsys.readouterr().err and not (tmp_path / "o.tif").exists()
    with pytest.raises(UserError, match="beyond the range of 32-bit floats"):
        Restorer("unet-gauss25", device="cpu").restore(big)
    tifffile.imwrite(tmp_path / "fine.tif", big / 1e20)  # large but representable: read as it is
    assert np.isfinite(read_image(tmp_path / "fine.tif")[0]).all()
