"""Findings of the reviews of stop 42's changes."""
from __future__ import annotations

import numpy as np
import tifffile

from selfrestore.io import read_image, stored_type_clipped_share, write_image
from test_deblur_audit import reblur_model  # noqa: F401 (fixtures; tests/ is on the path)
from test_stored_type_streams import gray_model  # noqa: F401


def test_no_clipping_is_reported_for_an_int16_image_with_alpha_which_is_written_as_float(tmp_path):
    """An int16 RGBA TIFF comes back float32 (its alpha in [0, 1] beside): nothing is clipped to int16, so the
    clipped-values warning must not say so (it did: 100% "clipped" while the file kept every value)."""
    rng = np.random.default_rng(0)
    rgba = np.concatenate([rng.integers(-2000, 2000, (16, 16, 3)), np.full((16, 16, 1), 32767)], axis=2)
    tifffile.imwrite(tmp_path / "in.tif", rgba.astype(np.int16), photometric="rgb", extrasamples=[2])
    pixels, info = read_image(tmp_path / "in.tif")
    assert info.stored_type == "int16" and info.alpha is not None
    restored = pixels + 40000.0  # far past int16's range
    target = tmp_path / "out.tif"
    assert stored_type_clipped_share(target, [restored], info) == 0.0
    write_image(target, restored, info)
    written = tifffile.imread(target)
    assert written.dtype == np.float32 and written[..., :3].max() > 32767


def test_a_streamed_float_stack_writes_its_infinite_pixels_back_as_they_were(tmp_path, monkeypatch, gray_model):
    """A float32 stack too large for memory, restored plane by plane, holds the input's +-inf where it had them
    (and NaN where NaN), as the in-memory path does: they came back NaN."""
    import selfrestore.memory_check as memory_check
    from selfrestore.cli import main
    from selfrestore.restore import Restorer
    monkeypatch.setattr(Restorer, "restore", lambda self, image, **_: image + 0.5)
    data = np.random.default_rng(1).random((3, 24, 32)).astype(np.float32)
    data[0, 1, 2], data[1, 5, 7], data[2, 9, 9] = np.inf, -np.inf, np.nan
    tifffile.imwrite(tmp_path / "stack.tif", data, photometric="minisblack", metadata={"axes": "ZYX"})
    monkeypatch.setattr(memory_check, "physical_memory", lambda: 10 ** 4)  # 10 kB: the stack "does not fit"
    assert main(["restore", str(tmp_path / "stack.tif"), "--model", str(gray_model), "--quiet",
                 "-o", str(tmp_path / "streamed.tif")]) == 0
    streamed, blank = tifffile.imread(tmp_path / "streamed.tif"), ~np.isfinite(data)
    np.testing.assert_array_equal(streamed[blank], data[blank])
    assert np.isfinite(streamed[~blank]).all()


def test_the_uncertainty_map_is_nan_where_the_input_held_infinities(tmp_path):
    """NAME.std.tif holds NaN at every blank pixel (README): the input's +-inf, which the restored image keeps,
    are no standard deviation (they were written there too)."""
    from selfrestore.cli import main

    image = np.random.default_rng(3).random((40, 40), dtype=np.float32)
    image[1, 2], image[5, 7], image[9, 9] = np.inf, -np.inf, np.nan
    tifffile.imwrite(tmp_path / "in.tif", image)
    assert main(["restore", str(tmp_path / "in.tif"), "--model", "laine19-gauss25", "--uncertainty", "--quiet",
                 "-o", str(tmp_path / "out.tif")]) == 0
    restored, std = tifffile.imread(tmp_path / "out.tif"), tifffile.imread(tmp_path / "out.std.tif")
    blank = ~np.isfinite(image)
    np.testing.assert_array_equal(restored[blank], image[blank])
    assert np.isnan(std[blank]).all() and np.isfinite(std[~blank]).all()


def test_an_all_blank_plane_of_a_training_stack_is_left_out_and_said(tmp_path):
    """A stack whose middle plane is all NaN: that plane is left out of training, named, the others kept (the
    whole-file check let it through as a plane of zeros)."""
    from selfrestore.data.images import load_images

    stack = np.random.default_rng(2).random((3, 24, 32)).astype(np.float32)
    stack[1] = np.nan
    tifffile.imwrite(tmp_path / "stack.tif", stack, photometric="minisblack", metadata={"axes": "ZYX"})
    said = []
    images = load_images([tmp_path / "stack.tif"], warn=said.append)
    assert len(images) == 2 and all(np.isfinite(image).all() and image.max() > 0.5 for image in images)
    assert any("1 of its 3 planes left out" in line for line in said)


def test_a_symlink_loop_is_found_where_resolve_returns_it_as_it_is(tmp_path, monkeypatch):
    """Python 3.13's Path.resolve returns a looping name instead of raising (3.10-3.12 raise RuntimeError):
    resolved still refuses it (the loop went unseen there, and an output rename replaced the link)."""
    import os
    from pathlib import Path

    import pytest

    from selfrestore.errors import UserError
    from selfrestore.file_lists import resolved

    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    monkeypatch.setattr(Path, "resolve", lambda self, strict=False: Path(os.path.abspath(self)))  # as 3.13 does
    for looping in (tmp_path / "a", tmp_path / "a" / "x.png"):  # the loop last, or a folder on the way
        with pytest.raises(UserError, match="symlink loop"):
            resolved(looping)
    assert resolved(tmp_path / "a", loop_ok=True) == tmp_path / "a"
    (tmp_path / "c.png").write_bytes(b"")
    assert resolved(tmp_path / "c.png") == tmp_path / "c.png"


def test_a_stack_streamed_plane_by_plane_says_it_lies_far_beyond_the_models_map(tmp_path, rgb_image, monkeypatch,
                                                                                  capsys):
    """A model fitted on 12-bit data records its map; a 4x brighter stack too large for memory, restored plane by
    plane, is said to lie far beyond it, as the same stack restored in memory is (it was not)."""
    import selfrestore.memory_check as memory_check
    from selfrestore.cli import main
    from test_fit_audit41 import _dim_data_model  # noqa: E402 (tests/ is on the path)

    dim, model = _dim_data_model(tmp_path, rgb_image)
    bright = np.minimum(np.stack([dim, dim[::-1]]).astype(np.uint32) * 4, 65535).astype(np.uint16)
    tifffile.imwrite(tmp_path / "bright.tif", bright, photometric="minisblack", metadata={"axes": "ZYX"})
    monkeypatch.setattr(memory_check, "physical_memory", lambda: 10 ** 4)  # 10 kB: the stack "does not fit"
    capsys.readouterr()
    assert main(["restore", str(tmp_path / "bright.tif"), "--model", str(model), "-o", str(tmp_path / "b.tif")]) == 0
    err = capsys.readouterr().err
    assert "plane by plane" in err and "through the map the model was trained with" in err


def test_evaluate_warns_that_a_deblurring_model_scored_on_noise_alone_sees_no_blur(tmp_path, reblur_model, capsys):
    """`evaluate --noise gauss25` with a deblurring model ran without a word: its scores say how it treats
    images that are not blurred. It now says so; with a blur (--noise blurN_gaussS) it does not."""
    from selfrestore.cli import main
    from test_deblur_audit import _sharp_folder  # noqa: E402 (tests/ is on the path)

    clean = _sharp_folder(tmp_path / "clean", sizes=((48, 48),))
    base = ["evaluate", "--clean", str(clean), "--model", str(reblur_model), "--perceptual", "off"]
    assert main([*base, "--noise", "gauss25"]) == 0
    assert "adds no blur" in capsys.readouterr().err
    assert main([*base, "--noise", "blur31_gauss1"]) == 0
    assert "adds no blur" not in capsys.readouterr().err
