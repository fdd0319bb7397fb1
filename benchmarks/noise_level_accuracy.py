"""How well the noise level of one noisy image is measured from the image alone, on the SelfIR training pairs.

The noisy short exposures of ``benchmarks/selfir_table.py`` (BSDS500 train+test, 400 images, seed 0, noise
gauss5_50 or poisson5_50, the level drawn per image) are measured by

* ``block NLF``: :func:`selfrestore.noise_check.noise_level_function` alone (8x8 blocks, plane removed, the
  flattest fifth per brightness bin, a line var = a x + b);
* ``patch PCA + NLF``: :func:`selfrestore.methods.selfir_r2r.estimated_noise_levels` (the level by patch
  PCA, :func:`selfrestore.noise_check.noise_sigma_pca`; the shot/read split by the block NLF), what
  ``selfir_r2r`` uses when no level is given.

Reported: the ratio of the measured to the true noise std, taken as the image's mean noise variance
(Gaussian: sigma^2; Poisson: mean(clean) / lambda; measured: a * m + b, m the mean of the blurry shot, which
stands in for the intensity in the method), over the images: median, 10th and 90th percentiles, extremes.
A wrong split between a and b (a slope found in Gaussian noise) is not seen by this mean-level ratio.

    python benchmarks/noise_level_accuracy.py              # all 400 images, both noises (~5 min)
"""
from __future__ import annotations

import argparse
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from provenance import write_result  # noqa: E402
from selfir_table import DATA, blur_model, code_version, load_folder  # noqa: E402
from selfrestore.corruption import parse_corruption  # noqa: E402
from selfrestore.data.blurry_noisy import SyntheticBlurryNoisy  # noqa: E402
from selfrestore.methods.selfir_r2r import estimated_noise_levels  # noqa: E402
from selfrestore.noise_check import noise_level_function  # noqa: E402


def ratios(source, noise_name: str, estimates: list[tuple[float, float] | None]) -> np.ndarray:
    """Measured / true std of each image's mean noise (NaN where the estimator gave nothing)."""
    out = []
    for i, estimate in enumerate(estimates):
        if estimate is None:
            out.append(np.nan)
            continue
        a, b = estimate
        signal = float(np.clip(source.fields["blurry"][i], 0, 1).mean())
        if noise_name.startswith("gauss"):
            true_var = source.params["sigma"][i] ** 2
        else:
            true_var = float(np.clip(source.fields["clean"][i], 0, None).mean()) / source.params["lam"][i]
        out.append(np.sqrt(max(a * signal + b, 0.0) / true_var))
    return np.array(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--limit", type=int, default=None, help="first N training images only")
    p.add_argument("--name", default="noise_level_accuracy")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    start = time.time()
    images = load_folder([DATA / "BSDS500_train_test" / "train", DATA / "BSDS500_train_test" / "test"], args.limit)
    lines = [f"# Noise level measured from one noisy image: {len(images)} SelfIR training pairs (BSDS500)", "",
             __doc__.split("\n\n")[1].replace("\n", " "), "",
             "| noise | estimator | median | p10 | p90 | min | max | unmeasured | s / image |",
             "|---|---|---|---|---|---|---|---|---|"]
    for noise_name in ("gauss5_50", "poisson5_50"):
        source = SyntheticBlurryNoisy(images, blur_model(scale=0.5), parse_corruption(noise_name), seed=0,
                                      keep_clean=True)
        t0 = time.time()
        block = [noise_level_function(image) for image in source.fields["noisy"]]
        t1 = time.time()
        levels = estimated_noise_levels(source.fields["noisy"])
        t2 = time.time()
        pca = list(zip(levels["nlf_a"], levels["nlf_b"]))
        for label, estimates, seconds in (("block NLF", block, t1 - t0), ("patch PCA + NLF", pca, t2 - t1)):
            r = ratios(source, noise_name, estimates)
            ok = r[np.isfinite(r)]
            lines.append(f"| {noise_name} | {label} | {np.median(ok):.3f} | {np.percentile(ok, 10):.3f} | "
                         f"{np.percentile(ok, 90):.3f} | {ok.min():.3f} | {ok.max():.3f} | {int(np.isnan(r).sum())} | "
                         f"{seconds / len(r):.2f} |")
            print(lines[-1], flush=True)
    command = "python benchmarks/noise_level_accuracy.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    lines += ["", f"Command: `{command.strip()}`; machine: {platform.machine()} CPU, 1 thread, torch "
              f"{torch.__version__}; wall time {(time.time() - start) / 60:.1f} min; code {code_version()}."]
    write_result(args.name, lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
