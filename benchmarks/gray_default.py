"""Gray photos through the shipped colour models, as `selfrestore restore` gives them.

A gray image given to a colour model reaches it as the colour image it was trained on
(:mod:`selfrestore.gray_as_colour`: the gray value scaled so its noise is the luma noise of the model's level,
plus zero-sum chroma noise of that level). Before (stop 36) it was its channel repeated, and Laine19 models took
the posterior of the gray value (:func:`selfrestore.methods.laine19.gray_projection`); before that, the colour
posterior with independent noise per channel. Every image of the set (Set12 by default; 8-bit gray PNGs) gets
Gaussian noise of each sigma (seed 2025 + index, not clipped) and is restored by each model (``clipping="off"``,
the level estimated per image unless the model has one level) in the three ways; BM3D given the true sigma
(``--bm3d``, the bm3d package) is a reference. Reported: mean PSNR (dB, output rounded to 8 bits); for the
Bayesian models also the calibration of the posterior std now (``restore --uncertainty``): the median of
|error| / std over 0.6745 (1 when calibrated) and the share of errors beyond 4 std (6e-5 for a Gaussian), on all
pixels but an 8 px border.

    OMP_NUM_THREADS=2 python benchmarks/gray_default.py --bm3d      # Set12, sigma 15 / 25 / 50
    OMP_NUM_THREADS=2 python benchmarks/gray_default.py --ways view --name gray_default_view
    OMP_NUM_THREADS=2 python benchmarks/gray_default.py --sigmas 2 5 --ways view gray-posterior \
        --models laine19-gauss5_50 unet-gauss25 --name gray_default_low      # low noise
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
#: the three ways (table column -> --ways name)
WAYS = {"now": "view", "stop 36": "gray-posterior", "before": "repeated"}


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
    p.add_argument("--ways", nargs="+", choices=list(WAYS.values()), default=list(WAYS.values()),
                   help="which of the three ways to run (the others are shown as -)")
    p.add_argument("--name", default="gray_default")
    args = p.parse_args(argv)
    start = time.time()
    files = sorted((DATA / args.set).glob("*.png"))[:args.limit]
    if not files:
        raise SystemExit(f"no PNG images in {DATA / args.set}")
    images = [read_image(f)[0][:, :, 0].astype(np.float64) for f in files]
    lines = [f"# Gray images through the shipped colour models: {args.set}, {len(images)} images", "",
             __doc__.split("\n\n")[1].replace("\n", " "), "",
             "| method | sigma | noisy | colour view (now) | gray posterior (stop 36) | channel repeated (before) "
             "| std calibration: median ratio, share beyond 4 std |", "|---|---|---|---|---|---|---|"]
    projection = laine19.gray_projection
    for sigma in args.sigmas:
        noisy = [(clean + sigma / 255 * np.random.default_rng(2025 + i).standard_normal(clean.shape))
                 .astype(np.float32) for i, clean in enumerate(images)]
        noisy_psnr = np.mean([psnr(n, c) for n, c in zip(noisy, images)])
        for model in args.models:
            restorer = Restorer(model, device="cpu", clipping="off")
            restorer.warn_level_mismatch = False
            bayesian = hasattr(restorer.method, "restore_with_uncertainty")
            found, ratios = {}, []
            for label, as_colour, function in (("now", True, projection), ("stop 36", False, projection),
                                               ("before", False, lambda *a: None)):
                if WAYS[label] not in args.ways:
                    found[label] = None
                    continue
                restorer.gray_as_colour, laine19.gray_projection = as_colour, function
                if label == "now" and bayesian:  # the same mean as restore, and its std
                    pairs = [restorer.restore_with_uncertainty(n) for n in noisy]
                    ratios = np.concatenate([(np.abs(m - c) / d)[8:-8, 8:-8].ravel()
                                             for (m, d), c in zip(pairs, images)])
                    found[label] = np.mean([psnr(m, c) for (m, _), c in zip(pairs, images)])
                else:
                    found[label] = np.mean([psnr(restorer.restore(n), c) for n, c in zip(noisy, images)])
            laine19.gray_projection = projection
            calibration = (f"{np.median(ratios) / 0.6745:.2f}, {np.mean(ratios > 4) * 100:.2f}%" if len(ratios)
                           else "-")
            shown = {label: "-" if value is None else f"{value:.2f}" for label, value in found.items()}
            lines.append(f"| {model} | {sigma:g} | {noisy_psnr:.2f} | {shown['now']} | {shown['stop 36']} "
                         f"| {shown['before']} | {calibration} |")
            print(lines[-1], flush=True)
        if args.bm3d:
            import bm3d

            value = np.mean([psnr(bm3d.bm3d(n, sigma / 255), c) for n, c in zip(noisy, images)])
            lines.append(f"| BM3D (true sigma) | {sigma:g} | {noisy_psnr:.2f} | {value:.2f} | - | - | - |")
            print(lines[-1], flush=True)
    write_result(args.name, lines, started=start)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
