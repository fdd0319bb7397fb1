"""What `--precision bf16` costs in quality and gains in speed, per model, on noisy colour images.

Every clean test image (default: the first 4 of Kodak24) gets Gaussian noise (seed fixed per image) and is
rounded to 8 bits, as a user's photo would be; each model restores it in fp32 and in bf16 autocast (the
posterior math of Laine19 stays in fp32 either way). PSNR of the 8-bit outputs against the clean image, and
the restoration time (the median over the images). Times are only comparable within one run.

    OMP_NUM_THREADS=2 python benchmarks/precision_check.py --models laine19-gauss25 laine19-gauss5_50 unet-gauss25
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from provenance import run_header  # noqa: E402
from selfrestore.checkpoint import load_model  # noqa: E402
from selfrestore.corruption import parse_corruption  # noqa: E402
from selfrestore.data.images import image_generator  # noqa: E402
from selfrestore.file_lists import list_images  # noqa: E402
from selfrestore.io import read_image, to_array, to_channels, to_tensor  # noqa: E402
from selfrestore.metrics import psnr  # noqa: E402
from selfrestore.restore import PRECISIONS, restore_array  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"


def noisy_8bit(clean: np.ndarray, noise_name: str, seed: int, index: int) -> np.ndarray:
    """``clean`` corrupted by ``noise_name`` (fixed seed per image), clipped and rounded to 8 bits."""
    noisy = to_array(parse_corruption(noise_name).sample(to_tensor(clean), image_generator(seed, index)))
    return (np.round(np.clip(noisy, 0, 1) * 255) / 255).astype(np.float32)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["laine19-gauss25", "laine19-gauss5_50", "unet-gauss25"])
    p.add_argument("--test", default=str(DATA / "Kodak24"))
    p.add_argument("--limit", type=int, default=4, help="the first N images (0: all)")
    p.add_argument("--noise", default="gauss25")
    p.add_argument("--seed", type=int, default=2025)
    p.add_argument("--out", default=str(RESULTS / "precision_check.md"))
    args = p.parse_args()
    paths, problems = list_images([args.test])
    if problems or not paths:
        raise SystemExit(f"cannot read {args.test}: {problems or 'no images'}")
    paths = sorted(paths)[: args.limit or None]
    started = time.perf_counter()
    cleans = [to_channels(read_image(path)[0], 3) for path in paths]
    noisy = [noisy_8bit(c, args.noise, args.seed, i) for i, c in enumerate(cleans)]
    rows = []
    for model in args.models:
        method, net, _ = load_model(model)
        scores: dict[str, list[float]] = {k: [] for k in PRECISIONS}
        times: dict[str, list[float]] = {k: [] for k in PRECISIONS}
        for clean, y in zip(cleans, noisy):
            for precision in PRECISIONS:
                start = time.perf_counter()
                out = restore_array(method, net, y, precision=precision)
                times[precision].append(time.perf_counter() - start)
                scores[precision].append(psnr(np.round(np.clip(out, 0, 1) * 255) / 255, clean))
        fp32, bf16 = (float(np.mean(scores[k])) for k in ("fp32", "bf16"))
        worst = float(np.max(np.abs(np.subtract(scores["bf16"], scores["fp32"]))))
        t32, t16 = (float(np.median(times[k])) for k in ("fp32", "bf16"))
        rows.append(f"| {model} | {fp32:.3f} | {bf16:.3f} | {bf16 - fp32:+.3f} | {worst:.3f} | {t32:.2f} | "
                    f"{t16:.2f} | {t32 / t16:.2f} |")
        print(rows[-1], flush=True)
    wall = time.perf_counter() - started
    lines = [
        "# `--precision bf16` versus fp32: quality and speed per model",
        "",
        *run_header(wall, " Other jobs may have shared the CPU: compare times within a row only."),
        "",
        f"Test: {Path(args.test).name}, {len(paths)} images, noise {args.noise} (seed {args.seed}), 8-bit noisy "
        "inputs; whole images (one tile); PSNR of the 8-bit outputs, all channels.",
        "",
        "| model | PSNR fp32 (dB) | PSNR bf16 (dB) | bf16 - fp32 | largest per-image difference | s per image fp32 "
        "| s per image bf16 | speed-up |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
    ]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
