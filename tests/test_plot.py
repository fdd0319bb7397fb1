"""The training-curve plot draws every loss, including negative likelihood losses (Laine19), on a log axis
only when every loss is positive."""
import numpy as np
from PIL import Image

from selfrestore.plot import plot_history


def _red_pixels(path) -> int:
    a = np.asarray(Image.open(path).convert("RGB")).astype(int)
    return int(((a[..., 0] > 150) & (a[..., 1] < 80) & (a[..., 2] < 80)).sum())


def _loss_axes(monkeypatch) -> list[tuple[str, bool]]:
    """Record (label, log axis) of every panel the plot draws."""
    import selfrestore.plot as plot

    seen, original = [], plot._panel

    def spy(draw, box, xs, ys, colour, label, log=False):
        seen.append((label, log))
        return original(draw, box, xs, ys, colour, label, log=log)

    monkeypatch.setattr(plot, "_panel", spy)
    return seen


def test_negative_losses_are_drawn(tmp_path, monkeypatch):
    axes = _loss_axes(monkeypatch)
    history = [{"step": i + 1, "loss": -2.0 - 0.01 * i} for i in range(100)]
    history[-1]["val_psnr"] = 29.5
    path = plot_history(history, tmp_path / "neg.png", title="laine19")
    assert _red_pixels(path) > 200  # a curve, not an empty frame
    assert axes[0] == ("training loss", False)  # a log axis would drop every point


def test_positive_losses_use_a_log_axis(tmp_path, monkeypatch):
    axes = _loss_axes(monkeypatch)
    history = [{"step": i + 1, "loss": 1.0 / (i + 1)} for i in range(100)]
    assert _red_pixels(plot_history(history, tmp_path / "pos.png")) > 200
    assert axes[0] == ("training loss (log)", True)
