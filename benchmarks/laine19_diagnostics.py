"""Diagnostics behind two Table 1 findings (prints, writes no table; needs the models of
``table1_blindspot.py --minutes 20 --workdir runs/table1_20``):

* ``diag``: prior mean vs posterior mean of the mu-only, diag and full nets on 256 px crops of kodim01-03
  (the diag net's MEAN is under-trained; the Bayes step itself helps);
* ``unknown``: the unknown-level net restored with its own level estimate, with sigma = 25 given, with its
  learned global level, against the known-level net (the gap is in the prior, not in the level);
* ``size [MODEL FILE ...]``: PSNR of the prior mean on the SAME top-left 128 px of kodim01 (sigma 25 noise,
  generator seed 1 as Table 1's test noise) when the input is 128, 160, 192, 256 px or the whole image: a blind-spot net
  trained on 128 px patches whose prior leans on the patch borders loses quality as the input grows
  (default models: the unknown- and known-level full nets of ``runs/table1_20``).
* ``size-check MODEL FILE ...``: the label-free size check that ``fit`` runs after training
  (``selfrestore.size_check``) on 4 noisy BSDS500 train images (gauss25, 256 px): how its limit was set
  (writes ``benchmarks/results/size_check_calibration.md``);
* ``repair MODEL [STEPS] [LR]``: does a short fine-tuning on mixed patch sides remove a learned border
  reliance? (writes ``benchmarks/results/size_check_repair_<model>_<steps>.md``).

    OMP_NUM_THREADS=1 python benchmarks/laine19_diagnostics.py diag
    OMP_NUM_THREADS=1 python benchmarks/laine19_diagnostics.py unknown
    OMP_NUM_THREADS=1 python benchmarks/laine19_diagnostics.py size runs/table1_20/l19-full-unknown-gauss25.safetensors
    OMP_NUM_THREADS=1 python benchmarks/laine19_diagnostics.py size-check runs/table1_20/*gauss25*.safetensors
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import table1_blindspot as T  # noqa: E402
from selfrestore.checkpoint import load_model  # noqa: E402
from selfrestore.corruption import parse_corruption  # noqa: E402
from selfrestore.file_lists import list_images  # noqa: E402
from selfrestore.io import read_image  # noqa: E402
from selfrestore.metrics import psnr, quantize8  # noqa: E402
from selfrestore.nets.blindspot import split_head  # noqa: E402

WORK = ROOT / "runs" / "table1_20"


def diag() -> None:
    paths = sorted(list_images([str(T.DATA / "Kodak24")])[0])[:3]
    g = torch.Generator().manual_seed(0)
    for name in ["l19-mu", "l19-diag-known", "l19-full-known"]:
        method, net, _ = load_model(WORK / f"{name}-gauss25.safetensors")
        for p in paths:
            x = torch.from_numpy(read_image(p)[0][:256, :256].transpose(2, 0, 1).copy())[None].float()
            y = x + 25 / 255 * torch.randn(x.shape, generator=g)
            with torch.no_grad():
                mu, _ = split_head(net(y), method.head, 3)
                post = method.restore(net, y)
            score = lambda t: psnr(t[0].clamp(0, 1).numpy().transpose(1, 2, 0), x[0].numpy().transpose(1, 2, 0))  # noqa: E731
            print(f"{name} {p.name}: prior mean {score(mu):.2f} dB, posterior mean {score(post):.2f} dB", flush=True)


def unknown() -> None:
    clean = T.load_set(T.DATA / "Kodak24", 3)
    noisy = T.corrupt_once(clean, parse_corruption("gauss25"), seed=100)
    m, net, _ = load_model(WORK / "l19-full-unknown-gauss25.safetensors")
    mk, netk, _ = load_model(WORK / "l19-full-known-gauss25.safetensors")
    learned = float(net.noise_gain * net.noise_param.detach()[0])
    level = float(torch.nn.functional.softplus(torch.tensor(learned - 4.0)) + 1e-3)
    print(f"learned global sigma: {level * 255:.2f}/255")
    for c, y in zip(clean, noisy):
        with torch.no_grad():
            r = {"own estimate": m.restore(net, y), "sigma 25 given": m.restore(net, y, sigma=25 / 255),
                 "learned global": m.restore(net, y, sigma=level), "known-level net": mk.restore(netk, y)}
        print({k: round(psnr(quantize8(v[0].numpy().transpose(1, 2, 0)), c), 2) for k, v in r.items()}, flush=True)


def size(model_files: list[str]) -> None:
    files = [Path(f) for f in model_files] or [WORK / "l19-full-unknown-gauss25.safetensors",
                                                WORK / "l19-full-known-gauss25.safetensors"]
    image = T.load_set(T.DATA / "Kodak24", 1)[0]
    noisy = T.corrupt_once([image], parse_corruption("gauss25"), 1)[0]
    for path in files:
        method, net, _ = load_model(path)
        net.eval()
        scores = []
        for side in (128, 160, 192, 256, None):  # None: the whole image
            crop = noisy if side is None else noisy[..., :side, :side]
            with torch.no_grad():
                mu = split_head(net(crop), method.head, 3)[0][..., :128, :128]
            label = "whole image" if side is None else f"{side} px"
            scores.append(f"{label}: {psnr(quantize8(mu[0].numpy().transpose(1, 2, 0)), image[:128, :128]):.2f}")
        print(f"{path.name}: prior mean on the top-left 128 px, input of " + ", ".join(scores))


def size_check_inputs() -> torch.Tensor:
    """The size check's input here: the first 4 BSDS500 train images, gauss25 (seed 7), top-left 256 px."""
    images = T.load_set(T.DATA / "BSDS500_train_test" / "train", 4)
    return torch.cat(T.corrupt_once(images, parse_corruption("gauss25"), 7))[..., :256, :256]


def size_check(model_files: list[str]) -> None:
    """Writes benchmarks/results/size_check_calibration.md."""
    import platform
    import time

    from selfrestore.size_check import DRIFT_LIMIT, size_drift

    start = time.time()
    noisy = size_check_inputs()
    lines = ["# Size check (`selfrestore.size_check`) on trained models: calibration of its limit", "",
             "Command: `OMP_NUM_THREADS=1 python benchmarks/laine19_diagnostics.py size-check "
             + " ".join(model_files) + "`", "",
             f"Machine: {platform.machine()}, 2-core CPU shared with other jobs, 1 thread, torch {torch.__version__}. "
             "Input: the first 4 BSDS500 train images, gauss25 noise, top-left 256 px; each model restores the "
             "central 128 px alone and inside the 256 px patch; drift = rms difference of the two away from a "
             "16 px margin / rms change the restoration makes to the noisy input there (mean of the 4).", "",
             "| model file | drift | verdict |", "|---|---|---|"]
    for path in model_files:
        method, net, _ = load_model(path)
        drift = size_drift(method, net, noisy, 128)
        lines.append(f"| {Path(path).name} | {drift:.4f} | {'FAILS' if drift > DRIFT_LIMIT else 'passes'} |")
        print(lines[-1], flush=True)
    lines += ["", f"Limit: {DRIFT_LIMIT}. Wall time: {time.time() - start:.0f} s."]
    (T.RESULTS / "size_check_calibration.md").write_text("\n".join(lines) + "\n")


def repair(args: list[str]) -> None:
    """``repair MODEL [STEPS] [LR]``: fine-tune a model for STEPS steps on mixed sides 128/160/192 (the
    Table 1 training data, gauss25) and report the size check and the PSNR on the first 8 Kodak24 images
    (top-left 512 px, whole input) before and after. Writes benchmarks/results/size_check_repair_<model>_<steps>.md."""
    import platform
    import tempfile
    import time

    from selfrestore.data.images import CorruptedImages
    from selfrestore.size_check import size_drift
    from selfrestore.train import TrainConfig, train

    path, steps, lr = args[0], int(args[1]) if len(args) > 1 else 80, float(args[2]) if len(args) > 2 else 1e-4
    start = time.time()
    noise = parse_corruption("gauss25")
    method, net, _ = load_model(path)
    check = size_check_inputs()
    kodak = [image[:512, :512] for image in T.load_set(T.DATA / "Kodak24", 8)]
    noisy = T.corrupt_once(kodak, noise, 1)

    def measure() -> tuple[float, float]:
        net.eval()
        with torch.no_grad():
            scores = [psnr(quantize8(method.restore(net, y)[0].numpy().transpose(1, 2, 0)), c)
                      for c, y in zip(kodak, noisy)]
        return size_drift(method, net, check, 128), sum(scores) / len(scores)

    before = measure()
    source = CorruptedImages(T.load_set(T.DATA / "BSDS500_train_test" / "train", None), noise,
                             kind=method.batch_kind, seed=0)
    config = TrainConfig(steps=steps, batch_size=4, patch_size=128, patch_sizes=(128, 160, 192), lr=lr, warmup=0.0,
                         progress=False, plot=False, ckpt_every=10**9, seed=5, amp=True)
    t0 = time.time()
    if steps:
        with tempfile.TemporaryDirectory() as tmp:
            train(method, net, source, config, Path(tmp) / "repair.safetensors")
    seconds = time.time() - t0
    after = measure()
    lines = ["# Repairing a border-reliant model by a short fine-tuning on mixed patch sides", "",
             f"Command: `OMP_NUM_THREADS=1 python benchmarks/laine19_diagnostics.py repair {' '.join(args)}`", "",
             f"Machine: {platform.machine()}, 2-core CPU shared with other jobs, 1 thread, torch {torch.__version__}. "
             f"Fine-tuning: {steps} steps, sides 128/160/192 px (batch 4/3/2), lr {lr:g} with cosine decay, no warm-up, "
             f"bf16 autocast, BSDS500 train images corrupted once (gauss25), {seconds:.0f} s wall. Size check: "
             "`selfrestore.size_check` on 4 BSDS500 train images (limit 0.05). PSNR: first 8 Kodak24 images, "
             "top-left 512 px given whole, sigma 25.", "",
             "| model | size check before | after | Kodak PSNR before | after |", "|---|---|---|---|---|",
             f"| {Path(path).name} | {before[0]:.4f} | {after[0]:.4f} | {before[1]:.2f} | {after[1]:.2f} |", "",
             f"Wall time: {time.time() - start:.0f} s."]
    print("\n".join(lines))
    (T.RESULTS / f"size_check_repair_{Path(path).stem}_{steps}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    torch.set_num_threads(1)
    modes = {"diag": diag, "unknown": unknown, "size": lambda: size(sys.argv[2:]),
             "size-check": lambda: size_check(sys.argv[2:]), "repair": lambda: repair(sys.argv[2:])}
    mode = sys.argv[1] if len(sys.argv) > 1 else "diag"
    if mode not in modes:
        raise SystemExit(f"usage: laine19_diagnostics.py {{{'|'.join(modes)}}} [MODEL FILE ...]")
    modes[mode]()
