"""Restoration speed of the default U-Net on a 768x512 RGB image, and peak memory on a large image.

    python benchmarks/restore_speed.py                 # writes benchmarks/results/restore_speed.md
    python benchmarks/restore_speed.py --big 40        # also restores a 40-megapixel image (slow on CPU)
"""
from __future__ import annotations

import argparse
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from selfrestore.checkpoint import build_net  # noqa: E402
from selfrestore.methods.n2n import Noise2Noise  # noqa: E402
from selfrestore.restore import restore_array  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--big", type=float, default=0, help="also restore an image of this many megapixels")
    parser.add_argument("--tile", type=int, default=1024, help="tile size for the big image")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "restore_speed.md"))
    args = parser.parse_args()
    started = time.time()
    torch.manual_seed(0)
    net = build_net("unet", in_channels=3, out_channels=3).eval()
    image = np.random.default_rng(0).random((512, 768, 3), dtype=np.float32)
    rows = []
    for precision in ("fp32", "bf16"):
        restore_array(Noise2Noise(), net, image, precision=precision, device="cpu")  # warm-up
        times = []
        for _ in range(args.repeats):
            t = time.time()
            restore_array(Noise2Noise(), net, image, precision=precision, device="cpu")
            times.append(time.time() - t)
        best = min(times)
        rows.append(f"| 768x512 RGB | {precision} | {np.median(times):.2f} | {0.393216 / best:.2f} |")
    big_line = ""
    if args.big:
        side = int((args.big * 1e6 / 1.5) ** 0.5)
        big = np.random.default_rng(1).random((side, int(side * 1.5), 3), dtype=np.float32)
        t = time.time()
        restore_array(Noise2Noise(), net, big, precision="bf16", device="cpu", tile=args.tile)
        peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
        big_line = (f"\n{big.shape[0]}x{big.shape[1]} ({big.shape[0] * big.shape[1] / 1e6:.1f} MP) bf16, tile {args.tile}: "
                    f"{time.time() - t:.0f} s, peak resident memory of the whole process {peak_gb:.2f} GB.\n")
    text = "\n".join([
        "# Restoration speed, default N2N U-Net (width 48, depth 5)",
        "",
        f"Command: `python benchmarks/restore_speed.py {' '.join(sys.argv[1:])}`",
        f"Machine: {platform.machine()} CPU, {torch.get_num_threads()} torch threads, torch {torch.__version__}.",
        f"Wall time: {time.time() - started:.0f} s. Other jobs may have shared the CPU: figures are lower bounds.",
        "",
        "| image | precision | median s | MP/s (best of runs) |",
        "|---|---|---|---|",
        *rows,
        big_line,
    ])
    Path(args.out).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
