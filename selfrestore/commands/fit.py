"""``selfrestore fit``: train a restoration network from corrupted data alone."""
from __future__ import annotations

import argparse
import json
import math
import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from ..atomic_files import check_writable_place, remove_stale_temporaries
from ..errors import UserError
from ._common import add_parser, command_device, count, positive_float, positive_int, same_entry_finder, warn

if TYPE_CHECKING:
    import numpy as np
    from torch import Tensor, nn

    from ..corruption import Corruption
    from ..data.base import DataSource
    from ..data.images import PatchSource
    from ..methods.base import Method

DESCRIPTION = """\
Train a network on your corrupted images, without clean targets, and save it as one model file.

Where the data comes from:
  DATA...                 your noisy images (files or folders): for single-image methods (n2v, laine19, nb2nb)
  --pairs DIR_A DIR_B     two noisy shots of each scene, matched by file name: for n2n
  DATA... --synthetic     DATA are CLEAN images, corrupted once each by --noise with a fixed seed
                          (benchmarks, demos; the only way n2c, the supervised reference, can train)
  deblurring (deblur_l1, reblur): --pairs BLURRY_DIR SHARP_DIR, or SHARP... --synthetic [--kernels FILE]
  Some methods bring their own data options (listed in their group below).
"""

EPILOG = """\
examples:
  selfrestore fit my_noisy_photos/ --method laine19 --noise gauss25 -o photos.safetensors
  selfrestore fit --pairs shots_a/ shots_b/ --method n2n -o pairs.safetensors
  selfrestore fit clean/ --synthetic --noise gauss25 --method n2n --steps 5000 -o n2n.safetensors
  selfrestore fit my_noisy_photos/ --method laine19 --noise gauss5_50 --minutes 60 -o photos.safetensors
  selfrestore fit sharp/ --synthetic --kernels kernels.mat --method reblur -o deblur.safetensors
  selfrestore fit ... --resume        # continue an interrupted run from its last checkpoint
  selfrestore fit my_scans/ --method laine19 --noise gauss5_50 --init laine19-gauss5_50 -o scans.safetensors
  selfrestore fit stacks/*.tif --method n2v -o cells.safetensors  # microscope stacks, float counts: all fine
  selfrestore fit my_noisy_photos/ --holdout 0.1 -o photos.safetensors   # + loss on 10% held-out images
  selfrestore fit raw_bursts/ --method m2m -o m2m.safetensors   # a folder of burst folders (RGGB frames or
                                                                # raw files); then: selfrestore burst --model

Checkpoints are written atomically every --ckpt-every steps: after a crash or kill, --resume continues
and ends with exactly the weights of an uninterrupted run. Multi-process training: launch with
  torchrun --nproc_per_node 2 -m selfrestore.cli fit ...
"""

METHOD_GUIDE = (  # what each --method name is for, in groups (the choices alone were a list of 28 names)
    "From noisy data alone: nb2nb (= neighbor2neighbor), n2v (= noise2void) and laine19 for single noisy images; "
    "n2n for two noisy shots of each scene; selfir and selfir_r2r for blurry + noisy pairs; f2f and mf2f for "
    "video (selfrestore video fine-tunes them on one clip); m2m (demosaic + denoise) and dsa (super-resolution) "
    "for raw bursts. Deblurring with sharp targets: reblur (with the reblurring loss), deblur_l1. Supervised "
    "references for benchmarks, which need clean images (--synthetic): n2c, and for blurry + noisy pairs "
    "selfir_sup (= baseline_r: both shots in), deblur_sup (= baseline_b: the blurry shot in), denoise_sup "
    "(= baseline_n: the noisy shot in); trained by the benchmark scripts only: mf2c (video), m2m_supervised "
    "and dsa_supervised (bursts); diagnostics: deblur_noisy, nb2nb_noisy, selfir_sup_same, selfir_sup_sub.")
SUMMARY = "train a network on corrupted data (no clean targets)"  # its line in `selfrestore --help`


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `selfrestore fit` command to the CLI's subparsers."""
    from ..registry import METHODS

    p = add_parser(sub, "fit", SUMMARY, DESCRIPTION, EPILOG)
    p.add_argument("data", nargs="*", metavar="DATA", help="image files or folders")
    p.add_argument("-o", "--output", required=True, metavar="MODEL",
                   help="model file to write (.safetensors); beside it, NAME.training.png draws the loss curves "
                        "(and NAME.best.safetensors keeps the best weights with --holdout)")
    p.add_argument("--method", default=None, choices=METHODS.names(), metavar="METHOD",
                   help="self-supervision method; default: from the data given: n2n for --pairs or --synthetic, "
                        "selfir for --blurry/--noisy, nb2nb for noisy images alone (no noise model needed). "
                        + METHOD_GUIDE)
    p.add_argument("--noise", default=None, metavar="NOISE",
                   help="noise model, e.g. gauss25, gauss5_50, poisson30, impulse0.5 (needed by --synthetic "
                        "and by likelihood-based methods)")
    p.add_argument("--synthetic", action="store_true", default=None,
                   help="DATA are clean images: corrupt them with --noise, once with a fixed seed (deblurring, "
                        "--method reblur / deblur_l1: blurred anew for every patch)")
    p.add_argument("--redraw", action="store_true", default=None,
                   help="with --synthetic: draw fresh noise every batch (NOT single-realisation; label results; "
                        "not for deblurring, which always draws its blur anew)")
    p.add_argument("--pairs", nargs=2, metavar=("DIR_A", "DIR_B"), help="real noisy pairs matched by file name")
    p.add_argument("--val", nargs="+", metavar="CLEAN", help="clean images for validation PSNR (needs --noise)")
    p.add_argument("--holdout", type=float, default=None, metavar="FRACTION",
                   help="set this fraction of the training images aside (e.g. 0.1) and report the method's own "
                        "loss on them every --val-every (or --ckpt-every) steps: no clean images needed; if it "
                        "rises, the network is fitting the noise of the training images. The weights of its "
                        "lowest value are kept in OUT.best.safetensors (a file of this run: an existing one "
                        "is refused unless --resume)")
    p.add_argument("--net", default=None, help="network (default: the method's own)")
    p.add_argument("--width", type=positive_int, default=None, help="network width (feature maps)")
    p.add_argument("--depth", type=depth_value, default=None,
                   help=f"network depth (pooling levels / layers), 1 to {MAX_DEPTH}")
    p.add_argument("--channels", type=int, choices=[1, 3], default=None, help="1 gray, 3 colour (default: data)")
    p.add_argument("--init", metavar="MODEL", default=None,
                   help="start from the weights of a trained model file or shipped model (fine-tuning), e.g. "
                        "--init laine19-gauss25; its network must match this method's")
    t = p.add_argument_group("training")
    t.add_argument("--steps", type=positive_int, default=None,
                   help="training steps (default 2000; with --minutes: an optional cap)")
    t.add_argument("--minutes", type=positive_float, default=None, metavar="M",
                   help="train for M minutes of wall-clock time instead of a step count; the learning-rate "
                        "schedule follows the elapsed time, and --resume continues the same budget")
    t.add_argument("--batch-size", type=positive_int, default=None, help="patches per step (default 4)")
    t.add_argument("--patch-size", type=positive_int, default=None,
                   help="training patch side in pixels (default 128)")
    t.add_argument("--patch-sizes", default=None, metavar="S,S,...",
                   help="draw each step's patch side from these (e.g. 128,192,256; the batch shrinks to keep "
                        "--batch-size x --patch-size^2 pixels per step). 'auto' (default): mixed sides from "
                        "--patch-size to 1.5 times it for blind-spot nets, whose receptive field covers a whole "
                        "patch (trained on one size they can learn to lean on the patch borders and change "
                        "their output on whole images); one size for other nets. 'off': always --patch-size")
    t.add_argument("--lr", type=positive_float, default=None,
                   help="peak learning rate (default 3e-4; Adam; warm-up, then cosine decay)")
    t.add_argument("--ckpt-every", type=positive_int, default=None, help="checkpoint every N steps (default 100)")
    t.add_argument("--val-every", type=count, default=None,
                   help="validation every N steps (default 0: at the end)")
    t.add_argument("--seed", type=count, default=None,
                   help="seed of the initial weights, the patches and the noise (default 0)")
    t.add_argument("--resume", action="store_true",
                   help="continue from the checkpoint in -o, given the same DATA again; options left out take "
                        "the values it records, and one that changes the result (network, method, noise, seed, "
                        "lr, batch, patch sizes, data) is refused; --steps / --minutes may grow")
    t.add_argument("--precision", choices=["auto", "bf16", "fp32"], default=None,
                   help="bf16: bf16 autocast (fast where the hardware computes bf16: CUDA GPUs from Ampere on, "
                        "CPUs with AVX512-BF16 or AMX; 3-4x slower than fp32 on CPUs without); auto (default): "
                        "bf16 there, fp32 elsewhere; --resume keeps the precision the run started with")
    t.add_argument("--no-amp", action="store_true", help="the same as --precision fp32")
    t.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    # each method option once (as its first method declares it), under a heading naming every method taking it
    owners: dict[str, list[str]] = {}
    declared: dict[str, tuple[dict, bool]] = {}
    for name in METHODS.names():
        cls = METHODS.get(name)
        for key, kwargs in {**cls.cli_options, **cls.data_options}.items():
            owners.setdefault(key, []).append(name)
            declared.setdefault(key, (kwargs, key in cls.cli_options))
    groups: dict[tuple[str, ...], list[str]] = {}
    for key, names in owners.items():
        groups.setdefault(tuple(names), []).append(key)
    for names, keys in groups.items():
        g = p.add_argument_group(f"method{'s' if len(names) > 1 else ''} {', '.join(names)}")
        for key in keys:
            kwargs, method_option = declared[key]
            default = kwargs.get("default")
            if default is not None:  # left out: the method's own default, or on --resume the model file's
                # value (see resume_defaults); a data option's default is filled in by data_options_of, so that
                # one given with real pairs, which ignore it, is seen (refuse_ignored_data_options)
                kwargs = {**kwargs, "default": None, "help": f"{kwargs.get('help', '')} (default: {default})"}
            g.add_argument(f"--{key.replace('_', '-')}", dest=key, **kwargs)
    p.set_defaults(func=run)


def _matched_pairs(dir_a: str, dir_b: str, channels: int | None):
    """Two noisy shots per scene from two folders matched by file name; unmatched or differently sized
    files are skipped with a warning (the good pairs still train)."""
    from ..errors import ImageReadError
    from ..file_lists import match_by_name
    from ..io import read_image, to_channels
    from ..memory_check import check_fits_in_memory

    matched, only_a, only_b = match_by_name(dir_a, dir_b, ("first shots", "second shots"))
    for folder, other, unmatched in ((dir_a, dir_b, only_a), (dir_b, dir_a, only_b)):
        for name in unmatched:
            warn(f"skipped {Path(folder) / name}.*: no file of that name in {other}")
    check_fits_in_memory([path for pair in matched for path in pair], channels)
    pairs_a, pairs_b = [], []
    for path_a, path_b in matched:
        try:
            a, _ = read_image(path_a)
            b, _ = read_image(path_b)
        except ImageReadError as exc:  # as for single images: reported, and the other pairs train
            warn(f"skipped the pair {path_a} / {path_b}: {exc}")
            continue
        if a.shape[:2] != b.shape[:2]:
            warn(f"skipped {path_a}: size {a.shape[:2]} differs from {path_b} {b.shape[:2]}")
            continue
        if a.shape[2] != b.shape[2]:  # one shot gray, the other colour: both gray (a colour target for a
            a, b = to_channels(a, 1), to_channels(b, 1)  # repeated-gray input is no second shot of it)
        pairs_a.append(a)
        pairs_b.append(b)
    if not pairs_a:
        raise UserError(f"no pairs matched by file name between {dir_a} and {dir_b}")
    # one channel count for all (a gray scene among colour ones trains in colour, as single images do)
    wanted = channels or max(image.shape[2] for image in pairs_a + pairs_b)
    return [to_channels(a, wanted) for a in pairs_a], [to_channels(b, wanted) for b in pairs_b]


def build_source(args: argparse.Namespace, method: Method, noise: Corruption | None, dim: bool = True
                 ) -> PatchSource:
    """The data source the method needs, from the command-line options; float data far outside [0, 1] is
    mapped into it (``source.intensity`` says how), and (``dim``) data using under 1/4 of it. Clean images
    for ``--synthetic`` are corrupted on the [0, 1] scale: such data is refused there."""
    from ..intensity_map import intensity_mapping, mapped_data_line

    source = _build_source(args, method, noise)
    mapping = intensity_mapping(next(iter(source.fields.values())), seed=args.seed, dim=dim)
    if args.synthetic:  # clean images corrupted here: made in the [0, 1] convention
        if mapping:
            raise UserError(f"--synthetic adds noise on the [0, 1] scale of 8/16-bit images, but these clean "
                            f"images hold values from {mapping['offset']:.4g} to "
                            f"{mapping['offset'] + mapping['scale']:.4g} (0.1-99.9th percentile): scale them to "
                            "[0, 1] first, or train on the noisy data itself")
        return source
    if mapping:
        dark = nearly_black_under(next(iter(source.fields.values())), mapping)
        source.map_to_unit_range(mapping)
        if not args.quiet:
            print(mapped_data_line(mapping))
        if dark:
            warn(f"{dark} of the training images lie under 5% of that range (e.g. 8/16-bit images beside float "
                 "counts, or a much dimmer acquisition): one map for all, they train as nearly black; train on one "
                 "kind of data, or scale them alike first")
    return source


def nearly_black_under(images: Sequence[np.ndarray], mapping: dict[str, float]) -> int:
    """How many ``images`` have their 99.9th percentile under 5% of ``mapping``'s range (an audit: a 16-bit stack
    beside float counts of ~300 trained as nearly black under their one map)."""
    from ..intensity_map import sampled_percentiles

    return sum((sampled_percentiles(image, [99.9], 20000)[0] - mapping["offset"]) / mapping["scale"] < 0.05
               for image in images)


def _build_source(args, method, noise):
    from ..data.images import CorruptedImages, NoisyImages, PairedImages
    from ..data.images import load_images
    from ..io import to_channels

    if args.pairs:
        if method.batch_kind != "pair":
            raise UserError(f"--pairs gives pairs, but method {method.name} trains on {method.batch_kind!r} data")
        return PairedImages(*_matched_pairs(*args.pairs, args.channels))
    if not args.data:
        raise UserError("no training data: give image files/folders (or --pairs DIR_A DIR_B)")
    if method.batch_kind not in ("single", "pair"):  # (before the data is read)
        raise UserError(f"method {method.name} needs {_kind_needed(method)}")
    if method.needs_clean and not args.synthetic:
        raise UserError(f"method {method.name} trains on clean targets (a supervised reference): "
                        f"it needs clean DATA and --synthetic")
    copies = 1 + bool(args.synthetic) * (1 + (method.batch_kind == "pair"))  # clean + noisy (+ noisy2) at once
    images = load_images(args.data, args.channels, warn=warn, copies=copies, progress=not args.quiet)
    if args.channels is None:  # a mixed folder trains in colour
        channels = max(img.shape[2] for img in images)
        images = [to_channels(img, channels) for img in images]
    if args.synthetic:
        if noise is None:
            raise UserError("--synthetic needs --noise (e.g. --noise gauss25)")
        return CorruptedImages(images, noise, kind=method.batch_kind, seed=args.seed, redraw=args.redraw,
                               keep_clean=method.needs_clean)
    if method.batch_kind == "pair":
        raise UserError(f"method {method.name} needs two noisy shots per scene: use --pairs DIR_A DIR_B "
                        f"(or --synthetic with clean images)")
    return NoisyImages(images)


def _kind_needed(method: Method) -> str:
    """The data a method that `fit` cannot feed from image files needs, and where it is trained."""
    if method.batch_kind == "video_warp":
        return f"the frames of one video: selfrestore video CLIP -o OUT --method {method.name} fine-tunes it there"
    if method.batch_kind == "frames":
        return "clean video frames (a supervised reference, trained by benchmarks/video_mf2f.py)"
    return f"{method.batch_kind!r} data"


def init_from(net: nn.Module, model: str, method: Method | None = None, quiet: bool = False) -> None:
    """Copy the network weights of a trained or shipped model into ``net`` (same architecture), and into
    ``method``'s extra modules (reblur's M_R) those of the model's (:func:`init_extra_modules`)."""
    from ..checkpoint import load_net_state, read_checkpoint, resolve_model

    tensors, header = read_checkpoint(resolve_model(model))
    try:
        load_net_state(net, {k: v.float() for k, v in tensors.items()})
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise UserError(f"--init {model}: its network ({header.get('net', {}).get('name')} "
                        f"{header.get('net', {}).get('kwargs')}) does not match the one this method builds "
                        f"({first})") from None
    if method is not None:
        init_extra_modules(method, model, tensors, header, quiet)


def init_extra_modules(method: Method, model: str, tensors: dict[str, Tensor], header: dict, quiet: bool = False
                       ) -> None:
    """``fit --init`` of a method with extra modules (reblur's M_R): from a model of the same method whose extra
    modules have the shapes this run builds, load them (``method.load_extra_modules``: a reblur model refined
    went on with a fresh M_R, which had to catch up while the reblurring loss misled M_D); otherwise say that
    they start fresh."""
    modules = getattr(method, "extra_modules", lambda: {})()
    if not modules:
        return
    names = ", ".join(modules)
    saved = {k[len("extra."):]: v for k, v in tensors.items() if k.startswith("extra.")}
    wanted = {f"{name}.{key}": tuple(v.shape) for name, module in modules.items()
              for key, v in module.state_dict().items()}
    if header.get("method", {}).get("name") == method.name and hasattr(method, "load_extra_modules") \
            and {k: tuple(v.shape) for k, v in saved.items()} == wanted:
        method.load_extra_modules({k: v.float() for k, v in tensors.items()})
        if not quiet:
            print(f"--init {model}: its network and its {names} module loaded")
        return
    why = (f"a {header.get('method', {}).get('name')} model, without this method's {names} module"
           if header.get("method", {}).get("name") != method.name else f"its {names} module has other sizes")
    if not quiet:
        print(f"--init {model}: {why}; the {names} module starts fresh")


def validation_pairs(paths: Sequence[str], noise: Corruption, channels: int,
                     seed: int = 12345) -> list[tuple[Tensor, Tensor]]:
    """(noisy, clean) (1, C, H, W) pairs of the ``--val`` images, corrupted with a fixed seed per image so the
    validation PSNR compares across steps and runs."""
    from ..data.images import image_generator
    from ..data.images import load_images
    from ..io import to_tensor

    pairs = []
    for i, clean in enumerate(load_images(paths, channels, warn=warn)):
        x = to_tensor(clean)
        pairs.append((noise.sample(x, image_generator(seed, i)), x))
    return pairs


METHOD_REASONS = {"n2n": "two noisy shots of each scene", "selfir": "blurry + noisy pairs",
                  "nb2nb": "single noisy images; Neighbor2Neighbor needs no noise model and trained best of the "
                           "single-image methods per CPU minute in our Table 1"}


def default_method(args: argparse.Namespace) -> str:
    """The method for the data options given, when --method is left out."""
    if getattr(args, "blurry", None) or getattr(args, "noisy", None):
        return "selfir"
    if args.pairs or args.synthetic:
        return "n2n"
    return "nb2nb"


def model_path(output: str | os.PathLike) -> Path:
    """The model file ``-o`` names: ``.safetensors`` appended unless it is already the suffix."""
    out = Path(output)
    return out if out.suffix == ".safetensors" else Path(f"{out}.safetensors")


def check_output(args: argparse.Namespace) -> Path:
    """The model file ``-o`` names, checked before any work: not a folder, and neither it nor the files a run
    writes beside it (``NAME.best.safetensors``) already there unless --resume continues it."""
    from ..io import FITS_SUFFIXES, IMAGE_SUFFIXES
    from ..train import best_model_path

    out = model_path(args.output)
    image_suffixes = (set(IMAGE_SUFFIXES) | set(FITS_SUFFIXES)) - {".fit"}  # "model.fit": a plausible model name
    if Path(args.output).suffix.lower() in image_suffixes and not args.resume:
        raise UserError(f"-o {args.output}: an image file name; -o names the model file fit writes (e.g. "
                        f"{Path(args.output).with_suffix('.safetensors')}); `selfrestore restore` writes images")
    for path in dict.fromkeys((Path(args.output), out)):
        if path.is_dir():
            raise UserError(f"{path} is a folder: give -o a model file name (e.g. {path / 'model.safetensors'})")
    refuse_writing_over_inputs(args, out)
    if out.exists() and not args.resume:
        raise UserError(f"{out} exists: pass --resume to continue it, or choose another -o")
    check_writable_place(out)
    if args.resume and not out.exists():  # allowed (a job script can always pass --resume), but said
        warn(f"--resume: {out} does not exist yet; starting a new run")
    best = best_model_path(out)
    if not out.exists() and best.exists():  # a new run would replace the best weights of an earlier run (the
        # training plot beside it is only redrawn from the new run's history)
        raise UserError(f"{best} exists (from an earlier run of -o {out}): remove it, or choose another -o")
    return out


def input_items(args: argparse.Namespace) -> list[str]:
    """The files and folders ``fit`` reads images (or kernels) from: DATA, --pairs, --val and the methods' data
    options (--blurry, --noisy, --kernels)."""
    items = [*(args.data or []), *(args.pairs or []), *(args.val or [])]
    items += [getattr(args, key, None) for key in ("blurry", "noisy", "kernels")]
    return [str(item) for item in items if item]


def refuse_writing_over_inputs(args: argparse.Namespace, out: Path) -> None:
    """Before any work: a UserError when the model file, its loss plot (``NAME.training.png``) or its best weights
    would replace an input file (any spelling of its directory entry counts; a hard link is another entry, which
    the atomic write leaves whole). A plot inside a data folder is no image of it
    (:func:`selfrestore.file_lists.list_images` leaves loss plots out), so -o may lie there."""
    from ..file_lists import list_images
    from ..train import best_model_path, plot_path

    items = input_items(args)
    if not items:
        return
    written = [(out, "the model file"), (plot_path(out), "its loss plot"), (best_model_path(out), "its best weights")]
    inputs, _ = list_images(items)  # every image of the folders, and each file given (--kernels too)
    is_input = same_entry_finder(inputs)
    for path, what in written:
        if (source := is_input(path)) is not None:
            raise UserError(f"-o {args.output}: {what} {path} would overwrite the input {source}; choose another -o")


def refuse_foreign_options(args: argparse.Namespace, cls: type) -> None:
    """A UserError for an option of other methods given to this one, which would ignore it (an audit:
    ``fit noisy/ --noise gauss5_50 --noise-level unknown``, --method laine19 forgotten, trained nb2nb)."""
    from ..registry import METHODS

    own = set(cls.cli_options) | set(cls.data_options)
    for name in METHODS.names():
        other = METHODS.get(name)
        for key, kwargs in {**other.cli_options, **other.data_options}.items():
            value = getattr(args, key, None)
            unset = value is None or value is False or (key in other.data_options and value == kwargs.get("default"))
            if key in own or unset:
                continue
            takers = sorted({METHODS.get(n).name for n in METHODS.names() if key in METHODS.get(n).cli_options
                             or key in METHODS.get(n).data_options})  # each method once, not its aliases
            named = ", ".join(takers[:6]) + (f" and {len(takers) - 6} more" if len(takers) > 6 else "")
            raise UserError(f"--{key.replace('_', '-')} is an option of method{'s' if len(takers) > 1 else ''} "
                            f"{named}, not of {cls.name}, which would ignore it: choose the method with "
                            "--method, or leave the option out")


#: data options that shape synthetic pairs (blur kernels, the blurry shot's noise, the noisy shot's shift)
SYNTHETIC_PAIR_OPTIONS = ("kernels", "blur_noise", "misalign")


def real_pairs_option(args: argparse.Namespace) -> str | None:
    """The option that gives real pairs as training data ("--pairs" or "--blurry/--noisy"), or None."""
    if getattr(args, "pairs", None):
        return "--pairs"
    return "--blurry/--noisy" if getattr(args, "blurry", None) or getattr(args, "noisy", None) else None


def refuse_ignored_data_options(args: argparse.Namespace) -> None:
    """A UserError for data options that would be ignored yet recorded in the model file as if used: DATA with
    --pairs (or with --blurry / --noisy), --synthetic or an option shaping synthetic pairs (--kernels,
    --blur-noise, --misalign) with real pairs, --redraw without --synthetic."""
    real = real_pairs_option(args)
    if real and args.data:
        raise UserError(f"give DATA or {real}, not both: {real} gives the training data, DATA would be ignored")
    if real and args.synthetic:
        raise UserError(f"--synthetic corrupts clean DATA, but {real} gives real noisy data: leave one out")
    given = [f"--{key.replace('_', '-')}" for key in SYNTHETIC_PAIR_OPTIONS if getattr(args, key, None) is not None]
    if real and given:
        raise UserError(f"{' and '.join(given)} shape{'s' if len(given) == 1 else ''} the pairs made with "
                        f"--synthetic; the real pairs of {real} are trained as they are (leave "
                        f"{'it' if len(given) == 1 else 'them'} out)")
    if args.redraw and not args.synthetic:
        raise UserError("--redraw draws fresh noise for --synthetic data: it needs --synthetic (real noisy "
                        "images have only the noise they hold)")


#: what a network reads where that is not one image (N, C, H, W); a method takes the networks that read what
#: its own network (``default_net``) reads
NET_INPUTS = {"fastdvd": "stacks of 5 video frames", "multiframe": "stacks of 5 video frames",
              "dsa": "bursts with their registration", "demosaic": "raw RGGB mosaics"}
#: networks with a blind spot: a method whose own network has one relies on it (laine19's prior)
BLIND_SPOT_NETS = ("blindspot",)


def net_reads(name: str) -> str:
    """What network ``name`` reads (:data:`NET_INPUTS`; images for the others)."""
    return NET_INPUTS.get(name, "images")


def suited_nets(method: Method, channels: int = 3) -> list[str]:
    """The registered networks that suit ``method``: they read what its own network reads (a blind spot
    included) and build with the arguments it gives for ``channels`` image channels."""
    import torch

    from ..checkpoint import build_net
    from ..registry import NETS

    own = method.default_net
    names = [name for name in NETS.names() if net_reads(name) == net_reads(own)
             and (own not in BLIND_SPOT_NETS or name in BLIND_SPOT_NETS)]
    suited = []
    with torch.random.fork_rng(devices=[]):
        for name in names:
            try:
                build_net(name, **method.net_kwargs(channels))
            except (TypeError, ValueError):
                continue
            suited.append(name)
    return suited or [own]


def _takes_option(net_name: str, key: str) -> bool:
    """Whether network ``net_name`` takes ``--width`` / ``--depth`` (an int argument of that name)."""
    import inspect

    from ..registry import NETS

    try:
        param = inspect.signature(NETS.get(net_name)).parameters.get(key)
    except (TypeError, ValueError):  # no readable signature: let the constructor decide
        return True
    return param is not None and (param.default is inspect.Parameter.empty or isinstance(param.default, int))


def check_net(method: Method, net_name: str, args: argparse.Namespace) -> None:
    """Before the data is read: a UserError when ``--net`` does not suit the method (it reads other data, or
    the method needs a blind spot), or when --width / --depth does not apply to the network."""
    from ..registry import NETS

    NETS.get(net_name)  # an unknown name: a UserError listing the known ones
    own = method.default_net
    reason = None
    if net_reads(net_name) != net_reads(own):
        reason = f"{net_name} reads {net_reads(net_name)}; {method.name} trains on {net_reads(own)}"
    elif own in BLIND_SPOT_NETS and net_name not in BLIND_SPOT_NETS:
        reason = f"{method.name} needs a blind-spot network"
    if reason:
        raise UserError(f"--net {net_name} does not suit method {method.name} ({reason}): it takes --net "
                        f"{', '.join(suited_nets(method, args.channels or 3))}")
    for key in ("width", "depth"):
        if getattr(args, key) is not None and not _takes_option(net_name, key):
            suited = suited_nets(method, args.channels or 3)
            others = [name for name in suited if _takes_option(name, key)]
            also = f"; --{key} applies to {', '.join(others)}" if others else ""
            raise UserError(f"--{key} does not apply to network {net_name} (method {method.name} takes --net "
                            f"{', '.join(suited)}{also}): leave --{key} out")


#: the deepest network ``--depth`` builds (a DnCNN's layers; a U-Net's levels are bounded by :func:`check_depth`)
MAX_DEPTH = 100
#: the largest patch-side multiple a network may ask for: a U-Net of depth d takes sides that are multiples of 2**d
MAX_SIDE_MULTIPLE = 256


def depth_value(text: str) -> int:
    """argparse type of --depth: a whole number from 1 to :data:`MAX_DEPTH` (a huge one built a network for minutes
    or asked for patch sides in multiples of 2**50)."""
    value = positive_int(text)
    if value > MAX_DEPTH:
        raise argparse.ArgumentTypeError(f"{text}: the network depth goes from 1 to {MAX_DEPTH}")
    return value


def check_depth(depth: int | None, multiple: int, net_name: str) -> None:
    """A UserError naming the depths that suit when a given --depth makes the network take only patch sides that
    are multiples of more than :data:`MAX_SIDE_MULTIPLE` px (``fit --depth 50`` said "--patch-size must be a
    multiple of 1125899906842624"). Each level of such a network doubles the multiple."""
    if depth is None or multiple <= MAX_SIDE_MULTIPLE:
        return
    deepest = depth - math.ceil(math.log2(multiple / MAX_SIDE_MULTIPLE))
    raise UserError(f"--depth {depth}: too deep for network {net_name} (its patch sides would be multiples of "
                    f"{multiple} px); give --depth from 1 to {max(deepest, 1)}")


def refuse_patches_over_memory(batch_size: int, side: int, option: str, channels: int) -> None:
    """A UserError before training when a batch of ``side`` px patches (and the images mirror-padded to that
    side when smaller) would not fit in this machine's memory: ``--patch-size 100000`` asked numpy for 112 GB
    mid-way, a traceback."""
    from ..memory_check import refuse_over_memory

    refuse_over_memory(2 * batch_size * side**2 * channels * 4,
                       f"{option} {side}: a batch of {batch_size} patches of {side} x {side} px needs",
                       "give a smaller patch side (the default is 128) or --batch-size")


def refuse_no_noise(noise: object, given: str | None) -> None:
    """A UserError for a Gaussian noise model of level 0 (``gauss0``): a network trained on it is trained on clean
    pixels as their own "noisy" version, and its likelihood has no variance, as ``poisson0`` is refused. (``evaluate
    --noise gauss0`` keeps it: the scores of clean inputs, a baseline.)"""
    from ..corruption.noise import Gaussian

    if type(noise) is Gaussian and noise.high == 0:
        raise UserError(f"--noise {given}: a noise level of 0 adds no noise to train on; give a level above 0 "
                        "(e.g. gauss25)")


def build_checked_net(method: Method, net_name: str, kwargs: dict, channels: int) -> nn.Module:
    """``build_net`` with a network that does not build with the method's arguments (e.g. ``dual_unet``, which
    takes two inputs, for one image) turned into a UserError naming the networks the method takes."""
    from ..checkpoint import build_net

    try:
        return build_net(net_name, **kwargs)
    except (TypeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"--net {net_name} does not suit method {method.name} ({first}): it takes --net "
                        f"{', '.join(suited_nets(method, channels))}") from None


#: defaults of the options that decide a run's result: None in the parser (argparse cannot tell a default from
#: the same value given), so that on --resume an option left out takes the value the model file records
DEFAULTS = {"batch_size": 4, "patch_size": 128, "patch_sizes": "auto", "lr": 3e-4, "seed": 0, "holdout": 0.0,
            "synthetic": False, "redraw": False, "ckpt_every": 100, "val_every": 0}


def precision_of(args: argparse.Namespace) -> str:
    """The training precision asked for: --precision, --no-amp (fp32), or auto."""
    if args.no_amp and args.precision not in (None, "fp32"):
        raise UserError(f"--no-amp (fp32) contradicts --precision {args.precision}: give one of them")
    return "fp32" if args.no_amp else (args.precision or "auto")


def resume_defaults(args: argparse.Namespace, header: dict) -> None:
    """On --resume, the options left out (None) take the values the model file in -o was trained with (the
    options :func:`_settings` compares, plus the step / time budget, --val-every / --ckpt-every (with --holdout
    they decide which weights are kept as the best) and the precision); a --minutes budget for a
    run trained to a step count, or another --precision than the run's, is a UserError (the weights
    would follow a mixture of two runs); a damaged header is a UserError."""
    from ..checkpoint import check_training_header

    out = model_path(args.output)
    check_training_header(out, header)  # a hand-edited field: one line here, not a traceback in training
    config = header.get("train_config") or {}
    if args.minutes and not config.get("budget_seconds", 1):
        raise UserError(f"{out} was trained to a step count (--steps {config.get('steps')}), not for --minutes: "
                        f"resume without --minutes (a larger --steps trains it further), or choose another -o")
    if "amp" in config:  # the precision the run started with holds, unless one asked for is another
        recorded = "bf16" if config["amp"] else "fp32"
        asked = precision_of(args)
        if asked not in ("auto", recorded):
            raise UserError(f"{out} was trained in {recorded}, not {asked}: resume without --precision / "
                            f"--no-amp (or with --precision {recorded}), or choose another -o")
        args.precision, args.no_amp = recorded, False
    recorded = {label[2:].replace("-", "_"): value for label, value in _settings(header).items()
                if label.startswith("--")}
    if isinstance(recorded.get("patch_sizes"), list):  # the option's own form: S,S,... or off
        recorded["patch_sizes"] = ",".join(map(str, recorded["patch_sizes"])) or "off"
    if recorded.get("channels") not in (1, 3):
        recorded.pop("channels", None)
    recorded["steps"] = config.get("steps")
    planned, done, budget = config.get("steps"), int(header.get("step", 0)), config.get("budget_seconds") or 0
    if args.steps is not None and isinstance(planned, int) and args.steps < planned and not budget:
        raise UserError(f"{out} was planned for --steps {planned} (now at step {done}): a smaller --steps changes "
                        f"its learning-rate schedule mid-run; resume with --steps {planned} or more (or without "
                        f"--steps), or choose another -o")
    if args.minutes and budget and 60 * args.minutes < budget - 1e-6:  # the schedule follows the budget too
        raise UserError(f"{out} was planned for --minutes {budget / 60:g}: a smaller --minutes changes its "
                        f"learning-rate schedule mid-run; resume with --minutes {budget / 60:g} or more (or without "
                        f"--minutes), or choose another -o")
    recorded["val_every"], recorded["ckpt_every"] = config.get("val_every"), config.get("ckpt_every")
    recorded["minutes"] = config["budget_seconds"] / 60 if config.get("budget_seconds") else None
    # a data option at its default stays left out (data_options_of fills the default in): with real pairs it
    # would read as given (refuse_ignored_data_options)
    defaults = recorded_method_data_defaults(header)
    for key, value in recorded.items():  # not the data (DATA, --blurry ...): given again, refused if left out
        if key in vars(args) and getattr(args, key) is None and value is not None and not _is_path_option(key) \
                and not (key in defaults and value == defaults[key]):
            setattr(args, key, value)


def recorded_method_data_defaults(header: dict) -> dict[str, object]:
    """The declared defaults of the data options of the method a model file was trained with ({} for an
    unknown method)."""
    from ..registry import METHODS

    name = (header.get("method") or {}).get("name")
    if name not in METHODS.names():
        return {}
    return {key: kwargs.get("default") for key, kwargs in METHODS.get(name).data_options.items()}


def refuse_resume_without_data(args: argparse.Namespace, header: dict) -> None:
    """On --resume the data are given again (checked against the recorded ones, not read from the model file:
    a relative path there depends on the folder the first run started in); without them, a UserError that
    names what the run was trained on, instead of "no training data"."""
    if data_given(args):
        return
    paths = {label: value for label, value in _settings(header).items() if label in PATH_OPTIONS and value}
    recorded = " ".join([*map(str, header.get("data") or []), *(f"{label} {value}" for label, value in paths.items())])
    trained_on = f" (this run was trained on {recorded})" if recorded else ""
    raise UserError(f"--resume: give the training data again{trained_on}; the other options left out take the "
                    f"values {model_path(args.output)} records")


def already_finished(out: Path, header: dict, args: argparse.Namespace) -> bool:
    """On --resume: True (and said) when the run in ``out`` has already done its --steps or --minutes; a
    --steps below the step it is at is a UserError (its weights are past that)."""
    done = int(header.get("step", 0))
    if done > args.steps:
        raise UserError(f"{out} is already at step {done}, past --steps {args.steps}: give --steps above {done} "
                        f"to train it further, or choose another -o")
    spent = float(header.get("budget_spent", 0.0))
    if done == args.steps:
        where = f"step {done} of --steps {args.steps}"
    elif args.minutes and spent >= 60 * args.minutes:
        where = f"{spent / 60:.3g} of --minutes {args.minutes:g} spent, step {done}"
    else:
        return False
    warn(f"{out} is already finished ({where}): nothing to train; give a larger --steps or --minutes to train "
         f"it further")
    return True


def _settings(record: dict) -> dict[str, object]:
    """The options that decide a training result, by option name, from a model file's header (or a dict of
    the same layout); only those the record holds."""
    method, net, config = (record.get(k) or {} for k in ("method", "net", "train_config"))
    kwargs = net.get("kwargs") or {}

    def flag(key: str) -> str:
        return "--" + key.replace("_", "-")

    places = [("--method", method, "name"), ("--noise", method, "noise"), ("--net", net, "name"),
              ("--channels", record, "channels"), ("--synthetic", record, "synthetic"), ("--redraw", record, "redraw"),
              ("--holdout", record, "holdout")]
    places += [(flag(k), method, k) for k in method if k not in ("name", "noise")]
    data_options = record.get("data_options") or {}  # --blurry / --noisy / --kernels / --misalign ...
    places += [(flag(k), data_options, k) for k in data_options]
    places += [(flag(k) if k in ("width", "depth") else f"network {k}", kwargs, k) for k in kwargs]
    places += [(flag(k), config, k) for k in ("seed", "lr", "batch_size", "patch_size", "patch_sizes")]
    settings = {label: json.loads(json.dumps(where[key], default=str)) for label, where, key in places if key in where}
    if record.get("data"):
        settings["DATA"] = [str(d) for d in record["data"]]
    return settings


def _show(label: str, value: object) -> str:
    if isinstance(value, list):
        return (" " if label == "DATA" else ",").join(map(str, value)) or "off"
    if isinstance(value, bool) or value is None:
        return {True: "on", False: "off", None: "none"}[value]
    return str(value)


def _same(label: str, recorded: object, given: object) -> bool:
    from ..file_lists import resolved

    def one_path(a: str, b: str) -> bool:
        return a == b or resolved(a, loop_ok=True) == resolved(b, loop_ok=True)

    if label == "DATA" and isinstance(recorded, list) and isinstance(given, list) and len(recorded) == len(given):
        return all(one_path(a, b) for a, b in zip(recorded, given))
    if label in PATH_OPTIONS and isinstance(recorded, str) and isinstance(given, str):
        return one_path(recorded, given)
    return recorded == given


PATH_OPTIONS = ("--blurry", "--noisy", "--kernels")  #: data options naming files or folders (compared resolved)


def _is_path_option(key: str) -> bool:
    """Whether the argparse attribute ``key`` is one of :data:`PATH_OPTIONS`."""
    return "--" + key.replace("_", "-") in PATH_OPTIONS


def data_given(args: argparse.Namespace) -> bool:
    """Whether the command line gives training data (DATA, --pairs, --blurry / --noisy)."""
    return bool(args.data or args.pairs or getattr(args, "blurry", None) or getattr(args, "noisy", None))


def data_options_of(args: argparse.Namespace, cls: type) -> dict[str, object]:
    """The method's data options as given (paths as absolute paths), recorded in the model so that --resume refuses
    other data: an audit resumed a SelfIR run with its --blurry and --noisy folders swapped, or without the
    --misalign it started with, silently."""
    import json

    def recorded(key: str) -> object:  # a path as an absolute one: a resume from another folder compares it
        value = getattr(args, key, None)
        if _is_path_option(key) and isinstance(value, (str, os.PathLike)):
            from ..file_lists import resolved

            return str(resolved(value, loop_ok=True))
        return json.loads(json.dumps(value, default=str))

    return {key: cls.data_options[key].get("default") if getattr(args, key, None) is None else recorded(key)
            for key in cls.data_options}


def refuse_changes(out: Path, header: dict, current: dict) -> None:
    """On --resume: a UserError naming each option whose value differs from what ``out`` was trained with
    (network, method and its options, noise, seed, lr, batch, patch sizes, data): continuing would overwrite
    the model with a mixture of two runs (or fail to load its weights)."""
    recorded = {"--holdout": 0.0, **_settings(header)}  # a run without --holdout records none
    changes = [f"{label} {_show(label, recorded[label])}, not {_show(label, value)}"
               for label, value in _settings(current).items()
               if label in recorded and not _same(label, recorded[label], value)]
    if changes:
        relative = [label for label, value in _settings(current).items() if label in recorded
                    and (label in PATH_OPTIONS or label == "DATA") and not _same(label, recorded[label], value)
                    and any(not Path(str(p)).is_absolute() for p in (recorded[label] if isinstance(
                        recorded[label], list) else [recorded[label]]))]
        where = (f" (its {', '.join(relative)} {'was' if len(relative) == 1 else 'were'} recorded relative to the "
                 "folder the first run started in: resume from that folder)") if relative else ""
        raise UserError(f"{out} was trained with {'; '.join(changes)}{where}: resume with the same options, or "
                        f"choose another -o")


def warn_padded_patches(source: DataSource, patch_size: int, patch_sizes: Sequence[int], multiple: int,
                        automatic: bool = False) -> None:
    """Say so when every training image is smaller than the largest patch side: each patch is then partly a
    mirrored copy of the image, which the network learns as if it were data; the advice names the option that
    made the sides too large (--patch-size, or the --patch-sizes given or chosen automatically)."""
    fields = getattr(source, "fields", None)
    images = next(iter(fields.values()), None) if fields else None
    if not images:
        return
    largest = max(min(image.shape[:2]) for image in images)
    patch = max([patch_size, *patch_sizes])
    if largest >= patch:
        return
    fits = largest // multiple * multiple  # the largest patch side the network takes that the images hold
    sides = ",".join(map(str, patch_sizes))
    if fits < multiple:
        advice = (f"this network needs sides that are multiples of {multiple} px (a smaller --depth, where the "
                  "network takes one, lowers that)")
    elif largest >= patch_size:  # only the mixed sides are too large
        made = f"the automatic --patch-sizes {sides}" if automatic else f"--patch-sizes {sides}"
        advice = f"{made} go above them; --patch-sizes off trains on real pixels only"
    else:
        advice = f"--patch-size {fits}{' --patch-sizes off' if patch_sizes else ''} trains on real pixels only"
    warn(f"every training image is smaller than the {patch} px patches (shortest side at most {largest} px): "
         f"they are padded by mirroring; {advice}")


def run(args: argparse.Namespace) -> int:
    """Train a network on the data as the options say and save it to -o (continuing with --resume); returns 0,
    also when the run had already finished (a problem raises UserError)."""
    from ..checkpoint import read_checkpoint
    from ..corruption import parse_corruption
    from ..registry import METHODS
    from ..train import TrainConfig, amp_of, auto_patch_sizes, best_model_path, plot_path, train

    out = check_output(args)
    if int(os.environ.get("RANK", "0")) == 0:  # what a kill -9 during a checkpoint write left
        remove_stale_temporaries([out, best_model_path(out), plot_path(out)])
    header = read_checkpoint(out)[1] if args.resume and out.exists() else None
    ignored_kernels = None  # such a run's --kernels file, which its data fingerprint counted
    if header is not None and real_pairs_option(args) and header.get("data_options"):
        ignored_kernels = header["data_options"].get("kernels")
        # a model of real pairs made before such options were refused recorded those it ignored: not compared
        header = {**header, "data_options": {key: value for key, value in header["data_options"].items()
                                             if key not in SYNTHETIC_PAIR_OPTIONS}}
    if header is not None:
        resume_defaults(args, header)
    for key, value in DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.steps is None:
        args.steps = 10**9 if args.minutes else 2000
    refuse_ignored_data_options(args)
    command_device(args.device)  # a device that is not here: said in the command's words, before the data
    noise = parse_corruption(args.noise) if args.noise else None
    refuse_no_noise(noise, args.noise)
    if args.method is None:
        args.method = default_method(args)
        if not args.quiet and data_given(args):  # without data, the error about it comes alone
            warn(f"no --method given: {args.method} suits the data given ({METHOD_REASONS[args.method]})")
    cls = METHODS.get(args.method)
    try:  # a method checks its own options (ranges, combinations): a bad value is the user's to fix
        method = cls(noise=noise, **{k: getattr(args, k) for k in cls.cli_options if getattr(args, k) is not None})
    except ValueError as exc:
        raise UserError(f"--method {args.method}: {exc}") from None
    net_name = args.net or method.default_net
    if header is not None:  # what is known before the data is read; a finished run too (it was refused unsaid)
        data_options = data_options_of(args, cls)
        if not data_given(args):  # the paths are compared once given again (refuse_resume_without_data)
            data_options = {key: value for key, value in data_options.items() if not _is_path_option(key)}
        given = parse_patch_sizes(args.patch_sizes, 1, net_name, auto=None)  # None: auto, decided by the net
        given_sizes = None if given is None else list(given)  # as the model file records them
        refuse_changes(out, header, {
            "method": method.config(), "synthetic": args.synthetic, "redraw": args.redraw, "holdout": args.holdout,
            "net": {"name": net_name, "kwargs": {k: getattr(args, k) for k in ("width", "depth") if getattr(args, k)}},
            "train_config": {k: getattr(args, k) for k in ("seed", "lr", "batch_size", "patch_size")}
            | ({"patch_sizes": given_sizes} if given_sizes is not None else {}),
            **({"channels": args.channels} if args.channels else {}),
            **({"data": [str(d) for d in args.data or args.pairs]} if args.data or args.pairs else {}),
            "data_options": data_options})
    refuse_foreign_options(args, cls)  # after refuse_changes: --resume fills the recorded method's options
    if args.val and method.batch_kind not in ("single", "pair"):  # validation restores one noisy image
        raise UserError(f"--val: method {method.name} does not restore a single noisy image ({method.batch_kind} "
                        "data), so noisy copies of clean images cannot validate it; leave --val out")
    check_net(method, net_name, args)
    if header is not None and already_finished(out, header, args):
        if not size_check_pending(header, args.patch_size):
            return 0
        warn(f"{out}: the run was stopped before its size check; checking it now")  # restore reads the result
    if header is not None:
        refuse_resume_without_data(args, header)
    fingerprint = data_fingerprint(data_paths(args))
    recorded_print = (header or {}).get("data_fingerprint")
    if recorded_print and fingerprint and fingerprints_differ(recorded_print, fingerprint) and ignored_kernels:
        fingerprint = data_fingerprint([*data_paths(args), ignored_kernels])
    if recorded_print and fingerprint and fingerprints_differ(recorded_print, fingerprint):
        raise UserError(f"{out}: its training data changed since the run began ({recorded_print['files']} files "
                        f"then, {fingerprint['files']} now, or their names, sizes or contents differ): the resumed "
                        "run would train on other images; resume with the data as it was, or choose another -o")
    maps_dim = header is None or bool(header.get("maps_dim_data"))  # a run begun before: its data scale stays
    args.maps_dim_data = maps_dim  # for the methods' own sources (make_source)
    # the methods' own sources (blurry + noisy pairs, bursts since stop 38; deblurring pairs since the deblur audit)
    # map float counts and dim data: not in a run begun before (its data scale stays), and `restore` / `burst` map
    # only for models that record it
    args.maps_method_data = header is None or bool(header.get("maps_method_data"))
    args.resumed_run = header is not None  # (options refused for new runs may be recorded by an older one)
    source = method.make_source(args, noise)
    if source is None:
        source = build_source(args, method, noise, dim=maps_dim)
    noise_check = check_noise_independence(method, source, args)  # again on --resume: it goes in the header
    net_kwargs = method.net_kwargs(source.channels)
    for key in ("width", "depth"):
        if getattr(args, key) is not None:
            net_kwargs[key] = getattr(args, key)
    import torch

    torch.manual_seed(args.seed)  # the initial weights are part of what --seed reproduces
    net = build_checked_net(method, net_name, net_kwargs, source.channels)
    if args.init and header is None:
        init_from(net, args.init, method, quiet=args.quiet)
    multiple = method.patch_side_multiple(net)
    check_depth(args.depth, multiple, net_name)
    if args.patch_size % multiple:
        raise UserError(f"--patch-size must be a multiple of {multiple} for method {method.name} with network "
                        f"{net_name}")
    patch_sizes = parse_patch_sizes(args.patch_sizes, multiple, net_name,
                                    auto=auto_patch_sizes(net, args.patch_size, multiple=multiple))
    if header is not None:
        refuse_changes(out, header, {"net": {"name": net_name, "kwargs": net_kwargs}, "channels": source.channels,
                                     "train_config": {"patch_sizes": patch_sizes}})
    side = max([args.patch_size, *patch_sizes])
    refuse_patches_over_memory(args.batch_size, side, "--patch-size" if side == args.patch_size else "--patch-sizes",
                               source.channels)
    warn_padded_patches(source, args.patch_size, patch_sizes, multiple,
                        automatic=(args.patch_sizes or "").strip().lower() == "auto")
    config = TrainConfig(steps=args.steps, batch_size=args.batch_size, patch_size=args.patch_size, lr=args.lr,
                         patch_sizes=patch_sizes,
                         ckpt_every=args.ckpt_every, val_every=args.val_every, seed=args.seed,
                         amp=amp_of(precision_of(args)),
                         device=args.device, progress=not args.quiet, resume=args.resume,
                         budget_seconds=60.0 * args.minutes if args.minutes else 0.0)
    source, holdout = hold_out(source, args)
    val = validation_pairs(args.val, noise, source.channels) if args.val and noise else None
    if args.val and not noise:
        warn("--val ignored: it needs --noise to corrupt the clean validation images")
    from ..file_lists import resolved

    data = [str(resolved(d, loop_ok=True)) for d in (args.data or args.pairs or [])]  # a looping one: as given
    meta = {"data": data, "synthetic": args.synthetic,
            "redraw": args.redraw, **({"init": str(args.init)} if args.init else {}),
            **({"intensity": source.intensity} if getattr(source, "intensity", None) else {}),
            **({"data_options": data_options_of(args, cls)} if cls.data_options else {}),
            **({"maps_dim_data": True} if maps_dim else {}),  # restore maps dim images as fit maps training data
            **({"maps_method_data": True} if args.maps_method_data and method.maps_own_data else {}),
            **({"noise_check": noise_check} if noise_check else {}),
            **({"data_fingerprint": fingerprint} if fingerprint else {}),  # --resume compares it
            **({"holdout": args.holdout} if args.holdout else {})}  # as given, even where ignored: resume compares it
    train(method, net, source, config, out, val_pairs=val, meta=meta, holdout=holdout)
    if holdout and not args.quiet and int(os.environ.get("RANK", "0")) == 0:
        report_holdout(out)
    if int(os.environ.get("RANK", "0")) == 0:
        check_size_dependence(method, net, source, out, args.patch_size, quiet=args.quiet, sides=patch_sizes)
    if not args.quiet:
        print(f"saved {out}")
        model = shlex.quote(str(out))  # pasted into a shell: a name with a space stays one argument
        if method.batch_kind == "blurry_noisy":
            print(f"next: selfrestore restore --blurry B --noisy N --model {model} -o restored/")
        elif method.batch_kind == "burst":
            task = "demosaic" if getattr(method, "raw_bursts", False) else "superres"
            print(f"next: selfrestore burst FRAMES/ --task {task} --model {model} -o OUTPUT.tif")
        elif method.batch_kind in ("single", "pair", "blurry"):
            what = "BLURRY_IMAGES" if method.batch_kind == "blurry" else "NOISY_IMAGES"
            print(f"next: selfrestore restore {what} --model {model} -o restored/")
    return 0


def data_paths(args: argparse.Namespace) -> list[str]:
    """The files and folders the training data comes from: DATA, --pairs and the methods' path options."""
    return [*map(str, args.data or []), *map(str, args.pairs or []),
            *(str(getattr(args, key)) for key in ("blurry", "noisy", "kernels") if getattr(args, key, None))]


def data_fingerprint(paths: Sequence[str | os.PathLike]) -> dict[str, object] | None:
    """{files, sha1} of the data files under ``paths`` (their relative names and sizes; hidden files and fit's
    own outputs left out): recorded by ``fit`` so that ``--resume`` refuses a folder whose images changed (the
    paths alone matched: a resumed run trained on other images silently). None when there are no paths."""
    import hashlib

    from ..burst.frames_io import RAW_SUFFIXES
    from ..file_lists import is_loss_plot
    from ..io import FITS_SUFFIXES, IMAGE_SUFFIXES, compressed_fits_name

    if not paths:
        return None
    suffixes = {*IMAGE_SUFFIXES, *FITS_SUFFIXES, *RAW_SUFFIXES, ".mat", ".npy", ".npz"}
    entries = []
    content = hashlib.sha1()
    try:
        for number, given in enumerate(paths):  # by position: the same data given by another path still matches
            root = Path(given)
            files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
            for path in files:
                relative = path.relative_to(root) if root.is_dir() else Path(path.name)
                if (path.suffix.lower() in suffixes or compressed_fits_name(path.name)) \
                        and not any(part.startswith(".") for part in relative.parts) and not is_loss_plot(path):
                    entries.append(f"{number}|{relative.as_posix()}|{path.stat().st_size}")
                    try:
                        content.update(_content_sample(path))
                    except OSError:  # unreadable (permissions): its reader says so; names and sizes still count
                        content.update(b"unreadable")
    except OSError:  # a folder that cannot be listed, a file gone meanwhile: the data's readers say what is wrong
        return None
    return {"files": len(entries), "sha1": hashlib.sha1("\n".join(entries).encode()).hexdigest(),
            "content": content.hexdigest()}


CONTENT_SAMPLE = 4096  #: bytes read at the start, middle and end of each data file for the data fingerprint


def _content_sample(path: Path) -> bytes:
    """Three ``CONTENT_SAMPLE``-byte pieces of the file (start, middle, end): an uncompressed TIFF rewritten with
    other pixels keeps its name and size, and only its content tells (an audit resumed on changed data)."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        pieces = []
        for start in (0, max(size // 2 - CONTENT_SAMPLE // 2, 0), max(size - CONTENT_SAMPLE, 0)):
            handle.seek(start)
            pieces.append(handle.read(CONTENT_SAMPLE))
    return b"".join(pieces)


def fingerprints_differ(recorded: dict, now: dict) -> bool:
    """Whether two :func:`data_fingerprint` records differ: in files, names or sizes, or in content where both
    record it (a model begun before contents were sampled is compared by names and sizes only)."""
    keys = ("files", "sha1") + (("content",) if "content" in recorded and "content" in now else ())
    return any(recorded.get(key) != now.get(key) for key in keys)


def hold_out(source: DataSource, args: argparse.Namespace) -> tuple[DataSource, list[dict] | None]:
    """(training source, fixed held-out batches or None) for ``--holdout``."""
    from ..data.images import split_holdout
    from ..train import holdout_batches

    if not args.holdout:
        return source, None
    if not 0 < args.holdout < 1:
        raise UserError(f"--holdout {args.holdout:g}: give a fraction of the images, between 0 and 1 (e.g. 0.1)")
    split = split_holdout(source, args.holdout, seed=args.seed)
    if split is None:
        warn(holdout_ignored(source))
        return source, None
    training, held = split
    if not args.quiet:
        print(f"holding out {len(held)} of {len(training) + len(held)} images to measure the loss on images the "
              "network does not train on")
    return training, holdout_batches(held, args.batch_size, args.patch_size)


def holdout_ignored(source: DataSource) -> str:
    """Why ``--holdout`` is ignored for ``source``: a data source that is not a list of images (deblurring pairs,
    bursts, video) cannot hold images out at all (its warning blamed too few images); a list of one image can."""
    from ..data.images import PatchSource

    if not isinstance(source, PatchSource):
        return (f"--holdout ignored: holding images out is not supported for this method's training data "
                f"({getattr(source, 'kind', 'its')!r} data); it works on lists of noisy images or pairs")
    return "--holdout ignored: it needs a folder of at least 2 images"


def report_holdout(out: Path) -> None:
    """Say how the held-out loss went, and warn when it ended above its lowest value (over-fitting)."""
    from ..checkpoint import read_checkpoint
    from ..train import best_model_path

    points = [(h["step"], h["holdout_loss"]) for h in read_checkpoint(out)[1].get("history", [])
              if "holdout_loss" in h]
    if not points:
        return
    (first_step, first), (last_step, last) = points[0], points[-1]
    best_step, best = min(points, key=lambda p: p[1])
    print(f"held-out loss: {first:.5g} at step {first_step} -> {last:.5g} at step {last_step} (lowest {best:.5g} "
          f"at step {best_step})")
    if best_step != last_step and last - best > 0.1 * max(first - best, 0.0) and last > best:
        warn(f"the held-out loss rose after step {best_step}: the network has started to fit the noise of its "
             f"training images; the weights of step {best_step} are in {best_model_path(out)} (or train about "
             f"{best_step} steps, or on more images)")


def check_noise_independence(method: Method, source: DataSource, args: argparse.Namespace) -> dict | None:
    """For methods that need independent noise per pixel, measure on (up to 16 of) the real noisy images
    how much the noise of neighbours is correlated (``selfrestore.noise_check``), warn above the limit, and
    return the record that goes into the model file."""
    if not method.needs_independent_noise or args.synthetic:
        return None
    images = getattr(source, "fields", {}).get("noisy")
    if not images:
        return None
    from ..noise_check import INDEPENDENT_DATA_ADVICE, check_images

    record, warning = check_images(images, method.name)
    if not warning and (subsampled := subsampled_jpegs(args)):
        more = ", ..." if len(subsampled) > 1 else ""
        warning = (f"{len(subsampled)} of the training images ({subsampled[0]}{more}) "
                   f"are JPEGs with chroma subsampling (4:2:0 or 4:2:2, as most cameras write): their colour noise "
                   f"is spread over neighbouring pixels, which the measured correlation (of the channels' mean) "
                   f"does not show, and {method.name} assumes independent noise per pixel; it will keep much of "
                   "the colour noise. " + INDEPENDENT_DATA_ADVICE)
    if warning:
        warn(warning)
    elif record and not args.quiet:
        print(f"noise check: neighbour correlation {record['neighbour_correlation']:.3f} (independent enough for "
              f"{method.name}; limit {record['limit']})")
    return record


def subsampled_jpegs(args: argparse.Namespace) -> list[Path]:
    """The colour JPEGs with chroma subsampling among the training files (:func:`selfrestore.io.
    chroma_subsampled_jpeg`: only their headers are read)."""
    from ..file_lists import list_images
    from ..io import chroma_subsampled_jpeg

    paths, _ = list_images([*map(str, args.data or []), *map(str, args.pairs or [])])
    return [path for path in paths if chroma_subsampled_jpeg(path)]


def size_check_pending(header: dict, side: int) -> bool:
    """A finished model file without the size check that :func:`check_size_dependence` would have recorded
    (the run was stopped between its last step and the check)."""
    from ..checkpoint import build_net
    from ..registry import METHODS
    from ..size_check import MARGIN

    if "size_check" in header or side <= 2 * MARGIN:
        return False
    try:
        kind = METHODS.get(header["method"]["name"]).batch_kind
        net = build_net(header["net"]["name"], **header["net"]["kwargs"])
    except (KeyError, TypeError, ValueError, UserError):  # a damaged header: the training part says so
        return False
    return kind in ("single", "pair") and getattr(net, "receptive_field", 0) > MARGIN


def check_size_dependence(method: Method, net: nn.Module, source: DataSource, out: Path, side: int,
                          quiet: bool = False, sides: Sequence[int] = ()) -> None:
    """Check that the trained network does not restore whole images worse than training-size crops
    (``selfrestore.size_check``; ``side``: the --patch-size, ``sides``: the mixed sizes it trained on, if
    any); the result goes into the model file, which ``restore`` reads."""
    from ..checkpoint import update_header
    from ..size_check import (DRIFT_LIMIT, MARGIN, check_applies, check_training_result, drift_warning,
                              fitting_side, smallest_side)

    if not check_applies(source, net):
        return
    multiple = method.patch_side_multiple(net)
    trained_side, side = side, fitting_side(source, side, multiple)
    if side < trained_side and side <= 2 * MARGIN:  # recorded, so that a rerun does not take it for pending
        smallest = 2 * smallest_side(multiple)
        reason = (f"no training image holds a {2 * trained_side} px patch" + (
            f", nor one of {smallest} px, the smallest the check can use with this network"
            if smallest != 2 * trained_side else " (the smallest the check can use with this network)"))
        update_header(out, size_check={"skipped": reason})
        if not quiet:
            print(f"size check skipped: {reason}")
        return
    drift = check_training_result(method, net, source, side)
    if drift is None:
        return
    record = {"drift": round(drift, 4), "side": side, "limit": DRIFT_LIMIT}
    update_header(out, size_check=record | ({"trained_side": trained_side} if side != trained_side else {}))
    if drift > DRIFT_LIMIT:
        warn(drift_warning(drift, trained_side, sides=sides))
    elif not quiet:
        print(f"size check passed: a {side} px crop is restored the same alone and inside a {2 * side} px one "
              f"(drift {drift:.3f} < {DRIFT_LIMIT})")


def parse_patch_sizes(text: str | None, multiple: int, net_name: str,
                      auto: tuple[int, ...] | None = ()) -> tuple[int, ...] | None:
    """``"128,192,256"`` -> (128, 192, 256), each a positive multiple of the net's size multiple;
    ``"auto"`` -> ``auto``; ``"off"`` or empty -> () (one size)."""
    text = (text or "").strip().lower()
    if text == "auto":
        return auto
    if text in ("", "off", "none"):
        return ()
    try:
        sizes = tuple(int(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        raise UserError(f"--patch-sizes: expected 'auto', 'off' or integers separated by commas, e.g. "
                        f"128,192,256, not {text!r}")
    bad = [v for v in sizes if v < 1 or v % multiple]
    if not sizes or bad:
        raise UserError(f"--patch-sizes: each size must be a positive multiple of {multiple} for network "
                        f"{net_name} (got {text!r})")
    return sizes
