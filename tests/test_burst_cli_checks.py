"""`selfrestore burst` on float counts, wrong input combinations refused in one line, and Ctrl-C at start-up."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from selfrestore import cli
from selfrestore.burst.frames_io import burst_paths
from selfrestore.cli import main
from selfrestore.io import read_image, write_image


def _smooth(size: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    """A smooth (H, W, C) image in [0, 1]: registration has structure to lock on to."""
    base = torch.rand(1, channels, size // 4, size // 4, generator=torch.Generator().manual_seed(seed))
    image = F.interpolate(base, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)
    return image[0].permute(1, 2, 0).numpy()


def _float_burst(folder, low: float, high: float, frames: int = 3, size: int = 32) -> np.ndarray:
    """``frames`` float32 TIFF frames of one smooth scene shifted by a pixel each, with values from ``low`` to
    ``high``; returns the reference frame."""
    folder.mkdir()
    scene = (low + (high - low) * _smooth(size)).astype(np.float32)
    for t in range(frames):
        write_image(folder / f"f{t}.tif", np.roll(scene, t, axis=1), dtype="float32")
    return scene


def _one_line_error(capsys, *words: str) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for word in words:
        assert word in err, err
    return err


def test_float_counts_are_mapped_for_the_work_and_back(tmp_path, capsys):
    """Counts of 0.01 .. 1000 kept as float TIFF came out as 1.0 everywhere (clamped to [0, 1]): now the result
    keeps the frames' values, in a float TIFF."""
    scene = _float_burst(tmp_path / "counts", 0.01, 999.8)
    out = tmp_path / "sr.tif"
    assert main(["burst", str(tmp_path / "counts"), "--task", "superres", "--scale", "2", "--quiet",
                 "-o", str(out)]) == 0
    image, info = read_image(out)
    assert info.dtype == "float32" and image.shape == (64, 64, 1)
    binned = image.reshape(32, 2, 32, 2, 1).mean(axis=(1, 3))  # back on the frames' grid
    inner = (slice(4, -4), slice(4, -4))  # away from the border the shifts leave empty
    assert np.median(np.abs(binned - scene)[inner]) < 0.03 * 1000, np.median(np.abs(binned - scene)[inner])
    assert image.max() > 500 and image.min() < 300


def test_float_counts_to_an_integer_format_are_refused_before_the_work(tmp_path, capsys):
    _float_burst(tmp_path / "counts", 0.01, 999.8)
    out = tmp_path / "sr.png"
    assert main(["burst", str(tmp_path / "counts"), "--task", "superres", "-o", str(out)]) == 2
    _one_line_error(capsys, ".tif", "outside [0, 1]")
    assert not out.exists()


def test_float_counts_demosaic_keep_their_values(tmp_path):
    _float_burst(tmp_path / "raw", 100.0, 4000.0, frames=2)
    out = tmp_path / "rgb.tif"
    assert main(["burst", str(tmp_path / "raw"), "--task", "demosaic", "--quiet", "-o", str(out)]) == 0
    image, info = read_image(out)
    assert info.dtype == "float32" and image.shape == (32, 32, 3)
    assert 1000 < float(np.median(image)) < 3500, float(np.median(image))


def test_float_frames_in_unit_range_are_not_mapped(tmp_path):
    """Float frames already in [0, 1] keep working as before: no map, a 16-bit PNG in [0, 1]."""
    scene = _float_burst(tmp_path / "unit", 0.1, 0.9)
    out = tmp_path / "sr.png"
    assert main(["burst", str(tmp_path / "unit"), "--task", "superres", "--scale", "2", "--quiet",
                 "-o", str(out)]) == 0
    image, info = read_image(out)
    assert info.dtype == "uint16"
    assert abs(float(image.mean()) - float(scene.mean())) < 0.05


def _png_burst(folder, frames: int = 2, size: int = 16, channels: int = 3) -> None:
    folder.mkdir(parents=True)
    scene = _smooth(size, channels)
    for t in range(frames):
        write_image(folder / f"f{t}.png", np.roll(scene, t, axis=1), dtype="uint16")


def test_a_folder_of_bursts_is_refused_not_merged(tmp_path, capsys):
    _png_burst(tmp_path / "coll" / "b1")
    _png_burst(tmp_path / "coll" / "b2")
    out = tmp_path / "sr.png"
    assert main(["burst", str(tmp_path / "coll"), "--task", "superres", "-o", str(out)]) == 2
    _one_line_error(capsys, "b1/", "b2/", "one burst")
    assert not out.exists()
    # frames beside a folder of frames: two sets of frames as well
    _png_burst(tmp_path / "mixed" / "more")
    write_image(tmp_path / "mixed" / "a.png", _smooth(16, 3), dtype="uint16")
    assert main(["burst", str(tmp_path / "mixed"), "--task", "superres", "-o", str(out)]) == 2
    _one_line_error(capsys, "mixed/ itself", "more/")


def test_one_burst_in_a_sub_folder_still_reads(tmp_path):
    _png_burst(tmp_path / "outer" / "inner")
    out = tmp_path / "sr.png"
    assert main(["burst", str(tmp_path / "outer"), "--task", "superres", "--quiet", "-o", str(out)]) == 0
    assert read_image(out)[0].shape == (32, 32, 3)


def test_scale_with_demosaic_is_refused(tmp_path, capsys):
    _png_burst(tmp_path / "raw", channels=1)
    out = tmp_path / "rgb.png"
    assert main(["burst", str(tmp_path / "raw"), "--task", "demosaic", "--scale", "4", "-o", str(out)]) == 2
    _one_line_error(capsys, "--scale 4", "--task superres")
    assert not out.exists()


def test_a_frame_given_twice_is_refused(tmp_path, capsys):
    _png_burst(tmp_path / "b")
    frame = tmp_path / "b" / "f0.png"
    out = tmp_path / "sr.png"
    assert main(["burst", str(frame), str(frame), "--task", "superres", "-o", str(out)]) == 2
    _one_line_error(capsys, "given twice")
    os.symlink(frame, tmp_path / "link.png")
    assert main(["burst", str(tmp_path / "b"), str(tmp_path / "link.png"), "--task", "superres",
                 "-o", str(out)]) == 2
    _one_line_error(capsys, "given twice", "link.png")
    assert not out.exists()


def test_raw_files_keep_the_order_given(tmp_path):
    """The first raw file named is the reference (they were sorted by name across all inputs)."""
    for name in ("a.dng", "b.dng"):
        (tmp_path / name).write_bytes(b"")
    assert burst_paths([str(tmp_path / "b.dng"), str(tmp_path / "a.dng")]) == [tmp_path / "b.dng",
                                                                                tmp_path / "a.dng"]


def _main_interrupted(argv: list[str]) -> int:
    try:
        return main(argv)
    except KeyboardInterrupt:  # what the user saw as a traceback
        pytest.fail("Ctrl-C escaped main")


def test_ctrl_c_while_the_commands_load_exits_130_in_one_line(monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    assert _main_interrupted(["burst", "--help"]) == 130
    _one_line_error(capsys, "interrupted")
    monkeypatch.undo()
    monkeypatch.setattr(cli.argparse.ArgumentParser, "parse_args", interrupted)
    assert _main_interrupted(["models"]) == 130
    _one_line_error(capsys, "interrupted")


def test_the_burst_command_module_does_not_load_torch():
    """Every command's parser is built at start-up: the burst command's must not import torch (seconds)."""
    code = "import sys, selfrestore.commands.burst; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_a_raw_burst_folder_with_a_previews_sub_folder_is_one_burst(tmp_path):
    """Only the raw files of the folder itself are read: a sub-folder of previews is no second burst."""
    for i in (1, 2, 3):
        (tmp_path / f"IMG_{i}.dng").write_bytes(b"raw")
    _png_burst(tmp_path / "previews")
    assert [p.name for p in burst_paths([str(tmp_path)])] == ["IMG_1.dng", "IMG_2.dng", "IMG_3.dng"]


def test_a_burst_mixing_pixel_types_is_refused(tmp_path, capsys):
    """A 16-bit first frame beside float frames of counts got no intensity map: the counts were clamped and every
    output pixel was 1.0 (exit 0). One burst, one pixel type: refused before any work, naming the frame."""
    import tifffile

    rng = np.random.default_rng(0)
    folder = tmp_path / "burst"
    folder.mkdir()
    tifffile.imwrite(folder / "f0.tif", (rng.random((16, 16)) * 65535).astype(np.uint16))
    for i in (1, 2):
        tifffile.imwrite(folder / f"f{i}.tif", (100 + 900 * rng.random((16, 16))).astype(np.float32))
    out = tmp_path / "o.tif"
    assert main(["burst", str(folder), "--task", "superres", "--scale", "2", "-o", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "f1.tif: float pixels, but the first frame f0.tif has 16-bit ones" in err and not out.exists()


def test_an_output_that_is_no_image_name_is_not_told_to_be_a_folder(tmp_path, capsys):
    """`burst -o out.txt` advised "or a folder ending in /", which burst then refused: one image comes out."""
    _png_burst(tmp_path / "b")
    assert main(["burst", str(tmp_path / "b"), "--task", "superres", "-o", str(tmp_path / "out.txt")]) == 2
    err = _one_line_error(capsys, "'.txt' is not an image format")
    assert "folder" not in err
