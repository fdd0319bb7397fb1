"""What `restore --subsample 2` (restoring the 2 x 2 sub-images apart: pixel-shuffle down-sampling) gains on
noise correlated between neighbouring pixels, and what it costs on white noise and nearly clean images, with
the shipped models; and how the neighbour correlation measured on each image (what `selfrestore inspect`
reports) spreads for each kind of noise (why the option is not automatic).

Test images: the central 256 x 384 crop of the first N Kodak24 images (default 8). Noise (seeded), every
noisy image rounded to 8 bits as a PNG holds it:
- white S: Gaussian noise of std S (0-255 scale), independent per pixel; "clean" none;
- box3 S: Gaussian noise of std S filtered by [1 2 1] / 4 along rows and columns (a smoothed noise);
- demosaic S: the RGGB mosaic of the clean image plus Gaussian noise of std S, bilinearly demosaicked; the
  target is the bilinear demosaic of the clean mosaic (what a camera would give without noise);
- jpeg S qQ: Gaussian noise of std S, then JPEG at quality Q (PIL's default 4:2:0 chroma subsampling).
Each image restored through :class:`selfrestore.restore.Restorer` (as `selfrestore restore`, clipping
correction on) with subsample 1 and 2; PSNR of the 8-bit result against the target, mean over the images.

    OMP_NUM_THREADS=2 python benchmarks/subsample_correlated.py   # writes benchmarks/results/subsample_correlated.md
"""
from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.provenance import run_header  # noqa: E402
from selfrestore.corruption.mosaic import bilinear_demosaic, mosaic  # noqa: E402
from selfrestore.io import read_image  # noqa: E402
from selfrestore.noise_check import neighbour_correlation  # noqa: E402
from selfrestore.restore import Restorer  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "Kodak24"
KINDS = ("clean", "white5", "white25", "box3_40", "demosaic15", "demosaic30", "jpeg15_q75")


def crop(image: np.ndarray, height: int = 256, width: int = 384) -> np.ndarray:
    """The central ``height`` x ``width`` crop (portrait images turned first)."""
    image = image if image.shape[0] <= image.shape[1] else image.transpose(1, 0, 2)
    top, left = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
    return np.ascontiguousarray(image[top:top + height, left:left + width])


def eight_bit(x: np.ndarray) -> np.ndarray:
    return (np.round(np.clip(x, 0, 1) * 255) / 255).astype(np.float32)


def corrupt(clean: np.ndarray, kind: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(noisy 8-bit image, target) of ``kind`` (see the module's docstring)."""
    from scipy.ndimage import convolve1d

    def gauss(std: float, shape: tuple[int, ...] = clean.shape) -> np.ndarray:
        return rng.normal(0, std / 255, shape).astype(np.float32)

    if kind == "clean":
        return clean, clean
    if kind.startswith("white"):
        return eight_bit(clean + gauss(float(kind[5:]))), clean
    if kind.startswith("box3_"):
        kernel = np.array([1.0, 2.0, 1.0]) / 4
        noise = convolve1d(convolve1d(gauss(float(kind[5:])), kernel, axis=0), kernel, axis=1)
        return eight_bit(clean + noise), clean
    if kind.startswith("demosaic"):
        raw = mosaic(torch.from_numpy(clean).permute(2, 0, 1)[None])
        noisy_raw = raw + torch.from_numpy(gauss(float(kind[8:]), tuple(raw.shape)))
        as_image = lambda t: t[0].permute(1, 2, 0).numpy()  # noqa: E731
        return eight_bit(as_image(bilinear_demosaic(noisy_raw))), as_image(bilinear_demosaic(raw))
    if kind.startswith("jpeg"):
        std, quality = kind[4:].split("_q")
        from PIL import Image

        buffer = io.BytesIO()
        Image.fromarray((eight_bit(clean + gauss(float(std))) * 255).astype(np.uint8)).save(
            buffer, "JPEG", quality=int(quality))
        return np.asarray(Image.open(buffer), np.float32) / 255, clean
    raise ValueError(kind)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(-10 * np.log10(max(np.mean((eight_bit(a) - b) ** 2), 1e-12)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["laine19-gauss5_50", "unet-gauss25"])
    parser.add_argument("--kinds", nargs="+", default=list(KINDS))
    parser.add_argument("--images", type=int, default=8, help="the first N Kodak24 images")
    parser.add_argument("--data", default=str(DATA), help="Kodak24 folder (default: ../shared/data/Kodak24)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "subsample_correlated.md"))
    args = parser.parse_args()
    started = time.time()
    cleans = [crop(read_image(path)[0]) for path in sorted(Path(args.data).glob("*.png"))[:args.images]]
    restorers = {(model, stride): Restorer(model, device="cpu", subsample=stride)
                 for model in args.models for stride in (1, 2)}
    for restorer in restorers.values():
        restorer.warn_level_mismatch = False  # the levels are chosen here
    rows = []
    for kind in args.kinds:
        rng = np.random.default_rng(2026)
        pairs = [corrupt(clean, kind, rng) for clean in cleans]
        correlations = [neighbour_correlation([noisy]) for noisy, _ in pairs]
        cells = [f"{np.mean([psnr(noisy, target) for noisy, target in pairs]):.2f}"]
        for model in args.models:
            by_stride = {stride: [psnr(restorers[model, stride].restore(noisy), target) for noisy, target in pairs]
                         for stride in (1, 2)}
            gains = np.subtract(by_stride[2], by_stride[1])
            cells += [f"{np.mean(by_stride[1]):.2f}", f"{np.mean(by_stride[2]):.2f}",
                      f"{gains.mean():+.2f} ({gains.min():+.2f} .. {gains.max():+.2f})"]
        rows.append(f"| {kind} | {min(correlations):.2f} .. {max(correlations):.2f} | " + " | ".join(cells) + " |")
        print(rows[-1], flush=True)
    header = "| noise | neighbour correlation (min .. max) | noisy |" + "".join(
        f" {m}: 1 | {m}: 2 | {m}: 2 - 1 (min .. max) |" for m in args.models)
    lines = ["# `--subsample 2` (restoring the 2 x 2 sub-images apart) on correlated and white noise", "",
             *run_header(time.time() - started), "",
             f"Test: central 256 x 384 crops of the first {len(cleans)} Kodak24 images; noise as described in "
             "`benchmarks/subsample_correlated.py` (seed 2026, 8-bit values); `Restorer(model, subsample=S).restore`"
             " (as `selfrestore restore --subsample S`); PSNR (dB) of the 8-bit result against the target, mean "
             "over the images; the gain's range over the images in brackets. Neighbour correlation: "
             "`selfrestore.noise_check.neighbour_correlation` of each noisy image (what `selfrestore inspect` "
             "reports; above 0.2 it calls the noise correlated).", "",
             header, "|" + "---|" * (3 + 3 * len(args.models)), *rows, ""]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
