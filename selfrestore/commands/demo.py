"""``selfrestore demo``: a short tour on an image bundled with scikit-image."""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UserError
from ._common import add_parser, positive_int

if TYPE_CHECKING:
    import numpy as np

DESCRIPTION = """\
Corrupt a bundled photograph (scikit-image's astronaut) with Gaussian noise sigma=25, restore it without
ever using the clean image for training, and write clean.png, noisy.png, restored.png and comparison.png
(clean | noisy | restored) into the -o folder. Uses the best shipped pretrained model for gauss25 when there
is one (unless --train); otherwise trains Noise2Noise on two noisy shots of the image for --steps steps
(a few minutes on a CPU) into demo_n2n.safetensors there. The clean image is used only to print
PSNR.

These files are the demo's own: running it again replaces them (other files in the folder are left alone).

examples:
  selfrestore demo                             # a shipped model restores the noisy crop: a few seconds
  selfrestore demo --train -o my-demo          # train Noise2Noise on the image first (600 steps, minutes)
  selfrestore demo --size 512                  # the whole bundled image
"""

#: the crop sides --size accepts: below MIN_SIZE the crop is a nearly flat patch and its PSNR says nothing;
#: the bundled image is 512 x 512
MIN_SIZE, MAX_SIZE = 32, 512

SUMMARY = "a short tour: corrupt, train/restore, compare"  # its line in `selfrestore --help`


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `selfrestore demo` command to the CLI's subparsers."""
    p = add_parser(sub, "demo", SUMMARY, DESCRIPTION)
    p.add_argument("-o", "--output", default="selfrestore-demo",
                   help="folder for the demo images (its clean.png, noisy.png, restored.png and comparison.png are "
                        "replaced; with --train, demo_n2n.safetensors too; a model file of an earlier --train run is "
                        "left there)")
    p.add_argument("--steps", type=positive_int, default=600,
                   help="training steps (with --train, or when no shipped model fits)")
    p.add_argument("--size", type=int, default=256,
                   help=f"side of the centre crop used ({MIN_SIZE}-{MAX_SIZE})")
    p.add_argument("--train", action="store_true", help="train even when a shipped model exists")
    p.set_defaults(func=run)


def _comparison(images, labels, path: Path) -> None:
    import numpy as np
    from PIL import Image, ImageDraw

    from ..atomic_files import atomic_path
    from ..io import quantize

    tiles = [Image.fromarray(quantize(img, "uint8")) for img in images]
    w, h = tiles[0].size
    canvas = Image.new("RGB", (w * len(tiles) + 8 * (len(tiles) - 1), h + 20), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (tile, label) in enumerate(zip(tiles, labels)):
        canvas.paste(tile, (i * (w + 8), 20))
        draw.text((i * (w + 8) + 4, 4), label, fill=(0, 0, 0))
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")
    del np


def _single_image_model(path: Path) -> bool:
    """Shipped models that restore one image at a time (not video or burst models)."""
    from ..checkpoint import read_checkpoint
    from ..registry import METHODS

    method = read_checkpoint(path)[1].get("method", {}).get("name", "")
    return method in METHODS and METHODS.get(method).batch_kind in ("single", "pair")


def _kodak_score(name: str) -> float:
    """The Kodak24 gauss25 PSNR recorded in a shipped model (-inf when none): the demo uses the best."""
    from ..checkpoint import read_checkpoint, shipped_models

    scores = read_checkpoint(shipped_models()[name])[1].get("scores", {})
    return float(scores.get("Kodak24 gauss25 PSNR", float("-inf")))


def crop(image: np.ndarray, side: int) -> np.ndarray:
    """The ``side`` x ``side`` crop of the demo: centred 40 px above the middle (the astronaut's face), moved
    as needed to stay inside the image."""
    import numpy as np

    y0 = min(max(0, (image.shape[0] - side) // 2 - 40), image.shape[0] - side)
    x0 = (image.shape[1] - side) // 2
    return np.ascontiguousarray(image[y0:y0 + side, x0:x0 + side])


def run(args: argparse.Namespace) -> int:
    """Corrupt the bundled image, restore it (a shipped model, or Noise2Noise trained here) and write the
    images and their PSNR into -o; returns 0."""
    import numpy as np
    import torch
    from skimage import data

    from ..checkpoint import build_net, shipped_models
    from ..corruption import parse_corruption
    from ..data.images import CorruptedImages, image_generator
    from ..atomic_files import check_writable_place
    from ..io import to_array, to_tensor, write_image
    from ..methods.n2n import Noise2Noise
    from ..metrics import psnr, quantize8
    from ..restore import Restorer
    from ..train import TrainConfig, train

    start = time.time()
    out = Path(args.output)
    if not MIN_SIZE <= args.size <= MAX_SIZE:
        raise UserError(f"--size {args.size}: give a crop side from {MIN_SIZE} to {MAX_SIZE} (the bundled image is "
                        f"{MAX_SIZE} x {MAX_SIZE})")
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} is a file: -o names the folder the demo writes into")
    check_writable_place(out)
    clean = crop(data.astronaut().astype(np.float32) / 255.0, args.size)
    noise = parse_corruption("gauss25")
    # the noisy photo as its 8-bit file holds it (clipped, rounded): what `restore noisy.png` then restores too,
    # so the numbers printed are the ones a user gets from the files written
    noisy = quantize8(to_array(noise.sample(to_tensor(clean), image_generator(2024, 0))))
    shipped = [n for n, p in shipped_models().items() if n.endswith("gauss25") and _single_image_model(p)]
    trained = ""  # the model file the demo trains, named among the files written
    if shipped and not args.train:
        name = max(sorted(shipped), key=_kodak_score)
        print(f"restoring with the shipped model {name} (trained on noisy images only)")
        restored = Restorer(name).restore(noisy)
    else:
        print(f"training Noise2Noise for {args.steps} steps on two independent noisy shots of the image")
        method = Noise2Noise(noise=noise)
        torch.manual_seed(0)
        net = build_net("unet", in_channels=3, out_channels=3)
        source = CorruptedImages([clean], noise, kind="pair", seed=7, keep_clean=False)
        config = TrainConfig(steps=args.steps, batch_size=4, patch_size=96, lr=1e-3, ckpt_every=10**9,
                             plot=False, interrupt_checkpoint=False)
        model_path = out / "demo_n2n.safetensors"
        if model_path.exists():
            model_path.unlink()
        train(method, net, source, config, model_path)
        restored = Restorer(model_path).restore(noisy)  # as `selfrestore restore noisy.png --model ...` does
        trained = f", {model_path.name} (the model trained)"
    restored = quantize8(restored)
    write_image(out / "clean.png", clean)
    write_image(out / "noisy.png", noisy)
    write_image(out / "restored.png", restored)
    before, after = psnr(noisy, clean), psnr(restored, clean)
    _comparison([clean, noisy, restored], ["clean (never used for training)", f"noisy {before:.2f} dB",
                                           f"restored {after:.2f} dB"], out / "comparison.png")
    print(f"PSNR noisy    {before:6.2f} dB")
    print(f"PSNR restored {after:6.2f} dB   (gain {after - before:+.2f} dB)")
    print(f"wrote {out}/clean.png, noisy.png, restored.png, comparison.png{trained} in {time.time() - start:.0f} s")
    print("next, on your own noisy images: selfrestore inspect YOUR_IMAGES/ (measures the noise, suggests a "
          "method), selfrestore restore YOUR_IMAGES/ -o restored/ (the shipped default model), or selfrestore fit "
          "YOUR_IMAGES/ -o model.safetensors (train on them)")
    return 0
