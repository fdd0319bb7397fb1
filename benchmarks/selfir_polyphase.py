"""SelfIR diagnostic: do networks trained on half-size sub-sampled views restore better at half size?

SelfIR (and its sub-sampled supervised diagnostic rows) train on Neighbor2Neighbor sub-images, half the
size of the photos they restore. If the loss against Baseline_R came from applying a half-size-trained
network at full size, restoring the four polyphase sub-images (every 2x2 cell position) separately and
interleaving them would recover it. This scores the networks of a ``selfir_table.py`` work folder both
ways on the same test pairs (Kodak24 256 px centre crops, seed 1000), and their average.

    OMP_NUM_THREADS=1 python benchmarks/selfir_polyphase.py --workdir runs/selfir_half15 \
        --rows selfir baseline_r_sub baseline_r --kernel-scale 0.5 --noise gauss5_50 \
        --out benchmarks/results/selfir_polyphase_half15.md
"""
from __future__ import annotations

import argparse
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import selfir_table as table  # noqa: E402

from selfrestore.checkpoint import load_model  # noqa: E402
from selfrestore.corruption import parse_corruption  # noqa: E402


def polyphase(method, net, obs: torch.Tensor) -> torch.Tensor:
    """Restore each of the four 2x2-cell sub-images of ``obs`` at half size and interleave them."""
    out = torch.zeros(obs.shape[0], obs.shape[1] // 2, obs.shape[2], obs.shape[3])
    for a in (0, 1):
        for b in (0, 1):
            out[..., a::2, b::2] = method.restore(net, obs[..., a::2, b::2]).float()
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", required=True)
    p.add_argument("--rows", nargs="+", required=True, help="row keys of selfir_table.py (network files ROW-NOISE)")
    p.add_argument("--noise", default="gauss5_50")
    p.add_argument("--kernel-scale", type=float, default=1.0)
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    torch.set_num_threads(1)
    start = time.time()
    noise = parse_corruption(args.noise)
    pairs = table.test_pairs(table.load_folder([table.DATA / "Kodak24"], None),
                             table.blur_model(scale=args.kernel_scale), noise, args.crop)
    lines = ["| row | full size (as the table restores) | four half-size sub-images | average of the two |",
             "|---|---|---|---|"]
    for row in args.rows:
        method, net, _ = load_model(Path(args.workdir) / f"{row}-{noise.name}.safetensors", "cpu")
        net.eval()
        full, half = [], []
        with torch.no_grad():
            for pair in pairs:
                obs = torch.cat([pair["blurry"], pair["noisy"]], dim=1)
                full.append(method.restore(net, obs).float()[0].numpy().transpose(1, 2, 0))
                half.append(polyphase(method, net, obs)[0].numpy().transpose(1, 2, 0))
        cells = [table.score(estimates, pairs)
                 for estimates in (full, half, [(f + h) / 2 for f, h in zip(full, half)])]
        lines.append(f"| {row} | " + " | ".join(f"{c['psnr']:.2f} / {c['ssim']:.4f}" for c in cells) + " |")
        print(lines[-1], flush=True)
    text = [f"# SelfIR diagnostic: full-size vs polyphase half-size restoration ({args.noise}, Kodak24 "
            f"{args.crop} px crops)", "", __doc__.split("\n\n")[1].replace("\n", " "), "",
            "PSNR (dB) / SSIM on 8-bit rounded outputs.", "", *lines, "",
            f"Command: `OMP_NUM_THREADS=1 python benchmarks/selfir_polyphase.py {shlex.join(sys.argv[1:])}`",
            f"Machine: {platform.machine()} CPU, 2 cores shared with other jobs, 1 thread, torch {torch.__version__}. "
            f"Networks: `{args.workdir}` (trained by `benchmarks/selfir_table.py`, see its table). "
            f"Wall time: {time.time() - start:.0f} s.", ""]
    Path(args.out).write_text("\n".join(text))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
