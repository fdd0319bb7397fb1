"""Training step time in bf16 autocast vs fp32 on this CPU, for the networks `fit` trains most: why `fit` and
`video` choose the precision from the hardware (``selfrestore.train.bf16_is_native``) instead of always bf16.

    OMP_NUM_THREADS=2 python benchmarks/precision_speed.py      # writes benchmarks/results/precision_speed.md

A step is what the driver does (channels_last, forward, a mean-square loss in fp32, backward, Adam), on a batch of
4 random 128 px RGB patches; the first steps of each cell are a warm-up and not timed.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.provenance import run_header  # noqa: E402
from selfrestore.checkpoint import build_net  # noqa: E402
from selfrestore.train import autocast, bf16_is_native  # noqa: E402

#: (label, network name, output channels): the Laine19 full-covariance head predicts 3 + 6 values per pixel
NETS = (("laine19 blind-spot U-Net (width 48, depth 5)", "blindspot", 9), ("U-Net (width 48)", "unet", 3))


def step_seconds(net_name: str, out_channels: int, bf16: bool, steps: int, warmup: int) -> list[float]:
    """Seconds of each timed training step of ``net_name`` in the given precision."""
    torch.manual_seed(0)
    net = build_net(net_name, in_channels=3, out_channels=out_channels).to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    batch = torch.rand(4, 3, 128, 128).contiguous(memory_format=torch.channels_last)
    cpu, times = torch.device("cpu"), []
    for i in range(warmup + steps):
        start = time.perf_counter()
        with autocast(cpu, bf16):
            out = net(batch)
        loss = out.float().square().mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times


def cpu_flags() -> str:
    """The CPU's bf16-related capabilities as torch sees them."""
    caps = torch.cpu.get_capabilities() if hasattr(torch.cpu, "get_capabilities") else {}
    names = ("avx512_f", "avx512_bf16", "amx_bf16", "amx_tile")
    return ", ".join(f"{n} {'yes' if caps.get(n) else 'no'}" for n in names) or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5, help="timed steps per cell")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "precision_speed.md"))
    args = parser.parse_args()
    started = time.time()
    rows = []
    for label, name, out_channels in NETS:
        medians = {}
        for precision in ("fp32", "bf16"):
            times = step_seconds(name, out_channels, precision == "bf16", args.steps, args.warmup)
            medians[precision] = statistics.median(times)
            print(f"{label} {precision}: {', '.join(f'{t:.2f}' for t in times)} s", flush=True)
        rows.append(f"| {label} | {medians['fp32']:.2f} | {medians['bf16']:.2f} | "
                    f"{medians['bf16'] / medians['fp32']:.2f} |")
    native = bf16_is_native(torch.device("cpu"))
    lines = ["# Training step time: bf16 autocast vs fp32 on this CPU", "",
             *run_header(time.time() - started),
             f"CPU: {cpu_flags()}; `bf16_is_native`: {native} (so `fit` / `video` default to "
             f"{'bf16' if native else 'fp32'} here).", "",
             f"Median of {args.steps} timed steps (after {args.warmup} warm-up steps) of batch 4, 128 px RGB, "
             "channels_last, Adam.", "",
             "| network | fp32 s/step | bf16 s/step | bf16 / fp32 |", "|---|---|---|---|", *rows, ""]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
