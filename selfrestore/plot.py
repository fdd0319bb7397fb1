"""A dependency-free training-curve plot (loss, and validation PSNR when available), drawn with PIL."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from .atomic_files import atomic_path


def _panel(draw: ImageDraw.ImageDraw, box, xs, ys, colour, label: str, log: bool = False) -> None:
    x0, y0, x1, y1 = box
    draw.rectangle(box, outline=(0, 0, 0))
    xs, ys = np.asarray(xs, float), np.asarray(ys, float)
    keep = np.isfinite(ys) & ((ys > 0) if log else True)
    xs, ys = xs[keep], ys[keep]
    if len(xs) == 0:
        return
    vals = np.log10(ys) if log else ys
    lo, hi = float(vals.min()), float(vals.max())
    hi = hi if hi > lo else lo + 1e-6
    xmax = max(float(xs.max()), 1.0)
    px = x0 + 5 + (x1 - x0 - 10) * xs / xmax
    py = y1 - 5 - (y1 - y0 - 10) * (vals - lo) / (hi - lo)
    if len(px) > 1:
        draw.line(list(zip(px.tolist(), py.tolist())), fill=colour, width=2)
    else:
        draw.ellipse([px[0] - 3, py[0] - 3, px[0] + 3, py[0] + 3], fill=colour)
    fmt = (lambda v: f"{10 ** v:.3g}") if log else (lambda v: f"{v:.2f}")
    draw.text((x0 + 5, y0 + 3), f"{label}  (min {fmt(lo)}, max {fmt(hi)}, last {fmt(vals[-1])})", fill=colour)
    draw.text((x1 - 90, y1 + 3), f"step {int(xmax)}", fill=(0, 0, 0))


def plot_history(history: Sequence[dict], path: Path, title: str = "") -> Path:
    """Loss (log scale, smoothed), validation PSNR and held-out loss against the step, saved as a PNG."""
    steps = [h["step"] for h in history]
    loss = np.array([h["loss"] for h in history], float)
    if len(loss) > 20:  # moving average so the curve is readable
        k = max(1, len(loss) // 50)
        loss = np.convolve(loss, np.ones(k) / k, mode="same")
    val = [(h["step"], h["val_psnr"]) for h in history if "val_psnr" in h]
    held = [(h["step"], h["holdout_loss"]) for h in history if "holdout_loss" in h]
    height = 240 + 185 * (bool(val) + bool(held))
    image = Image.new("RGB", (640, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((10, 5), title, fill=(0, 0, 0))
    log = bool(np.all(loss[np.isfinite(loss)] > 0))  # likelihood losses (Laine19) go negative: linear axis
    _panel(draw, (10, 25, 630, 215), steps, loss, (200, 30, 30), "training loss" + (" (log)" if log else ""),
           log=log)
    top = 235
    if val:
        _panel(draw, (10, top, 630, top + 165), [v[0] for v in val], [v[1] for v in val], (30, 90, 200),
               "validation PSNR (dB)")
        top += 185
    if held:
        _panel(draw, (10, top, 630, top + 165), [v[0] for v in held], [v[1] for v in held], (30, 140, 60),
               "loss on held-out images (lower is better)")
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return path
