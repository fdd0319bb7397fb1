"""int16 / uint32 / int32 / float64 inputs keep their own type where `restore` streams a stack too large for memory
plane by plane, and in `video`'s TIFF / FITS frame files and stack outputs, as `restore` keeps it in memory
(tests/test_stored_type41.py): both wrote float32. Integers are rounded and clipped to the type (said)."""
import numpy as np
import pytest
import tifffile

from selfrestore.cli import main

SHIFT = 0.6  #: what the stand-in restoration adds, in the data's units: rounding (not truncation) gives +1
HIGH = 10_000  #: values above it (the type's maximum) the stand-in restoration doubles: past the type, clipped
TYPES = [np.int16, np.uint32, np.int32, np.float64]


def _counts(dtype, shape, seed=0) -> np.ndarray:
    """Counts in the type (negative ones for signed types), with the first row of each image at the type's
    maximum (integers: restored past it, so clipped) and well under 2**24 elsewhere (exact in float32)."""
    rng = np.random.default_rng(seed)
    low = -400 if np.dtype(dtype).kind in "if" else 0
    data = np.round(rng.uniform(low, 3000, shape)).astype(dtype)
    if np.dtype(dtype).kind in "iu":
        data[..., 0, :] = np.iinfo(dtype).max
    return data


def _restored(image: np.ndarray) -> np.ndarray:
    """The stand-in restoration of float32 values in the data's units: ``+ SHIFT``, doubled above ``HIGH``."""
    image = np.asarray(image, np.float32)
    return np.where(image > HIGH, image * np.float32(2), image + np.float32(SHIFT)).astype(np.float32)


def _expected(data: np.ndarray) -> np.ndarray:
    """``data`` restored (:func:`_restored`, in float32 as selfrestore computes) and written back in its type."""
    values = _restored(data.astype(np.float32))
    if data.dtype.kind == "f":
        return values.astype(data.dtype)
    bounds = np.iinfo(data.dtype)
    return np.clip(np.round(values.astype(np.float64)), bounds.min, bounds.max).astype(data.dtype)


def _check(written: np.ndarray, data: np.ndarray, exact: bool = True) -> None:
    """The output holds ``data``'s type and the restored values, rounded and clipped (float64 exactly, or to
    float32's precision where ``exact`` is False: frames mapped into [0, 1] and back)."""
    assert written.dtype == data.dtype
    expected = _expected(data)
    if data.dtype.kind in "iu":
        assert np.array_equal(written[..., 1:, :], data[..., 1:, :] + 1)  # rounded, not truncated (-4.4 -> -4)
        assert (written[..., 0, :] == np.iinfo(data.dtype).max).all()  # clipped to the type's maximum
    if exact or data.dtype.kind in "iu":
        assert np.array_equal(written, expected)
    else:
        np.testing.assert_allclose(written, expected, rtol=1e-6, atol=1e-3)


@pytest.fixture
def gray_model(tmp_path):
    """A tiny gray model file: the restoration itself is stood in for (:func:`_restored`)."""
    import torch

    from selfrestore.checkpoint import build_net, save_checkpoint

    torch.manual_seed(0)
    path = tmp_path / "gray.safetensors"
    save_checkpoint(path, build_net("unet", in_channels=1, out_channels=1, width=4, depth=2),
                    {"method": {"name": "n2n", "noise": "gauss25"}, "channels": 1, "step": 0})
    return path


@pytest.mark.parametrize("dtype", TYPES)
def test_a_stack_streamed_plane_by_plane_keeps_its_type(tmp_path, monkeypatch, capsys, gray_model, dtype):
    """The streamed stack equals the in-memory one: the input's type, values rounded and clipped, a warning."""
    import selfrestore.memory_check as memory_check
    from selfrestore.restore import Restorer

    monkeypatch.setattr(Restorer, "restore", lambda self, image, **_: _restored(image))
    data = _counts(dtype, (3, 24, 32))
    tifffile.imwrite(tmp_path / "stack.tif", data, photometric="minisblack", metadata={"axes": "ZYX"})
    base = ["restore", str(tmp_path / "stack.tif"), "--model", str(gray_model)]
    assert main([*base, "--quiet", "-o", str(tmp_path / "memory.tif")]) == 0
    monkeypatch.setattr(memory_check, "physical_memory", lambda: 10 ** 4)  # 10 kB: the stack "does not fit"
    capsys.readouterr()
    assert main([*base, "-o", str(tmp_path / "streamed.tif")]) == 0
    streamed, memory = tifffile.imread(tmp_path / "streamed.tif"), tifffile.imread(tmp_path / "memory.tif")
    _check(streamed, data)
    assert memory.dtype == streamed.dtype and np.array_equal(memory, streamed)
    err = capsys.readouterr().err
    assert "plane by plane" in err
    assert ("are clipped to it" in err) == (np.dtype(dtype).kind in "iu")
    assert not list(tmp_path.glob(".*"))  # no partial or scratch file left


def test_a_streamed_float64_stack_keeps_its_blank_pixels(tmp_path, monkeypatch, gray_model):
    """NaN blanks of a float64 stack stay NaN in the float64 output, streamed or not."""
    import selfrestore.memory_check as memory_check
    from selfrestore.restore import Restorer

    monkeypatch.setattr(Restorer, "restore", lambda self, image, **_: _restored(image))
    data = _counts(np.float64, (3, 24, 32))
    data[1, 5:9, 7:12] = np.nan
    tifffile.imwrite(tmp_path / "stack.tif", data, photometric="minisblack", metadata={"axes": "ZYX"})
    monkeypatch.setattr(memory_check, "physical_memory", lambda: 10 ** 4)
    assert main(["restore", str(tmp_path / "stack.tif"), "--model", str(gray_model), "--quiet",
                 "-o", str(tmp_path / "streamed.tif")]) == 0
    streamed = tifffile.imread(tmp_path / "streamed.tif")
    assert streamed.dtype == np.float64 and np.isnan(streamed[1, 5:9, 7:12]).all()
    assert np.array_equal(streamed, _expected(data), equal_nan=True)


def _write_frames(folder, data: np.ndarray, suffix: str) -> None:
    """``data``'s frames as numbered TIFF or FITS files in ``folder``."""
    folder.mkdir()
    for index, frame in enumerate(data):
        if suffix == ".fits":
            from astropy.io import fits

            fits.PrimaryHDU(frame).writeto(folder / f"f{index:03d}.fits")
        else:
            tifffile.imwrite(folder / f"f{index:03d}.tif", frame, photometric="minisblack")


def _read_frames(folder, suffix: str) -> np.ndarray:
    """The frame files of ``folder`` (in name order) as one array, in their stored type."""
    paths = sorted(folder.glob(f"*{suffix}"))
    if suffix == ".fits":
        from astropy.io import fits

        frames = []
        for path in paths:
            with fits.open(path) as hdus:
                frames.append(np.array(hdus[0].data).astype(hdus[0].data.dtype.newbyteorder("=")))
        return np.stack(frames)
    return np.stack([tifffile.imread(path) for path in paths])


@pytest.mark.parametrize("dtype", TYPES)
@pytest.mark.parametrize("route", ["folder->folder", "stack->pattern", "folder->stack", "fits->fits"])
def test_video_frame_files_keep_their_type(tmp_path, dtype, route):
    """`video`'s frame files (and a stack made of frame files) in the input's type: rounded, clipped, said."""
    from selfrestore.video_io import VideoReader, VideoWriter

    if route == "fits->fits":
        pytest.importorskip("astropy")
    suffix = ".fits" if route == "fits->fits" else ".tif"
    data = _counts(dtype, (4, 24, 32), seed=1)
    if route.startswith("stack"):
        source = tmp_path / "in.tif"
        tifffile.imwrite(source, data, photometric="minisblack", metadata={"axes": "TYX"})
    else:
        source = tmp_path / "in"
        _write_frames(source, data, suffix)
    target = tmp_path / {"stack": "out.tif", "pattern": "out/f%03d.tif"}.get(route.split(">")[1], "out")
    reader = VideoReader(source)
    mapping = reader.info.intensity or {"scale": 1.0, "offset": 0.0}  # frames far outside [0, 1] come mapped
    scale, offset = np.float32(mapping["scale"]), np.float32(mapping["offset"])
    with VideoWriter(target, reader.info) as writer:  # the restoration, in the data's units
        for frame in reader:
            writer.write((_restored(frame * scale + offset) - offset) / scale)
    written = tifffile.imread(target) if route.endswith("stack") else _read_frames(tmp_path / "out", suffix)
    _check(written, data, exact=not reader.info.intensity)
    assert reader.info.stored_type == np.dtype(dtype).name
    said = writer.clipping_said()
    assert (said is not None and "are clipped to it" in said) == (np.dtype(dtype).kind in "iu")


def test_video_frames_of_different_stored_types_come_back_float32(tmp_path):
    """Frames that do not share one type (int16 and int32) have no one type to keep: float32, as before."""
    from selfrestore.video_io import VideoReader, write_video

    data = _counts(np.int32, (2, 24, 32))
    data[..., 0, :] = 20_000  # (within int16)
    (tmp_path / "in").mkdir()
    tifffile.imwrite(tmp_path / "in" / "f0.tif", data[0].astype(np.int16), photometric="minisblack")
    tifffile.imwrite(tmp_path / "in" / "f1.tif", data[1], photometric="minisblack")
    reader = VideoReader(tmp_path / "in")
    write_video(tmp_path / "out", reader.read_all(), reader.info)
    written = _read_frames(tmp_path / "out", ".tif")
    assert written.dtype == np.float32 and np.allclose(written, data, atol=0.01)


@pytest.mark.parametrize("output", ["out", "out.tif"])
def test_the_video_command_keeps_an_int16_video_in_int16(tmp_path, tiny_model, output):
    """End to end: `selfrestore video` on int16 TIFF frames with negative values writes int16 frames / stack."""
    data = _counts(np.int16, (4, 32, 32), seed=2)
    data[..., 0, :] = -200  # (no clipping wanted here: an untrained model)
    _write_frames(tmp_path / "in", data, ".tif")
    assert main(["video", str(tmp_path / "in"), "-o", str(tmp_path / output), "--method", "f2f", "--model",
                 str(tiny_model), "--offline", "--passes", "1", "--steps-per-frame", "1", "--crop", "16",
                 "--quiet"]) == 0
    written = tifffile.imread(tmp_path / output) if output.endswith(".tif") else _read_frames(tmp_path / output,
                                                                                               ".tif")
    assert written.dtype == np.int16 and written.shape == data.shape


@pytest.mark.parametrize("kind", ["int16", "int32-small", "uint32", "float64", "float32", "int16-miniswhite"])
def test_a_video_frame_header_tells_the_type_read_image_keeps(tmp_path, kind):
    """The fast header of a frame file names the stored type :func:`selfrestore.io.read_image` keeps (none for
    int32 values within 16 bits, read as uint16, for float32, or for MinIsWhite, whose values are reversed)."""
    from selfrestore.io import read_image
    from selfrestore.video_io import _frame_header

    dtype = np.dtype(kind.split("-")[0])
    data = _counts(dtype, (24, 32)) if kind != "int32-small" else np.arange(24 * 32, dtype=dtype).reshape(24, 32)
    tifffile.imwrite(tmp_path / "f.tif", data, photometric="miniswhite" if "miniswhite" in kind else "minisblack")
    stored = read_image(tmp_path / "f.tif")[1].stored_type
    assert _frame_header(tmp_path / "f.tif")[5] == stored
    assert (stored is None) == (kind in ("int32-small", "float32", "int16-miniswhite"))


def test_a_blurry_noisy_pair_says_when_values_are_clipped_to_its_type(tmp_path, rgb_image, monkeypatch, capsys):
    """`restore --blurry/--noisy` writes the noisy shot's own type (uint32 here) and now says, as `restore` of one
    image does, when restored values are clipped to it (below 0 here)."""
    import selfrestore.commands.restore as command
    from test_pairs_audit38 import FIT, _pairs  # noqa: E402 (tests/ is on the path)

    bdir, ndir = _pairs(tmp_path / "train", rgb_image)
    model = tmp_path / "selfir.safetensors"
    assert main(["fit", "--blurry", str(bdir), "--noisy", str(ndir), *FIT, "-o", str(model)]) == 0
    counts = np.round(rgb_image[:64, :64] * 3000).astype(np.uint32)
    counts[0, 0] = 70_000  # beyond 16 bits: float counts, kept as uint32
    for name in ("blurry", "noisy"):
        (tmp_path / name).mkdir()
        tifffile.imwrite(tmp_path / name / "a.tif", counts, photometric="rgb")
    monkeypatch.setattr(command, "restore_pair", lambda restorer, blurry, noisy, args: np.full(
        (64, 64, 3), -50, np.float32))  # the stand-in restoration: below the type's range
    assert main(["restore", "--blurry", str(tmp_path / "blurry"), "--noisy", str(tmp_path / "noisy"), "--model",
                 str(model), "-o", str(tmp_path / "out"), "--quiet"]) == 0
    written = tifffile.imread(tmp_path / "out" / "a.tif")
    assert written.dtype == np.uint32 and (written == 0).all()
    assert "100.0% of the restored values" in capsys.readouterr().err
