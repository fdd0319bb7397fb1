"""Findings of the reviews of stop 42's changes."""
from __future__ import annotations

import numpy as np
import tifffile

from selfrestore.io import read_image, stored_type_clipped_share, write_image
from test_stored_type_streams import gray_model  # noqa: F401 (a fixture; tests/ is on the path)


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
