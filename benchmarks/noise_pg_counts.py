"""Camera counts in 16-bit files (12-bit range) through `restore`: the default model against `--noise-pg`.

The user's workflow on fluorescence-like data, through the command line: `selfrestore inspect IMAGE`, then
`selfrestore restore IMAGE` (default model, level estimated per image), `selfrestore restore IMAGE --noise-pg A B`
with the A, B that inspect's report suggests, and with the true A, B (on the 0-1 scale of the 16-bit file, as
`--help` asks). Images: skimage's gray `cell`, `camera`, `coins`, `moon`, each resized to SIZE x SIZE and
scaled to counts (clean = background + peak x image in [0, 1]), then Poisson (times a gain) plus Gaussian read
noise, rounded and clipped to 0..4095, written as uint16 TIFF. PSNR over the clean counts' range.

    OMP_NUM_THREADS=2 python benchmarks/noise_pg_counts.py
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from provenance import write_result  # noqa: E402

#: exposure -> (peak counts above background, background, gain, read noise std in counts)
EXPOSURES = {"dim": (400.0, 100.0, 1.0, 3.0), "bright": (3000.0, 100.0, 1.0, 5.0), "gain4": (900.0, 25.0, 4.0, 8.0)}
SCENES = ("cell", "camera", "coins", "moon")


def counts_image(scene: str, exposure: str, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(noisy uint16 counts, clean counts)."""
    from skimage import data, transform

    image = transform.resize(getattr(data, scene)().astype(np.float64), (size, size), anti_aliasing=True)
    peak, background, gain, read = EXPOSURES[exposure]
    electrons = background + peak * (image - image.min()) / (image.max() - image.min())
    rng = np.random.default_rng(seed)
    noisy = gain * rng.poisson(electrons) + rng.normal(0, read, electrons.shape)
    return np.clip(np.round(noisy), 0, 4095).astype(np.uint16), gain * electrons


def selfrestore(*args: str) -> str:
    """Run the command line as a user does; its stdout + stderr."""
    done = subprocess.run([sys.executable, "-m", "selfrestore", *args], capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"selfrestore {' '.join(args)}: {done.stderr}")
    return done.stdout + done.stderr


def psnr(estimate: np.ndarray, clean: np.ndarray) -> float:
    rmse = float(np.sqrt(np.mean((estimate.astype(np.float64) - clean) ** 2)))
    return 20 * np.log10((clean.max() - clean.min()) / rmse)


def main(argv: list[str] | None = None) -> int:
    import tifffile

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", default="noise_pg_counts")
    args = p.parse_args(argv)
    start = time.time()
    lines = [f"# {__doc__.splitlines()[0]}", "", " ".join(__doc__.split("\n\n")[1].split()), "",
             "Exposures (peak above background, background, gain, read noise; counts): "
             + "; ".join(f"{k} {v[0]:g}, {v[1]:g}, {v[2]:g}, {v[3]:g}" for k, v in EXPOSURES.items())
             + f". {args.size} x {args.size} px, seed {args.seed}.", "",
             "| scene | exposure | noisy (dB) | default model | --noise-pg inspect's A B | --noise-pg true A B "
             "| inspect's A, B (x 65535) | true A, B (x 65535) |", "|" + "---|" * 8]
    sums: dict[str, list[float]] = {"noisy": [], "default": [], "inspect": [], "true": []}
    with tempfile.TemporaryDirectory() as folder:
        for scene in SCENES:
            for exposure, (_, _, gain, read) in EXPOSURES.items():
                noisy, clean = counts_image(scene, exposure, args.size, args.seed)
                source = Path(folder) / f"{scene}_{exposure}.tif"
                tifffile.imwrite(source, noisy)
                report = selfrestore("inspect", str(source))
                found = re.search(r"--noise-pg (\S+) (\S+)", report)
                if found is None:
                    raise RuntimeError(f"inspect suggested no --noise-pg for {source.name}:\n{report}")
                measured = (float(found.group(1)), float(found.group(2)))
                true = (gain / 65535, read / 65535)
                scores = {"noisy": psnr(noisy, clean)}
                for label, extra in (("default", []), ("inspect", ["--noise-pg", *found.groups()]),
                                     ("true", ["--noise-pg", f"{true[0]:.6g}", f"{true[1]:.6g}"])):
                    out = Path(folder) / f"{scene}_{exposure}_{label}.tif"
                    selfrestore("restore", str(source), "-o", str(out), "--quiet", *extra)
                    scores[label] = psnr(tifffile.imread(out), clean)
                for label, value in scores.items():
                    sums[label].append(value)
                lines.append(f"| {scene} | {exposure} | {scores['noisy']:.2f} | {scores['default']:.2f} "
                             f"| {scores['inspect']:.2f} | {scores['true']:.2f} "
                             f"| {measured[0] * 65535:.3g}, {measured[1] * 65535:.3g} "
                             f"| {true[0] * 65535:.3g}, {true[1] * 65535:.3g} |")
                print(lines[-1], f"{time.time() - start:.0f} s", flush=True)
    lines.append(f"| mean | | {np.mean(sums['noisy']):.2f} | {np.mean(sums['default']):.2f} "
                 f"| {np.mean(sums['inspect']):.2f} | {np.mean(sums['true']):.2f} | | |")
    write_result(args.name, lines, started=start)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
