"""Shipped models through the user's path (`selfrestore restore`) versus CBM3D, on colour images never seen.

Protocol: every clean test image (default Kodak24: not part of BSDS500_train_test, which the shipped models
were trained on) gets Gaussian noise sigma=25 with a fixed seed per image and is saved as an 8-bit PNG, as a
user's noisy photo would be (so values are clipped to [0, 255] and rounded). The command line
`selfrestore restore NOISY_DIR --model NAME -o OUT` restores them; CBM3D (the `bm3d` package, sigma 25
known, a reference only) gets the same decoded 8-bit PNGs; a second CBM3D row applies to its output the
correction for clipped noise that `restore --clipping auto` (the default) applies to the models' (a
reference for what that correction is worth to a classical denoiser). ``--noise`` tests another noise model
(CBM3D only for a fixed-level Gaussian). PSNR (full image, all channels) of the 8-bit
outputs against the clean image; SSIM as in `selfrestore.metrics`.

    OMP_NUM_THREADS=1 python benchmarks/shipped_vs_cbm3d.py --models laine19-gauss25 unet-gauss25

``--anscombe`` (Poisson / Poisson-Gaussian test noise) adds, per Gaussian model, the run with `--noise-pg A B`:
the model applied through the generalised Anscombe transform; ``--variant='--adapt 100'`` adds a row per model
with those restore options. ``--cbm3d-process`` runs CBM3D in a second
process while the models restore (two cores: the same numbers in about half the wall time).
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from provenance import code_version, invocation, run_header  # noqa: E402
from selfrestore.checkpoint import read_checkpoint, resolve_model  # noqa: E402
from selfrestore.corruption import Corruption, parse_corruption  # noqa: E402
from selfrestore.corruption.clipping import clipping_of, unclip  # noqa: E402
from selfrestore.errors import UserError  # noqa: E402
from selfrestore.data.images import image_generator  # noqa: E402
from selfrestore.file_lists import list_images  # noqa: E402
from selfrestore.io import read_image, to_array, to_channels, to_tensor, write_image  # noqa: E402
from selfrestore.metrics import psnr, ssim  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
CBM3D_CORRECTED = "CBM3D + the clipped-noise correction of `restore --clipping auto` (reference)"


def make_noisy_pngs(paths: list[Path], folder: Path, noise_name: str, seed: int) -> list[np.ndarray]:
    """Write NAME.png = the clean image corrupted by ``noise_name`` as 8-bit PNG for each path; return the
    clean arrays."""
    noise = parse_corruption(noise_name)
    cleans = []
    for i, path in enumerate(paths):
        clean = to_channels(read_image(path)[0], 3)
        noisy = to_array(noise.sample(to_tensor(clean), image_generator(seed, i)))
        write_image(folder / f"{path.stem}.png", np.clip(noisy, 0, 1), dtype="uint8")
        cleans.append(clean)
    return cleans


def score(outputs: list[np.ndarray], cleans: list[np.ndarray]) -> dict[str, float]:
    return {"psnr": float(np.mean([psnr(o, c) for o, c in zip(outputs, cleans)])),
            "ssim": float(np.mean([ssim(o, c) for o, c in zip(outputs, cleans)]))}


def to_8bit(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, 0, 1) * 255).astype(np.float32) / 255


def cbm3d_outputs(noisy: list[np.ndarray], sigma: float
                  ) -> tuple[list[np.ndarray], list[np.ndarray], float]:
    """CBM3D (the `bm3d` package, the true sigma) of each noisy image, rounded to 8 bits; the same with the
    clipped-noise correction of `restore --clipping auto` (its level measured on the image, as restore
    does) applied before rounding; CBM3D's wall time."""
    import bm3d

    start, estimates = time.perf_counter(), []
    for y in noisy:
        estimates.append(bm3d.bm3d_rgb(y.astype(np.float64), sigma_psd=sigma))
    seconds = time.perf_counter() - start
    corrections = [clipping_of(y) for y in noisy]
    corrected = [to_8bit(e if c is None else unclip(e, *c)[0]) for e, c in zip(estimates, corrections)]
    return [to_8bit(e) for e in estimates], corrected, seconds


def run_cli(model: str, noisy_dir: Path, out_dir: Path, extra: list[str] | None = None) -> float:
    """`selfrestore restore` as a user runs it; returns its wall time."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "selfrestore.cli", "restore", str(noisy_dir), "--model", model,
                    "-o", str(out_dir), *(extra or [])], check=True, cwd=ROOT)
    return time.perf_counter() - start


def sensor_noise_args(noise) -> list[str]:
    """`--noise-pg A B` for a Poisson or Poisson-Gaussian test noise (Poisson lambda: A = 1 / lambda, B = 0)."""
    kind = type(noise).__name__
    if kind == "PoissonGaussian":
        return ["--noise-pg", f"{noise.a:g}", f"{noise.b:g}"]
    if kind == "Poisson" and noise.low == noise.high:
        return ["--noise-pg", f"{1 / noise.low:g}", "0"]
    raise SystemExit(f"--anscombe needs Poisson or Poisson-Gaussian test noise, not {noise.name}")


def restore_models(args: argparse.Namespace, noise: Corruption, paths: list[Path], cleans: list[np.ndarray],
                   noisy_dir: Path, tmp: Path, results: dict[str, dict]) -> None:
    """Each model through the command line: plain, with each ``--variant``'s extra options, and with
    ``--noise-pg`` (``--anscombe``); scores into ``results``."""
    for model in args.models:
        gaussian = str(read_checkpoint(resolve_model(model))[1]["method"].get("noise", "")).startswith("gauss")
        variants = [[]] + [shlex.split(v) for v in args.variant]
        variants += [sensor_noise_args(noise)] if args.anscombe and gaussian else []
        for index, extra in enumerate(variants):
            out_dir = tmp / f"out_{Path(model).stem}_{index}"
            seconds = run_cli(model, noisy_dir, out_dir, extra)
            outputs = [read_image(out_dir / "noisy" / f"{q.stem}.png")[0] for q in paths]
            name = " ".join([f"selfrestore restore --model {model}", *extra])
            results[name] = {**score(outputs, cleans), "seconds": seconds}
            print(name, results[name], flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["laine19-gauss25"], help="shipped model names (or files)")
    p.add_argument("--test", default=str(DATA / "Kodak24"))
    p.add_argument("--limit", type=int, default=0, help="only the first N images")
    p.add_argument("--noise", default="gauss25",
                   help="test noise (gauss25, poisson30, ...); CBM3D runs for Gaussian noise only")
    p.add_argument("--seed", type=int, default=2025)
    p.add_argument("--no-cbm3d", action="store_true")
    p.add_argument("--cbm3d-process", action="store_true",
                   help="run CBM3D in a second process while the models restore (for two cores)")
    p.add_argument("--anscombe", action="store_true",
                   help="also run each model with --noise-pg (the test noise's a, b): Poisson / Poisson-Gaussian")
    p.add_argument("--variant", action="append", default=[], metavar="OPTIONS",
                   help="also run each model with these extra restore options, e.g. --variant='--ensemble' "
                        "(repeatable; one row each)")
    p.add_argument("--out", default=None,
                   help="table to write (default: results/shipped_vs_cbm3d.md, or shipped_NOISE.md)")
    args = p.parse_args()
    noise = parse_corruption(args.noise)
    # CBM3D is told the true sigma (a fixed-level Gaussian only)
    gaussian_sigma = noise.low if type(noise).__name__ == "Gaussian" and noise.low == noise.high else None
    if args.out is None:
        args.out = str(RESULTS / ("shipped_vs_cbm3d.md" if args.noise == "gauss25" else f"shipped_{args.noise}.md"))
    started = time.perf_counter()
    paths, problems = list_images([args.test])
    if problems or not paths:
        raise SystemExit(f"cannot read {args.test}: {problems or 'no images'}")
    paths = sorted(paths)[: args.limit or None]
    for model in args.models:  # a typo fails now, not after minutes of denoising
        try:
            resolve_model(model)
        except UserError as error:
            raise SystemExit(f"error: {error}") from None
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        noisy_dir = Path(tmp) / "noisy"
        cleans = make_noisy_pngs(paths, noisy_dir, args.noise, args.seed)
        noisy = [read_image(noisy_dir / f"{q.stem}.png")[0] for q in paths]
        results["noisy input (8-bit PNG)"] = score(noisy, cleans)
        run_cbm3d = not args.no_cbm3d and gaussian_sigma is not None
        worker = pending = None
        if run_cbm3d and args.cbm3d_process:
            import multiprocessing

            worker = multiprocessing.get_context("spawn").Pool(1)
            pending = worker.apply_async(cbm3d_outputs, (noisy, float(gaussian_sigma)))
        try:
            restore_models(args, noise, paths, cleans, noisy_dir, Path(tmp), results)
        except BaseException:
            if worker is not None:  # a failed or interrupted restore must not leave CBM3D running for minutes
                worker.terminate()
            raise
        if run_cbm3d:
            if pending is not None:
                outputs, corrected, seconds = pending.get()
                worker.close()
                worker.join()
            else:
                outputs, corrected, seconds = cbm3d_outputs(noisy, float(gaussian_sigma))
            results["CBM3D (bm3d package, sigma known)"] = {**score(outputs, cleans), "seconds": seconds}
            results[CBM3D_CORRECTED] = score(corrected, cleans)
            print("cbm3d", results["CBM3D (bm3d package, sigma known)"], results[CBM3D_CORRECTED], flush=True)
    wall = time.perf_counter() - started
    lines = [
        "# Shipped models through `selfrestore restore` vs CBM3D, unseen colour images",
        "",
        *run_header(wall),
        "",
        f"Test: {Path(args.test).name}, {len(paths)} images, noise {args.noise} (seed {args.seed}), "
        "noisy inputs saved as 8-bit PNG (clipped, rounded) and restored by the command line"
        + ("; CBM3D gets the same PNGs" if "CBM3D (bm3d package, sigma known)" in results else
           "; no CBM3D" + (" (--no-cbm3d)" if args.no_cbm3d else " (it needs a fixed-level Gaussian)"))
        + ". PSNR/SSIM of 8-bit outputs, full image, all channels.",
        "",
        "| restorer | PSNR (dB) | SSIM | time (s) |",
        "|---|---|---|---|",
    ]
    for name, r in results.items():
        t = f"{r['seconds']:.0f}" if "seconds" in r else ""
        lines.append(f"| {name} | {r['psnr']:.2f} | {r['ssim']:.4f} | {t} |")
    cb = results.get("CBM3D (bm3d package, sigma known)")
    if cb:
        lines += ["", "Claim (the shipped model beats CBM3D on the same inputs):", ""]
        for model in args.models:
            r = results[f"selfrestore restore --model {model}"]
            d = r["psnr"] - cb["psnr"]
            lines.append(f"- {'PASS' if d > 0 else 'FAIL'}: {model} - CBM3D = {d:+.2f} dB"
                         f" (reference: {r['psnr'] - results[CBM3D_CORRECTED]['psnr']:+.2f} dB against CBM3D with "
                         f"the clipped-noise correction)")
    Path(args.out).write_text("\n".join(lines) + "\n")
    record = {"command": invocation(), "code": code_version(), "results": results}
    Path(args.out).with_suffix(".json").write_text(json.dumps(record, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
