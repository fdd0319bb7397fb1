"""``selfrestore burst``: restore the first frame of a burst (joint demosaicking + denoising, or x s
multi-image super-resolution), classically or with a trained model, optionally fine-tuned on the burst."""
from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from ..errors import UserError
from ._common import add_parser

from ..burst.frames_io import load_frames

DESCRIPTION = """\
Restore the reference (first) frame of a burst.

  --task demosaic : the frames are RGGB Bayer mosaics (single-channel images, or camera raw files when
                    rawpy is installed); output is the denoised RGB of frame 1.
  --task superres : the frames are gray or RGB; output is frame 1 on an x SCALE finer grid.

Without --model the classical method runs (registration + shift-and-add). With --model a trained
mosaic-to-mosaic ("m2m") or Deep Shift-and-Add ("dsa") model runs; --adapt N first fine-tunes it for N
self-supervised steps on this very burst (Ehret et al. 2019); --adapt without --model trains from scratch.
An m2m model restores the reference raw frame from that frame alone: one raw file is enough without --adapt
(the shipped m2m-pg0.004_0.02 was trained self-supervised on synthetic raw bursts)."""

EPILOG = """\
examples:
  selfrestore burst raw_frames/ --task demosaic -o reference.png
  selfrestore burst raw_frames/ --task demosaic --model m2m-pg0.004_0.02 -o reference.png  # shipped net
  selfrestore burst f1.png f2.png f3.png f4.png f5.png --task superres --scale 2 -o sr.png
  selfrestore burst lr_frames/ --task superres --model dsa-x2-pg0.004_0.02 -o sr.png  # shipped DSA (x2)
  selfrestore burst raw_frames/ --task demosaic --model m2m.safetensors --adapt 100 -o reference.png"""


def register(sub) -> None:
    parser = add_parser(sub, "burst", help="restore a burst: demosaic + denoise, or multi-image super-resolution",
                        description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("frames", nargs="+", help="frame files or a folder (sorted; the first is the reference)")
    parser.add_argument("--task", choices=["demosaic", "superres"], required=True)
    parser.add_argument("--scale", type=int, default=2, help="super-resolution factor (superres)")
    parser.add_argument("--model", default=None, help="trained m2m / dsa model file, or a shipped one: "
                        "m2m-pg0.004_0.02, dsa-x2-pg0.004_0.02 (default: classical)")
    parser.add_argument("--adapt", type=int, default=0, metavar="STEPS",
                        help="self-supervised fine-tuning steps on this burst before restoring")
    parser.add_argument("--registration", choices=["translation", "euclidean", "affine"], default="affine")
    parser.add_argument("-o", "--output", required=True, help="output image file")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..burst.registration import register_burst
    from ..burst.shift_and_add import shift_and_add
    from ..io import ImageInfo, write_image

    raw = args.task == "demosaic"
    if args.scale < 1:
        raise UserError("--scale must be at least 1")
    # a mosaic-to-mosaic model restores the reference raw frame from that frame alone
    single = raw and args.model is not None and args.adapt == 0
    frames, info = load_frames(args.frames, args.task, minimum=1 if single else 2)
    affines = register_burst(frames, model=args.registration, raw=raw)
    if args.model is None and args.adapt == 0:
        out = shift_and_add(frames, affines, scale=1 if raw else args.scale, raw=raw)
    else:
        out = _learned(args, frames, affines, raw)
    if info is None or raw:
        info = ImageInfo(dtype=info.dtype if info else "uint16", channels=3)
    info.alpha = None
    write_image(args.output, out.clamp(0, 1).permute(1, 2, 0).numpy(), info)
    print(f"wrote {args.output}")
    return 0


def _learned(args, frames: torch.Tensor, affines: torch.Tensor, raw: bool) -> torch.Tensor:
    from ..burst.sources import BurstFrames
    from ..checkpoint import build_net, load_model
    from ..registry import METHODS
    from ..train import TrainConfig, train

    if args.model:
        method, net, _ = load_model(args.model)
    else:
        method = METHODS.get("m2m")() if raw else METHODS.get("dsa")(scale=args.scale)
        net = build_net(method.default_net, **method.net_kwargs(frames.shape[1]))
    if method.batch_kind != "burst" or method.needs_clean:
        raise UserError(f"{args.model}: method {method.name!r} is not a self-supervised burst method")
    if raw != (method.name == "m2m"):
        raise UserError(f"{args.model}: a {method.name!r} model does not do --task {args.task}")
    if args.adapt > 0:
        need = getattr(method, "min_training_frames", 2)
        if frames.shape[0] < need:
            raise UserError(f"--adapt with method {method.name!r} needs a burst of at least {need} frames "
                            f"({frames.shape[0]} given); give more frames, or leave out --adapt")
        source = BurstFrames(frames, raw=raw, registration=args.registration)
        patch = min(64, frames.shape[-2], frames.shape[-1])
        config = TrainConfig(steps=args.adapt, batch_size=4, patch_size=patch, lr=3e-4, amp=False, plot=False,
                             ckpt_every=args.adapt)
        with tempfile.TemporaryDirectory() as tmp:
            train(method, net, source, config, Path(tmp) / "adapted.safetensors")
    net.eval()
    with torch.no_grad():
        return method.restore(net, frames[None], affines=affines[None])[0].float()
