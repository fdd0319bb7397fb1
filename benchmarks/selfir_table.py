"""SelfIR (Zhang et al. 2022, Tables 1 and 3) at this machine's scale: restoration from blurry + noisy pairs.

Protocol (fixed seeds throughout):

* training: ``../shared/data/BSDS500_train_test`` (train/ + test/, 400 colour images). Each image becomes ONE
  fixed (blurry, noisy) pair (seed 0, per-image generator): the blurry long exposure is the 'valid' blur
  with a camera-shake kernel (:class:`selfrestore.corruption.blur.CameraShake`: half random motion
  trajectories rendered at 27 px, path length uniform in [5.4, 24] px; half the recorded motion kernels of
  ``blur_kernels/``: Levin09's 8, 13 to 27 px, and the 4 motion kernels of kernels_12) plus light Gaussian
  noise (sigma 1/255); ``--kernel-scale s`` makes every shake s times as long (0.5: a milder blur). Every
  kernel is centred on its centroid (``--kernel-centre centroid``, the default; padded so none is cut:
  51 px at scale 1, 27 px at 0.5), so the blurry shot is not
  displaced relative to the sharp scene: real long / short pairs are aligned at the middle of the long
  exposure (SelfIR's GoPro blur averages frames around the sharp one). The recorded kernels are off-centre
  by up to 4.4 px; ``--kernel-centre box`` keeps them as stored (the earlier protocol). The noisy short
  exposure of the same scene has ``gauss5_50`` (sigma uniform in [5, 50]/255 per image) or ``poisson5_50``
  (lambda uniform in [5, 50]) noise, not clipped; aligned (no misalignment); drawn once (the official
  code re-draws the noise every step, which turns the method into Noise2Noise; not done here). The
  supervised baselines read the clean image, the others never do (the key is removed from their batches);
* test: Kodak24, the centre 256x256 of each image (crops, to fit the CPU budget), made into a pair the
  same way with seed 1000; PSNR after rounding to 8 bits (all channels), SSIM (selfrestore.metrics),
  LPIPS-alex (selfrestore.perceptual) when its weights are installed;
* every learned row trains the N2N U-Net of the same width/depth (two-input rows: 6 input channels) for
  the same budget of CPU time per thread (``--minutes``), in the training driver's time-budget mode: it
  trains until the budget is spent and the warm-up + cosine learning-rate schedule follows the elapsed
  fraction of the budget; the steps done are reported (cheaper steps, e.g. SelfIR's half-resolution
  gradient pass, mean more steps);
* rows: SelfIR, SelfIR without L_aux, Baseline_R (supervised, both inputs), Baseline_B (supervised
  deblurring), Baseline_N (supervised denoising), Nb2Nb on N alone, deblurring supervised by noisy
  targets (Table 3), plus the inputs themselves. Baseline_B's data does not depend on the noise model (the
  blurry images and crops are drawn before the noise), so it is trained once and shown in both columns.
  Variants and diagnostics run only when named in ``--rows``: ``selfir_dual`` (two-encoder net),
  ``selfir_gamma8`` (regulariser weight 8), ``baseline_r_sub`` (Baseline_R trained on SelfIR's sub-sampled
  views: half size, clean neighbour target) and ``baseline_r_sub_same`` (half size, target on the input's
  own pixels), which split SelfIR's gap to Baseline_R into its causes; ``selfir_r2r`` / ``selfir_r2r_a1``
  (SelfIR-R2R, :mod:`selfrestore.methods.selfir_r2r`: recorrupted same-pixel targets, alpha 0.5 / 1, told the
  noise level drawn for each training pair; ``selfir_r2r_a2``: alpha 2; ``selfir_r2r_noaux``: alpha 1 without
  L_aux) and ``selfir_r2r_est`` (alpha 1, the level estimated from each
  noisy training image alone by :func:`selfrestore.noise_check.noise_level_function`).

Several processes can share the table (``--noises``): cells are merged into the JSON under a file lock.

    OMP_NUM_THREADS=1 python benchmarks/selfir_table.py --minutes 5 --noises gauss5_50    # one column
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

from provenance import code_version  # noqa: E402
from selfrestore.checkpoint import build_net  # noqa: E402
from selfrestore.corruption import parse_corruption  # noqa: E402
from selfrestore.corruption.blur import CameraShake, load_kernels  # noqa: E402
from selfrestore.data.blurry_noisy import SyntheticBlurryNoisy, make_blurry_noisy  # noqa: E402
from selfrestore.data.images import image_generator  # noqa: E402
from selfrestore.file_lists import list_images  # noqa: E402
from selfrestore.io import read_image, to_channels  # noqa: E402
from selfrestore.methods.selfir_r2r import estimated_noise_levels  # noqa: E402
from selfrestore.metrics import psnr, quantize8, ssim  # noqa: E402
from selfrestore.registry import METHODS  # noqa: E402
from selfrestore.restore import restore_tensor  # noqa: E402
from selfrestore.train import TrainConfig, budget_clock, pick_device, train  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
NOISES = ("gauss5_50", "poisson5_50")
SHARED_ROW = "baseline_b"  # trained once: its data does not depend on the noise model
#: run order: the headroom (what B adds under supervision) first, then the rows of the claims
RUN_FIRST = ("baseline_r", "baseline_n", "selfir", "nb2nb", "selfir_noaux", "deblur_noisy", "baseline_b")
HEADROOM_REFERENCE = "selfir_table_headroom_box"  # Baseline_R trained on uncentred kernels, same budget


@dataclass
class Row:
    key: str
    label: str
    method: str
    options: dict = field(default_factory=dict)
    net: str = ""  # "" = the method's default network (a U-Net fusing the inputs at its first layer)
    extra: bool = False  # a variant or diagnostic, not one of the paper's rows: run only when named in --rows
    #: the method is not told the noise level: it is estimated from each noisy training image alone
    estimated_level: bool = False


def rows(mask_patch: int) -> list[Row]:
    return [
        Row("baseline_b", "Baseline_B (supervised deblurring, B -> clean)", "deblur_sup"),
        Row("selfir", "SelfIR", "selfir", {"aux": 1, "mask_patch": mask_patch}),
        Row("selfir_noaux", "SelfIR without L_aux (ablation)", "selfir", {"aux": 0, "mask_patch": mask_patch}),
        # L_rec + gamma L_reg pulls the half-size output to g2(x) + gamma / (1 + gamma) (g1(x) - g2(x)): gamma = 2
        # corrects two thirds of the neighbour target's one-pixel offset, gamma = 8 eight ninths (measured at 15 min:
        # it lets the noise through instead, L_reg alone being minimised by the identity)
        Row("selfir_gamma8", "SelfIR, regulariser weight gamma 8 (2 in the paper)", "selfir",
            {"aux": 1, "mask_patch": mask_patch, "gamma_reg": 8.0}, extra=True),
        Row("selfir_dual", "SelfIR, two-encoder net (the authors' layout; `dual_unet`)", "selfir",
            {"aux": 1, "mask_patch": mask_patch}, net="dual_unet", extra=True),
        # same-pixel targets by recorruption (selfrestore.methods.selfir_r2r): uses the noise level drawn per image
        Row("selfir_r2r", "SelfIR-R2R: recorrupted same-pixel targets, alpha 0.5 (noise level known; variant)",
            "selfir_r2r", {"aux": 1, "mask_patch": mask_patch, "alpha": 0.5}, extra=True),
        Row("selfir_r2r_a1", "SelfIR-R2R, alpha 1 (noise level known; variant)",
            "selfir_r2r", {"aux": 1, "mask_patch": mask_patch, "alpha": 1.0}, extra=True),
        Row("selfir_r2r_a2", "SelfIR-R2R, alpha 2 (noise level known; variant)",
            "selfir_r2r", {"aux": 1, "mask_patch": mask_patch, "alpha": 2.0}, extra=True),
        Row("selfir_r2r_noaux", "SelfIR-R2R, alpha 1, without L_aux (noise level known; ablation)",
            "selfir_r2r", {"aux": 0, "mask_patch": mask_patch, "alpha": 1.0}, extra=True),
        Row("selfir_r2r_est", "SelfIR-R2R, alpha 1, noise level estimated from each noisy image (variant)",
            "selfir_r2r", {"aux": 1, "mask_patch": mask_patch, "alpha": 1.0}, extra=True, estimated_level=True),
        Row("baseline_r", "Baseline_R (supervised, B + N -> clean)", "selfir_sup"),
        Row("baseline_r_sub", "Baseline_R trained like SelfIR: half-size g1(B), g1(N) -> g2(clean) (diagnostic)",
            "selfir_sup_sub", extra=True),
        Row("baseline_r_sub_same", "Baseline_R at half size, no offset: g1(B), g1(N) -> g1(clean) (diagnostic)",
            "selfir_sup_same", extra=True),
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


def blur_model(centre: bool = True, scale: float = 1.0) -> CameraShake:
    """Half random camera-shake trajectories (length uniform in [5.4, 24] px, rendered in 27 px), half the
    recorded motion kernels (Levin09's 8 and the 4 motion kernels of kernels_12), light noise sigma 1/255;
    ``centre``: every kernel centred on its centroid; ``scale`` < 1: the same shakes, shorter by that
    factor (recorded kernels resampled, trajectory lengths and render size scaled)."""
    kernels = load_kernels(DATA / "blur_kernels" / "Levin09.mat")
    kernels += load_kernels(DATA / "blur_kernels" / "kernels_12.mat")[8:]  # its 4 motion kernels
    return CameraShake(kernels, kernel_size=max(7, int(round(27 * scale)) | 1), length=(5.4 * scale, 24 * scale),
                       anxiety=0.6, file_fraction=0.5, kernel_scale=scale, centre=centre, sigma=1.0)


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

def train_row(row: Row, noise, source, args, device, workdir: Path):
    """Train one row for exactly the budget: the driver's time-budget mode on the CPU clock (CPU time per
    thread, so a row is charged for the compute it got on the shared CPU); the learning-rate schedule
    (warm-up + cosine) follows the elapsed fraction of the budget, so every row gets a complete schedule."""
    method = METHODS.get(row.method)(noise=None if row.estimated_level else noise, width=args.width,
                                     depth=args.depth, **row.options)
    if row.estimated_level:  # the levels drawn for the pairs are replaced by estimates from the noisy images
        source = copy.copy(source)
        source.params = estimated_noise_levels(source.fields["noisy"])
    torch.manual_seed(0)
    net = build_net(row.net or method.default_net, **method.net_kwargs(3))
    data = source if method.needs_clean else WithoutClean(source)
    budget = args.minutes * 60
    cfg = TrainConfig(steps=10**9, batch_size=args.batch, patch_size=args.patch, lr=args.lr, progress=False,
                      plot=False, seed=0, ckpt_every=10**9, budget_seconds=budget, budget_clock="cpu",
                      amp=True)
    now = budget_clock("cpu")
    steps = {"done": 0}

    def on_step(step: int, loss: float) -> None:
        steps["done"] = step + 1

    out_path = workdir / f"{row.key}-{noise.name}.safetensors"
    if out_path.exists():
        out_path.unlink()
    start = now()
    train(method, net, data, cfg, out_path, on_step=on_step)
    net.eval()
    return method, net, {"steps": steps["done"], "train_seconds": now() - start, "clock": "cpu"}


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

        def diff(a, b):
            return "n/a" if a is None or b is None else f"{a - b:+.2f} dB"

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
        gamma8 = get(noise, "selfir_gamma8")
        if gamma8 is not None:
            lines.append(f"- {noise}: regulariser weight 8 instead of 2 changes SelfIR by "
                         + ("n/a" if s is None else f"{gamma8 - s:+.2f} dB")
                         + ("" if r is None else f" (vs Baseline_R: {gamma8 - r:+.2f} dB)"))
        for key, label in (("selfir_r2r", "alpha 0.5, noise level known"),
                           ("selfir_r2r_a1", "alpha 1, noise level known"),
                           ("selfir_r2r_a2", "alpha 2, noise level known"),
                           ("selfir_r2r_noaux", "alpha 1, no L_aux, noise level known"),
                           ("selfir_r2r_est", "alpha 1, noise level estimated per image")):
            value = get(noise, key)
            if value is not None:
                lines.append(f"- {noise}: variant SelfIR-R2R ({label}): {value:.2f} dB, "
                             f"vs SelfIR {diff(value, s)}, vs Baseline_R {diff(value, r)}, vs Nb2Nb on N "
                             f"{diff(value, nb)}")
        dual = get(noise, "selfir_dual")
        if dual is not None:
            lines.append(f"- {noise}: the two-encoder net changes SelfIR by "
                         + ("n/a" if s is None else f"{dual - s:+.2f} dB")
                         + ("" if nb is None else f" (vs Nb2Nb on N: {dual - nb:+.2f} dB)"))
        # diagnostics: Baseline_R trained on SelfIR's sub-sampled views (neighbour target), then at half size alone
        sub, same = get(noise, "baseline_r_sub"), get(noise, "baseline_r_sub_same")

        if sub is not None:
            lines.append(f"- {noise}: diagnostic: sub-sampled training with clean neighbour targets scores {sub:.2f} "
                         f"dB: it accounts for {diff(sub, r)} of SelfIR's gap to Baseline_R, the noisy target and "
                         f"SelfIR's extra terms for {diff(s, sub)}")
        if same is not None:
            lines.append(f"- {noise}: diagnostic: half size with the target on the input's own pixels scores "
                         f"{same:.2f} dB: half size alone {diff(same, r)} against Baseline_R, the one-pixel offset of the "
                         f"neighbour target {diff(sub, same)}")
        n = get(noise, "baseline_n")
        lines.append(f"- {noise}: headroom: the blurry shot adds, under supervision, Baseline_R - Baseline_N = "
                     + ("n/a" if r is None or n is None else f"{r - n:+.2f} dB"))
    return lines


def run_records(value) -> list[dict]:
    """The runs that filled one noise column: a list (several commands, e.g. a resumed ``--rows`` run), or
    the single record older files hold."""
    if not value:
        return []
    return list(value) if isinstance(value, list) else [value]


def headroom_reference(name: str) -> list[str]:
    """Baseline_R trained on the uncentred kernels (``--kernel-centre box``), from its own results file: a
    reference for the default table only (same kernels, same scale, centred or not)."""
    path = RESULTS / f"{HEADROOM_REFERENCE}.json"
    if name != "selfir_table" or not path.exists():
        return []
    reference = json.loads(path.read_text())
    lines = []
    for noise, cells in sorted(reference.get("cells", {}).items()):
        if "baseline_r" in cells:
            run = (run_records(reference.get("runs", {}).get(noise)) or [{}])[-1]
            lines.append(f"- {noise}: Baseline_R with uncentred kernels (blurry shot displaced by up to ~5 px): "
                         f"{cells['baseline_r']['psnr']:.2f} dB, blurry input {cells['blurry_input']['psnr']:.2f} dB "
                         f"(`{HEADROOM_REFERENCE}.md`; {run.get('settings', '')})")
    return lines


def record_run(out_json: Path, noise_name: str, record: dict) -> None:
    """Add (or update, same command and start time) the record of the run filling one noise column."""
    with open(out_json.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        table = json.loads(out_json.read_text())
        runs = table.setdefault("runs", {})
        kept = [r for r in run_records(runs.get(noise_name))
                if (r.get("command"), r.get("started")) != (record["command"], record["started"])]
        runs[noise_name] = kept + [record]
        out_json.write_text(json.dumps(table, indent=1))


def _fmt(v, digits=2):
    return "-" if v is None else f"{v:.{digits}f}"


def write_report(out_md: Path, table: dict, all_rows: list[Row]) -> None:
    """The markdown table, the claims and the runs, all generated from the JSON."""
    cells, runs = table.get("cells", {}), table.get("runs", {})
    labels = [("blurry_input", "Blurry input B"), ("noisy_input", "Noisy input N")] + \
        [(r.key, r.label) for r in all_rows  # variant-network rows only where they were run
         if not r.net or any(r.key in column for column in cells.values())]
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
        "each made into ONE fixed (blurry, noisy) pair (seed 0; camera-shake kernels: half random trajectories, "
        "half Levin09 + kernels_12 motion kernels, centred on their centroids unless the settings below say "
        "otherwise). Test: Kodak24 centre 256x256 crops, seed 1000 (crops, not full images, to fit the CPU "
        "budget). Every learned row trains for the same budget of CPU time per thread (the training driver's "
        "time-budget mode; the learning-rate schedule follows the elapsed fraction), so rows with cheaper steps "
        "do more steps; N2N U-Net (two-input rows: 6 input channels). PSNR on 8-bit rounded outputs, all "
        f"channels. {lp_note}.",
        "",
        *lines,
        "",
        "Baseline_B does not depend on the noise model (same blurry data), so it is trained once and its "
        "numbers appear in both columns.",
        "",
        "## Claims (Kodak24 crops, PSNR)",
        "",
        *claims(cells),
        *headroom_reference(out_md.stem),
        "",
        "## Runs",
        "",
    ]
    if table.get("execution"):
        text += [table["execution"], ""]
    for noise, records in sorted(runs.items()):
        for run in run_records(records):
            rows_run = f"rows {', '.join(run['rows'])}; " if "rows" in run else ""
            text += [f"- {noise}: `{run['command']}`", f"  - {rows_run}machine: {run['machine']}; wall time "
                     f"{run['wall_min']:.1f} min; {run['settings']}"
                     + ("" if "started" not in run else f"; started {run['started']}")
                     + ("" if "code" not in run else f"; code {run['code']}")
                     + (f"; {run['note']}" if run.get("note") else "")]
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
    p.add_argument("--kernel-centre", choices=("centroid", "box"), default="centroid",
                   help="centroid: every blur kernel centred on its centroid (the blurry shot is aligned with the "
                        "sharp scene); box: as stored / rendered (the blurry shot may be displaced by a few px)")
    p.add_argument("--kernel-scale", type=float, default=1.0,
                   help="resample every blur kernel by this factor (0.5: the same camera shakes, half as long)")
    p.add_argument("--name", default="selfir_table", help="results file stem in benchmarks/results/")
    p.add_argument("--quick", action="store_true", help="smoke run: tiny budget and subsets, writes *_quick.*")
    p.add_argument("--report-only", action="store_true", help="rewrite the .md from the .json and exit")
    args = p.parse_args(argv)
    if args.quick:
        args.minutes, args.train_limit, args.test_limit = 0.1, 8, 2
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    name = "selfir_table_quick" if args.quick else args.name
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
    chosen = [r for r in all_rows if (not r.extra if args.rows is None else r.key in args.rows)]
    chosen.sort(key=lambda r: RUN_FIRST.index(r.key) if r.key in RUN_FIRST else len(RUN_FIRST))
    wall0 = time.time()
    train_images = load_folder([DATA / "BSDS500_train_test" / "train", DATA / "BSDS500_train_test" / "test"],
                               args.train_limit)
    test_images = load_folder([DATA / "Kodak24"], args.test_limit)
    blur = blur_model(centre=args.kernel_centre == "centroid", scale=args.kernel_scale)
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
        merge_result(out_json, noise_name, "noisy_input",
                             score([q["noisy"][0].numpy().transpose(1, 2, 0) for q in pairs], pairs))
        done: list[str] = []
        record = {"command": command, "rows": done, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                  "code": code_version(),
                  "machine": f"{platform.machine()} CPU, {os.cpu_count()} cores (shared), torch "
                             f"{torch.__version__}, {torch.get_num_threads()} thread(s)",
                  "settings": f"{args.minutes:g} min CPU time per thread per learned row, width {args.width}, "
                              f"depth {args.depth}, batch {args.batch}, patch {args.patch}, lr {args.lr:g}, "
                              f"mask patch {args.mask_patch}, kernels centred: {args.kernel_centre}, "
                              f"kernel scale {args.kernel_scale:g} ({blur.kernel_size} px), "
                              f"train images {len(train_images)}, test images {len(test_images)}"}
        for row in chosen:
            if row.key == SHARED_ROW and noise_name != NOISES[0]:
                continue  # trained once, in the first noise column (see SHARED_ROW)
            method, net, info = train_row(row, noise, source, args, device, workdir)
            result = {**score(restore_all(method, net, pairs, device), pairs), **info}
            merge_result(out_json, noise_name, row.key, result)
            done.append(row.key)
            # the run record is rewritten after every row, so a run stopped part-way still names its command
            record_run(out_json, noise_name, {**record, "wall_min": (time.time() - wall0) / 60})
            write_report(out_md, json.loads(out_json.read_text()), all_rows)
            print(f"[{noise_name}] {row.key}: {result}", flush=True)
    print(f"wrote {out_md}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
