"""Gray photos through the shipped colour Bayesian models, as `selfrestore restore` gives them.

A gray image given to a colour model is its one channel repeated, so its noise is the same in every channel.
The posterior is now that of the gray value (:func:`selfrestore.methods.laine19.gray_projection`); before,
it was the colour posterior with independent noise per channel, whose level estimate collapsed. Every image
of the set (Set12 by default; 8-bit gray PNGs) gets Gaussian noise of each sigma (seed 2025 + index, not
clipped), is restored by each model (``clipping="off"``, the level estimated per image unless the model has
one level) with the gray posterior (now) and without it (before); unet-gauss25 (not Bayesian: its two
columns agree) and BM3D given the true sigma (``--bm3d``, the bm3d package) are references. Reported: mean
PSNR (dB, output rounded to 8 bits).

    OMP_NUM_THREADS=2 python benchmarks/gray_default.py --bm3d      # Set12, sigma 15 / 25 / 50
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

from provenance import write_result  # noqa: E402
from selfrestore.io import read_image  # noqa: E402
from selfrestore.methods import laine19  # noqa: E402
from selfrestore.restore import Restorer  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def psnr(restored: np.ndarray, clean: np.ndarray) -> float:
    out = np.round(np.clip(np.asarray(restored, np.float64).reshape(clean.shape), 0, 1) * 255) / 255.0
    return float(10 * np.log10(1 / np.mean((out - clean) ** 2)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--set", default="Set12", help="a folder of gray PNGs under ../shared/data")
    p.add_argument("--models", nargs="+", default=["laine19-gauss5_50", "laine19-gauss25", "unet-gauss25"])
    p.add_argument("--sigmas", nargs="+", type=float, default=[15, 25, 50], help="Gaussian noise levels (/255)")
    p.add_argument("--limit", type=int, default=None, help="first N images only")
    p.add_argument("--bm3d", action="store_true", help="also BM3D with the true sigma (the bm3d package)")
    p.add_argument("--name", default="gray_default")
    args = p.parse_args(argv)
    start = time.time()
    files = sorted((DATA / args.set).glob("*.png"))[:args.limit]
    if not files:
        raise SystemExit(f"no PNG images in {DATA / args.set}")
    images = [read_image(f)[0][:, :, 0].astype(np.float64) for f in files]
    lines = [f"# Gray images through the shipped colour Bayesian models: {args.set}, {len(images)} images", "",
             __doc__.split("\n\n")[1].replace("\n", " "), "",
             "| method | sigma | noisy | gray posterior (now) | colour posterior (before) |", "|---|---|---|---|---|"]
    projection = laine19.gray_projection
    for sigma in args.sigmas:
        noisy = [(clean + sigma / 255 * np.random.default_rng(2025 + i).standard_normal(clean.shape))
                 .astype(np.float32) for i, clean in enumerate(images)]
        noisy_psnr = np.mean([psnr(n, c) for n, c in zip(noisy, images)])
        for model in args.models:
            restorer = Restorer(model, device="cpu", clipping="off")
            restorer.warn_level_mismatch = False
            found = {}
            for label, function in (("now", projection), ("before", lambda *a: None)):
                laine19.gray_projection = function
                found[label] = np.mean([psnr(restorer.restore(n), c) for n, c in zip(noisy, images)])
            laine19.gray_projection = projection
            lines.append(f"| {model} | {sigma:g} | {noisy_psnr:.2f} | {found['now']:.2f} | {found['before']:.2f} |")
            print(lines[-1], flush=True)
        if args.bm3d:
            import bm3d

            value = np.mean([psnr(bm3d.bm3d(n, sigma / 255), c) for n, c in zip(noisy, images)])
            lines.append(f"| BM3D (true sigma) | {sigma:g} | {noisy_psnr:.2f} | {value:.2f} | - |")
            print(lines[-1], flush=True)
    write_result(args.name, lines, started=start)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
