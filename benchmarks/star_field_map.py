"""Star fields (float counts far outside [0, 1]) through the shipped default model: the intensity map compared.

Synthetic, seeded gray float32 star fields: a flat sky of B counts, stars with Gaussian PSFs (FWHM 2-4 px,
peaks log-uniform from 2 sigma to 50000 counts above the sky), a faint extended source (a galaxy of peak
1.5 sigma, 12 px wide), and noise: Gaussian of std sigma, or Poisson (gain 1) plus read noise 5 ("poisson").
The case "cells" is high-SNR extended structure (blobs instead of stars, FWHM 6-20 px, peaks 50-3000 on a
sky of 100, sigma 5): generic float counts, not a star field. The case "unit_negbg" is float data already in
about [0, 1] with a bias-subtracted (zero-mean) sky and noise 0.08: the same kind of scene with star peaks
0.1-0.9 and a galaxy of 0.12. Each image is restored through
:class:`selfrestore.restore.Restorer` as ``selfrestore restore`` restores a single float file (its
``mapping`` given where a candidate map is tried; ``restore`` alone is "library"). Rows (maps):

- noisy: the input itself (identity), the reference.
- old map: the map before this benchmark (0.1-99.9th percentile to [0, 1];
  :func:`selfrestore.intensity_map.intensity_mapping` with ``dim``; none for data in about [0, 1]), given.
- library: the library's map (:meth:`Restorer.mapping_for`, what ``restore`` does), at the commit below.
- noise-aware kK: the affine map offset = 0.1th percentile, scale = min(0.1-99.9th percentile range,
  sigma_hat / (K x the model's lowest level)), sigma_hat the data's noise (Haar estimator,
  :func:`selfrestore.noise_check.noise_sigma`): the sky's noise reaches the network at K x its lowest level,
  the sky sits at ~3 K lowest levels; stars go far above 1.
- blend kK+old / blend kK+noisy: noise-aware kK where its restored value (mapped) is under 1, the old
  map's result (or the noisy input) where it is over 2, linearly between.
- asinh kK: u = c asinh((x - offset) / a), a = 10 sigma_hat (about linear over the sky), c so that the sky's
  noise in u is K x the lowest level; restored unmapped, mapped back exactly (offset + a sinh(u / c)).

Measured (all in the data's units, the noiseless image as truth): sky = pixels where the noiseless image is
within 0.05 sigma of the sky level and more than 8 px from the border; sky bias = mean(restored - truth) there
(counts and in sigma); sky RMSE (in sigma; the noisy input has ~1); RMSE and PSNR (over the truth's range) on
the whole image; star photometry on stars whose peak is over 5 sigma and aperture inside the image: the
aperture (radius 1.5 FWHM) flux above the true sky, restored vs true, as median signed and median absolute
relative error for bright stars (peak > 100 sigma) and median absolute for faint (5-100 sigma); peak error:
median signed relative error of (value - sky) at the star's brightest pixel, bright stars.

    OMP_NUM_THREADS=1 python benchmarks/star_field_map.py
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from provenance import write_result  # noqa: E402
from selfrestore.intensity_map import intensity_mapping  # noqa: E402
from selfrestore.noise_check import noise_sigma  # noqa: E402
from selfrestore.restore import Restorer  # noqa: E402

#: case -> (sky level, Gaussian sigma or None for Poisson + read noise, source peaks (low, high; None: 2 sigma
#: to 50000), source FWHM range (px))
CASES = {"gauss20": (1000.0, 20.0, None, (2, 4)), "gauss10": (1000.0, 10.0, None, (2, 4)),
         "poisson": (1000.0, None, None, (2, 4)), "unit_negbg": (0.0, 0.08, (0.1, 0.9), (2, 4)),
         "cells": (100.0, 5.0, (50.0, 3000.0), (6, 20))}
READ_NOISE = 5.0


def star_field(case: str, size: int, seed: int, stars: int) -> tuple[np.ndarray, np.ndarray, float, list]:
    """(noisy, truth, sky noise sigma, stars as (y, x, fwhm, peak)) of one case: see the module docstring."""
    sky, sigma, peaks, widths = CASES[case]
    rng = np.random.default_rng(seed)
    noise = sigma if sigma is not None else float(np.sqrt(sky + READ_NOISE ** 2))
    yy, xx = np.mgrid[:size, :size].astype(np.float64)
    truth = np.full((size, size), sky)
    low, high = peaks or (2 * noise, 50000.0)
    table = []
    for _ in range(stars):
        y, x = rng.uniform(4, size - 4, 2)
        fwhm = rng.uniform(*widths)
        peak = float(np.exp(rng.uniform(np.log(low), np.log(high))))
        s = fwhm / 2.3548
        truth += peak * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * s * s))
        table.append((y, x, fwhm, peak))
    gy, gx = rng.uniform(size / 4, 3 * size / 4, 2)
    galaxy = 0.12 if case == "unit_negbg" else 1.5 * noise
    truth += galaxy * np.exp(-((yy - gy) ** 2 / (2 * 12.0 ** 2) + (xx - gx) ** 2 / (2 * 6.0 ** 2)))
    if sigma is not None:
        noisy = truth + sigma * rng.standard_normal(truth.shape)
    else:
        noisy = rng.poisson(truth).astype(np.float64) + READ_NOISE * rng.standard_normal(truth.shape)
    return noisy.astype(np.float32), truth, noise, table


def noise_aware_map(image: np.ndarray, lowest: float, k: float) -> dict[str, float]:
    low, high = (float(v) for v in np.percentile(image, [0.1, 99.9]))
    sigma = noise_sigma(image)
    return {"offset": low, "scale": max(min(high - low, sigma / (k * lowest)), 1e-12)}


def restore_asinh(restorer: Restorer, image: np.ndarray, lowest: float, k: float, soft: float = 10.0
                  ) -> np.ndarray:
    """u = c asinh((x - offset) / a), a = ``soft`` sigma_hat (linear to ~``soft`` sigma above the offset), c so
    that the sky's noise in u is K x the lowest level; restored unmapped, mapped back exactly."""
    low = float(np.percentile(image, 0.1))
    sigma = noise_sigma(image)
    sky, a = float(np.median(image)) - low, soft * sigma
    c = k * lowest * np.sqrt(a * a + sky * sky) / sigma
    u = (c * np.arcsinh((image.astype(np.float64) - low) / a)).astype(np.float32)
    out = restorer.restore(u, mapping=None).astype(np.float64)
    return low + a * np.sinh(out / c)


def measures(restored: np.ndarray, truth: np.ndarray, sky: float, sigma: float, stars: list) -> dict[str, float]:
    restored = np.asarray(restored, np.float64).reshape(truth.shape)
    size = truth.shape[0]
    mask = np.abs(truth - sky) < 0.05 * sigma
    mask[:8], mask[-8:], mask[:, :8], mask[:, -8:] = False, False, False, False
    err = restored - truth
    rmse = float(np.sqrt(np.mean(err ** 2)))
    span = float(truth.max() - truth.min())
    yy, xx = np.mgrid[:size, :size]
    bright_flux, faint_flux, bright_peak = [], [], []
    for y, x, fwhm, peak in stars:
        r = 1.5 * fwhm
        if peak < 5 * sigma or not (r + 1 < y < size - r - 1 and r + 1 < x < size - r - 1):
            continue
        aperture = (yy - y) ** 2 + (xx - x) ** 2 <= r * r
        true_flux = float(np.sum(truth[aperture] - sky))
        flux_err = float(np.sum(restored[aperture] - sky)) / true_flux - 1
        py, px = int(round(y)), int(round(x))
        if peak > 100 * sigma:
            bright_flux.append(flux_err)
            bright_peak.append((restored[py, px] - sky) / (truth[py, px] - sky) - 1)
        else:
            faint_flux.append(flux_err)
    med = (lambda v: float(np.median(v)) * 100 if v else float("nan"))
    return {"sky_bias": float(np.mean(err[mask])), "sky_bias_sigma": float(np.mean(err[mask])) / sigma,
            "sky_rmse_sigma": float(np.sqrt(np.mean(err[mask] ** 2))) / sigma, "rmse": rmse,
            "psnr": 20 * np.log10(span / rmse), "bright_flux": med(bright_flux),
            "bright_flux_abs": med(np.abs(bright_flux).tolist()), "faint_flux_abs": med(np.abs(faint_flux).tolist()),
            "bright_peak": med(bright_peak), "n_bright": len(bright_flux), "n_faint": len(faint_flux)}


def blend(pass_a: np.ndarray, other: np.ndarray, mapping: dict[str, float]) -> np.ndarray:
    """``pass_a`` where its value on the noise-aware map is under 1, ``other`` over 2, linearly between."""
    a = np.asarray(pass_a, np.float64).reshape(np.shape(other))
    w = np.clip((a - mapping["offset"]) / mapping["scale"] - 1, 0, 1)
    return (1 - w) * a + w * np.asarray(other, np.float64)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="laine19-gauss5_50")
    p.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--stars", type=int, default=40)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--ks", nargs="+", type=float, default=[2, 2.5, 4],
                   help="noise-aware target: K x the lowest level")
    p.add_argument("--rows", nargs="+", default=None, help="only these rows (labels as in the table)")
    p.add_argument("--name", default="star_field_map")
    args = p.parse_args(argv)
    start = time.time()
    restorer = Restorer(args.model, device="cpu")
    restorer.warn_level_mismatch = False
    lowest = float(restorer.method.noise.low)
    columns = ["sky_bias", "sky_bias_sigma", "sky_rmse_sigma", "rmse", "psnr", "bright_flux", "bright_flux_abs",
               "faint_flux_abs", "bright_peak"]
    lines = [f"# Star fields through {args.model}: the intensity map of float counts", "",
             " ".join(__doc__.split("\n\n")[1].split()), "", __doc__.split("\n\n")[2], "",
             " ".join(__doc__.split("\n\n")[3].split()), "",
             f"{args.size} x {args.size} px, {args.stars} stars, seeds {args.seeds} (means over seeds), "
             f"model lowest level {lowest * 255:g}/255.", "",
             "| case | map | sky bias (counts) | sky bias (sigma) | sky RMSE (sigma) | RMSE | PSNR (dB) "
             "| bright flux err (median %) | bright flux abs err (median %) | faint flux abs err (median %) "
             "| bright peak err (median %) | stars bright / faint |", "|" + "---|" * 12]
    for case in args.cases:
        results: dict[str, list[dict[str, float]]] = {}
        for seed in args.seeds:
            noisy, truth, sigma, stars = star_field(case, args.size, seed, args.stars)
            sky = CASES[case][0]
            rows: dict[str, np.ndarray] = {"noisy": noisy}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                old = intensity_mapping([noisy[:, :, None]], dim=True)  # the map before the noise-aware one
                rows["old map"] = restorer.restore(noisy, mapping=old)
                rows["library"] = restorer.restore(noisy)
                for k in args.ks:
                    mapping = noise_aware_map(noisy, lowest, k)
                    rows[f"noise-aware k{k:g}"] = a = restorer.restore(noisy, mapping=mapping)
                    rows[f"blend k{k:g}+old"] = blend(a, rows["old map"], mapping)
                    rows[f"blend k{k:g}+noisy"] = blend(a, noisy, mapping)
                    rows[f"asinh k{k:g}"] = restore_asinh(restorer, noisy, lowest, k)
            for label, out in rows.items():
                if args.rows is None or label in args.rows:
                    results.setdefault(label, []).append(measures(out, truth, sky, sigma, stars))
            print(f"{case} seed {seed}: {time.time() - start:.0f} s", flush=True)
        for label, found in results.items():
            mean = {c: float(np.mean([f[c] for f in found])) for c in columns}
            counts = f"{sum(f['n_bright'] for f in found)} / {sum(f['n_faint'] for f in found)}"
            lines.append(f"| {case} | {label} | {mean['sky_bias']:.4g} | {mean['sky_bias_sigma']:+.3f} "
                         f"| {mean['sky_rmse_sigma']:.3f} | {mean['rmse']:.4g} | {mean['psnr']:.2f} "
                         f"| {mean['bright_flux']:+.2f} | {mean['bright_flux_abs']:.2f} "
                         f"| {mean['faint_flux_abs']:.2f} | {mean['bright_peak']:+.2f} | {counts} |")
            print(lines[-1], flush=True)
    write_result(args.name, lines, started=start)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
