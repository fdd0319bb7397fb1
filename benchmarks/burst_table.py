"""Burst benchmark: Deep Shift-and-Add (self-supervised vs supervised twin vs classical shift-and-add) for
x2 multi-image super-resolution, and mosaic-to-mosaic joint demosaicking + denoising (vs bilinear
demosaicking + a denoiser), on bursts synthesised from Kodak24.

Protocol (all synthetic, see selfrestore.burst.synthesis): random sub-pixel shifts (|d| <= 2 px per axis)
and rotations (<= 1 degree), Poisson-Gaussian noise (a, b) on the [0, 1] scale, not clipped. Super-resolution:
Gaussian blur sigma 0.5 (high-resolution px) + 2x2 average pooling. Demosaicking: RGGB mosaic, no
downsampling. Networks are trained on bursts synthesised once (fixed seed) from BSDS500 train images and
registered on their noisy frames; evaluation bursts are registered on their noisy frames too. PSNR: 8-bit
rounded, whole (cropped) reference, all channels.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/burst_table.py --steps 1800 --m2m-steps 1000 --batch 6 \
        --patch 32 --lr 2e-3 --train-images 40 --train-frames 12 --min-frames 5 --targets 8

With ``--work DIR`` the networks are kept (a killed run resumes, a finished one is reused): train them in
parallel, one process per core, with the same command plus ``--train dsa`` / ``--train dsa_supervised`` (and
``m2m`` / ``m2m_supervised``), then run the command without ``--train`` to evaluate. Each network is seeded
before it is built, so a row does not depend on which rows were trained before it in the same process.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from provenance import code_version  # noqa: E402
from selfrestore.burst.registration import register_burst  # noqa: E402
from selfrestore.burst.shift_and_add import shift_and_add  # noqa: E402
from selfrestore.burst.sources import SyntheticBursts  # noqa: E402
from selfrestore.burst.synthesis import BurstConfig, gaussian_blur, synthesize_burst  # noqa: E402
from selfrestore.checkpoint import build_net  # noqa: E402
from selfrestore.corruption.mosaic import bilinear_demosaic  # noqa: E402
from selfrestore.data.images import load_images  # noqa: E402
from selfrestore.metrics import psnr, quantize8  # noqa: E402
from selfrestore.registry import METHODS  # noqa: E402
from selfrestore.train import TrainConfig, train  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    if size <= 0:
        return image
    h, w = image.shape[:2]
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return image[top:top + size, left:left + size]


def score(estimate: torch.Tensor, clean: torch.Tensor) -> float:
    return psnr(quantize8(estimate.detach().float().clamp(0, 1).numpy()), clean.numpy())


def fit(method_name: str, source, args, out_dir: Path, net_options: dict | None = None, **options):
    """Train (or finish training, or load) one network; returns (method, net, training seconds).

    The model lives in ``out_dir`` and training resumes from it, so a killed run continues and a finished one
    is only loaded; the seconds spent so far are kept next to it (``*.seconds``; time since the last
    checkpoint of a killed run is not counted)."""
    method = METHODS.get(method_name)(**options)
    torch.manual_seed(args.seed)  # every net starts from the same draw, whatever was trained before it
    net = build_net(method.default_net, **method.net_kwargs(source.channels), **(net_options or {}))
    config = TrainConfig(steps=args.steps, batch_size=args.batch, patch_size=args.patch, lr=args.lr, amp=False,
                         progress=False, plot=False, ckpt_every=min(200, args.steps), seed=args.seed, resume=True)
    path = out_dir / f"{method_name}.safetensors"
    seconds_file = path.with_suffix(".seconds")
    before = float(seconds_file.read_text()) if seconds_file.exists() else 0.0
    t0 = time.time()

    def keep_time(step: int, _loss: float) -> None:
        if (step + 1) % config.ckpt_every == 0:
            seconds_file.write_text(f"{before + time.time() - t0:.1f}")

    train(method, net, source, config, path, on_step=keep_time)
    seconds = before + time.time() - t0
    seconds_file.write_text(f"{seconds:.1f}")
    net.eval()
    return method, net, seconds


# Options that only choose what is evaluated or where the table goes: a --work folder can be reused across them.
EVALUATION_ONLY = ("blindspot", "bm3d", "eval_crop", "eval_images", "frames", "out", "tasks", "train", "work")
#: settings added after some --work folders were made, with the value those folders were trained with
ADDED_LATER = {"seed": 0, "dsa_loss": "l1"}


def check_work_settings(args, work: Path) -> str:
    """Refuse to reuse networks trained with other settings: ``--work`` keeps them with a ``settings.json``.

    Returns an error message ('' when the folder is new or its settings match; a new folder gets the file)."""
    settings = {k: v for k, v in sorted(vars(args).items()) if k not in EVALUATION_ONLY}
    path = work / "settings.json"
    if not path.exists():
        work.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings, indent=1) + "\n")
        return ""
    recorded = {**ADDED_LATER, **json.loads(path.read_text())}
    changed = [f"--{k.replace('_', '-')}: {recorded.get(k)!r} there, {v!r} now"
               for k, v in settings.items() if recorded.get(k) != v]
    if not changed:
        return ""
    return (f"{work} holds networks trained with other settings ({'; '.join(changed)}); use another --work "
            f"folder (or delete {path} if you know the networks match)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=600, help="DSA training steps")
    parser.add_argument("--m2m-steps", type=int, default=1000, help="mosaic-to-mosaic training steps")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--patch", type=int, default=48, help="frame patch (low-resolution px)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--decoder-features", type=int, default=32, help="DSA decoder width")
    parser.add_argument("--decoder-dilations", type=int, nargs="+", default=[1, 2, 4],
                        help="dilation of each residual block of the DSA decoder")
    parser.add_argument("--min-frames", type=int, default=0,
                        help="DSA: each step fuses a random number of frames >= this (0: every training frame)")
    parser.add_argument("--targets", type=int, default=1,
                        help="DSA self-supervised: frames left out of the fusion that serve as targets (1: the paper)")
    parser.add_argument("--dsa-loss", choices=["l1", "l2"], default="l1",
                        help="DSA self-supervised data term: l1 (the paper's) or l2 (squared error; the twin keeps l1)")
    parser.add_argument("--train-images", type=int, default=40)
    parser.add_argument("--train-crop", type=int, default=256)
    parser.add_argument("--eval-crop", type=int, default=256, help="centre crop of each Kodak image (0: full)")
    parser.add_argument("--eval-images", type=int, default=24)
    parser.add_argument("--frames", type=int, nargs="+", default=[5, 16])
    parser.add_argument("--train-frames", type=int, default=8)
    parser.add_argument("--noise", default="pg0.004_0.02")
    parser.add_argument("--tasks", nargs="+", default=["superres", "demosaic"])
    parser.add_argument("--bm3d", action="store_true",
                        help="add bilinear + CBM3D (the blind-spot table's best classical denoiser; needs bm3d)")
    parser.add_argument("--blindspot", action="store_true",
                        help="add the blind-spot issue's shipped Laine19 (laine19-gauss5_50) before and after "
                             "bilinear demosaicking")
    parser.add_argument("--work", default="",
                        help="keep the trained networks here: a rerun resumes or reuses them (default: a temporary "
                             "folder). Its settings.json records the training settings; a rerun with others is refused.")
    parser.add_argument("--train", choices=TRAINABLE, default="",
                        help="only train this network into --work and stop (run several at once, one per core; then "
                             "run without --train to evaluate)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the networks' initialisation and training batches (the bursts stay the same)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "burst_table.md"))
    args = parser.parse_args()
    if args.work and (problem := check_work_settings(args, Path(args.work))):
        parser.error(problem)
    torch.manual_seed(0)
    start = time.time()
    quiet = lambda *_: None  # noqa: E731
    train_paths = sorted((DATA / "BSDS500_train_test" / "train").glob("*.jpg"))[: args.train_images]
    train_images = [centre_crop(im, args.train_crop) for im in load_images(train_paths, channels=3, warn=quiet)]
    kodak_paths = sorted((DATA / "Kodak24").glob("*.png"))[: args.eval_images]
    kodak = [centre_crop(im, args.eval_crop) for im in load_images(kodak_paths, channels=3, warn=quiet)]
    lines = [f"# Burst restoration on Kodak24 ({len(kodak)} images, "
             f"{'centre ' + str(args.eval_crop) + ' px crops' if args.eval_crop else 'full size'})", "",
             "Command: `OMP_NUM_THREADS=1 .venv/bin/python benchmarks/burst_table.py " + " ".join(sys.argv[1:]) + "`",
             "",
             f"Machine: {platform.processor() or platform.machine()}, 2-core CPU shared with other jobs, 1 thread, "
             f"torch {torch.__version__}; code {code_version()}.",
             f"Noise: Poisson-Gaussian `{args.noise}` (a, b on [0, 1]), not clipped. Motion: shifts <= 2 px, "
             "rotations <= 1 degree, registered on the noisy frames (affine). Training: "
             f"{len(train_images)} BSDS500-train images (centre {args.train_crop} px), each burst drawn once with a "
             f"fixed seed, {args.steps} (DSA) / {args.m2m_steps} (M2M) steps x batch {args.batch} x {args.patch} px "
             f"(DSA) / {2 * args.patch} px (M2M) frame patches, lr {args.lr} with cosine decay, "
             f"{args.train_frames} frames per training burst"
             + (f", training seed {args.seed} (initialisation and batches)" if args.seed else "")
             + (f" (DSA: each step keeps a random subset of {args.min_frames} to "
                f"{args.train_frames} frames: the self-supervised target among them, the supervised twin's reference "
                "always)." if args.min_frames else "."), ""]
    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(args.work or tmp)
        tmp_dir.mkdir(parents=True, exist_ok=True)
        if args.train:
            train_only(args, train_images, tmp_dir)
            return 0
        if "superres" in args.tasks:
            lines += superres(args, train_images, kodak, tmp_dir)
        if "demosaic" in args.tasks:
            lines += demosaic(args, train_images, kodak, tmp_dir)
    if args.work:
        lines += ["", f"Networks kept in `{args.work}`: any found there were reused or resumed, not retrained (train them "
                  "first, one process per network, with this command plus `--train NAME`); training times are the "
                  "sum over the runs that trained each one."]
    lines += ["", f"Wall time: {time.time() - start:.0f} s (this command only)."]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


TRAINABLE = ("dsa", "dsa_supervised", "m2m", "m2m_supervised")


def superres_fit(name: str, args, train_images, tmp_dir: Path):
    source = SyntheticBursts(train_images, BurstConfig(frames=args.train_frames, **SUPERRES, noise=args.noise),
                             seed=0)
    net_options = {"decoder_features": args.decoder_features, "decoder_dilations": tuple(args.decoder_dilations)}
    options = dict(scale=2, blur_sigma=0.5, min_frames=args.min_frames)
    if name == "dsa":
        options.update(targets=args.targets, data_loss=args.dsa_loss)
    return fit(name, source, args, tmp_dir, net_options, **options)


def demosaic_fit(name: str, args, train_images, tmp_dir: Path):
    source = SyntheticBursts(train_images, BurstConfig(frames=4, **MOSAIC, noise=args.noise), seed=0)
    m2m_args = argparse.Namespace(**{**vars(args), "patch": 2 * args.patch, "steps": args.m2m_steps})
    return fit(name, source, m2m_args, tmp_dir)


def train_only(args, train_images, tmp_dir: Path) -> None:
    fitter = superres_fit if args.train.startswith("dsa") else demosaic_fit
    seconds = fitter(args.train, args, train_images, tmp_dir)[2]
    print(f"{args.train}: trained in {tmp_dir} ({seconds:.0f} s in all)")


SUPERRES = dict(scale=2, blur_sigma=0.5, max_shift=2.0, max_rotation=1.0)
MOSAIC = dict(mosaic=True, max_shift=2.0, max_rotation=1.0)


def superres(args, train_images, kodak, tmp_dir: Path) -> list[str]:
    cfg = dict(**SUPERRES, noise=args.noise)
    self_m, self_net, t_self = superres_fit("dsa", args, train_images, tmp_dir)
    sup_m, sup_net, t_sup = superres_fit("dsa_supervised", args, train_images, tmp_dir)
    saa_grid = [(fill, prior) for fill in (1.0, 2.0) for prior in (0.05, 0.2, 0.5, 1.0)]
    rows = []
    for frames in args.frames:
        scores: dict[str, list[float]] = {k: [] for k in ("bicubic", "saa", "dsa", "dsa_supervised", *saa_grid)}
        for index, image in enumerate(kodak):
            clean = torch.from_numpy(image.transpose(2, 0, 1).copy())[None]
            burst = synthesize_burst(clean, BurstConfig(frames=frames, **cfg),
                                     torch.Generator().manual_seed(1000 + index))
            obs, truth = burst["frames"], burst["clean"][0]
            affines = register_burst(obs[0])[None]
            with torch.no_grad():
                scores["bicubic"].append(score(F.interpolate(obs[:, 0], scale_factor=2, mode="bicubic",
                                                             align_corners=False)[0], truth))
                scores["saa"].append(score(shift_and_add(obs[0], affines[0], scale=2), truth))
                for fill, prior in saa_grid:
                    scores[(fill, prior)].append(score(shift_and_add(obs[0], affines[0], scale=2, fill_sigma=fill,
                                                                     prior=prior), truth))
                scores["dsa"].append(score(self_m.restore(self_net, obs, affines=affines)[0], truth))
                scores["dsa_supervised"].append(score(sup_m.restore(sup_net, obs, affines=affines)[0], truth))
        mean = {k: float(np.mean(v)) for k, v in scores.items()}
        best = max(saa_grid, key=lambda key: mean[key])
        rows.append((frames, {**mean, "saa_tuned": mean[best]}, best))
    out = ["## x2 multi-image super-resolution (Deep Shift-and-Add)", "",
           "| T | bicubic (ref frame) | classical shift-and-add | shift-and-add, oracle-tuned normalisation | "
           "DSA self-supervised | DSA supervised twin | self - supervised | self - shift-and-add (tuned) |",
           "|---|---|---|---|---|---|---|---|"]
    for frames, s, (fill, prior) in rows:
        out.append(f"| {frames} | {s['bicubic']:.2f} | {s['saa']:.2f} | {s['saa_tuned']:.2f} (fill {fill:g}, prior "
                   f"{prior:g}) | {s['dsa']:.2f} | {s['dsa_supervised']:.2f} | {s['dsa'] - s['dsa_supervised']:+.2f} | "
                   f"{s['dsa'] - s['saa']:+.2f} ({s['dsa'] - s['saa_tuned']:+.2f}) |")
    out += ["", "Classical shift-and-add: bilinear splatting of every registered low-resolution sample onto the x2 "
            "grid, normalised by the splatted weights, nodes with little weight pulled toward a coarser normalised "
            "convolution (fill sigma 2 px, prior 0.05). The oracle-tuned column picks the fill sigma and prior that "
            f"score best on these very test bursts, separately for each T (grid: {len(saa_grid)} settings), so it "
            "is an upper bound for this baseline; the last column gives the gap to both."]
    used = f"{args.min_frames} to {args.train_frames}" if args.min_frames else f"{args.train_frames}"
    out += ["", f"Training time: DSA self-supervised {t_self:.0f} s, supervised {t_sup:.0f} s (bursts of {used} "
            f"frames; the self-supervised network fuses all frames but a random target j onto the grid of a random "
            "reference r among its inputs, and its loss re-projects the estimate onto frame j: "
            f"`|| D(W_j(SR) * k) - I_j ||_{args.dsa_loss[1]}`{'^2' if args.dsa_loss == 'l2' else ''}, averaged over "
            f"up to {args.targets} left-out frames j; the twin: `|| SR - x ||_1`). Decoder: "
            f"{len(args.decoder_dilations)} residual blocks (dilations {args.decoder_dilations}), "
            f"{args.decoder_features} features, on the high-resolution grid.", ""]
    return out


def cbm3d(rgb: torch.Tensor, noise: str) -> torch.Tensor:
    """CBM3D of a demosaicked frame with sigma = sqrt(a * mean + b^2) from the Poisson-Gaussian model."""
    import bm3d

    from selfrestore.corruption import parse_corruption

    model = parse_corruption(noise)
    image = rgb.permute(1, 2, 0).numpy().astype(np.float64)
    sigma = float(np.sqrt(model.a * max(image.mean(), 0.0) + model.b ** 2))
    return torch.from_numpy(bm3d.bm3d_rgb(image, sigma).astype(np.float32)).permute(2, 0, 1)


def laine19_then_bilinear(raw: torch.Tensor, restorer) -> torch.Tensor:
    """Denoise the raw Bayer planes with the shipped Gaussian Laine19, then demosaic bilinearly.

    The planes carry independent Poisson-Gaussian noise (what a blind-spot network needs; after demosaicking
    it is spatially correlated); ``restorer`` (``sensor_noise=(a, b)``) makes it Gaussian with a known std by
    the generalised Anscombe transform. The planes are denoised as two RGB images (R, G1, B) and (R, G2, B),
    R and B averaged over the two."""
    from selfrestore.corruption.mosaic import pack_raw, unpack_raw

    planes = pack_raw(raw)[0]  # (4, h, w): R, G1, G2, B
    first, second = (torch.from_numpy(restorer.restore(planes[[0, green, 3]].permute(1, 2, 0).numpy()))
                     .permute(2, 0, 1) for green in (1, 2))
    packed = torch.stack([(first[0] + second[0]) / 2, first[1], second[1], (first[2] + second[2]) / 2])
    return bilinear_demosaic(unpack_raw(packed[None]))[0]


def demosaic(args, train_images, kodak, tmp_dir: Path) -> list[str]:
    cfg = dict(**MOSAIC, noise=args.noise)
    self_m, self_net, t_self = demosaic_fit("m2m", args, train_images, tmp_dir)
    sup_m, sup_net, t_sup = demosaic_fit("m2m_supervised", args, train_images, tmp_dir)
    sigmas = (0.6, 0.8, 1.0, 1.3)
    if args.blindspot:
        from selfrestore.corruption import parse_corruption
        from selfrestore.restore import Restorer

        model = parse_corruption(args.noise)
        estimated_level = Restorer("laine19-gauss5_50", device="cpu")
        known_level = Restorer("laine19-gauss5_50", device="cpu", sensor_noise=(model.a, model.b))
    rows = []
    for frames in args.frames:
        scores: dict[str, list[float]] = {k: [] for k in ("bilinear", *[f"blur{s}" for s in sigmas], "saa", "m2m",
                                                           "m2m_supervised")}
        for index, image in enumerate(kodak):
            clean = torch.from_numpy(image.transpose(2, 0, 1).copy())[None]
            burst = synthesize_burst(clean, BurstConfig(frames=frames, **cfg),
                                     torch.Generator().manual_seed(2000 + index))
            obs, truth = burst["frames"], burst["clean"][0]
            with torch.no_grad():
                bilinear = bilinear_demosaic(obs[:, 0])
                scores["bilinear"].append(score(bilinear[0], truth))
                for s in sigmas:
                    scores[f"blur{s}"].append(score(gaussian_blur(bilinear, s)[0], truth))
                scores["saa"].append(score(shift_and_add(obs[0], scale=1, raw=True), truth))
                if args.bm3d:
                    scores.setdefault("bm3d", []).append(score(cbm3d(bilinear[0], args.noise), truth))
                if args.blindspot:
                    scores.setdefault("l19_after", []).append(
                        score(torch.from_numpy(estimated_level.restore(
                            bilinear[0].permute(1, 2, 0).numpy())).permute(2, 0, 1), truth))
                    scores.setdefault("l19_before", []).append(
                        score(laine19_then_bilinear(obs[:, 0], known_level), truth))
                scores["m2m"].append(score(self_m.restore(self_net, obs)[0], truth))
                scores["m2m_supervised"].append(score(sup_m.restore(sup_net, obs)[0], truth))
        mean = {k: float(np.mean(v)) for k, v in scores.items()}
        best = max(sigmas, key=lambda s: mean[f"blur{s}"])
        rows.append((frames, mean, best))
    out = ["## Joint demosaicking + denoising of the reference raw frame (mosaic-to-mosaic)", "",
           "| T (burst) | bilinear | bilinear + Gaussian denoiser (best sigma, oracle) | classical burst "
           "shift-and-add (T frames) | M2M self-supervised (1 frame) | M2M supervised twin (1 frame) |",
           "|---|---|---|---|---|---|"]
    if args.bm3d:
        out[2] = out[2].replace(" | classical", " | bilinear + CBM3D (sigma from the noise model) | classical")
        out[3] += "---|"
    if args.blindspot:
        out[2] = out[2].replace(" | classical", " | bilinear + Laine19 (shipped, level estimated per image) | "
                                "Laine19 (shipped) on the raw planes, then bilinear | classical")
        out[3] += "---|---|"
    for frames, s, best in rows:
        bm3d_cell = f" {s['bm3d']:.2f} |" if args.bm3d else ""
        if args.blindspot:
            bm3d_cell += f" {s['l19_after']:.2f} | {s['l19_before']:.2f} |"
        out.append(f"| {frames} | {s['bilinear']:.2f} | {s[f'blur{best}']:.2f} (sigma {best}) |{bm3d_cell} "
                   f"{s['saa']:.2f} | {s['m2m']:.2f} | {s['m2m_supervised']:.2f} |")
    out += ["", f"Training time: M2M self-supervised {t_self:.0f} s, supervised {t_sup:.0f} s (4-frame raw "
            f"bursts, {2 * args.patch} px patches). The networks restore the reference frame from its own raw "
            "alone, so their numbers do not depend on T (different noise draws per T).", ""]
    if args.blindspot:
        out += ["Laine19 columns: the shipped `laine19-gauss5_50` (the blind-spot issue's best network that ships). "
                "After bilinear demosaicking its noise is correlated between neighbours and signal-dependent, and "
                "the level is estimated per image (what `selfrestore restore` does). On the raw planes it gets "
                "what it was made for (`restore --noise-pg A B`): the generalised Anscombe transform makes the "
                "Poisson-Gaussian noise Gaussian with a known std, the planes are denoised as (R, G1, B) and "
                "(R, G2, B) images, then the exact unbiased inverse (Makitalo & Foi 2013) and bilinear "
                "demosaicking.", ""]
    return out


if __name__ == "__main__":
    raise SystemExit(main())
