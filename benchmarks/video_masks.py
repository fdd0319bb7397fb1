"""Which pixels should the F2F / MF2F warped loss keep? Offline fine-tuning with three alignments:

* ``consistency``: flow on pre-denoised frames, forward-backward consistency check x warping residual test
  (the default of ``selfrestore video``);
* ``residual``: the same flow, residual test alone (``--occlusion-test residual``);
* ``oracle``: flow and both tests computed on the CLEAN frames (not available to a user: an upper bound
  that says how much better alignment could give).

Same test videos, noise draws, start points and supervised references as ``video_mf2f.py table`` (run its
``supervised`` stage first for the reference column). Writes ``benchmarks/results/video_masks_METHOD.md``:

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/video_masks.py --method f2f --passes 6 --warp-loss l2
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import video_mf2f as bench  # noqa: E402
from provenance import code_version  # noqa: E402

import selfrestore.video as video  # noqa: E402
from selfrestore.video import VideoConfig  # noqa: E402

MODES = ("consistency", "residual", "oracle")


def clean_alignment(clean: np.ndarray):
    """An ``align_video`` replacement that aligns the CLEAN frames (flow, consistency and residual tests)."""
    def align(tuner, frames, n):
        samples = {t: [] for t in range(n)}
        for t in range(1, n):
            flow_prev, mask_prev, flow_next, mask_next = tuner.align(clean[t - 1], clean[t])
            samples[t].append((t - 1, flow_prev, mask_prev))
            samples[t - 1].append((t, flow_next, mask_next))
        return samples
    return align


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", choices=["f2f", "mf2f"], default="f2f")
    parser.add_argument("--noises", nargs="+", default=["poisson10", "corr25"])
    parser.add_argument("--passes", type=int, default=6)
    parser.add_argument("--steps", type=int, default=5, help="offline steps per frame and pass")
    parser.add_argument("--lr", type=float, default=None, help="offline lr (default: the table's)")
    parser.add_argument("--warp-loss", choices=["l1", "l2"], default="l2")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--crop", type=int, default=160)
    args = parser.parse_args()
    lr = args.lr if args.lr is not None else bench.OFFLINE_LR[args.method]
    start_time, code = time.time(), code_version()
    seqs = bench.load_sequences(args.frames, args.crop)
    zero = VideoConfig(mode="online", steps_per_frame=0, progress=False, amp=bench.BF16)  # the table's bf16
    lines = [f"# {args.method.upper()} offline: which pixels the warped loss keeps", "",
             f"Command: `OMP_NUM_THREADS=1 .venv/bin/python benchmarks/video_masks.py {' '.join(sys.argv[1:])}`", "",
             f"Machine: 2-core CPU ({platform.machine()}), shared, OMP_NUM_THREADS=1; code {code}. Test videos, noise "
             "draws, start point and supervised reference as in `video_mf2f.py table` (first "
             f"{args.frames} frames, {args.crop} px centre crops). Offline: {args.passes} passes x {args.steps} "
             f"steps/frame, lr {lr:g} (cosine), warped {args.warp_loss.upper()} loss, 96 px crops x 2.", "",
             "consistency: flow on pre-denoised frames, forward-backward check x residual test (the default); "
             "residual: same flow, residual test alone; oracle: flow and both tests on the CLEAN frames (an upper "
             "bound, not available to a user). PSNR in dB (8-bit); kept = mean fraction of pixels the loss uses.",
             "", "| noise | sequence | start | consistency | kept | residual | kept | oracle | kept | supervised |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    means: dict[tuple[str, str], list[float]] = {}
    own_align = video.align_video
    for noise in args.noises:
        reference = bench.reference_model(args.method, noise)
        for si, (name, clean) in enumerate(seqs.items()):
            noisy = bench.add_noise(clean, noise, seed=1000 + si)
            start = bench.start_model(args.method)
            row = {"start": (bench.score(bench.run_video(start, args.method, noisy, zero)[0], clean)[0], None)}
            for mode in MODES:
                config = VideoConfig(mode="offline", steps_per_frame=args.steps, passes=args.passes, lr=lr, crop=96,
                                     batch_size=2, progress=False, flow_on="denoised",
                                     occlusion_test="residual" if mode == "residual" else "consistency",
                                     amp=bench.BF16)
                video.align_video = clean_alignment(clean) if mode == "oracle" else own_align
                try:
                    restored, stats = bench.run_video(start, args.method, noisy, config, args.warp_loss)
                finally:
                    video.align_video = own_align
                row[mode] = (bench.score(restored, clean)[0], float(np.mean(stats.valid_fraction)))
            row["supervised"] = ((bench.score(bench.run_video(reference, args.method, noisy, zero)[0], clean)[0], None)
                                 if reference.exists() else (float("nan"), None))
            for key, (value, _) in row.items():
                means.setdefault((noise, key), []).append(value)
            lines.append(f"| {noise} | {name} | {row['start'][0]:.2f} | "
                         + " | ".join(f"{row[m][0]:.2f} | {row[m][1]:.3f}" for m in MODES)
                         + f" | {row['supervised'][0]:.2f} |")
            print(lines[-1], flush=True)
        lines.append(f"| {noise} | **mean** | {np.mean(means[noise, 'start']):.2f} | "
                     + "".join(f"{np.mean(means[noise, m]):.2f} |  | " for m in MODES)
                     + f"{np.mean(means[noise, 'supervised']):.2f} |")
    lines += ["", f"Wall time: {(time.time() - start_time) / 60:.1f} min."]
    out = bench.RESULTS / f"video_masks_{args.method}.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
