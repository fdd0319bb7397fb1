"""The training-curve plot draws every loss, including negative likelihood losses (Laine19)."""
import numpy as np
from PIL import Image

from selfrestore.plot import plot_history


def _red_pixels(path) -> int:
    a = np.asarray(Image.open(path).convert("RGB")).astype(int)
    return int(((a[..., 0] > 150) & (a[..., 1] < 80) & (a[..., 2] < 80)).sum())


def test_negative_losses_are_drawn(tmp_path):
    history = [{"step": i + 1, "loss": -2.0 - 0.01 * i} for i in range(100)]
    history[-1]["val_psnr"] = 29.5
    path = plot_history(history, tmp_path / "neg.png", title="laine19")
    assert _red_pixels(path) > 200  # a curve, not an empty frame


def test_positive_losses_use_a_log_axis(tmp_path):
    history = [{"step": i + 1, "loss": 1.0 / (i + 1)} for i in range(100)]
    assert _red_pixels(plot_history(history, tmp_path / "pos.png")) > 200
