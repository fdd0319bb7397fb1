"""``selfrestore burst``: restore the first frame of a burst (joint demosaicking + denoising, or x s
multi-image super-resolution), classically or with a trained model, optionally fine-tuned on the burst."""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from ..atomic_files import check_writable_place, remove_stale_temporaries
from ..burst.frames_io import burst_paths, load_frames
from ..errors import UserError
from ._common import add_parser, same_entry_finder, say_if_depth_lost, warn

if TYPE_CHECKING:
    import torch  # imported where used: every command's parser is built at start-up, `--help` included

    from ..io import ImageInfo
    from ..methods.base import Method

DESCRIPTION = """\
Restore the reference (first) frame of a burst.

  --task demosaic : the frames are RGGB Bayer mosaics (single-channel images, or camera raw files with
                    pip install 'selfrestore[raw]'); output is the denoised RGB of frame 1.
  --task superres : the frames are gray or RGB; output is frame 1 on an x SCALE finer grid.

Without --model the classical method runs (registration + shift-and-add). With --model a trained
mosaic-to-mosaic ("m2m") or Deep Shift-and-Add ("dsa") model runs; --adapt N first fine-tunes it for N
self-supervised steps on this very burst (Ehret et al. 2019); --adapt without --model trains from scratch.
Float frames far outside [0, 1] (counts kept as float TIFF / FITS) are mapped to [0, 1] for the work, all with one
map, and the result is mapped back: write it to a .tif/.tiff or .fits file. With a model, so are dim frames (12- or
14-bit counts kept in 16-bit files), as `restore` maps them, or as the model's own recorded map says.
An m2m model restores the reference raw frame from that frame alone: one raw file is enough without --adapt
(the shipped m2m-pg0.004_0.02 was trained self-supervised on synthetic raw bursts)."""

EPILOG = """\
examples:
  selfrestore burst raw_frames/ --task demosaic -o reference.png
  selfrestore burst raw_frames/ --task demosaic --model m2m-pg0.004_0.02 -o reference.png  # shipped net
  selfrestore burst f1.png f2.png f3.png f4.png f5.png --task superres --scale 2 -o sr.png
  selfrestore burst lr_frames/ --task superres --model dsa-x2-pg0.004_0.02 -o sr.png  # shipped DSA (x2)
  selfrestore burst raw_frames/ --task demosaic --model m2m.safetensors --adapt 100 -o reference.png"""


MAX_SCALE = 8  #: larger factors give huge, mostly invented outputs (x8 of a 1 MP burst is already 64 MP)

SUMMARY = "restore a burst: demosaic + denoise, or multi-image super-resolution"  # its line in `selfrestore --help`


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `selfrestore burst` command to the CLI's subparsers."""
    parser = add_parser(sub, "burst", help=SUMMARY, description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("frames", nargs="+", help="the frame files, or one folder holding them (in name order); the "
                        "first frame is the reference. A folder of burst folders is refused: give one burst")
    parser.add_argument("--task", choices=["demosaic", "superres"], required=True,
                        help="demosaic: RGGB raw frames -> denoised RGB; superres: gray / RGB frames -> a finer grid")
    parser.add_argument("--scale", type=int, default=None,
                        help=f"super-resolution factor, 1 to {MAX_SCALE} (--task superres only; default: the model's, "
                        "else 2)")
    parser.add_argument("--model", default=None, help="trained m2m / dsa model file, or a shipped one: "
                        "m2m-pg0.004_0.02, dsa-x2-pg0.004_0.02 (default: classical)")
    parser.add_argument("--adapt", type=int, default=0, metavar="STEPS",
                        help="self-supervised fine-tuning steps on this burst before restoring")
    parser.add_argument("--registration", choices=["translation", "euclidean", "affine"], default="affine",
                        help="how each frame is aligned to the first: a shift; a shift and rotation (a camera "
                             "turning in hand); affine, the default, also scale and shear (the fewer the degrees "
                             "of freedom, the steadier on noisy frames)")
    parser.add_argument("-o", "--output", required=True, help="output image file (its suffix picks the format)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    parser.add_argument("--quiet", action="store_true", help="no progress bar (--adapt) and no 'wrote' line")
    parser.set_defaults(func=run)


def check_options(args: argparse.Namespace) -> None:
    """Numeric options in range and meant for the task, before anything is read (a huge --scale would run for
    minutes first; a --scale that demosaicking would ignore is a mistake to say, not to pass over)."""
    if args.task == "demosaic" and args.scale not in (None, 1):
        raise UserError(f"--scale {args.scale}: --task demosaic keeps the frames' size; --scale is for "
                        f"--task superres")
    if args.scale is not None and not 1 <= args.scale <= MAX_SCALE:
        raise UserError(f"--scale {args.scale}: expected a factor from 1 to {MAX_SCALE}")
    if args.adapt < 0:
        raise UserError(f"--adapt {args.adapt}: the number of fine-tuning steps cannot be negative")


def check_output(output: str, inputs: list[str], frames: list[Path], overwrite: bool) -> Path:
    """The output file, checked before any computing as ``restore`` checks one output: an image file name,
    not one of the input frames, not an existing file without ``--overwrite``."""
    from ..io import IMAGE_SUFFIXES
    from .restore import output_file

    out = output_file(output, 1, folder_ok=False)  # one image comes out
    if out is None:
        what = "is a folder" if Path(output).is_dir() else "has no suffix"  # output_file refuses other suffixes
        raise UserError(f"-o {output} {what}: give an image file name, its suffix picks the format "
                        f"({', '.join(IMAGE_SUFFIXES)})")
    frame = same_entry_finder(frames)(out)  # any spelling of a frame: relative, a link, a symlinked folder
    if frame is not None:
        raise UserError(f"{out}: output would overwrite the input frame {frame}; choose another -o")
    if out.exists() and not overwrite:
        raise UserError(f"{out}: exists (pass --overwrite to replace it)")
    check_writable_place(out)
    for item in inputs:
        if Path(item).is_dir() and out.resolve().is_relative_to(Path(item).resolve()):
            warn(f"{out} is inside the input folder {item}: a later run on that folder will take it for a frame")
    return out


def run(args: argparse.Namespace) -> int:
    """Restore the burst's reference frame (classically, or with a model, optionally fine-tuned on the burst)
    and write it to -o; returns 0 (a problem raises UserError)."""
    from ..burst.frames_io import alpha_on_grid
    from ..burst.registration import register_burst
    from ..burst.shift_and_add import shift_and_add
    from ..io import ImageInfo, to_channels, write_image
    from ..resampled_metadata import upscaled_info

    raw = args.task == "demosaic"
    check_options(args)
    output = check_output(args.output, args.frames, burst_paths(args.frames), args.overwrite)
    remove_stale_temporaries([output])  # of a run killed while it wrote the output
    method = net = None
    if args.model:
        method, net, header = _load_model(args, raw)
    elif args.scale is None:
        args.scale = 2
    # a mosaic-to-mosaic model restores the reference raw frame from that frame alone
    single = raw and args.model is not None and args.adapt == 0
    frames, info = load_frames(args.frames, args.task, minimum=1 if single else 2)
    mapping = burst_mapping(frames, output, info, header if args.model else {},
                            dim=args.adapt > 0 if not args.model else _maps_dim_data(args.model, header))
    say_if_depth_lost(output, "uint16" if info is None else info.dtype, "burst")  # (raw camera files: 16-bit)
    if mapping:  # one map for the whole burst: frames mapped apart would no longer agree
        from ..intensity_map import apply_mapping

        frames = apply_mapping(frames, mapping)
    height, width = frames.shape[-2:]
    if raw and (height % 2 or width % 2):  # whole 2x2 Bayer tiles; the output is cropped back to the frame
        frames = _pad_to_even(frames)
    gray = False
    if args.model:
        frames, gray = _match_channels(args.model, header, frames)
    elif args.adapt > 0:  # trained from scratch on this burst
        from ..checkpoint import build_net
        from ..registry import METHODS

        method = METHODS.get("m2m")() if raw else METHODS.get("dsa")(scale=args.scale)
        net = build_net(method.default_net, **method.net_kwargs(frames.shape[1]))
    if args.adapt > 0:
        check_adapt(method, frames[..., :height, :width])  # the frames as given, not a padded row
        if not args.model:  # said once the burst is known to be usable (a refusal is the one line then)
            shipped = "m2m-pg0.004_0.02" if raw else "dsa-x2-pg0.004_0.02 (x2)"
            warn(f"--adapt {args.adapt} without --model trains a network from scratch on this burst, which needs "
                 f"far more than a few hundred steps to match the classical result (without --adapt); fine-tune "
                 f"the shipped --model {shipped} instead")
    if single and frames.shape[0] > 1:  # the model restores frame 1 alone: the others would be read for nothing
        warn(f"a mosaic-to-mosaic model restores the first frame from that frame alone: the other "
             f"{frames.shape[0] - 1} frame(s) are used only to fine-tune it (--adapt STEPS)"
             + ("; --registration is not used" if args.registration != "affine" else ""))
        frames = frames[:1]
    affines = register_burst(frames, model=args.registration, raw=raw)
    if method is None:
        out = shift_and_add(frames, affines, scale=1 if raw else args.scale, raw=raw, valid=(height, width))
    else:
        out = _learned(args, method, net, frames, affines, raw)
    if raw:
        out = out[..., :height, :width]
    if mapping:  # back to the frames' values, unclipped (a float TIFF / FITS holds them)
        array = (out.permute(1, 2, 0).numpy() * mapping["scale"] + mapping["offset"]).astype("float32")
    else:
        array = out.clamp(0, 1).permute(1, 2, 0).numpy()
    if gray:  # gray frames through a colour model come back gray, as `restore` does
        array = to_channels(array, 1)
    if info is None:  # camera raw files
        info = ImageInfo(dtype="uint16", channels=3)
    elif raw:  # frame 1's metadata (dpi, EXIF, text ...) kept for the RGB it became, as super-resolution keeps it
        info = _rgb_info(info)
    elif array.shape[0] != frames.shape[-2]:  # super-resolved: the recorded pixel size shrinks with the pixels
        info = upscaled_info(info, array.shape[0] // frames.shape[-2])
    info.alpha = alpha_on_grid(info.alpha, *array.shape[:2])
    write_image(output, array, info)
    if not args.quiet:
        print(f"wrote {output}")
    return 0


def burst_mapping(frames: torch.Tensor, output: Path, info: ImageInfo | None, header: dict, dim: bool = False
                  ) -> dict[str, float] | None:
    """How the frames go to the [0, 1] the methods work on, as ``restore`` maps one image: the model's recorded
    map (``fit`` on float counts or dim data) first; else one :func:`~selfrestore.intensity_map.intensity_mapping`
    of the whole burst for float frames far outside [0, 1] (counts) and (``dim``: a model that maps dim data, as
    every shipped one and those of ``fit`` do) 12/14-bit counts kept in 16-bit files, not 8-bit steps; None for
    other frames and for camera raw files (``info`` None: their white level already scales them). An output format
    that would clip the mapped-back result (PNG, JPEG: integers in [0, 1]) is a UserError, before any work."""
    from ..intensity_map import intensity_mapping
    from ..io import refuse_clipping

    recorded = header.get("intensity")
    if not recorded and (info is None or (info.dtype != "float32" and not dim)):
        return None
    arrays = list(frames.permute(0, 2, 3, 1).numpy())
    mapping = recorded or intensity_mapping(arrays, dim=dim)
    if mapping:
        refuse_clipping(output, arrays)
    return mapping


def _maps_dim_data(model: str, header: dict) -> bool:
    """Whether a burst model maps dim data (12/14-bit counts in 16-bit files) as ``restore`` maps it for image
    models: a shipped model, or one whose header says so (``fit`` maps such training data alike)."""
    from ..checkpoint import is_shipped

    return bool(header.get("maps_method_data")) or is_shipped(model)


def _pad_to_even(frames: torch.Tensor) -> torch.Tensor:
    """Odd-sided raw frames (T, 1, H, W) padded by one mirrored row / column to whole 2x2 Bayer tiles (a mirror
    about the last row / column keeps each pixel's Bayer colour)."""
    import torch.nn.functional as F

    height, width = frames.shape[-2:]
    return F.pad(frames, (0, width % 2, 0, height % 2), mode="reflect")


def _rgb_info(info: ImageInfo) -> ImageInfo:
    """Frame 1's ImageInfo for the RGB demosaicked from it: a colour profile that is not an RGB one (a gray
    profile of the mosaic), ImageJ's per-channel display settings and a FITS header's Bayer (colour filter array)
    keywords do not describe it and are left out (a viewer would debayer the RGB again)."""
    import dataclasses

    icc = info.icc_profile if info.icc_profile and info.icc_profile[16:20] == b"RGB " else None
    fits_header = info.fits_header
    if fits_header:
        from astropy.io import fits

        header = fits.Header.fromstring(fits_header)
        for key in ("BAYERPAT", "COLORTYP", "XBAYROFF", "YBAYROFF", "BAYOFFX", "BAYOFFY", "CFATYPE"):
            header.remove(key, ignore_missing=True, remove_all=True)
        fits_header = header.tostring()
    return dataclasses.replace(info, channels=3, icc_profile=icc, imagej=None, blank=None, fits_header=fits_header)


def _load_model(args, raw: bool):
    """(method, net, header) of ``--model``, checked against the task and ``--scale`` before the frames are read;
    ``args.scale`` becomes the model's factor."""
    from ..checkpoint import load_model

    method, net, header = load_model(args.model)
    if method.batch_kind != "burst" or method.needs_clean:
        raise UserError(f"{args.model}: method {method.name!r} is not a self-supervised burst method")
    if raw != (method.name == "m2m"):
        raise UserError(f"{args.model}: a {method.name!r} model does not do --task {args.task}")
    from ._common import say_if_unfinished

    say_if_unfinished(args.model, header)
    model_scale = getattr(method, "scale", 1)
    if not raw and args.scale is not None and args.scale != model_scale:
        raise UserError(f"--scale {args.scale}: {args.model} super-resolves x{model_scale}; leave out --scale, "
                        f"or use a x{args.scale} model")
    args.scale = model_scale
    return method, net, header


def _match_channels(model: str, header: dict, frames: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """The frames in the model's channels and whether they were gray frames made RGB for a colour model (the
    result then goes back to gray); RGB frames for a gray model would lose their colour: a UserError."""
    want = int(header.get("channels") or header["net"]["kwargs"].get("in_channels", frames.shape[1]))
    have = frames.shape[1]
    if have == want:
        return frames, False
    if have == 1 and want == 3:
        return frames.repeat(1, 3, 1, 1), True
    raise UserError(f"{model} takes {want}-channel frames, these have {have}: use a model trained on "
                    f"{have}-channel bursts")


def check_adapt(method: "Method", frames: torch.Tensor) -> None:
    """``--adapt`` needs enough frames for the method's loss and frames larger than the border its loss leaves
    out (else the loss is the mean of nothing: NaN at the first step, or 0 for m2m, which trained on nothing);
    raw patches are cut in whole 4-px steps, so an m2m patch must hold more than its 2 px margins."""
    need = getattr(method, "min_training_frames", 2)
    if frames.shape[0] < need:
        raise UserError(f"--adapt with method {method.name!r} needs a burst of at least {need} frames "
                        f"({frames.shape[0]} given); give more frames, or leave out --adapt")
    border = max(int(getattr(method, "border", 0)), int(getattr(method, "loss_margin", 0)))
    side = max(2 * border + 1, 4)
    if getattr(method, "raw_bursts", False):  # raw training patches are cut in whole 4-px steps
        side = -(-side // 4) * 4
    height, width = frames.shape[-2:]
    if min(height, width) < side:
        raise UserError(f"--adapt with method {method.name!r} needs frames of at least {side}x{side} px (its loss "
                        f"leaves out a {border} px border); these are {height}x{width}: leave out --adapt")


def _learned(args, method, net, frames: torch.Tensor, affines: torch.Tensor, raw: bool) -> torch.Tensor:
    import torch

    from ..burst.sources import BurstFrames
    from ..train import TrainConfig, train

    if args.adapt > 0:
        source = BurstFrames(frames, raw=raw, registration=args.registration)
        patch = min(64, frames.shape[-2], frames.shape[-1])
        config = TrainConfig(steps=args.adapt, batch_size=4, patch_size=patch, lr=3e-4, amp=False, plot=False,
                             ckpt_every=args.adapt, interrupt_checkpoint=False, progress=not args.quiet,
                             extra={"label": "adapt"})
        with tempfile.TemporaryDirectory() as tmp:
            try:
                train(method, net, source, config, Path(tmp) / "adapted.safetensors")
            except UserError as exc:  # train's advice names fit's --lr, which burst does not have
                if "diverged" not in str(exc):
                    raise
                raise UserError(f"--adapt: {str(exc).split(';')[0]}; restore with fewer --adapt steps, "
                                f"or without --adapt") from None
    net.eval()
    with torch.no_grad():
        return method.restore(net, frames[None], affines=affines[None])[0].float()
