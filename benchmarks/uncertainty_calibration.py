"""Is `restore --uncertainty` calibrated? The shipped Laine19 models' posterior std against their actual error.

Every Kodak24 image (its top-left crop, ``--crop`` px) gets Gaussian noise of each sigma, or Poisson noise
of each lambda (seed 2025 + image index), and goes through :class:`selfrestore.restore.Restorer`
``restore_with_uncertainty`` twice: with the prior variance floor that restoration uses
(``laine19.PRIOR_VARIANCE_FLOOR`` times the noise variance, in the std only) and without it (exact Bayes
under the network's prior). The z-score of a pixel is its error |mean - clean| over the reported std, 8 px
borders left out. A calibrated std gives median |z| / 0.6745 = 1, RMS z = 1, 0.006% of the pixels beyond
4 std and 2e-7 beyond 6 (a Gaussian's values). The posterior mean is the same in both (PSNR is of it,
clipped to [0, 1]).

    python benchmarks/uncertainty_calibration.py                # 2 models x 3 sigmas x 24 crops
    python benchmarks/uncertainty_calibration.py --models laine19-poisson30 --sigmas --lambdas 30 \
        --name uncertainty_calibration_poisson
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


def z_scores(restorer: Restorer, clean: np.ndarray, noisy: np.ndarray) -> tuple[np.ndarray, float]:
    """|error| / std over the crop's interior, and the PSNR of the posterior mean."""
    mean, std = restorer.restore_with_uncertainty(noisy)
    inner = (slice(8, -8), slice(8, -8))
    z = np.abs(mean - clean)[inner] / np.maximum(std[inner], 1e-6)
    psnr = float(10 * np.log10(1 / np.mean((np.clip(mean, 0, 1) - clean) ** 2)))
    return z.ravel(), psnr


def kodak24_crops(crop: int, limit: int | None = None) -> list[np.ndarray]:
    """The top-left ``crop`` px of the first ``limit`` Kodak24 images (all: None), float32 on [0, 1]."""
    files = sorted((DATA / "Kodak24").glob("*.png"))[:limit]
    if not files:
        raise SystemExit(f"no Kodak24 images in {DATA / 'Kodak24'}")
    return [read_image(f)[0][:crop, :crop].astype(np.float32) for f in files]


def corrupted(clean: np.ndarray, noise: str, rng: np.random.Generator) -> np.ndarray:
    """``gaussS``: + N(0, (S / 255)^2); ``poissonL``: Poisson(L clean) / L."""
    if noise.startswith("gauss"):
        return (clean + float(noise[5:]) / 255 * rng.standard_normal(clean.shape)).astype(np.float32)
    lam = float(noise[7:])
    return (rng.poisson(lam * np.clip(clean, 0, None)) / lam).astype(np.float32)


def summary(z: np.ndarray) -> str:
    return (f"{np.median(z) / 0.6745:.3f} | {np.sqrt(np.mean(z ** 2)):.2f} | {100 * np.mean(z > 4):.3f} | "
            f"{100 * np.mean(z > 6):.4f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["laine19-gauss5_50", "laine19-gauss25"])
    p.add_argument("--sigmas", nargs="*", type=float, default=[10, 25, 50], help="Gaussian noise levels (/255)")
    p.add_argument("--lambdas", nargs="*", type=float, default=[], help="Poisson noise levels (photons at 1.0)")
    p.add_argument("--crop", type=int, default=256, help="top-left crop of each image, px")
    p.add_argument("--limit", type=int, default=None, help="first N Kodak24 images only")
    p.add_argument("--name", default="uncertainty_calibration")
    args = p.parse_args(argv)
    start = time.time()
    images = kodak24_crops(args.crop, args.limit)
    lines = [f"# Calibration of the posterior std (`restore --uncertainty`): Kodak24, {len(images)} crops of "
             f"{args.crop} px", "", __doc__.split("\n\n")[1].replace("\n", " "), "",
             "| model | noise | std | median abs z / 0.6745 | RMS z | % beyond 4 std | % beyond 6 std | PSNR (dB) |",
             "|---|---|---|---|---|---|---|---|"]
    for model in args.models:
        restorer = Restorer(model, device="cpu")
        restorer.warn_level_mismatch = False
        for noise in [f"gauss{v:g}" for v in args.sigmas] + [f"poisson{v:g}" for v in args.lambdas]:
            found: dict[str, list] = {"floored": [], "exact": []}
            psnrs = []
            for i, clean in enumerate(images):
                noisy = corrupted(clean, noise, np.random.default_rng(2025 + i))
                for label, floor in (("floored", laine19.PRIOR_VARIANCE_FLOOR), ("exact", 0.0)):
                    restorer.method.std_floor = floor
                    z, psnr = z_scores(restorer, clean, noisy)
                    found[label].append(z)
                psnrs.append(psnr)
            for label, zs in found.items():
                name = f"floor {laine19.PRIOR_VARIANCE_FLOOR:g} (default)" if label == "floored" else "exact Bayes"
                lines.append(f"| {model} | {noise} | {name} | {summary(np.concatenate(zs))} | "
                             f"{np.mean(psnrs):.2f} |")
                print(lines[-1], flush=True)
    write_result(args.name, lines, started=start)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
