"""The clipped-noise correction of `restore` on noisy photos saved as JPEG (4:2:0 and 4:4:4 chroma).

Every Kodak24 image (its top-left crop, ``--crop`` px) gets Gaussian noise of each sigma (seed 2025 + index),
is clipped to [0, 1] and rounded to 8 bits, as a camera does, and saved as a JPEG (quality ``--quality``) with
4:2:0 and with 4:4:4 chroma. Each file is restored by each model through :class:`selfrestore.restore.Restorer`
with ``clipping="auto"`` (the default), once with the noise level measured as now (per channel where the
all-channel patch PCA reads under half of that: 4:2:0 leaves colour patterns without noise) and once as before
(all channels together only: ``JOINT_LEVEL_FLOOR = 0``). Reported: the mean PSNR against the clean crop (8-bit
rounded output) and the median measured level (0-255 scale).

    OMP_NUM_THREADS=2 python benchmarks/jpeg_clipping.py          # 24 crops, sigma 25, two models
"""
from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from provenance import write_result  # noqa: E402
from selfrestore.corruption import clipping  # noqa: E402
from selfrestore.restore import Restorer  # noqa: E402
from uncertainty_calibration import kodak24_crops  # noqa: E402


def as_jpeg(pixels: np.ndarray, quality: int, subsampling: int) -> np.ndarray:
    """8-bit ``pixels`` through a JPEG file in memory (PIL's subsampling code: 0 = 4:4:4, 2 = 4:2:0)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=quality, subsampling=subsampling)
    with Image.open(buffer) as image:
        return np.asarray(image.convert("RGB"))


def psnr(restored: np.ndarray, clean: np.ndarray) -> float:
    out = np.round(np.clip(restored, 0, 255)) / 255.0
    return float(10 * np.log10(1 / np.mean((out - clean) ** 2)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["unet-gauss25", "laine19-gauss5_50"])
    p.add_argument("--sigmas", nargs="+", type=float, default=[25], help="Gaussian noise levels (/255)")
    p.add_argument("--quality", type=int, default=95)
    p.add_argument("--crop", type=int, default=256, help="top-left crop of each image, px")
    p.add_argument("--limit", type=int, default=None, help="first N Kodak24 images only")
    p.add_argument("--name", default="jpeg_clipping")
    args = p.parse_args(argv)
    start = time.time()
    images = [image.astype(np.float64) for image in kodak24_crops(args.crop, args.limit)]
    lines = [f"# The clipped-noise correction on noisy JPEGs: Kodak24, {len(images)} crops of {args.crop} px, "
             f"JPEG quality {args.quality}", "", __doc__.split("\n\n")[1].replace("\n", " "), "",
             "| model | sigma | chroma | noisy JPEG (dB) | level now | PSNR now (dB) | level before | "
             "PSNR before (dB) |", "|---|---|---|---|---|---|---|---|"]
    floor = clipping.JOINT_LEVEL_FLOOR
    for model in args.models:
        restorer = Restorer(model, device="cpu")
        restorer.warn_level_mismatch = False
        for sigma in args.sigmas:
            for chroma, code in (("4:2:0", 2), ("4:4:4", 0)):
                found: dict[str, list] = {"now": [], "before": []}
                levels: dict[str, list] = {"now": [], "before": []}
                inputs = []
                for i, clean in enumerate(images):
                    noisy = clean + sigma / 255 * np.random.default_rng(2025 + i).standard_normal(clean.shape)
                    jpeg = as_jpeg(np.round(np.clip(noisy, 0, 1) * 255).astype(np.uint8), args.quality, code)
                    inputs.append(psnr(jpeg.astype(np.float64), clean))
                    for label, value in (("now", floor), ("before", 0.0)):
                        clipping.JOINT_LEVEL_FLOOR = value
                        restored = restorer.restore(jpeg).astype(np.float64)
                        found[label].append(psnr(restored, clean))
                        level = restorer.last_clipping[0] * 255 if restorer.last_clipping else float("nan")
                        levels[label].append(level)
                clipping.JOINT_LEVEL_FLOOR = floor
                lines.append(f"| {model} | {sigma:g} | {chroma} | {np.mean(inputs):.2f} | "
                             f"{np.nanmedian(levels['now']):.1f} | {np.mean(found['now']):.2f} | "
                             f"{np.nanmedian(levels['before']):.1f} | {np.mean(found['before']):.2f} |")
                print(lines[-1], flush=True)
    write_result(args.name, lines, started=start)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
