"""`restore --noise-pg` on camera counts that fill only part of their file's range (12-bit counts in 16-bit
TIFFs, the usual fluorescence-microscope case): the Anscombe-stabilised image is mapped by the image's own range,
so the Gaussian model is told the noise level it sees."""
from __future__ import annotations

import numpy as np
import pytest
from skimage import data, transform

from selfrestore.cli import main
from selfrestore.io import read_image, write_image

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _fluorescence_counts(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A 12-bit Poisson-Gaussian image in uint16 (gain 1, read noise 5 counts, background 100, peak ~3100) and
    its noise-free counts."""
    cells = transform.resize(data.cell().astype(np.float64), (160, 160), anti_aliasing=True)
    clean = 100 + 3000 * (cells - cells.min()) / (cells.max() - cells.min())
    rng = np.random.default_rng(seed)
    noisy = np.clip(np.round(rng.poisson(clean) + rng.normal(0, 5, clean.shape)), 0, 4095).astype(np.uint16)
    return noisy, clean


def test_twelve_bit_counts_in_a_sixteen_bit_file_are_denoised(tmp_path):
    """Before: the stabilised signal was mapped by the full 0-65535 range, the model was told of noise 16x below
    what it saw and returned the counts almost as they were (error 0.93x the input's on this kind of image);
    now the error falls below half of the input's and the mean is kept."""
    noisy, clean = _fluorescence_counts()
    source = tmp_path / "cells.tif"
    write_image(source, noisy)
    a, b = 1 / 65535, 5 / 65535  # variance a x + b^2 on the 0-1 scale of a 16-bit file, as --help says
    out = tmp_path / "out.tif"
    assert main(["restore", str(source), "--noise-pg", f"{a:.6g}", f"{b:.6g}", "-o", str(out), "--quiet"]) == 0
    restored, info = read_image(out)
    assert info.bit_depth == 16
    restored = restored.astype(np.float64).squeeze() * 65535
    rms = lambda x: float(np.sqrt(np.mean((x - clean) ** 2)))  # noqa: E731
    assert rms(restored) < 0.6 * rms(noisy.astype(np.float64))
    assert abs(restored.mean() - clean.mean()) < 5


def test_a_signal_spanning_few_noise_stds_is_given_a_level_the_model_knows():
    """The stabilised image's level is 1 / (its range in noise stds): an image whose signal spans only a few
    stds is mapped over a wider range, so the level stays at or below the model's highest (50/255)."""
    from selfrestore.restore import Restorer

    rng = np.random.default_rng(1)
    faint = (rng.poisson(np.full((48, 48), 2.0)) + rng.normal(0, 1, (48, 48))).astype(np.float32)
    restorer = Restorer("laine19-gauss5_50", device="cpu", sensor_noise=(1.0, 1.0))
    stabilised, _, params = restorer._stabilise(faint[:, :, None])
    assert params["sigma"] <= 50 / 255 + 1e-9
    restored = restorer.restore(faint)
    assert np.isfinite(restored).all() and abs(float(restored.mean()) - 2.0) < 0.5
