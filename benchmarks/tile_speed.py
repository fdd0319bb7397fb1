"""What restoring a large image costs with the automatic tiles of this stop against 512 px tiles, and with the
blind-spot net leaving out each tile's unused context (``BlindSpotUNet.forward(x, trim)``) against not.

The test image: eight Kodak24 images (landscape; portrait ones turned) as one 2048 x 1536 mosaic (3.1 MP, over
the 1.5 MP single-tile limit), gauss25 noise (seed 2025), values rounded to 8 bits as a PNG holds them. Each
model restores it through :class:`selfrestore.restore.Restorer` (as `selfrestore restore` does, context auto,
clipping correction on) three ways: 512 px tiles without trimming (what `restore` did before), 512 px tiles
with trimming, the automatic tile (:func:`selfrestore.restore.auto_tile`) with trimming (what it does now).
Reported: wall time, the pixels the network's branch computed (all rotations, counted by a hook), PSNR of the
8-bit output, and its difference from the first way. A second table counts the computed pixels alone for
larger photos, through a 4-channel stand-in of the blind-spot net (the same tiling and trimming, no real work).

    OMP_NUM_THREADS=2 python benchmarks/tile_speed.py      # writes benchmarks/results/tile_speed.md
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
from selfrestore.restore import Restorer, auto_tile, tile_margin  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "Kodak24"
WAYS = (("512 px tiles, no trimming (before)", 512, False), ("512 px tiles, trimmed", 512, True),
        ("automatic tiles, trimmed (now)", 0, True))


def mosaic(folder: Path) -> np.ndarray:
    """The first eight images of ``folder`` as a 4 x 2 mosaic of 512 x 768 landscape tiles (2048 x 1536)."""
    images = []
    for path in sorted(folder.glob("*.png"))[:8]:
        image = read_image(path)[0]
        images.append(image if image.shape[0] == 512 else image.transpose(1, 0, 2))
    return np.concatenate([np.concatenate(images[k:k + 2], axis=1) for k in range(0, 8, 2)], axis=0)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(-10 * np.log10(np.mean((a - b) ** 2)))


def counting(net) -> list[int]:
    """Count the pixels each call of ``net``'s branch (or, for a net without branches, of the net) computes."""
    counts: list[int] = []
    module = getattr(net, "branch", net)
    forward = module.forward

    def counted(x, *rest):
        counts.append(int(x.shape[-2] * x.shape[-1]))
        return forward(x, *rest)

    module.forward = counted
    return counts


def measured_rows(models: list[str], noisy: np.ndarray, clean: np.ndarray) -> list[str]:
    rows = [f"| noisy input | | | {psnr(noisy, clean):.2f} | | | | |"]
    for model in models:
        reference = None
        for label, tile, trims in WAYS:
            restorer = Restorer(model, device="cpu", tile=tile)
            net = restorer.net
            if not getattr(net, "takes_trim", False) and trims and tile == 512:
                continue  # (a net that does not trim: the first way again)
            net.takes_trim = bool(getattr(net, "takes_trim", False)) and trims
            counts, rotations = counting(net), 4 if hasattr(net, "branch") else 1
            begin = time.time()
            out = restorer.restore(noisy)
            seconds = time.time() - begin
            eight = np.round(np.clip(out, 0, 1) * 255)
            reference = eight if reference is None else reference
            side = tile or "x".join(map(str, auto_tile(*noisy.shape[:2], getattr(net, "size_multiple", 1),
                                                       tile_margin(net))))
            rows.append(f"| {model}: {label} | {side} | {seconds:.0f} | {psnr(eight / 255, clean):.3f} | "
                        f"{sum(counts) / rotations / noisy.shape[0] / noisy.shape[1]:.2f} | "
                        f"{np.abs(eight - reference).max():.0f} | {np.mean(eight != reference) * 100:.3f} | "
                        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f} |")
    return rows


def counted_rows(sizes: list[tuple[int, int]]) -> list[str]:
    """Computed pixels per image pixel (all four rotations / 4) for photos of ``sizes``, through a stand-in
    blind-spot net of 4 channels (the tiling and trimming of the default model, not its work)."""
    from selfrestore.nets.blindspot import BlindSpotUNet
    from selfrestore.restore import tiled_apply

    net = BlindSpotUNet(3, 3, width=4).eval()
    multiple, margin = net.size_multiple, tile_margin(net)
    rows = []
    for height, width in sizes:
        image = np.zeros((height, width, 3), np.float32)
        found = []
        for tile, trims in ((512, False), (512, True), (0, True)):  # (0: automatic)
            counts = counting(net)
            tiled_apply(lambda x, *trim: net(x, *trim), image, multiple=multiple, margin=margin, tile=tile,
                        pad="zero", trims=trims)
            found.append(sum(counts) / 4 / height / width)
            net.branch.forward = type(net.branch).forward.__get__(net.branch)
        automatic = "x".join(map(str, auto_tile(height, width, multiple, margin)))
        rows.append(f"| {width} x {height} ({height * width / 1e6:.1f} MP) | {found[0]:.2f} | {found[1]:.2f} | "
                    f"{automatic} | {found[2]:.2f} | {found[2] / found[0]:.2f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["laine19-gauss5_50", "unet-gauss25"])
    parser.add_argument("--data", default=str(DATA), help="Kodak24 folder (default: ../shared/data/Kodak24)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "tile_speed.md"))
    args = parser.parse_args()
    started = time.time()
    clean = mosaic(Path(args.data))
    noisy = np.round(np.clip(clean + np.random.default_rng(2025).normal(0, 25 / 255, clean.shape), 0, 1) * 255)
    noisy = (noisy / 255).astype(np.float32)
    measured = measured_rows(args.models, noisy, clean)
    counted = counted_rows([(1536, 2048), (3000, 4000), (4000, 6000)])
    lines = ["# Tiles of a large image: automatic tile size and trimmed context", "",
             *run_header(time.time() - started), "",
             "Test: eight Kodak24 images as one 2048 x 1536 mosaic (3.1 MP), gauss25 noise (seed 2025), 8-bit values, "
             "restored by `Restorer(model, tile=T)` (as `selfrestore restore`; context auto: 256 px for the "
             "blind-spot net, 128 for the U-Net). Computed: pixels through the network's branch (the blind-spot "
             "net: per rotation) per image pixel. Differences: of the 8-bit output from the first row of the "
             "model. Peak RSS: of the whole process so far (rows in the order listed).", "",
             "| restorer | tile (h x w px) | time (s) | PSNR (dB) | computed / image pixels | "
             "max diff (8-bit levels) | 8-bit values changed (%) | peak RSS so far (GB) |",
             "|---|---|---|---|---|---|---|---|", *measured, "",
             "Computed pixels per image pixel (per rotation) of the blind-spot net's branches for larger photos "
             "(context 256 px), counted through a 4-channel stand-in with the same tiling and trimming:", "",
             "| image | 512 px tiles | 512 px, trimmed | automatic tile (h x w px) | automatic, trimmed | "
             "ratio to 512 |",
             "|---|---|---|---|---|---|", *counted, ""]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
