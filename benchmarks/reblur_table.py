"""Reblurring loss and self-supervised test-time adaptation (Nah et al. 2022) at this machine's scale.

Protocol (everything synthetic, fixed seeds):

* training: BSDS500 ``train/`` (200 colour images, disjoint from BSD300_test and Kodak24), blurred on the
  fly with random camera-shake kernels (:func:`selfrestore.corruption.blur.random_motion_kernel`, 27 px)
  plus light Gaussian noise (sigma 1/255): ``SyntheticBlurPairs``;
* test: Kodak24 and BSD300_test, each image blurred once with one of the 8 Levin et al. 2009 kernels
  (image i gets kernel i mod 8; real recorded camera shake, never seen in training), noise sigma 1/255,
  rounded to 8 bits;
* M_D: the N2N U-Net (reduced width / depth to fit a 2-core CPU). A common L1 pre-training, then two
  fine-tunings of the same number of steps from it: ``deblur_l1`` (L1 only) and ``reblur``
  (L1 + reblurring loss with the M_R alternation). Both through the generic driver ``selfrestore.train``;
* test-time adaptation: ``Reblur.adapt`` (paper Algorithm 1) on random crops of each test set's blurry
  images, from the blurry images alone; the sharp images are only used to score;
* metrics: PSNR (8-bit rounded) and SSIM from ``selfrestore.metrics``; LPIPS (AlexNet) and NIQE from
  ``selfrestore.perceptual`` when it is installed.

Writes ``benchmarks/results/reblur_table.md``. Example (the committed table's command)::

    OMP_NUM_THREADS=1 python benchmarks/reblur_table.py --pretrain 300 --finetune 150
"""
from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from selfrestore.checkpoint import build_net, load_model  # noqa: E402
from selfrestore.corruption.blur import Blur, blur, load_kernels  # noqa: E402
from selfrestore.data.blur_pairs import SyntheticBlurPairs  # noqa: E402
from selfrestore.io import list_images, read_image  # noqa: E402
from selfrestore.metrics import psnr, quantize8, ssim  # noqa: E402
from selfrestore.registry import METHODS  # noqa: E402
from selfrestore.train import TrainConfig, train  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"


def perceptual_metrics():
    """(lpips, niqe) functions from selfrestore.perceptual, or (None, None) when not installed."""
    try:
        from selfrestore import perceptual

        ok = perceptual.available()
        lp = perceptual.lpips if ok.get("lpips_alex", ok.get("lpips", False)) else None
        nq = perceptual.niqe if ok.get("niqe", False) else None
        return lp, nq
    except Exception as exc:  # noqa: BLE001 - optional extra
        print(f"perceptual metrics unavailable: {exc}")
        return None, None


def load_folder(folder: Path, limit: int | None = None) -> list[np.ndarray]:
    paths, _ = list_images([folder])
    paths = paths[:limit] if limit else paths
    out = []
    for p in paths:
        img, _ = read_image(p)
        out.append(img[..., :3] if img.shape[2] >= 3 else np.repeat(img, 3, axis=2))
    return out


def blur_test_set(images: list[np.ndarray], kernels: list[np.ndarray], seed: int) -> list[np.ndarray]:
    """Each image blurred once with kernel i mod len(kernels) (reflect borders), noise 1/255, 8-bit."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i, img in enumerate(images):
        x = torch.from_numpy(img.transpose(2, 0, 1).copy())[None]
        k = torch.from_numpy(kernels[i % len(kernels)])
        y = blur(x, k) + (1.0 / 255.0) * torch.randn(x.shape, generator=gen)
        out.append(quantize8(y[0].numpy().transpose(1, 2, 0)).astype(np.float32))
    return out


@torch.no_grad()
def deblur_image(net: torch.nn.Module, image: np.ndarray) -> np.ndarray:
    """Whole-image inference: reflect-pad to the network's size multiple, run, crop."""
    m = int(getattr(net, "size_multiple", 1))
    x = torch.from_numpy(image.transpose(2, 0, 1).copy())[None]
    h, w = x.shape[-2:]
    x = F.pad(x, (0, (-w) % m, 0, (-h) % m), mode="reflect")
    y = net(x)[..., :h, :w]
    return y[0].numpy().transpose(1, 2, 0)


def score(net, blurry: list[np.ndarray], sharp: list[np.ndarray], lp, nq) -> dict[str, float]:
    if net is not None:
        net.eval()
    rows = {"psnr": [], "ssim": [], "lpips": [], "niqe": []}
    for b, s in zip(blurry, sharp):
        out = quantize8(deblur_image(net, b) if net is not None else b)
        rows["psnr"].append(psnr(out, s))
        rows["ssim"].append(ssim(out, s))
        if lp is not None:
            rows["lpips"].append(lp(out, s))
        if nq is not None:
            rows["niqe"].append(nq(out))
    return {k: float(np.mean(v)) if v else float("nan") for k, v in rows.items()}


def fit(method_name: str, steps: int, args, source, start: Path | None, out: Path, **options):
    """Train with the generic driver; ``start``: a model file whose M_D weights to start from. A model
    already in the work folder is reused (same command, same result: training is deterministic)."""
    if out.exists():
        return out
    method = METHODS.get(method_name)(noise=source.corruption, **options)
    net = build_net("unet", **method.net_kwargs(3), width=args.width, depth=args.depth)
    if start is not None:
        _, start_net, _ = load_model(start)
        net.load_state_dict(start_net.state_dict())
    config = TrainConfig(steps=steps, batch_size=args.batch, patch_size=args.patch, lr=args.lr, amp=False,
                         progress=False, plot=False, seed=args.seed, ckpt_every=10**9)
    t0 = time.time()
    train(method, net, source, config, out)
    print(f"{method_name}: {steps} steps in {time.time() - t0:.0f} s", flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pretrain", type=int, default=300, help="common L1 pre-training steps")
    ap.add_argument("--finetune", type=int, default=150, help="fine-tuning steps of each compared model")
    ap.add_argument("--weight", type=float, default=1.0, help="reblurring loss weight")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--patch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--train-images", type=int, default=200)
    ap.add_argument("--bsd-limit", type=int, default=100, help="first N BSD300_test images")
    ap.add_argument("--kodak-limit", type=int, default=24, help="first N Kodak24 images")
    ap.add_argument("--adapt-steps", type=int, default=20)
    ap.add_argument("--adapt-lr", type=float, default=1e-5)
    ap.add_argument("--adapt-patch", type=int, default=128)
    ap.add_argument("--adapt-consistency", type=float, default=0.0,
                    help="weight of the ||M_R(L) - B|| anchor in adaptation (0: the paper's loss alone)")
    ap.add_argument("--adapt-baseline", action="store_true", help="also adapt deblur_l1 (fresh M_R)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=Path("/tmp/reblur_bench"))
    ap.add_argument("--out", type=Path, default=RESULTS / "reblur_table.md")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    t_start = time.time()
    args.work.mkdir(parents=True, exist_ok=True)

    train_images = load_folder(DATA / "BSDS500_train_test" / "train", args.train_images)
    source = SyntheticBlurPairs(train_images, Blur(kernel_size=27, sigma=1.0))
    levin = load_kernels(DATA / "blur_kernels" / "Levin09.mat")
    test_sets = {"Kodak24": load_folder(DATA / "Kodak24", args.kodak_limit),
                 "BSD300_test": load_folder(DATA / "BSD300_test", args.bsd_limit)}
    blurry_sets = {name: blur_test_set(imgs, levin, seed=i) for i, (name, imgs) in enumerate(test_sets.items())}

    base = args.work / "pretrain.safetensors"
    if not base.exists():
        fit("deblur_l1", args.pretrain, args, source, None, base)
    models = {
        "deblur_l1": fit("deblur_l1", args.finetune, args, source, base, args.work / "l1.safetensors"),
        "reblur": fit("reblur", args.finetune, args, source, base, args.work / "reblur.safetensors",
                      reblur_weight=args.weight),
    }
    lp, nq = perceptual_metrics()
    rows: list[tuple[str, str, dict[str, float]]] = []
    for set_name, sharp in test_sets.items():
        blurry = blurry_sets[set_name]
        rows.append((set_name, "blurry input", score(None, blurry, sharp, lp, nq)))
        for label, path in models.items():
            method, net, _ = load_model(path)
            rows.append((set_name, label, score(net, blurry, sharp, lp, nq)))
            print(rows[-1], flush=True)
            if label == "deblur_l1" and not args.adapt_baseline:
                continue
            adapted = copy.deepcopy(net)
            t0 = time.time()
            method.adapt(adapted, [torch.from_numpy(b.transpose(2, 0, 1).copy()) for b in blurry],
                         steps=args.adapt_steps, lr_deblur=args.adapt_lr, patch_size=args.adapt_patch,
                         batch_size=4, seed=args.seed, consistency=args.adapt_consistency)
            rows.append((set_name, f"{label} + test-time adaptation ({args.adapt_steps} it, "
                                   f"{time.time() - t0:.0f} s)", score(adapted, blurry, sharp, lp, nq)))
            print(rows[-1], flush=True)

    wall = time.time() - t_start
    command = "OMP_NUM_THREADS=1 python benchmarks/reblur_table.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [
        "# Reblurring loss and self-supervised test-time adaptation (Nah et al. 2022)",
        "",
        f"Command: `{command}`  ",
        f"Machine: {platform.machine()} CPU, 2 cores shared with other jobs, 1 thread, PyTorch {torch.__version__}; "
        f"wall time {wall / 60:.1f} min.",
        "",
        f"M_D: U-Net width {args.width}, depth {args.depth}; {args.pretrain} L1 pre-training steps, then "
        f"{args.finetune} fine-tuning steps per model (batch {args.batch}, {args.patch} px patches, lr {args.lr}). "
        f"Training blur: random camera-shake kernels (27 px) + noise 1/255 on BSDS500 train (first "
        f"{args.train_images}). Test blur: the 8 Levin09 kernels (image i: kernel i mod 8) + noise 1/255, 8-bit. "
        f"Reblurring loss weight {args.weight}, M_R: 1 residual block, 32 features. Test-time adaptation: "
        f"{args.adapt_steps} alternations (consistency anchor weight {args.adapt_consistency}) on 4 crops of {args.adapt_patch} px per iteration drawn from the whole test "
        f"set's blurry images, lr(M_D) {args.adapt_lr}, lr(M_R) 1e-4; no sharp image is used.",
        f"Images: Kodak24 first {args.kodak_limit}, BSD300_test first {args.bsd_limit}.",
        "",
        "| test set | model | PSNR (dB) | SSIM | LPIPS (alex) lower=better | NIQE lower=better |",
        "|---|---|---|---|---|---|",
    ]
    for set_name, label, r in rows:
        lines.append(f"| {set_name} | {label} | {r['psnr']:.2f} | {r['ssim']:.4f} | {r['lpips']:.4f} | {r['niqe']:.3f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    (args.out.with_suffix(".json")).write_text(json.dumps([{"set": s, "model": m, **r} for s, m, r in rows], indent=1))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
