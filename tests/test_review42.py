"""Findings of the reviews of stop 42's changes."""
from __future__ import annotations

import numpy as np
import tifffile

from selfrestore.io import read_image, stored_type_clipped_share, write_image


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
