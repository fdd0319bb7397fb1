"""Which shipped model `restore` should use, when none is named, for noisy photos saved as chroma-subsampled JPEGs.

A 4:2:0 JPEG (most cameras' and phones') spreads each pixel's noise over its neighbours, which a blind-spot model
(the default, laine19-gauss5_50) assumes independent: it leaves most of that noise. The U-Net trained by
Noise2Noise on gauss25 (unet-gauss25) has no such assumption, but is trained for one level and smooths weak noise.
Every Kodak24 image (its top-left crop, ``--crop`` px) gets Gaussian noise of each sigma (seed 2025 + index), is
clipped and rounded to 8 bits, and saved as a 4:2:0 JPEG of each quality. Each file is restored by both models
through :class:`selfrestore.restore.Restorer` (as `selfrestore restore`), and its noise level is measured as the
rule does it (``selfrestore.restore.central_noise_sigma``: the image alone, 0-255 scale). Reported: mean PSNR against
the clean crop (8-bit output) of each model and of the rule "unet-gauss25 where the measured level is at least
T, else the default" for each T of ``--thresholds``, on the first half of the images (which chose the product's
T, ``selfrestore.commands.restore.JPEG_UNET_LEVEL``) and on the others.

    OMP_NUM_THREADS=2 python benchmarks/jpeg_default_model.py

The rule was not adopted (stop 43): on whole photos the level measured on the image alone reads fine texture and
text as noise (a review: 11 of 92 clean CBSD68 / Kodak24 JPEGs measured 8 or more, and the U-Net took 4 of them
from 37.7-39.4 dB to 28-29 dB), where these top-left crops are often sky. `restore` keeps its default model and,
for a chroma-subsampled JPEG, says what each model does with it, from this table.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from jpeg_clipping import as_jpeg, psnr  # noqa: E402
from provenance import write_result  # noqa: E402
from selfrestore.restore import Restorer, central_noise_sigma  # noqa: E402
from uncertainty_calibration import kodak24_crops  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sigmas", nargs="+", type=float, default=[0, 3, 6, 10, 15, 20, 30], help="noise std (/255)")
    p.add_argument("--qualities", nargs="+", type=int, default=[75, 92])
    p.add_argument("--crop", type=int, default=256, help="top-left crop of each image, px")
    p.add_argument("--limit", type=int, default=None, help="first N Kodak24 images only")
    p.add_argument("--thresholds", nargs="+", type=float, default=[4, 6, 8, 10, 12],
                   help="measured levels (0-255) from which the rule takes unet-gauss25")
    p.add_argument("--name", default="jpeg_default_model")
    args = p.parse_args(argv)
    from selfrestore.shipped_defaults import DEFAULT_MODEL

    JPEG_MODEL = "unet-gauss25"

    start = time.time()
    images = [image.astype(np.float64) for image in kodak24_crops(args.crop, args.limit)]
    half = (len(images) + 1) // 2
    models = {name: Restorer(name, device="cpu") for name in (DEFAULT_MODEL, JPEG_MODEL)}
    for restorer in models.values():
        restorer.warn_level_mismatch = False
    lines = [f"# The model for noisy 4:2:0 JPEGs when none is named: Kodak24, {len(images)} crops of {args.crop} px",
             "", __doc__.split("\n\n")[1].replace("\n", " "), "",
             f"Rule T: {JPEG_MODEL} where the measured level is at least T, else {DEFAULT_MODEL} (in brackets: how "
             f"many images it gives {JPEG_MODEL}). Images 1-{half} choose T, {half + 1}-{len(images)} check it.", "",
             "| quality | sigma | images | noisy (dB) | measured level (min .. max) | "
             f"{DEFAULT_MODEL} | {JPEG_MODEL} | " + " | ".join(f"rule {t:g}" for t in args.thresholds) + " |",
             "|---|---|---|---|---|---|---|" + "---|" * len(args.thresholds)]
    means: dict[str, list] = {}
    for quality in args.qualities:
        for sigma in args.sigmas:
            rows = []
            for i, clean in enumerate(images):
                noisy = clean + sigma / 255 * np.random.default_rng(2025 + i).standard_normal(clean.shape)
                jpeg = as_jpeg(np.round(np.clip(noisy, 0, 1) * 255).astype(np.uint8), quality, 2)
                level = 255 * central_noise_sigma(jpeg.astype(np.float32) / 255)
                scores = {name: psnr(r.restore(jpeg).astype(np.float64), clean) for name, r in models.items()}
                rows.append((psnr(jpeg.astype(np.float64), clean), level, scores[DEFAULT_MODEL], scores[JPEG_MODEL]))
            for label, part in ((f"1-{half}", rows[:half]), (f"{half + 1}-{len(images)}", rows[half:])):
                if not part:
                    continue
                noisy_db, levels, default, unet = (np.array(column) for column in zip(*part))
                rules = [np.where(levels >= t, unet, default) for t in args.thresholds]
                means.setdefault(label, []).append([default.mean(), unet.mean(), *(r.mean() for r in rules)])
                lines.append(f"| {quality} | {sigma:g} | {label} | {noisy_db.mean():.2f} | {np.median(levels):.1f} "
                             f"({levels.min():.1f} .. {levels.max():.1f}) | {default.mean():.2f} | {unet.mean():.2f} | "
                             + " | ".join(f"{r.mean():.2f} ({int((levels >= t).sum())})"
                                          for t, r in zip(args.thresholds, rules)) + " |")
                print(lines[-1], flush=True)
    for label, rows_of_means in means.items():  # every quality and sigma alike
        mean = np.mean(rows_of_means, axis=0)
        lines.append(f"| all | all | {label} | | | {mean[0]:.2f} | {mean[1]:.2f} | "
                     + " | ".join(f"{value:.2f}" for value in mean[2:]) + " |")
    write_result(args.name, lines, started=start)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
