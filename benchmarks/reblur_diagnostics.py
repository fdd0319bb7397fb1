"""Why does the reblurring loss change nothing in ``reblur_table.md``? Measurements on the trained models.

For the ``reblur`` model of a ``reblur_table.py`` run (M_D and its M_R) on Kodak24 centre crops blurred like
the table's test set (Levin09 kernels resampled by ``--kernel-scale``, noise 1/255), with L = M_D(B) and S
the sharp crop, it prints:

* how much blur M_R puts back: ||M_R(L) - L||_1 against ||B - L||_1 (what L_blur asks for) and
  ||M_R(S) - S||_1 (what L_sharp asks to be zero);
* the two terms of M_D's loss, ||L - S||_1 and ||M_R(L) - M_R(S)||_1, and the cosine between their
  gradients with respect to L: a cosine near 1 means the reblurring loss pushes L where L1 already does
  (a re-weighted L1), so at weight 1 it cannot change what M_D learns;
* the share of each gradient's energy above half the Nyquist frequency: the paper's argument is that the
  reblurring loss favours sharp (high-frequency) corrections that L1 under-weights.

    OMP_NUM_THREADS=1 python benchmarks/reblur_diagnostics.py --work runs/reblur --kernel-scale 0.5

Writes ``benchmarks/results/reblur_diagnostics_<work folder name>.md`` (with the command, machine, wall time).
"""
from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from reblur_table import DATA, blur_test_set, load_folder  # noqa: E402
from selfrestore.checkpoint import load_model  # noqa: E402
from selfrestore.corruption.blur import load_kernels, scale_kernel  # noqa: E402


def high_frequency_share(g: torch.Tensor) -> float:
    """Fraction of the energy of ``g`` (1, C, H, W) above half the Nyquist frequency (radially)."""
    spec = torch.fft.fft2(g.double()).abs() ** 2
    h, w = g.shape[-2:]
    fy = torch.fft.fftfreq(h).abs()[:, None]
    fx = torch.fft.fftfreq(w).abs()[None, :]
    high = (torch.sqrt(fy ** 2 + fx ** 2) > 0.25).double()
    return float((spec * high).sum() / spec.sum())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, default=ROOT / "runs" / "reblur")
    p.add_argument("--kernel-scale", type=float, default=0.5)
    p.add_argument("--images", type=int, default=8, help="Kodak24 images (centre 256 px crops)")
    args = p.parse_args(argv)
    t0 = time.time()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    torch.manual_seed(0)
    method, net, _ = load_model(args.work / "reblur.safetensors")
    reblur = method.reblur_net
    net.eval(), reblur.eval()
    levin = load_kernels(DATA / "blur_kernels" / "Levin09.mat")
    kernels = [scale_kernel(k, args.kernel_scale) for k in levin] if args.kernel_scale != 1 else levin
    images = [im[(im.shape[0] - 256) // 2:][:256, (im.shape[1] - 256) // 2:][:, :256]
              for im in load_folder(DATA / "Kodak24", args.images)]
    blurry = blur_test_set(images, kernels, seed=0)
    rows = []
    for sharp_np, blurry_np in zip(images, blurry):
        s = torch.from_numpy(sharp_np.transpose(2, 0, 1).copy())[None]
        b = torch.from_numpy(blurry_np.transpose(2, 0, 1).copy())[None]
        with torch.no_grad():
            deblurred = net(b)
            reblur_s = reblur(s)
        latent = deblurred.clone().requires_grad_(True)
        l1_term = torch.mean(torch.abs(latent - s))
        (g_l1,) = torch.autograd.grad(l1_term, latent)
        reblur_term = torch.mean(torch.abs(reblur(latent) - reblur_s))
        (g_rb,) = torch.autograd.grad(reblur_term, latent)
        with torch.no_grad():
            rows.append({
                "‖L-S‖": float(l1_term), "‖M_R(L)-M_R(S)‖": float(reblur_term),
                "‖M_R(L)-L‖": float(torch.mean(torch.abs(reblur(deblurred) - deblurred))),
                "‖B-L‖": float(torch.mean(torch.abs(b - deblurred))),
                "‖M_R(L)-B‖": float(torch.mean(torch.abs(reblur(deblurred) - b))),
                "‖M_R(S)-S‖": float(torch.mean(torch.abs(reblur_s - s))),
                "cos(grad)": float(torch.nn.functional.cosine_similarity(g_l1.flatten(), g_rb.flatten(), dim=0)),
                "‖grad reblur‖ / ‖grad L1‖": float(g_rb.norm() / g_l1.norm()),
                "HF share grad L1": high_frequency_share(g_l1),
                "HF share grad reblur": high_frequency_share(g_rb),
            })
    keys = list(rows[0])
    lines = [f"# What the reblurring module does: {args.work.name}", "",
             f"Command: `OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '?')} python benchmarks/reblur_diagnostics.py "
             f"{shlex.join(argv if argv is not None else sys.argv[1:])}`  ",
             f"Machine: {platform.machine()} CPU, {os.cpu_count()} cores (shared), torch {torch.__version__}, "
             f"{torch.get_num_threads()} thread(s); wall time {time.time() - t0:.0f} s.  ",
             f"Model: `{args.work.name}/reblur.safetensors` (M_D and its M_R, from `reblur_table.py --work "
             f"{args.work}`); Kodak24 first {len(rows)} images, centre 256 px, Levin09 kernels x{args.kernel_scale:g} "
             f"+ noise 1/255, 8-bit; L = M_D(B), S sharp; mean absolute differences on the [0, 1] scale; "
             f"gradients with respect to L.", "",
             "| quantity | mean | min | max |", "|---|---|---|---|"]
    for k in keys:
        v = np.array([r[k] for r in rows])
        lines.append(f"| {k} | {v.mean():.4f} | {v.min():.4f} | {v.max():.4f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    out = ROOT / "benchmarks" / "results" / f"reblur_diagnostics_{args.work.name}.md"
    out.write_text(text)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
