"""SelfIR (Zhang et al. 2022, Tables 1 and 3) at this machine's scale: restoration from blurry + noisy pairs.

Protocol (fixed seeds throughout):

* training: ``../shared/data/BSDS500_train_test`` (train/ + test/, 400 colour images). Each image becomes ONE
  fixed (blurry, noisy) pair (seed 0, per-image generator): the blurry long exposure is the 'valid' blur
  with a camera-shake kernel (half random motion trajectories, half the recorded motion kernels of
  ``blur_kernels/`` — Levin09's 8 and the 4 motion kernels of kernels_12; padded to 27 px) plus light
  Gaussian noise (sigma 1/255); the noisy short exposure of the same scene has ``gauss5_50`` (sigma uniform in
  [5, 50]/255 per image) or ``poisson5_50`` (lambda uniform in [5, 50]) noise, not clipped; aligned
  (no misalignment). The supervised baselines read the clean image, the others never do (the key is
  removed from their batches);
* test: Kodak24, the centre 256x256 of each image (crops, to fit the CPU budget), made into a pair the
  same way with seed 1000; PSNR after rounding to 8 bits (all channels), SSIM (selfrestore.metrics),
  LPIPS-alex (selfrestore.perceptual) when its weights are installed;
* every learned row trains the N2N U-Net of the same width/depth (two-input rows: 6 input channels) for
  the same budget of CPU time per thread (``--minutes``); the step count is calibrated from timed steps so
  the warm-up + cosine schedule completes inside the budget, and the steps done are reported;
* rows: SelfIR, SelfIR without L_aux, Baseline_R (supervised, both inputs), Baseline_B (supervised
  deblurring), Baseline_N (supervised denoising), Nb2Nb on N alone, deblurring supervised by noisy
  targets (Table 3), plus the inputs themselves. Baseline_B's data does not depend on the noise model (the
  blurry images and crops are drawn before the noise), so it is trained once and shown in both columns.

Several processes can share the table (``--noises``): cells are merged into the JSON under a file lock.

    OMP_NUM_THREADS=1 python benchmarks/selfir_table.py --noises gauss5_50      # one column
    OMP_NUM_THREADS=1 python benchmarks/selfir_table.py --quick                 # smoke run
"""
from __future__ import annotations

import argparse
import copy
import fcntl
import json
import os
import platform
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from selfrestore.checkpoint import build_net  # noqa: E402
from selfrestore.corruption import parse_corruption  # noqa: E402
from selfrestore.corruption.blur import load_kernels  # noqa: E402
from selfrestore.data.blurry_noisy import MixedShakeBlur, SyntheticBlurryNoisy, make_blurry_noisy  # noqa: E402
from selfrestore.data.images import image_generator  # noqa: E402
from selfrestore.io import list_images, read_image, to_channels  # noqa: E402
from selfrestore.metrics import psnr, quantize8, ssim  # noqa: E402
from selfrestore.registry import METHODS  # noqa: E402
from selfrestore.restore import restore_tensor  # noqa: E402
from selfrestore.train import TrainConfig, autocast, pick_device, train  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
NOISES = ("gauss5_50", "poisson5_50")
SHARED_ROW = "baseline_b"  # trained once: its data does not depend on the noise model


@dataclass
class Row:
    key: str
    label: str
    method: str
    options: dict = field(default_factory=dict)


def rows(mask_patch: int) -> list[Row]:
    return [
        Row("baseline_b", "Baseline_B (supervised deblurring, B -> clean)", "deblur_sup"),
        Row("selfir", "SelfIR", "selfir", {"aux": 1, "mask_patch": mask_patch}),
        Row("selfir_noaux", "SelfIR without L_aux (ablation)", "selfir", {"aux": 0, "mask_patch": mask_patch}),
        Row("baseline_r", "Baseline_R (supervised, B + N -> clean)", "selfir_sup"),
        Row("baseline_n", "Baseline_N (supervised denoising, N -> clean)", "denoise_sup"),
        Row("nb2nb", "Nb2Nb on N alone", "nb2nb_noisy"),
        Row("deblur_noisy", "Deblurring supervised by noisy targets (B -> N)", "deblur_noisy"),
    ]


# --- data --------------------------------------------------------------------------------------------

def load_folder(folders: list[Path], limit: int | None) -> list[np.ndarray]:
    paths, problems = list_images(folders)
    if problems or not paths:
        raise SystemExit(f"cannot read {folders}: {problems or 'no images'}")
    paths = sorted(paths)[:limit] if limit else sorted(paths)
    return [to_channels(read_image(p)[0], 3) for p in paths]


def blur_model() -> MixedShakeBlur:
    kernels = load_kernels(DATA / "blur_kernels" / "Levin09.mat")
    kernels += load_kernels(DATA / "blur_kernels" / "kernels_12.mat")[8:]  # its 4 motion kernels
    return MixedShakeBlur(kernels, kernel_size=25, sigma=1.0)


def test_pairs(images: list[np.ndarray], blur, noise, crop: int) -> list[dict[str, torch.Tensor]]:
    """Centre crops of ``crop`` px made into fixed (blurry, noisy, clean) triples, seed 1000."""
    margin = blur.kernel_size // 2
    out = []
    for i, img in enumerate(images):
        h, w = img.shape[:2]
        size = crop + 2 * margin
        top, left = (h - size) // 2, (w - size) // 2
        triple = make_blurry_noisy(img[top:top + size, left:left + size], blur, noise, image_generator(1000, i))
        out.append({k: torch.from_numpy(v.transpose(2, 0, 1).copy())[None] for k, v in triple.items()})
    return out


class WithoutClean:
    """A view of a source whose batches never carry the clean image (self-supervised rows)."""

    def __init__(self, source):
        self.source, self.kind, self.channels = source, source.kind, source.channels

    def batch(self, rng, batch_size, patch_size):
        batch = self.source.batch(rng, batch_size, patch_size)
        batch.pop("clean", None)
        return batch


# --- training ----------------------------------------------------------------------------------------

def training_clock():
    """CPU time of this process per torch thread: the compute a run got on a shared CPU."""
    threads = max(1, torch.get_num_threads())
    return lambda: time.process_time() / threads


class BudgetSpent(Exception):
    def __init__(self, steps: int):
        super().__init__(f"budget spent after {steps} steps")
        self.steps = steps


def seconds_per_step(method, net, source, cfg: TrainConfig, device, clock) -> float:
    probe = copy.deepcopy(net).to(device).to(memory_format=torch.channels_last).train()
    opt = torch.optim.Adam(probe.parameters(), lr=cfg.lr)
    rng = np.random.default_rng(0)
    times = []
    method.progress = 0.5  # so schedules that switch terms on (Nb2Nb's gamma ramp) are timed with them
    for k in range(6):
        t0 = clock()
        batch = source.batch(rng, cfg.batch_size, cfg.patch_size)
        with autocast(device, cfg.amp):
            loss = method.loss(probe, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if k >= 1:
            times.append(clock() - t0)
    method.progress = 0.0
    return float(np.median(times))


def train_row(row: Row, noise, source, args, device, workdir: Path):
    method = METHODS.get(row.method)(noise=noise, width=args.width, depth=args.depth, **row.options)
    torch.manual_seed(0)
    net = build_net(method.default_net, **method.net_kwargs(3))
    data = source if method.needs_clean else WithoutClean(source)
    cfg = TrainConfig(steps=1, batch_size=args.batch, patch_size=args.patch, lr=args.lr, progress=False,
                      plot=False, seed=0)
    now = training_clock()
    per_step = seconds_per_step(method, net, data, cfg, device, now)
    budget = args.minutes * 60
    cfg.steps = max(10, int(budget / per_step))
    cfg.ckpt_every = cfg.steps
    start = now()

    def on_step(step: int, loss: float) -> None:
        if now() - start > 1.1 * budget:
            raise BudgetSpent(step + 1)

    out_path = workdir / f"{row.key}-{noise.name}.safetensors"
    if out_path.exists():
        out_path.unlink()
    steps_done = cfg.steps
    try:
        train(method, net, data, cfg, out_path, on_step=on_step)
    except BudgetSpent as stop:
        steps_done = stop.steps
    net.eval()
    return method, net, {"steps": steps_done, "steps_planned": cfg.steps, "sec_per_step": per_step,
                         "train_seconds": now() - start}


# --- evaluation --------------------------------------------------------------------------------------

def lpips_fn():
    try:
        from selfrestore.perceptual import available, lpips
    except ImportError:
        return None
    return lpips if available().get("lpips_alex") else None


def score(estimates: list[np.ndarray], pairs) -> dict[str, float]:
    lp = lpips_fn()
    values: dict[str, list[float]] = {"psnr": [], "ssim": [], "lpips": []}
    for est, pair in zip(estimates, pairs):
        clean = pair["clean"][0].numpy().transpose(1, 2, 0)
        est8 = quantize8(np.clip(est, 0, 1))
        values["psnr"].append(psnr(est8, clean))
        values["ssim"].append(ssim(est8, clean))
        if lp is not None:
            values["lpips"].append(lp(est8, clean))
    return {k: float(np.mean(v)) for k, v in values.items() if v}


def restore_all(method, net, pairs, device) -> list[np.ndarray]:
    outs = []
    for pair in pairs:
        obs = torch.cat([pair["blurry"], pair["noisy"]], dim=1)
        with torch.no_grad():
            outs.append(restore_tensor(method, net, obs, device=device)[0].numpy().transpose(1, 2, 0))
    return outs


# --- report ------------------------------------------------------------------------------------------

def merge_result(out_json: Path, noise_name: str, key: str, entry: dict) -> dict:
    with open(out_json.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        table = json.loads(out_json.read_text()) if out_json.exists() else {}
        table.setdefault("cells", {}).setdefault(noise_name, {})[key] = entry
        out_json.write_text(json.dumps(table, indent=1))
        return table


def claims(cells: dict) -> list[str]:
    def get(noise, key):
        cell = cells.get(noise, {}).get(key)
        if cell is None and key == SHARED_ROW:
            cell = cells.get(NOISES[0], {}).get(key)
        return None if not cell else cell["psnr"]

    lines = []
    for noise in NOISES:
        s, nb, r = get(noise, "selfir"), get(noise, "nb2nb"), get(noise, "baseline_r")
        dn, dc, na = get(noise, "deblur_noisy"), get(noise, SHARED_ROW), get(noise, "selfir_noaux")

        def check(text, ok):
            lines.append(f"- {noise}: {text}: " + ("n/a (not run)" if ok is None else ("PASS" if ok else "FAIL")))

        check(f"SelfIR >= Nb2Nb on N + 1.0 dB ({_fmt(s)} vs {_fmt(nb)})",
              None if s is None or nb is None else s - nb >= 1.0)
        check(f"SelfIR within 0.6 dB of Baseline_R ({_fmt(s)} vs {_fmt(r)})",
              None if s is None or r is None else r - s <= 0.6)
        check(f"deblurring supervised by noisy within 0.1 dB of supervised by clean ({_fmt(dn)} vs {_fmt(dc)})",
              None if dn is None or dc is None else abs(dc - dn) <= 0.1)
        lines.append(f"- {noise}: ablation: L_aux changes SelfIR by "
                     + ("n/a" if s is None or na is None else f"{s - na:+.2f} dB"))
    return lines


def _fmt(v, digits=2):
    return "-" if v is None else f"{v:.{digits}f}"


def write_report(out_md: Path, table: dict, all_rows: list[Row]) -> None:
    cells, runs = table.get("cells", {}), table.get("runs", {})
    labels = [("blurry_input", "Blurry input B"), ("noisy_input", "Noisy input N")] + \
        [(r.key, r.label) for r in all_rows]
    head = "| row | " + " | ".join(f"{n} PSNR / SSIM / LPIPS | steps" for n in NOISES) + " |"
    lines = [head, "|---|" + "---|---|" * len(NOISES)]
    for key, label in labels:
        parts = []
        for noise in NOISES:
            cell = cells.get(noise, {}).get(key)
            if cell is None and key == SHARED_ROW:
                cell = cells.get(NOISES[0], {}).get(key)
            if cell is None:
                parts.append("- | -")
                continue
            lp = _fmt(cell.get("lpips"), 3) if "lpips" in cell else "n/a"
            parts.append(f"{cell['psnr']:.2f} / {cell['ssim']:.4f} / {lp} | {cell.get('steps', '-')}")
        lines.append(f"| {label} | " + " | ".join(parts) + " |")
    lp_note = ("LPIPS: AlexNet LPIPS v0.1 (selfrestore.perceptual, lower is better)" if lpips_fn() else
               "LPIPS: not computed (selfrestore.perceptual weights are not installed here)")
    text = [
        "# SelfIR at this machine's scale: blurry + noisy pairs (BSDS500 -> Kodak24 256 px centre crops)",
        "",
        "Protocol: see the docstring of `benchmarks/selfir_table.py`. Train: BSDS500 train+test (400 images), "
        "each made into ONE fixed (blurry, noisy) pair (seed 0). Test: Kodak24 centre 256x256 crops, seed 1000 "
        "(crops, not full images, to fit the CPU budget). Same budget of CPU time per thread for every learned "
        "row; N2N U-Net (two-input rows: 6 input channels). PSNR on 8-bit rounded outputs, all channels. "
        f"{lp_note}.",
        "",
        *lines,
        "",
        "Baseline_B does not depend on the noise model (same blurry data), so it is trained once and its "
        "numbers appear in both columns.",
        "",
        "## Claims (Kodak24 crops, PSNR)",
        "",
        *claims(cells),
        "",
        "## Runs",
        "",
    ]
    if table.get("execution"):
        text += [table["execution"], ""]
    for noise, run in sorted(runs.items()):
        text += [f"- {noise}: `{run['command']}`", f"  - machine: {run['machine']}; wall time {run['wall_min']:.1f} min; "
                 f"{run['settings']}"]
    out_md.write_text("\n".join(text) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=3.0, help="budget per learned row (CPU time per thread)")
    p.add_argument("--noises", nargs="+", default=list(NOISES), choices=NOISES)
    p.add_argument("--rows", nargs="+", default=None, help="row keys to run (default: all)")
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--depth", type=int, default=5)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--patch", type=int, default=128)
    p.add_argument("--mask-patch", type=int, default=24,
                   help="SelfIR mask patch on the sub-images (paper: 48 on 128 px sub-images; 24 on our 64 px)")
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--train-limit", type=int, default=None)
    p.add_argument("--test-limit", type=int, default=None)
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--workdir", default=str(ROOT / "runs" / "selfir"))
    p.add_argument("--quick", action="store_true", help="smoke run: tiny budget and subsets, writes *_quick.*")
    p.add_argument("--report-only", action="store_true", help="rewrite the .md from the .json and exit")
    args = p.parse_args(argv)
    if args.quick:
        args.minutes, args.train_limit, args.test_limit = 0.1, 8, 2
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    name = "selfir_table_quick" if args.quick else "selfir_table"
    RESULTS.mkdir(parents=True, exist_ok=True)
    out_json, out_md = RESULTS / f"{name}.json", RESULTS / f"{name}.md"
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    device = pick_device("cpu")
    all_rows = rows(args.mask_patch)
    if args.report_only:
        write_report(out_md, json.loads(out_json.read_text()), all_rows)
        print(f"wrote {out_md}")
        return 0
    chosen = [r for r in all_rows if args.rows is None or r.key in args.rows]
    wall0 = time.time()
    train_images = load_folder([DATA / "BSDS500_train_test" / "train", DATA / "BSDS500_train_test" / "test"],
                               args.train_limit)
    test_images = load_folder([DATA / "Kodak24"], args.test_limit)
    blur = blur_model()
    command = "OMP_NUM_THREADS=" + os.environ.get("OMP_NUM_THREADS", "?") + " python benchmarks/selfir_table.py " + \
        shlex.join(argv if argv is not None else sys.argv[1:])
    for noise_name in args.noises:
        noise = parse_corruption(noise_name)
        t0 = time.time()
        source = SyntheticBlurryNoisy(train_images, blur, noise, seed=0, keep_clean=True)
        pairs = test_pairs(test_images, blur, noise, args.crop)
        print(f"[{noise_name}] data ready in {time.time() - t0:.0f} s", flush=True)
        merge_result(out_json, noise_name, "blurry_input",
                     score([q["blurry"][0].numpy().transpose(1, 2, 0) for q in pairs], pairs))
        table = merge_result(out_json, noise_name, "noisy_input",
                             score([q["noisy"][0].numpy().transpose(1, 2, 0) for q in pairs], pairs))
        for row in chosen:
            if row.key == SHARED_ROW and noise_name != NOISES[0]:
                continue  # trained once, in the first noise column (see SHARED_ROW)
            method, net, info = train_row(row, noise, source, args, device, workdir)
            result = {**score(restore_all(method, net, pairs, device), pairs), **info}
            table = merge_result(out_json, noise_name, row.key, result)
            write_report(out_md, table, all_rows)
            print(f"[{noise_name}] {row.key}: {result}", flush=True)
        with open(out_json.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            table = json.loads(out_json.read_text())
            table.setdefault("runs", {})[noise_name] = {
                "command": command, "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores (shared), "
                f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)",
                "wall_min": (time.time() - wall0) / 60,
                "settings": f"{args.minutes:g} min CPU time per thread per learned row, width {args.width}, depth "
                            f"{args.depth}, batch {args.batch}, patch {args.patch}, lr {args.lr:g}, "
                            f"mask patch {args.mask_patch}, train images {len(train_images)}, "
                            f"test images {len(test_images)}"}
            out_json.write_text(json.dumps(table, indent=1))
            write_report(out_md, table, all_rows)
    print(f"wrote {out_md}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
