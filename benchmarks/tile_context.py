"""What `--tile-context auto` (at most 128 px of context per tile) costs and saves against `full` (the whole
receptive field: tiled == untiled), on an image large enough to be tiled.

The test image: four Kodak24 images (landscape; portrait ones turned) as one 1024x1536 mosaic (1.57 MP, over
the 1.5 MP single-tile limit), gauss25 noise (seed 2025), saved values rounded to 8 bits as a PNG would
hold them. Each shipped model restores it three ways through :class:`selfrestore.restore.Restorer` (as
`selfrestore restore` does, clipping correction on): one tile (`--tile 2048`), 512 px tiles with full
context, 512 px tiles with auto context.

    OMP_NUM_THREADS=2 python benchmarks/tile_context.py     # writes benchmarks/results/tile_context.md
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.provenance import run_header  # noqa: E402
from selfrestore.io import read_image  # noqa: E402
from selfrestore.restore import AUTO_CONTEXT, Restorer  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "Kodak24"


def mosaic(folder: Path) -> np.ndarray:
    """The first four images of ``folder`` as a 2 x 2 mosaic of 512 x 768 landscape tiles."""
    images = []
    for path in sorted(folder.glob("*.png"))[:4]:
        image = read_image(path)[0]
        images.append(image if image.shape[0] == 512 else image.transpose(1, 0, 2))
    return np.concatenate([np.concatenate(images[:2], axis=1), np.concatenate(images[2:], axis=1)], axis=0)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(-10 * np.log10(np.mean((a - b) ** 2)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["unet-gauss25", "laine19-gauss5_50", "laine19-gauss25"])
    parser.add_argument("--data", default=str(DATA), help="Kodak24 folder (default: ../shared/data/Kodak24)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "tile_context.md"))
    args = parser.parse_args()
    started = time.time()
    clean = mosaic(Path(args.data))
    noisy = np.round(np.clip(clean + np.random.default_rng(2025).normal(0, 25 / 255, clean.shape), 0, 1) * 255)
    noisy = (noisy / 255).astype(np.float32)
    rows = [f"| noisy input | | {psnr(noisy, clean):.2f} | | | | |"]
    ways = [("512 px tiles, context auto", 512, "auto"), ("512 px tiles, context full", 512, "full"),
            ("one tile (untiled)", 2048, "full")]
    for model in args.models:
        outputs = {}
        for label, tile, context in ways:
            restorer = Restorer(model, device="cpu", tile=tile, tile_context=context)
            begin = time.time()
            outputs[label] = restorer.restore(noisy)
            seconds = time.time() - begin
            outputs[label + " s"] = seconds
            outputs[label + " rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
        reference = outputs["one tile (untiled)"]
        for label, _, _ in ways:
            out = outputs[label]
            eight = np.round(np.clip(out, 0, 1) * 255)
            diff = np.abs(out - reference)
            changed = np.mean(eight != np.round(np.clip(reference, 0, 1) * 255)) * 100
            rows.append(f"| {model}: {label} | {outputs[label + ' s']:.0f} | {psnr(eight / 255, clean):.3f} | "
                        f"{diff.max() * 255:.3f} | {diff.max() * 65535:.0f} | {changed:.2f} | "
                        f"{outputs[label + ' rss']:.2f} |")
    lines = ["# Tile context: `--tile-context auto` vs `full` on a tiled 1.57 MP image", "",
             *run_header(time.time() - started), "",
             f"Test: four Kodak24 images as one 1024x1536 mosaic, gauss25 noise (seed 2025), 8-bit values; "
             f"`Restorer(model, tile=T, tile_context=C).restore` (as `selfrestore restore`); auto context = at "
             f"most {AUTO_CONTEXT} px, or the net's own `auto_context` (the blind-spot nets: 256 px). Differences "
             "are against the one-tile result; PSNR of the 8-bit output against the clean mosaic. Peak RSS: of the whole process so far (rows run top to bottom per "
             "model, models in the order listed), so it bounds each row's own peak from above.", "",
             "| restorer | time (s) | PSNR (dB) | max diff (8-bit levels) | max diff (16-bit levels) | "
             "8-bit values changed (%) | peak RSS so far (GB) |",
             "|---|---|---|---|---|---|---|", *rows, ""]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
