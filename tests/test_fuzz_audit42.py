"""Bad inputs found by a fuzz audit: each is a one-line error naming the file (or a skipped file and a warning),
never a traceback, and nothing is lost."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from selfrestore.cli import main
from selfrestore.io import write_image


def _loop(folder: Path, name: str) -> Path:
    """``folder/name`` a symlink that leads back to itself through a second link."""
    first, second = folder / name, folder / ("other-" + name)
    first.symlink_to(second)
    second.symlink_to(first)
    return first


@pytest.fixture
def small_png(tmp_path) -> Path:
    """A tiny 32x32 RGB image with noise."""
    path = tmp_path / "good.png"
    write_image(path, np.random.default_rng(0).random((32, 32, 3), dtype=np.float32))
    return path


def test_a_symlink_loop_as_an_output_is_a_one_line_error_naming_it(tmp_path, small_png, tiny_model, capsys):
    out = tmp_path / "out"
    out.mkdir()
    commands = [
        ["restore", "--model", str(tiny_model), "-o", str(_loop(out, "r.png")), str(small_png)],
        ["inspect", "--json", str(_loop(out, "i.json")), str(small_png)],
        ["evaluate", "--clean", str(small_png), "--noise", "gauss25", "--model", str(tiny_model), "--perceptual",
         "off", "--json", str(_loop(out, "e.json"))],
        ["burst", str(small_png), str(small_png.with_name("good2.png")), "--task", "superres", "-o",
         str(_loop(out, "b.png"))],
        ["fit", str(small_png), "--method", "n2v", "--steps", "1", "--patch-size", "32", "--width", "4",
         "-o", str(_loop(out, "m.safetensors")), "--quiet"],
    ]
    write_image(small_png.with_name("good2.png"), np.random.default_rng(1).random((32, 32, 3), dtype=np.float32))
    for argv in commands:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "symlink loop" in err and str(out) in err and len(err.strip().splitlines()) == 1, err
    assert sorted(p.name for p in out.iterdir() if not p.is_symlink()) == []


def test_a_symlink_loop_as_an_input_is_skipped_with_the_others_read(tmp_path, small_png, capsys):
    loop = _loop(tmp_path, "loop.png")
    assert main(["inspect", str(loop), str(small_png)]) == 0
    assert f"{loop}: no such file" in capsys.readouterr().err
    assert main(["fit", str(small_png), str(loop), "--method", "n2v", "--steps", "1", "--patch-size", "32",
                 "--width", "4", "-o", str(tmp_path / "m.safetensors"), "--quiet"]) == 0
    assert f"{loop}: no such file" in capsys.readouterr().err


def test_a_tiff_of_no_channels_is_an_unreadable_file_named_and_the_others_are_done(tmp_path, small_png, tiny_model,
                                                                                  capsys):
    import tifffile

    empty = tmp_path / "ch0.tif"
    with pytest.warns(UserWarning, match="zero-size"):
        tifffile.imwrite(empty, np.zeros((32, 32, 0), np.uint8))
    said = f"{empty}: 0 channels; expected gray, RGB or RGBA"
    assert main(["inspect", str(empty), str(small_png)]) == 0
    assert said in capsys.readouterr().err
    assert main(["restore", "--model", str(tiny_model), "-o", str(tmp_path / "out"), str(empty), str(small_png)]) == 1
    assert said in capsys.readouterr().err and (tmp_path / "out" / "good.png").is_file()
    assert main(["evaluate", "--clean", str(empty), str(small_png), "--noise", "gauss25", "--model", str(tiny_model),
                 "--perceptual", "off"]) == 1
    assert said in capsys.readouterr().err
    assert main(["fit", str(empty), "--method", "n2v", "--steps", "1", "--patch-size", "32", "--width", "4",
                 "-o", str(tmp_path / "m.safetensors"), "--quiet"]) == 2
    assert said in capsys.readouterr().err and not (tmp_path / "m.safetensors").exists()


def test_an_image_too_large_for_memory_is_refused_from_its_header_by_inspect_evaluate_and_burst(
        tmp_path, small_png, tiny_model, monkeypatch, capsys):
    """A decompression bomb (a 10 kB PNG of 100000 x 100000 pixels) got the process killed: here a 256 x 256
    image on a machine of "200 kB" stands for it."""
    from selfrestore import memory_check

    big = tmp_path / "big.png"
    write_image(big, np.zeros((256, 256, 3), np.float32))
    monkeypatch.setattr(memory_check, "physical_memory", lambda: 200_000)
    said = f"{big} needs, as float32"
    assert main(["inspect", str(big), str(small_png)]) == 0
    out = capsys.readouterr()
    assert said in out.err and "1 image(s) inspected of 2" in out.out
    assert main(["evaluate", "--clean", str(big), str(small_png), "--noise", "gauss25", "--model", str(tiny_model),
                 "--perceptual", "off"]) == 1
    out = capsys.readouterr()
    assert said in out.err and "good.png" in out.out and "big.png" not in out.out
    assert main(["burst", str(big), str(small_png), "--task", "superres", "-o", str(tmp_path / "sr.png")]) == 2
    assert f"the largest {big}" in capsys.readouterr().err


def test_fit_refuses_patches_too_large_for_memory_and_a_depth_out_of_range_before_training(tmp_path, small_png,
                                                                                           capsys, monkeypatch):
    from selfrestore import memory_check

    monkeypatch.setattr(memory_check, "physical_memory", lambda: 16 * 2**30)  # any machine: 16 GB
    fit = ["fit", str(small_png), "--method", "n2v", "--steps", "1", "--batch-size", "2", "--quiet",
           "-o", str(tmp_path / "m.safetensors")]
    assert main([*fit, "--patch-size", "100000"]) == 2
    err = capsys.readouterr().err
    assert "--patch-size 100000: a batch of 2 patches of 100000 x 100000 px needs" in err and "GB of memory" in err
    assert main([*fit, "--patch-size", "32", "--depth", "50"]) == 2
    assert "--depth 50: too deep for network unet" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main([*fit, "--depth", "1000"])
    assert stop.value.code == 2 and "the network depth goes from 1 to 100" in capsys.readouterr().err
    assert not (tmp_path / "m.safetensors").exists()


def test_a_model_file_with_non_finite_weights_is_refused_at_load(tmp_path, small_png, capsys):
    import torch

    from selfrestore.checkpoint import build_net, save_checkpoint

    net = build_net("unet", in_channels=3, out_channels=3, width=4, depth=2)
    with torch.no_grad():
        next(net.parameters())[0].fill_(float("nan"))
    model = tmp_path / "nan.safetensors"
    save_checkpoint(model, net, {"method": {"name": "n2c", "noise": None}, "channels": 3})
    assert main(["restore", "--model", str(model), "-o", str(tmp_path / "out"), str(small_png)]) == 2
    assert f"{model}: damaged model file: non-finite weights" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_evaluate_skips_a_clean_image_with_blank_pixels_naming_it(tmp_path, small_png, tiny_model, capsys):
    import tifffile

    rng = np.random.default_rng(2)
    nan, inf, some = tmp_path / "nan.tif", tmp_path / "inf.tif", tmp_path / "some.tif"
    tifffile.imwrite(nan, np.full((32, 32), np.nan, np.float32))
    tifffile.imwrite(inf, np.full((32, 32), np.inf, np.float32))
    partly = rng.random((32, 32), dtype=np.float32)
    partly[:2, :3] = np.nan
    tifffile.imwrite(some, partly)
    assert main(["evaluate", "--clean", str(nan), str(inf), str(some), str(small_png), "--noise", "gauss25",
                 "--model", str(tiny_model), "--perceptual", "off"]) == 1
    out = capsys.readouterr()
    for path in (nan, inf):
        assert f"skipped {path}: every pixel blank (NaN or infinite)" in out.err
    assert f"skipped {some}: 6 of its 1024 pixels blank" in out.err
    assert "(1 images" in out.out and "nan.tif" not in out.out


def test_fit_leaves_out_an_all_blank_image_naming_it_and_refuses_when_none_is_left(tmp_path, small_png, capsys):
    import tifffile

    nan = tmp_path / "nan.tif"
    tifffile.imwrite(nan, np.full((32, 32, 3), np.nan, np.float32), photometric="rgb")
    fit = ["fit", "--method", "n2v", "--steps", "1", "--patch-size", "32", "--width", "4", "--quiet"]
    assert main([*fit, str(nan), "-o", str(tmp_path / "none.safetensors")]) == 2
    assert f"skipped {nan}: every pixel blank" in capsys.readouterr().err
    assert not (tmp_path / "none.safetensors").exists()
    assert main([*fit, str(nan), str(small_png), "-o", str(tmp_path / "m.safetensors")]) == 0
    assert f"skipped {nan}: every pixel blank" in capsys.readouterr().err


def test_restore_writes_infinite_input_pixels_back_as_they_were(tmp_path, tiny_model):
    """+-inf pixels of a float image are blank (the network sees a stand-in); they came back NaN, silently."""
    import tifffile

    image = np.random.default_rng(3).random((32, 32), dtype=np.float32)
    image[1, 2], image[5, 7], image[9, 9] = np.inf, -np.inf, np.nan
    stack = np.stack([image, np.flipud(image)])
    tifffile.imwrite(tmp_path / "one.tif", image)
    tifffile.imwrite(tmp_path / "stack.tif", stack)
    assert main(["restore", "--model", str(tiny_model), "-o", str(tmp_path / "out"), str(tmp_path / "one.tif"),
                 str(tmp_path / "stack.tif"), "--quiet"]) == 0
    for name, given in (("one.tif", image), ("stack.tif", stack)):
        restored, blank = tifffile.imread(tmp_path / "out" / name), ~np.isfinite(given)
        assert restored.shape == given.shape and np.isfinite(restored[~blank]).all()
        np.testing.assert_array_equal(restored[blank], given[blank])  # +inf, -inf and NaN where they were


def test_fit_refuses_gaussian_noise_of_level_0_and_pairs_given_as_files(tmp_path, small_png, capsys):
    fit = ["fit", "--steps", "1", "--patch-size", "32", "--quiet", "-o", str(tmp_path / "m.safetensors")]
    assert main([*fit, str(small_png), "--synthetic", "--noise", "gauss0"]) == 2
    assert "--noise gauss0: a noise level of 0 adds no noise to train on" in capsys.readouterr().err
    assert main([*fit, "--pairs", str(small_png), str(small_png.with_name("x.png"))]) == 2
    assert f"{small_png}: a file, not a folder; give the first shots as a folder of images" \
        in capsys.readouterr().err
    assert not (tmp_path / "m.safetensors").exists()
