"""``selfrestore restore``: restore images with a trained or shipped model."""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from ..atomic_files import check_writable_place, remove_stale_temporaries
from ..errors import ImageReadError, ImageRefused, UserError
from ..shipped_defaults import DEFAULT_MODEL
from ._common import (add_parser, add_runtime_options, command_device, count, same_entry_finder, say_if_depth_lost,
                      say_if_unfinished, warn)

if TYPE_CHECKING:
    import numpy as np

    from ..io import ImageInfo
    from ..restore import Restorer

DESCRIPTION = """\
Restore images (files or folders) with a model file from `selfrestore fit` or a shipped model
(`selfrestore models`). Outputs keep the input's name, sub-folders, bit depth (8/16-bit, float TIFF;
int16, int32, float64 ... TIFF / FITS in their own type, a stack too large for memory too), gray/colour and
alpha channel; a multi-page TIFF stack (z, time, channels) is restored plane by plane and written back with
the same axes. A file that cannot be read is reported and skipped; the others are still
restored, and the exit code is 1 if anything failed.
"""

EPILOG = """\
examples:
  selfrestore restore photo.png --model my.safetensors -o restored/
  selfrestore restore photo.png -o restored/            # the shipped default model (Gaussian noise, any level)
  selfrestore restore photo.jpg --model unet-gauss25 -o photo_clean.png     # one input: a file name works too
  selfrestore restore scans/ --model laine19-gauss25 -o clean_scans/ --uncertainty
  selfrestore restore img.tif --model my.safetensors -o out/ --adapt 200   # fine-tune on the inputs first
  selfrestore restore shoot/ --model my.safetensors -o out/ --skip-existing  # finish an interrupted batch
  selfrestore restore dim/ --model laine19-gauss5_50 --noise-sigma 12 -o out/  # tell a range model the level
  selfrestore restore cells/ --noise-pg 0.004 0.02 -o out/  # shot + read noise (from `selfrestore inspect`)
  selfrestore restore --blurry long.png --noisy short.png --model selfir.safetensors -o out/  # blurry+noisy pair
  selfrestore restore --blurry long/ --noisy short/ --model selfir.safetensors -o out/  # folders, matched by name
"""



SUMMARY = "restore images with a model"  # its line in `selfrestore --help`


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `selfrestore restore` command to the CLI's subparsers."""
    p = add_parser(sub, "restore", SUMMARY, DESCRIPTION, EPILOG)
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="image files or folders")
    p.add_argument("--model", default=None,
                   help=f"model file from `selfrestore fit`, or the name of a shipped model (`selfrestore models`); "
                        f"default: {DEFAULT_MODEL}, for Gaussian noise of std 5-50 (0-255 scale) whose level is "
                        f"estimated per image: a start, but a model fitted on your own data does better")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="folder for the restored images (names and sub-folders kept; a folder INPUT keeps its "
                        "own name too: photos/ -o out/ writes out/photos/...), or, for one input, an "
                        "image file name (its suffix picks the format: out.png, out.tif ...)")
    p.add_argument("--uncertainty", action="store_true",
                   help="also write NAME.std.tif (NAME.std.fits, with the header, for a FITS output): the per-pixel "
                        "posterior standard deviation, float32 in the "
                        "data's units (levels of an 8 / 16-bit file) (Bayesian models; "
                        "with --noise-pg mapped back to the data's scale to first order). Measured for the default "
                        "model on Kodak crops at sigma 10-50: median |error| / std 0.94-1.02 times a Gaussian's, "
                        "about 0.1%% of the errors beyond 4 std (benchmarks/results/uncertainty_calibration.md)")
    p.add_argument("--adapt", type=count, default=0, metavar="N",
                   help="first fine-tune the model on the input images themselves for N steps "
                        "(self-supervised methods for which this is sound). A deblurring model (reblur, deblur_l1): "
                        "N alternations of the reblurring adaptation, with the setting validated for reblur models "
                        "in benchmarks/results/reblur_table.md (lr(M_D) 1e-5, lr(M_R) 1e-5, anchor weight 1), "
                        "measured there with N = 20 only (--adapt 20); a deblur_l1 model has no reblurring module: "
                        "one is first fitted for 50 steps, at lr(M_R) 1e-4 (not measured on a table); "
                        "one adaptation runs over all the inputs of the call together, so each result depends on "
                        "the whole set given")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--skip-existing", action="store_true",
                   help="leave inputs whose output exists alone (rerun an interrupted batch to finish it)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-image lines (errors still shown)")
    p.add_argument("--clipping", choices=("auto", "off"), default="auto",
                   help="an 8-bit photo stores noisy values past black and white as 0 / 255, so a denoiser leaves "
                        "dark areas too bright and bright ones too dark. auto (default): where values sit on "
                        "those ends, undo that bias for the noise level measured on the image (or --noise-sigma, for "
                        "laine19 models) "
                        "(Foi 2009; a TIFF stack: once for all its time points and z-slices); for models of "
                        "Gaussian noise (laine19; n2n, n2v, nb2nb, n2c fitted with --noise gaussN), not for a model "
                        "fitted without --noise (its noise is unknown) or --noise-pg. off: the network's output "
                        "as it is")
    pair = p.add_argument_group("blurry + noisy pairs (selfir models; replace INPUT)")
    pair.add_argument("--blurry", metavar="B", help="blurry long exposure: an image file, or a folder matched by "
                                                    "file name with --noisy")
    pair.add_argument("--noisy", metavar="N", help="noisy short exposure of the same scene: a file, or a folder")
    n = p.add_argument_group("noise level of the inputs (Bayesian Laine19 models; default: the level the model was "
                             "trained for, or, for a model trained on a range such as laine19-gauss5_50 or with an "
                             "estimated level, each image's maximum-likelihood level)")
    n.add_argument("--noise-sigma", type=float, metavar="S", help="Gaussian noise std on the 0-255 scale")
    n.add_argument("--noise-lambda", type=float, metavar="L", help="Poisson photon count at white (lambda)")
    n.add_argument("--noise-alpha", type=float, metavar="A", help="impulse noise: fraction of replaced pixels")
    n.add_argument("--noise-pg", type=float, nargs=2, metavar=("A", "B"),
                   help="Poisson-Gaussian (shot + read) noise, variance A x + B^2 on the 0-1 scale of 8/16-bit "
                        "images (float data: in its own units; `selfrestore inspect` reports it as pgA_B): "
                        "restored with a Gaussian model that takes the noise level (a laine19 model: default "
                        "laine19-gauss5_50) through the generalised "
                        "Anscombe transform")
    add_runtime_options(p)
    p.set_defaults(func=run)


def output_file(output: str, count: int, folder_ok: bool = True) -> Path | None:
    """``-o NAME.png`` (an image suffix, not an existing folder): the one output file; None: ``-o`` is a
    folder. A file name for several inputs is a UserError, and so is, for one input, a suffix that is no
    image format (``-o out.txt`` would make a folder ``out.txt/``) unless a folder is clearly meant: an
    existing one, a trailing ``/``, or no suffix. ``folder_ok``: whether the message offers a folder."""
    from ..io import IMAGE_SUFFIXES

    out = Path(output)
    if out.is_dir() or output.endswith(("/", os.sep)) or not out.suffix:
        return None
    if out.suffix.lower() not in IMAGE_SUFFIXES:
        if count == 1:  # several inputs can only go to a folder: the name is meant as one
            raise UserError(f"-o {out}: {out.suffix!r} is not an image format ({', '.join(IMAGE_SUFFIXES)}); "
                            f"give an image file name{', or a folder ending in /' if folder_ok else ''}")
        return None
    if count != 1:
        raise UserError(f"-o {out}: an image file name takes exactly one input ({count} given); give a folder "
                        "for several")
    return out


def _outputs(paths: list[Path], args: argparse.Namespace, single: Path | None) -> dict[Path, list[Path]]:
    """The files each input is restored into (its image, and NAME.std.tif with --uncertainty); a UserError,
    before any work, naming both when two inputs would be written to the same file (``x/a.png y/a.png``, or
    ``a.png`` and ``a.tif`` with --uncertainty): one result would be lost."""
    outputs: dict[Path, list[Path]] = {}
    claimed: dict[Path, Path] = {}
    for path in paths:
        target = single or _output_path(path, args.inputs, Path(args.output))
        outputs[path] = [target] + ([std_path(target)] if args.uncertainty else [])
        for out in outputs[path]:
            other = claimed.setdefault(out.resolve(), path)
            if other != path:
                raise UserError(f"{other} and {path} would both be written to {out}; restore them in separate "
                                f"runs or into different folders")
    return outputs


def _output_path(path: Path, inputs: list[str], outdir: Path) -> Path:
    from ..io import uncompressed_fits_name

    for item in inputs:
        root = Path(item)
        if root.is_dir():
            try:
                relative = path.relative_to(root)
                return outdir / root.name / relative.with_name(uncompressed_fits_name(relative.name))
            except ValueError:
                continue
    return outdir / uncompressed_fits_name(path.name)


def adapt_model(restorer: Restorer, images: Sequence[np.ndarray], steps: int, quiet: bool = False,
                maps: Sequence | None = None) -> None:
    """Fine-tune the restorer's network on the images to restore (test-time training), each on the scale it
    is then restored on (``maps``: from :meth:`~selfrestore.restore.Restorer.stack_mappings`; without them,
    each image's own)."""
    method = restorer.method
    if maps is None:
        maps = [restorer.mapping_for(img) for img in images]
    images = [restorer.model_input(img, mapping) for img, mapping in zip(images, maps)]  # a gray image: its view
    custom = getattr(method, "adapt", None)
    if custom is not None:
        custom(restorer.net, images, steps, progress=not quiet)
        return
    if not method.supports_adaptation:
        raise UserError(f"--adapt is not sound for method {method.name!r}: "
                        + ("it needs clean targets" if method.needs_clean else
                           f"it trains on {method.batch_kind!r} data, not on single images"))
    import tempfile

    from ..data.images import NoisyImages
    from ..size_check import DRIFT_LIMIT, check_training_result, drift_warning, fitting_side
    from ..train import TrainConfig, auto_patch_sizes, train

    if method.needs_independent_noise:
        from ..noise_check import check_images

        warning = check_images(images, method.name)[1]
        if warning:
            warn(f"--adapt: {warning}")
    source = NoisyImages(images)
    smallest = min(min(img.shape[:2]) for img in images)
    m = method.patch_side_multiple(restorer.net)
    patch = max(m, min(128, smallest) // m * m)
    config = TrainConfig(steps=steps, batch_size=4, patch_size=patch, lr=1e-4, warmup=0.0, ckpt_every=10**9,
                         patch_sizes=auto_patch_sizes(restorer.net, patch, largest=smallest),
                         device=str(restorer.device), progress=not quiet, plot=False,
                         interrupt_checkpoint=False)
    with tempfile.TemporaryDirectory() as tmp:
        train(method, restorer.net, source, config, Path(tmp) / "adapt.safetensors")
    restorer.net.eval()
    side = fitting_side(source, patch, m)
    drift = check_training_result(method, restorer.net, source, side)
    if drift is not None and drift > DRIFT_LIMIT:
        warn(drift_warning(drift, patch, advice="Restore without --adapt, or with fewer steps"))


def clipping_said(restorer: Restorer) -> str:
    """What the per-image line says of the clipped-noise correction of the image just restored ("" if none)."""
    if restorer.last_clipping is None:
        return ""
    sigma, low, high = restorer.last_clipping
    ends = " and ".join(end for end, on in (("black", low), ("white", high)) if on)
    level = "--noise-sigma" if "sigma" in restorer.noise_params else f"the level measured, {255 * sigma:.1f}/255"
    return f"; noise clipped at {ends}: bias undone for {level}"


def noise_mismatch(restorer: Restorer, image: np.ndarray, alpha: np.ndarray | None, path: Path,
                   subsampled_jpeg: bool = False) -> str | None:
    """A warning when a model trained for one Gaussian noise level meets an image whose noise std is under half or
    over twice that level (:meth:`selfrestore.restore.Restorer.level_mismatch`); None otherwise. For a chroma-
    subsampled JPEG, whose level reads low after compression (std 20 at quality 75 measured about 12) and which the
    blind-spot default restores poorly, it says so rather than "omit --model"."""
    found = restorer.level_mismatch(image, alpha)
    if found is None:
        return None
    measured, trained = found
    if subsampled_jpeg and not getattr(restorer.net, "blind_spot", False):
        return (f"{path}: noise std about {measured * 255:.1f} on the 0-255 scale as measured on this chroma-"
                f"subsampled JPEG (compression makes it read low), the model was trained for {trained * 255:g}: "
                "on a visibly noisy photo it does better than the blind-spot default (+2.6 to +5.9 dB at std 15-30, "
                "benchmarks/results/jpeg_default_model.md), on a clean or weakly noisy one it smooths detail "
                "(-3.7 to -9.0 dB at std 0-6): then omit --model")
    takes_level = "sigma" in getattr(restorer.method, "accepted_noise_params", lambda: ())()
    given = ("pass --noise-sigma " + f"{max(measured * 255, 0.5):.1f} (the measured level), or omit --model"
             if takes_level else "omit --model")
    return (f"{path}: noise std about {measured * 255:.1f} on the 0-255 scale, but the model was trained for "
            f"{trained * 255:g}: it may {'smooth away detail' if measured < trained else 'leave noise'}; {given} "
            "(the shipped laine19-gauss5_50 measures each image's level), or fit a model on your own images")


def check_output_place(outdir: Path, single: Path | None) -> None:
    """Before any work: the one output file, or the output folder, can be made there."""
    if single is None and outdir.exists() and not outdir.is_dir():
        raise UserError(f"{outdir} exists and is not a folder")
    check_writable_place(single or outdir)


def run(args: argparse.Namespace) -> int:
    """Restore every input image (or blurry + noisy pair) into -o, going on past failures; returns 1 if any
    input failed (unreadable, refused or not written), else 0."""
    from ..file_lists import list_images
    from dataclasses import replace

    import numpy as np

    from ..io import (chroma_subsampled_jpeg, clipped_share, read_frames, stack_target_problem,
                      stored_type_clipped_share, stored_type_clipping_said, type_range, write_frames)
    from ..memory_check import check_fits_in_memory
    from ..restore import Restorer
    from ..size_check import recorded_warning

    if args.blurry or args.noisy:
        return run_pairs(args)
    if not args.inputs:
        raise UserError("no inputs: give image files or folders (or --blurry B --noisy N for a selfir model)")
    if args.model is None:
        args.model = DEFAULT_MODEL
        found = any(Path(given).exists() for given in args.inputs)  # else the missing inputs are said alone
        if found and args.noise_pg:
            warn(f"no --model given: using the shipped {DEFAULT_MODEL} on the Anscombe-transformed images "
                 f"(--noise-pg); a model fitted on your own images may do better (selfrestore fit --help)")
        elif found:
            warn(f"no --model given: using the shipped {DEFAULT_MODEL} (Gaussian noise of std 5-50, level "
                 f"estimated per image); for other noise, fit a model on your own images (selfrestore fit --help)")
    if args.noise_pg and args.adapt:
        raise UserError("--noise-pg does not combine with --adapt")
    if args.skip_existing and args.overwrite:  # (--overwrite replaced what --skip-existing was asked to keep)
        raise UserError("--skip-existing keeps existing outputs, --overwrite replaces them: give one of them")
    if args.subsample != 1 and args.adapt:  # it would fine-tune on the whole images and restore their sub-images
        raise UserError("--subsample does not combine with --adapt")
    restorer = Restorer(args.model, device=command_device(args.device), tile=args.tile,
                        ensemble=args.ensemble, precision=args.precision, noise_params=noise_params(args),
                        sensor_noise=tuple(args.noise_pg) if args.noise_pg else None, clipping=args.clipping,
                        tile_context=args.tile_context, subsample=args.subsample)
    restorer.warn_level_mismatch = False  # said per run below, in the command's words (noise_mismatch)
    restorer.warn_model_problems = False  # said below in the command's words
    size_problem = recorded_warning(restorer.header)
    if size_problem:
        warn(f"{args.model}: {size_problem}")
    if restorer.method.batch_kind == "blurry_noisy":
        raise UserError(f"{args.model}: a blurry+noisy ({restorer.method.name}) model needs both shots: "
                        f"use --blurry B --noisy N")
    say_if_unfinished(args.model, restorer.header)  # an interrupted fit: restored with as it is, and said
    warn_given_level(args, restorer)
    if args.uncertainty and not hasattr(restorer.method, "restore_with_uncertainty"):
        raise UserError(f"--uncertainty needs a Bayesian model; {args.model} uses method {restorer.method.name!r}")
    outdir = Path(args.output)
    notes: list[str] = []  # links whose target is gone: said, not failures
    paths, problems = list_images(args.inputs, output_folder=outdir, notes=notes)  # a file name: no folder below
    failures = len(problems)
    for problem in [*problems, *notes]:
        warn(problem)
    single = output_file(args.output, len(paths)) if paths else None  # `a a -o x.png`: two inputs, one name
    unique: dict[Path, Path] = {}  # an input given twice (or a file and its folder) is restored once
    for path in paths:
        unique.setdefault(path.resolve(), path)
    paths = list(unique.values())
    check_output_place(outdir, single)
    outputs_of = _outputs(paths, args, single)
    remove_stale_temporaries(out for outs in outputs_of.values() for out in outs)  # of a run killed mid-write
    todo, skipped = [], 0
    kept: set[Path] = set()  # --skip-existing: outputs already there of an input restored again for the others
    is_input = same_entry_finder(paths)  # any spelling of an input: relative, a link, a symlinked folder
    for path in paths:
        target = outputs_of[path][0]
        existing = [out for out in outputs_of[path] if out.exists()]
        clash = next((found for out in outputs_of[path] if (found := is_input(out)) is not None), None)
        if clash is not None:
            warn(f"{path}: output would overwrite the input{'' if clash == path else f' {clash}'}; choose another -o")
            failures += 1
        elif existing and not args.overwrite:
            if args.skip_existing and len(existing) == len(outputs_of[path]):
                skipped += 1
            elif args.skip_existing:  # a run stopped between NAME.png and NAME.std.tif: write the missing one
                kept.update(existing)
                todo.append((path, target))
            else:
                warn(f"{existing[0]}: exists (pass --overwrite to replace it"
                     + (", or --skip-existing to keep it)" if len(existing) == len(outputs_of[path]) else ")"))
                failures += 1
        else:
            todo.append((path, target))
    preloaded = {}
    if args.adapt and todo:  # adaptation trains on every input (also those already restored, so a rerun adapts
        # alike); after the checks above, so that a clash or an existing output is said before minutes of it
        check_fits_in_memory(paths, restorer.channels, copies=2)  # the inputs and their training copies
        for path in paths:
            try:
                preloaded[path] = read_frames(path)
            except ImageReadError as exc:
                warn(str(exc))
                preloaded[path] = None
        readable, maps = [], []  # each file's frames, on the scale they are restored on (a stack: its group's)
        for item in preloaded.values():
            if item is not None:
                readable += item[0]
                maps += restorer.stack_mappings(item[0], item[1].stack_shape, item[1].stack_axes,
                                                item[1].frame_blanks)
        if readable:
            adapt_model(restorer, readable, args.adapt, quiet=args.quiet, maps=maps)
    from tqdm import tqdm

    restored, mismatched, subsampled_said = 0, 0, False
    for path, target in tqdm(todo, desc="restore", unit="img", disable=len(todo) < 2 or args.quiet):
        try:  # one file at a time: a folder of any size fits in memory (a huge stack is refused, not killed)
            if not (args.adapt and preloaded[path]):
                try:
                    check_fits_in_memory([path], copies=2, advice="split it into smaller files (fewer planes each)")
                except UserError as too_large:
                    if not streamable(path, args):
                        raise
                    left = kept.intersection(outputs_of[path])  # an interrupted run's restored stack: std only
                    if left and left != {target}:
                        raise UserError(f"{min(left)}: exists (pass --overwrite to replace it)") from None
                    restore_streaming(restorer, path, target, args, too_large, keep_target=bool(left))
                    restored += 1
                    continue
            frames, info = preloaded[path] if args.adapt and preloaded[path] else read_frames(path)
        except UserError as exc:
            if not args.adapt:  # already reported while preloading
                warn(str(exc))
            failures += 1
            continue
        problem = stack_target_problem(path, info, len(frames), target)
        if problem:
            warn(problem)
            failures += 1
            continue
        try:
            check_output_holds(path, target, frames, info)
            for out in kept.intersection(outputs_of[path]):
                if not left_by(out, frames):
                    raise UserError(f"{out}: exists (pass --overwrite to replace it)")
        except UserError as exc:
            warn(str(exc))
            failures += 1
            continue
        middle = len(frames) // 2
        maps = restorer.stack_mappings(frames, info.stack_shape, info.stack_axes, info.frame_blanks)
        if info.dtype != "float32" and not maps[middle] and \
                (mismatch := noise_mismatch(restorer, frames[middle], info.alpha, path,
                                            chroma_subsampled_jpeg(path))):  # mapped: unknown units
            mismatched += 1
            if mismatched == 1:  # once: a folder of such images would repeat it for each
                warn(mismatch)
        elif maps[middle] and (beyond := restorer.beyond_recorded_map(frames[middle], maps[middle])):
            mismatched += 1
            if mismatched == 1:
                warn(f"{path}: {beyond}")
        elif maps[middle] and (weak := restorer.weak_mapped_noise(  # measured without the blank pixels
                frames[middle] if info.frame_blanks is None else
                np.where(info.frame_blanks[middle], np.float32(np.nan), frames[middle]), maps[middle], info.alpha)):
            mismatched += 1
            if mismatched == 1:
                warn(f"{path}: {weak}")
        if getattr(restorer.net, "blind_spot", False) and not subsampled_said and chroma_subsampled_jpeg(path):
            subsampled_said = True  # once, as above
            warn(f"{path}: a JPEG with chroma subsampling (4:2:0 or 4:2:2, as most cameras write): its noise is "
                 f"spread over neighbouring pixels, and a blind-spot model ({restorer.method.name}) assumes it is not "
                 "and leaves most of it; if the photo is visibly noisy, --model unet-gauss25 (no blind spot) restores "
                 "it better (4:2:0 Kodak24 crops at std 15-30: +2.6 to +5.9 dB, benchmarks/results/"
                 "jpeg_default_model.md), but smooths the detail of a clean or weakly noisy one (-3.7 to -9.0 dB at "
                 "std 0-6); or use the raw / uncompressed files if you have them")
        start = time.time()
        outputs, deviations = [], []
        decisions = restorer.stack_clipping(frames, info.stack_shape, info.stack_axes, info.frame_blanks, maps)
        try:  # an image the model cannot restore (a 1 x 1 image for a blind-spot model): reported, the rest go on
            for image, decision, mapping in tqdm(zip(frames, decisions, maps), total=len(frames), desc="planes",
                                                 unit="plane", leave=False, disable=len(frames) < 2 or args.quiet):
                alone = not args.quiet and len(frames) == 1
                if args.uncertainty:
                    mean, std = restorer.restore_with_uncertainty(image, progress=alone, clipping_decision=decision,
                                                                  mapping=mapping)
                    outputs.append(mean)
                    deviations.append(std)
                else:
                    outputs.append(restorer.restore(image, progress=alone, clipping_decision=decision,
                                                    mapping=mapping))
        except ImageRefused as exc:
            warn(f"{path}: {exc}")
            failures += 1
            continue
        if info.dtype == "float32" and (share := clipped_share(target, outputs, info.dtype)) > 0.001:
            warn(f"{target}: {100 * share:.1f}% of the restored values of "
                 f"{path} lie outside [0, 1] and are clipped by {target.suffix}; choose .tif or .fits to keep them")
        elif said := stored_type_clipping_said(path, target, stored_type_clipped_share(target, outputs, info), info):
            warn(said)
        try:  # a file system that says no (permissions, a full disk): reported, and the next input goes on
            if target not in kept:
                write_frames(target, outputs, info)
            # a float TIFF in the data's units (8 / 16-bit files: levels of the type, as float counts are), with
            # the image's blank pixels (NaN, not the input's +-inf: no std), pixel size and layout, without its alpha
            if args.uncertainty and std_path(target) not in kept:
                write_frames(std_path(target), [np.float32(type_range(info.dtype)) * std for std in deviations],
                             replace(info, alpha=None, blank_sign=None), dtype="float32")
        except UserError as exc:
            warn(str(exc))
            failures += 1
            continue
        preloaded.pop(path, None)
        restored += 1
        megapixels = sum(image.shape[0] * image.shape[1] for image in frames) / 1e6
        if not args.quiet:
            speed = megapixels / max(time.time() - start, 1e-9)
            written = [out for out in outputs_of[path] if out not in kept]  # (a kept half is not written again)
            tqdm.write(f"{path} -> {', '.join(map(str, written))}  ({speed:.2f} MP/s{clipping_said(restorer)})")
    if skipped and not args.quiet:
        print(f"skipped {skipped} input(s) whose output exists (--skip-existing)")
    if mismatched > 1:
        warn(f"{mismatched} inputs have noise far from the level the model was trained for (see above)")
    if failures:
        warn(f"{failures} input(s) failed; {restored} restored")
    return 1 if failures else 0


NO_ORIENTATION_SUFFIXES = (".bmp", ".ppm", ".pgm")  #: formats with no EXIF block: an orientation is lost


def check_output_holds(source: Path, target: Path, images: Sequence[np.ndarray], info: ImageInfo) -> None:
    """Before the work: a UserError when ``target``'s format would clip ``source``'s float values (far
    outside [0, 1]: see :func:`selfrestore.io.refuse_clipping`; the restored values keep the input's scale),
    a warning when it cannot hold the alpha channel, which is then left out, or the input's bit depth (16-bit
    or float written to an 8-bit format), or when ``source`` is a stack
    whose alpha is not carried, or when ``source`` is to be shown rotated or mirrored (its EXIF / TIFF
    orientation) and ``target``'s format (BMP, PPM / PGM) holds no orientation: the output shows as stored."""
    from ..io import NO_ALPHA_SUFFIXES, exif_orientation, refuse_clipping

    if info.dtype == "float32":
        try:
            refuse_clipping(target, images)
        except UserError as exc:
            raise UserError(f"{exc} (input {source})") from None
    if info.fits_dropped:  # said even with --quiet: data the output will not have
        warn(f"{source}: only its image is restored; its other HDUs ({', '.join(info.fits_dropped)}) are not in "
             f"{target}")
    if info.stack_alpha_dropped:  # said even with --quiet: it is data the output will not have
        warn(f"{source}: the alpha channel of this stack's images is not restored; the output has none")
    if info.alpha is not None and target.suffix.lower() in NO_ALPHA_SUFFIXES:
        warn(f"{target}: {target.suffix} cannot hold the alpha channel of {source}; it is left out (choose .png, "
             f".tif or .webp to keep it)")
    say_if_depth_lost(target, info.dtype, source)
    if target.suffix.lower() in NO_ORIENTATION_SUFFIXES and exif_orientation(info.exif) is not None:
        warn(f"{target}: {source} is shown rotated or mirrored (EXIF orientation {exif_orientation(info.exif)}), "
             f"which {target.suffix} cannot say; the output shows the pixels as stored (choose .png, .jpg, .tif "
             "or .webp to keep the orientation)")


def std_path(target: Path) -> Path:
    """Where ``--uncertainty`` writes the posterior std of ``target``: NAME.std.tif beside it, NAME.std.fits
    for a FITS output (with its header: WCS and units hold for the std too)."""
    from ..io import FITS_SUFFIXES

    return target.with_name(target.stem + (".std.fits" if target.suffix.lower() in FITS_SUFFIXES else ".std.tif"))


def streamable(path: Path, args: argparse.Namespace) -> bool:
    """A TIFF too large for memory is restored plane by plane (not with --adapt, which trains on every plane)."""
    from ..io import TIFF_SUFFIXES

    return path.suffix.lower() in TIFF_SUFFIXES and not args.adapt


def left_by(output: Path, frames: Sequence[np.ndarray]) -> bool:
    """Whether ``output`` can be the half that an interrupted run wrote of the input ``frames`` (readable, as
    many planes of the same size), so that --skip-existing writes the other half beside it; some other file
    of that name is left alone and reported."""
    from ..io import read_frames

    try:
        planes, _ = read_frames(output)
    except UserError:
        return False
    return len(planes) == len(frames) and all(p.shape[:2] == f.shape[:2] for p, f in zip(planes, frames))


def plans(restorer: Restorer, planes: Sequence, stack_shape: Sequence[int], stack_axes: str,
          path: Path | None = None) -> list[tuple]:
    """(clipping decision, intensity map) of each plane of a stack streamed from its file (two passes); with
    ``path``, what a mapped stack restored in memory says: values far beyond the model's recorded map, or else
    weak noise."""
    maps = restorer.stack_mappings(planes, stack_shape, stack_axes)
    middle = len(planes) // 2
    if path is not None and maps and maps[middle] and \
            (said := restorer.beyond_recorded_map(planes[middle], maps[middle])
             or restorer.weak_mapped_noise(planes[middle], maps[middle])):
        warn(f"{path}: {said}")
    return list(zip(restorer.stack_clipping(planes, stack_shape, stack_axes, mappings=maps), maps))


def restore_streaming(restorer: Restorer, path: Path, target: Path, args: argparse.Namespace,
                      too_large: UserError, keep_target: bool = False) -> None:
    """Restore the TIFF stack ``path`` plane by plane into ``target`` (see :mod:`selfrestore.stack_stream`);
    a file that is not such a stack gets the memory error ``too_large``. ``keep_target``: ``target`` is an
    interrupted run's (``--skip-existing``), kept; only the std map is written."""
    from ..stack_stream import NotStreamable, restore_stack_streaming

    start = time.time()
    restore = restorer.restore_with_uncertainty if args.uncertainty else restorer.restore
    try:
        planes = restore_stack_streaming(
            path, target, lambda image, plan: restore(image, clipping_decision=plan[0], mapping=plan[1]),
            progress=not args.quiet, announce=None if args.quiet else warn,
            std_target=std_path(target) if args.uncertainty else None,
            decide=lambda *stack: plans(restorer, *stack, path=path),
            alpha_dropped=warn, keep_target=keep_target,  # alpha, clipped values: said even with --quiet
            clipped=warn)
    except NotStreamable:
        raise too_large from None
    if not args.quiet:
        written = std_path(target) if keep_target else target  # (the kept half is not written again)
        print(f"{path} -> {written}  ({planes} planes in {time.time() - start:.1f} s)")


def _blurry_noisy_paths(blurry: str, noisy: str) -> list[tuple[Path, Path]]:
    """(blurry, noisy) path pairs: two files, or two folders matched by file name."""
    from ..file_lists import file_or_folder_pairs

    return file_or_folder_pairs(blurry, noisy, ("blurry", "noisy"), ("--blurry", "--noisy"))


def run_pairs(args: argparse.Namespace) -> int:
    """Restore blurry + noisy pairs with a two-input (selfir) model; outputs are named after the noisy shot."""
    from ..data.blurry_noisy import read_blurry_noisy
    from ..io import read_image, stored_type_clipped_share, stored_type_clipping_said, to_channels, write_image
    from ..restore import Restorer

    if not (args.blurry and args.noisy):
        raise UserError("give both --blurry and --noisy")
    if args.model is None:
        raise UserError("--blurry/--noisy need a blurry+noisy model: --model FILE from `selfrestore fit --method "
                        "selfir`")
    if args.inputs:
        raise UserError("give either INPUT images or --blurry/--noisy, not both")
    if args.adapt or args.uncertainty or noise_params(args) or args.noise_pg or args.subsample != 1:
        raise UserError("--adapt, --uncertainty, --subsample and --noise-* do not apply to blurry+noisy restoration")
    pairs = _blurry_noisy_paths(args.blurry, args.noisy)
    restorer = Restorer(args.model, device=command_device(args.device), tile=args.tile,
                        ensemble=args.ensemble, precision=args.precision, tile_context=args.tile_context)
    restorer.warn_model_problems = False  # said below in the command's words
    method = restorer.method
    if method.batch_kind != "blurry_noisy":
        raise UserError(f"{args.model}: method {method.name!r} restores single images; --blurry/--noisy need a "
                        f"model trained on blurry+noisy pairs (fit --method selfir)")
    say_if_unfinished(args.model, restorer.header)
    outdir = Path(args.output)
    single = output_file(args.output, len(pairs))
    check_output_place(outdir, single)
    failures = restored = 0
    noisy_root = Path(args.noisy)

    def target_of(n_path: Path) -> Path:  # named after the noisy shot
        return single or outdir / (n_path.relative_to(noisy_root) if noisy_root.is_dir() else n_path.name)

    remove_stale_temporaries(target_of(n_path) for _, n_path in pairs)  # of a run killed mid-write
    from tqdm import tqdm

    for b_path, n_path in tqdm(pairs, desc="restore", unit="pair", disable=len(pairs) < 2 or args.quiet):
        target = target_of(n_path)
        if same_entry_finder([b_path, n_path])(target) is not None:  # any spelling of either
            warn(f"{target}: output would overwrite an input of the pair; choose another -o")
            failures += 1
            continue
        if target.exists() and not args.overwrite:
            if not args.skip_existing:
                warn(f"{target}: exists (pass --overwrite to replace it, or --skip-existing to keep it)")
                failures += 1
            continue
        try:  # a bad pair is reported; the other pairs are still restored
            blurry, noisy = read_blurry_noisy(b_path, n_path, None if restorer.channels == 1 else restorer.channels)
            noisy_image, info = read_image(n_path)
            check_output_holds(n_path, target, [noisy_image], info)
        except (ImageReadError, UserError) as exc:
            warn(str(exc))
            failures += 1
            continue
        out = restore_pair(restorer, blurry, noisy, args)
        have = info.channels
        out = to_channels(out, have) if have != out.shape[2] else out
        if said := stored_type_clipping_said(n_path, target, stored_type_clipped_share(target, [out], info), info):
            warn(said)  # (written in the noisy shot's own type, int16 ..., as restore writes one image)
        try:  # a file system that says no (permissions, a full disk): reported, and the next pair goes on
            write_image(target, out, info)
        except UserError as exc:
            warn(str(exc))
            failures += 1
            continue
        restored += 1
        if not args.quiet:
            tqdm.write(f"{b_path} + {n_path} -> {target}")
    if failures:
        warn(f"{failures} pair(s) failed; {restored} restored")
    return 1 if failures else 0


def restore_pair(restorer: Restorer, blurry: np.ndarray, noisy: np.ndarray, args: argparse.Namespace) -> np.ndarray:
    """One blurry + noisy pair (H, W, C each, the data's values) restored by a two-input model, in the data's
    values: mapped to [0, 1] as the model's training data was (its recorded map; else, for a model whose pairs
    ``fit`` mapped (``maps_method_data``: since stop 38; older ones saw theirs as read), float counts and dim
    16-bit data by one map from both shots' percentiles), and a gray model restores a colour pair channel by
    channel (the colour kept)."""
    import numpy as np

    from ..intensity_map import intensity_mapping
    from ..restore import restore_array

    mapping = restorer.intensity or (intensity_mapping([blurry, noisy], dim=restorer.maps_dim_data)
                                     if restorer.header.get("maps_method_data") else None)
    blurry, noisy = restorer.to_model_scale(blurry, mapping), restorer.to_model_scale(noisy, mapping)
    planes = [slice(c, c + 1) for c in range(noisy.shape[2])] if restorer.channels == 1 else [slice(None)]
    out = np.concatenate([restore_array(restorer.method, restorer.net, np.concatenate([blurry[:, :, plane],
                                                                                       noisy[:, :, plane]], axis=2),
                                        tile=args.tile, ensemble=args.ensemble, precision=args.precision,
                                        device=restorer.device, context=args.tile_context)
                          for plane in planes], axis=2)
    return restorer.from_model_scale(out, mapping=mapping)


def warn_given_level(args: argparse.Namespace, restorer: Restorer) -> None:
    """A warning when --noise-sigma lies well outside the Gaussian levels the model was trained on
    (:meth:`Restorer.given_level_far`; the level-mismatch check is skipped once a level is given)."""
    if args.noise_sigma is not None and (far := restorer.far_level_message(f"--noise-sigma {args.noise_sigma:g}")):
        warn(f"{far}; check the level (selfrestore inspect)")


def noise_params(args: argparse.Namespace) -> dict[str, float]:
    """--noise-sigma / --noise-lambda / --noise-alpha as the method's parameters (image units in [0, 1])."""
    params = {}
    if args.noise_sigma is not None:
        if not 0 < args.noise_sigma < 255:
            raise UserError(f"--noise-sigma {args.noise_sigma:g}: expected a value in (0, 255) on the 0-255 scale")
        params["sigma"] = args.noise_sigma / 255.0
    if args.noise_lambda is not None:
        if args.noise_lambda <= 0:
            raise UserError(f"--noise-lambda {args.noise_lambda:g}: the photon count must be positive")
        params["lam"] = args.noise_lambda
    if args.noise_alpha is not None:
        if not 0 < args.noise_alpha < 1:
            raise UserError(f"--noise-alpha {args.noise_alpha:g}: expected a fraction in (0, 1)")
        params["alpha"] = args.noise_alpha
    return params
