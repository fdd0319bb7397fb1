"""``selfrestore inspect``: look at noisy images before training and say which method and command suit them."""
from __future__ import annotations

import argparse
import math
import shlex
import sys
from collections import Counter
from pathlib import Path
from typing import Iterator

import numpy as np

from ._common import add_parser, json_report, refuse_report_over_inputs, warn

DESCRIPTION = """\
Look at your noisy images, without any clean reference, and get advice before training: their formats,
sizes and bit depths, the noise level (standard deviation on the 0-255 scale for 8/16-bit data, for dim
16-bit data, using under 1/4 of the range, after the percentile map to [0, 1] that fit and restore give it; in
the data's own units for float data; estimated per image from the finest-scale wavelet coefficients), and whether
the noise is independent from pixel to pixel (the neighbour correlation that `fit` also checks: blind-spot and
neighbour methods need it low). Ends with the method and command that suit the data.
"""

EPILOG = """\
examples:
  selfrestore inspect my_noisy_photos/
  selfrestore inspect scans/*.tif --json report.json
  selfrestore inspect clip.mp4                # a few frames of a video, and the video command to run
"""

SUMMARY = "measure the noise of your images and suggest a method"  # its line in `selfrestore --help`


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `selfrestore inspect` command to the CLI's subparsers."""
    p = add_parser(sub, "inspect", SUMMARY, DESCRIPTION, EPILOG)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders, or video files")
    p.add_argument("--limit", type=int, default=64, help="look at most at this many images (spread evenly)")
    p.add_argument("--json", metavar="FILE", help="also write the measurements as JSON ('-' for stdout)")
    p.set_defaults(func=run)


#: a median noise std (0-255 scale) below which inspect reports no noise in 8-bit data: it reads 0 or >= 0.74
#: (the wavelet estimate moves in steps of half a level / 0.6745); 16-bit data alone: half a 16-bit level
#: (noise-free 16-bit data reads about 0, while 0.4/255 is ~100 levels of real noise)
NO_NOISE = 0.5


def noise_model_name(a: float, b: float, sigma: float | None = None) -> tuple[str, str]:
    """(``--noise`` name, description) for variance a x + b on [0, 1]: Poisson-like when the signal-dependent
    part dominates at mid-grey, else Gaussian, of std ``sigma`` (0-255 scale) when given: the wavelet estimate
    that inspect reports (within 10% of the truth for sigma 10-40 on a photo: tests/test_noise_check.py), where
    sqrt(b + a/2) from the flattest blocks reads high where texture is left in them (small, textured images)."""
    if a * 0.5 > b:
        if b < 0.35 * a * 0.5:  # the constant part is within what texture and clipping add
            return f"poisson{1 / a:.0f}", f"shot noise (Poisson-like), photon count about {1 / a:.0f} at white"
        return (f"pg{a:.3g}_{np.sqrt(b):.3g}", f"shot + read noise (Poisson-Gaussian): photon count about "
                f"{1 / a:.0f} at white, read noise std {np.sqrt(b) * 255:.1f}")
    level = sigma if sigma is not None else np.sqrt(b + 0.5 * a) * 255
    return f"gauss{max(1, round(level))}", "signal-independent (Gaussian-like)"


#: the shipped model that assumes no independence of the noise between pixels (Noise2Noise U-Net, std 25)
PAIRS_MODEL = "unet-gauss25"


def shell_words(paths: list) -> str:
    """``paths`` as they go into a suggested command: each quoted for the shell where it needs it (``my photos``
    joined plainly was two arguments, ``my`` and ``photos``, when pasted)."""
    return " ".join(shlex.quote(str(path)) for path in paths)


def subsampled_advice(subsampled: list[str], measured: int, target: str, sigma: float | None,
                      noise_name: str | None, pairs_hint: bool = True) -> list[str]:
    """The lines for JPEGs with chroma subsampling (``subsampled``: their names, of ``measured`` images): their
    colour noise is spread over neighbouring pixels, which blind-spot and neighbour methods assume it is not."""
    alone, count = len(subsampled) == measured, len(subsampled)
    names = ", ".join(subsampled[:5]) + (" ..." if count > 5 else "")
    if alone:
        which = "These JPEGs use" if count > 1 else "This JPEG uses"
    else:
        which = f"{count} of the {measured} images ({names}) " + ("are JPEGs that use" if count > 1 else
                                                                 "is a JPEG that uses")
    lines = [f"{which} chroma subsampling (4:2:0 or 4:2:2, as most cameras and phones write): the colour noise is "
             "spread over neighbouring pixels (the neighbour correlation is measured on the channel mean, where that "
             "cancels). Blind-spot and neighbour methods (laine19, n2v, nb2nb; the default restore model is laine19) "
             "assume independent noise per pixel and keep much of it."]
    restore = None
    if (noise_name is None or noise_name.startswith("gauss")) and sigma is not None and 5 <= sigma <= 50:
        restore = (f"selfrestore restore {target if alone else shell_words(subsampled)} --model {PAIRS_MODEL} -o "
                   f"restored/   (a Noise2Noise U-Net, no blind spot; trained at std 25) if visibly noisy: +2.6 to "
                   "+5.9 dB over the default at std 15-30, but -3.7 to -9.0 dB on clean or weakly noisy JPEGs (std "
                   "0-6; benchmarks/results/jpeg_default_model.md), which the level measured here cannot tell apart "
                   "from noisy ones (detail reads as noise): judge by eye")
    if alone:
        if restore:
            lines.append(f"Restore {'them' if count > 1 else 'it'} with the shipped model that needs no independent "
                         f"noise, {restore}")
        elif sigma is not None and sigma < 2:
            lines.append("The noise is very low (below 2 on the 0-255 scale): there may be little to restore.")
        if pairs_hint:
            lines.append("To train: two shots of each scene (Noise2Noise needs no independent noise), or the raw / "
                         "uncompressed files: selfrestore fit --pairs SHOTS_A/ SHOTS_B/ -o model.safetensors")
    else:
        lines.append(f"Leave {'them' if count > 1 else 'it'} out of training (the fit commands below take every "
                     f"image given: move {'them' if count > 1 else 'it'} elsewhere first)"
                     + (f"; restore {'them' if count > 1 else 'it'} apart: {restore}" if restore else ""))
    return lines


def advice(sigma: float | None, correlation: float | None, inputs: list[str], pairs_hint: bool = True,
           noise_name: str | None = None, subsampled: list[str] | None = None,
           measured: int | None = None, data_map: dict[str, float] | None | bool = None) -> list[str]:
    """What to run, from the measured noise level (0-255 scale), neighbour correlation and noise model;
    ``subsampled``: the JPEGs with chroma subsampling among the ``measured`` images (None: as many);
    ``data_map``: the percentile map of dim 16-bit images the noise model was measured after (``restore
    --noise-pg`` takes the data's own units: converted back), False when only some images had one (no
    ``--noise-pg`` line: one (a, b) cannot fit both)."""
    from ..noise_check import CORRELATION_LIMIT

    target = shell_words(inputs)
    lines = []
    if subsampled:
        measured = len(subsampled) if measured is None else measured
        lines = subsampled_advice(subsampled, measured, target, sigma, noise_name, pairs_hint)
        if len(subsampled) >= measured:  # no blind-spot or neighbour method to suggest for these
            return lines
    if correlation is not None and correlation > CORRELATION_LIMIT:
        lines.append(f"The noise is correlated between neighbouring pixels ({correlation:.2f} > {CORRELATION_LIMIT}: "
                     "JPEG, demosaicking or in-camera noise reduction). Single-image methods (nb2nb, n2v, laine19) "
                     "will keep much of it.")
        if pairs_hint:
            lines.append("Best: two shots of each scene, or the raw / uncompressed files: "
                         "selfrestore fit --pairs SHOTS_A/ SHOTS_B/ -o model.safetensors")
        lines.append(f"Otherwise try: selfrestore fit {target} -o model.safetensors   (and judge the result)")
        lines.append("Or restore now on 2 x 2 sub-images, whose pixels are 2 apart and whose noise is less "
                     f"correlated: selfrestore restore {target} -o restored/ --subsample 2   (+1.4 to +1.75 dB "
                     "with the default model on strong demosaicked or smoothed noise, worse on clean detail: judge "
                     "the result)")
        return lines
    lines.append(f"Train on these images (Neighbor2Neighbor, no noise model needed): selfrestore fit {target} "
                 f"-o model.safetensors --minutes 30")
    if noise_name and not noise_name.startswith("gauss"):
        lines.append(f"Or, with the noise model measured above (posterior mean, per-pixel uncertainty): "
                     f"selfrestore fit {target} --method laine19 --noise {noise_name} -o model.safetensors")
        a, b = ((float(v) for v in noise_name[2:].split("_")) if noise_name.startswith("pg")
                else (1 / float(noise_name[len("poisson"):]), 0.0))
        floor = ""
        if data_map:  # Var' = a' x' + b'^2 on x' = (x - offset) / scale: a = a' scale, b^2 = b'^2 scale^2 - a offset
            a, b2 = a * data_map["scale"], (b * data_map["scale"]) ** 2 - a * data_map["scale"] * data_map["offset"]
            b = math.sqrt(max(0.0, b2))
            if b2 < 0:  # the noise would vanish above 0 (a black level): --noise-pg has no such term
                floor = (f" (the measured noise reaches 0 at {-b2 / a:.3g}, not at 0: a black level that --noise-pg "
                         "cannot express, so b is 0 here and the darkest pixels are taken a little noisier)")
        if data_map is not False:
            lines.append(f"Or restore now, without training, with the shipped Gaussian model through the Anscombe "
                         f"transform: selfrestore restore {target} --noise-pg {a:.3g} {b:.3g} -o restored/{floor}")
        return lines
    if sigma is not None and 5 <= sigma <= 50:
        lines.append(f"Or restore now with the shipped Gaussian model (std 5-50, level estimated per image): "
                     f"selfrestore restore {target} -o restored/")
        lines.append(f"For a posterior mean and per-pixel uncertainty: selfrestore fit {target} --method laine19 "
                     f"--noise gauss5_50 -o model.safetensors, then restore --uncertainty")
    elif sigma is not None and sigma < 2:
        lines.append("The noise is very low (below 2 on the 0-255 scale): there may be little to restore.")
    return lines


def distinct(items: list) -> list:
    """``items`` (file names or paths) without repeats of one file under another spelling (``a.png``,
    ``./x/../a.png``, its absolute name), first occurrences kept in order; as ``evaluate`` and ``restore`` do."""
    from ..file_lists import resolved

    unique: dict[Path, object] = {}
    for item in items:
        unique.setdefault(resolved(item, loop_ok=True), item)  # a looping link: reported unreadable later
    return list(unique.values())


def video_samples(video: str, count: int, spacing: int = 10,
                  lengths: dict[str, int] | None = None) -> Iterator[tuple[int, np.ndarray, str]]:
    """Up to ``count`` frames of a video file, ``spacing`` frames apart from the start, as (index, frame,
    dtype) (decoding stops there: a long video is not read to its end). An unreadable video is a warning,
    like an unreadable image; ``lengths`` (when given) receives the video's frame count."""
    from ..errors import UserError
    from ..video_io import VideoReader

    taken = 0
    try:
        reader = VideoReader(video)
        if lengths is not None:
            lengths[video] = len(reader)
        for index, frame in enumerate(reader):
            if index % spacing == 0:
                yield index, frame, reader.info.dtype
                taken += 1
                if taken == count:
                    return
    except UserError as exc:
        warn(str(exc))


def video_advice(videos: list[str], sigma: float | None, correlation: float | None,
                 noise_name: str | None = None) -> list[str]:
    """What to run on noisy video files: frame-to-frame fine-tuning of a pretrained denoiser (with the
    mean-seeking L2 loss when the noise grows with brightness)."""
    from ..noise_check import CORRELATION_LIMIT

    video = videos[0]
    out = Path(video).with_name(Path(video).stem + "_denoised" + Path(video).suffix)
    shot = bool(noise_name) and noise_name.startswith(("poisson", "pg"))
    lines = [f"Denoise the video by fine-tuning a pretrained denoiser on it (frame-to-frame, no clean data): "
             f"selfrestore video {shell_words([video])} -o {shell_words([out])} --method mf2f --online"
             f"{' --warp-loss l2' if shot else ''}   "
             f"(--offline: several passes, better, slower)"]
    if shot:
        lines.append("The noise grows with brightness (shot noise): --warp-loss l2 makes the fine-tuning seek the "
                     "mean of the noisy frames; the default L1 seeks their median, which is darker at low photon "
                     "counts")
    if correlation is not None and correlation > CORRELATION_LIMIT:
        lines.append(f"The noise is correlated between neighbouring pixels ({correlation:.2f} > "
                     f"{CORRELATION_LIMIT}: compression or in-camera processing); frame-to-frame fine-tuning still "
                     "applies (it needs no independence), but the shipped start models were trained on "
                     "independent noise")
    elif sigma is not None and not 10 <= sigma <= 40:
        lines.append(f"The noise std ({sigma:.1f}) is far from the shipped start models' 25: give more fine-tuning "
                     "(--offline, or --steps-per-frame) or a start model trained at that level (--model)")
    return lines


MAX_CHANNELS_MEASURED = 16  #: a stack's channels measured apart up to this many (else its middle plane only)


def time_series_advice(stacks: list[str], noise_name: str | None = None) -> list[str]:
    """What else suits TIFF stacks with a time axis: fine-tuning on their frames with ``selfrestore video``
    (with the mean-seeking L2 loss when the noise grows with brightness, as :func:`video_advice`)."""
    if not stacks:
        return []
    shot = bool(noise_name) and noise_name.startswith(("poisson", "pg"))
    stack = Path(stacks[0])
    out = stack.with_name(stack.stem + "_denoised" + stack.suffix)
    return [f"{shell_words(stacks[:3])}{' ...' if len(stacks) > 3 else ''}: time series (a T axis). Also worth a "
            f"try: fine-tune a denoiser on a series' own frames (frame-to-frame, no clean data), e.g. "
            f"selfrestore video {shell_words([stack])} -o {shell_words([out])} --method f2f --offline"
            + (" --warp-loss l2" if shot else "")]


def run(args: argparse.Namespace) -> int:
    """Measure the noise of the images or videos and print the report and the advice (JSON with --json);
    returns 0 (unreadable inputs are warned about and skipped)."""
    from tqdm import tqdm

    from ..errors import ImageReadError, UserError
    from ..atomic_files import refuse_folder
    from ..file_lists import list_images
    from ..intensity_map import apply_mapping, intensity_mapping
    from ..io import chroma_subsampled_jpeg, depth_name, read_frames
    from ..memory_check import ONE_IMAGE_ADVICE, check_fits_in_memory
    from ..noise_check import neighbour_correlation, noise_level_function, noise_sigma

    from ..corruption.clipping import plane_groups
    from ..video_io import dim_16_bit_frames, is_video_file

    if args.limit < 1:
        raise UserError("--limit must be at least 1")
    if args.json and args.json != "-":
        refuse_folder(args.json)
    is_video = [is_video_file(item) and Path(item).is_file() for item in args.inputs]
    videos = distinct([item for item, video in zip(args.inputs, is_video) if video])  # a file given twice: once
    image_inputs = distinct([item for item, video in zip(args.inputs, is_video) if not video])
    paths, problems = list_images(image_inputs) if image_inputs else ([], [])
    # missing inputs and folders without images (the problems): left out of the advice, as unreadable files are
    found = [item for item in image_inputs if Path(item).is_file()
             or any(path.is_relative_to(Path(item)) for path in paths)]
    paths = distinct(paths)  # also a file given alone and inside a given folder
    if args.json and args.json != "-":
        refuse_report_over_inputs(args.json, [*paths, *videos])
    for problem in problems:
        warn(problem)
    if not paths and not videos:
        raise UserError("no images to inspect")
    chosen = [paths[int(i)] for i in np.linspace(0, len(paths) - 1, min(args.limit, len(paths)))] if paths else []
    chosen = list(dict.fromkeys(chosen))
    picked = set(chosen)  # an unreadable or unmeasurable pick is replaced by the next file not picked
    candidates = chosen + [path for path in paths if path not in picked]
    rows, kinds = [], Counter()
    unreadable: set[str] = set()  # files named on the command line that the advice must not name back
    subsampled: list[str] = []  # JPEGs with chroma subsampling: no blind-spot model for them
    time_series: list[str] = []  # TIFF stacks with a time axis: `selfrestore video` fine-tunes on their frames

    def measure(name: str, frame: np.ndarray, dtype: str, suffix: str, planes: int,
                usable: np.ndarray | None = None, blank: np.ndarray | None = None, infinite: int = 0,
                stack: bool = False, counted: bool = True, channel: int | None = None) -> None:
        """``usable``: the pixels to measure (the opaque ones of an image with alpha), or None for all; ``blank``:
        the (H, W, C) pixels the reader filled (NaN or +-inf: :attr:`~selfrestore.io.ImageInfo.blank`), of which
        ``infinite`` were +-inf (said: NaN is the usual mark of a blank pixel, inf is not); ``stack``: the plane
        measured is one of a stack's; ``counted``: the file is counted among the kinds of files (not again for
        its other channels); ``channel``: the stack's channel (from 1) measured apart, recorded in the JSON row."""
        scale = 1.0 if dtype == "float32" else 255.0  # float: the level in the data's own units, shown as is
        finite = np.isfinite(frame).all(axis=2) if blank is None else ~np.asarray(blank).any(axis=2)
        float_range = None
        if dtype == "float32":
            values = frame[finite]
            float_range = [float(values.min()), float(values.max())] if values.size else None
        if not finite.all():  # measured on the finite pixels alone (not the median the reader filled in)
            usable = finite if usable is None else usable & finite
        # dim 16-bit data (under intensity_map.DIM_LIMIT of the range, e.g. 12-bit counts): fit and restore map it by
        # its percentiles to [0, 1], the scale its noise level and noise model are meant on
        mapping = intensity_mapping([frame], dim=True) if dtype == "uint16" else None
        frame = apply_mapping(frame, mapping)
        sigma = noise_sigma(frame, usable) if min(frame.shape[:2]) >= 2 else float("nan")
        where = (f"{infinite} of the {finite.size} pixels of its measured plane" if stack
                 else f"{infinite} of its {finite.size} pixels")
        if not np.isfinite(sigma):  # a 1-px side has no 2x2 block: "nan" in the report and invalid JSON before
            if min(frame.shape[:2]) < 2:
                reason = f"too small to measure its noise ({frame.shape[1]}x{frame.shape[0]} px)"
            elif infinite:
                reason = f"non-finite values (inf, in {where}) leave no 2x2 pixels to measure its noise on"
            elif not finite.any():
                reason = "blank (NaN) pixels leave no 2x2 pixels to measure its noise on"
            else:
                reason = "no opaque 2x2 pixels to measure its noise on"
            warn(f"{name}: {reason}; left out")
            return
        if infinite:
            warn(f"{name}: non-finite values (inf) in {where}; measured on the others "
                 "(restore takes them as blank pixels, as NaN ones: its output holds them as they were)")
        kinds[(suffix, dtype, frame.shape[2], planes)] += counted
        correlation = neighbour_correlation([frame], usable=[usable])
        level = noise_level_function(frame, usable=usable) if dtype != "float32" else None
        rows.append({"image": name, "height": frame.shape[0], "width": frame.shape[1],
                     "channel": channel, "channels": frame.shape[2], "dtype": dtype, "planes": planes,
                     "noise_sigma": float(f"{sigma * scale:.4g}"),  # float data may be on any scale
                     "neighbour_correlation": None if correlation is None else round(correlation, 4),
                     "variance_a": level[0] if level else None, "variance_b": level[1] if level else None,
                     "float_range": float_range,
                     # dim 16-bit data: the map x' = (x - offset) / scale (x in [0, 1]) its levels are measured after
                     "intensity_mapping": {key: float(f"{value:.4g}") for key, value in mapping.items()}
                     if mapping else None})

    progress = tqdm(total=len(chosen), desc="inspect", unit="img", disable=len(chosen) < 4)
    images_measured, channels_apart = 0, False
    for path in candidates:
        if images_measured == len(chosen):
            break
        try:  # a decompression bomb (a small file of huge pixels): refused from its header, not decoded
            check_fits_in_memory([path], copies=2, advice=ONE_IMAGE_ADVICE, error=ImageReadError)
            frames, info = read_frames(path)
        except ImageReadError as exc:
            warn(str(exc))
            unreadable.add(str(path))
            continue
        middle = len(frames) // 2
        planes_measured = [middle]  # a stack's middle plane; with a channel axis each channel's (its own noise)
        if "C" in info.stack_axes and 1 < len(groups := plane_groups(len(frames), info.stack_shape, info.stack_axes)
                                              ) <= MAX_CHANNELS_MEASURED:
            planes_measured = [group[len(group) // 2] for group in groups]
            channels_apart = True
        if "T" in info.stack_axes and info.stack_shape[info.stack_axes.index("T")] > 1 and \
                not (info.dtype == "uint16" and dim_16_bit_frames(len(frames), frames.__getitem__)):
            # (dim 16-bit frames, which video refuses: not advised)
            time_series.append(str(path))
        before = len(rows)
        blanks = info.frame_blanks
        for number, plane in enumerate(planes_measured):
            alpha = info.alpha if info.alpha is None or info.alpha.ndim == 2 else info.alpha.reshape(
                -1, *info.alpha.shape[-2:])[plane]  # a stack's alphas: the measured plane's
            usable = None if alpha is None or alpha.shape != frames[plane].shape[:2] else alpha > 0
            infinite = info.plane_infinite[plane] if len(info.plane_infinite) == len(frames) else 0
            name = str(path) if len(planes_measured) == 1 else f"{path} channel {number + 1}"
            measure(name, frames[plane], info.dtype, path.suffix.lower(), len(frames), usable,
                    None if blanks is None else blanks[plane], infinite, stack=len(frames) > 1,
                    counted=len(rows) == before,  # (the file once, at its first channel measured)
                    channel=None if len(planes_measured) == 1 else number + 1)
        if len(rows) > before:
            images_measured += 1
            progress.update()
            if chroma_subsampled_jpeg(path):
                subsampled.append(str(path))
    progress.close()
    lengths: dict[str, int] = {}
    for video in videos:
        for index, frame, dtype in video_samples(video, max(1, min(8, args.limit)), lengths=lengths):
            measure(f"{video} frame {index + 1}", frame, dtype, Path(video).suffix.lower(), 1)
    movable = [v for v in videos if lengths.get(v, 0) >= 2]  # the video commands need two frames at least
    if not rows:
        raise UserError("no image could be read and measured")
    measured = [r["neighbour_correlation"] for r in rows if r["neighbour_correlation"] is not None]
    correlation = float(np.median(measured)) if measured else None
    # float data is measured in its own units, 8/16-bit data on the 0-255 scale: one median never mixes them
    integer_rows = [r for r in rows if r["dtype"] != "float32"]
    float_rows = [r for r in rows if r["dtype"] == "float32"]
    floats = not integer_rows
    sigmas = np.array([r["noise_sigma"] for r in (float_rows if floats else integer_rows)])
    mapped = [r for r in integer_rows if r["intensity_mapping"]]  # dim 16-bit images, measured after their map
    unit = "in the data's units" if floats else "on the 0-255 scale" + (
        "" if not mapped else " of the mapped data" if len(mapped) == len(integer_rows) else
        " (the dim 16-bit images: of their mapped data)")
    def say(*parts) -> None:  # the report; on stderr when the JSON goes to stdout
        print(*parts, file=sys.stderr if args.json == "-" else sys.stdout)

    what = "image(s) / video frame(s)" if videos else "image(s)"
    if channels_apart:
        what += " (a stack's channels apart)"
    files_left = not videos and len(paths) > images_measured  # (rows: a stack's channels apart, or files)
    say(f"{len(rows)} {what} inspected" + ("" if not files_left else f" of {len(paths)}"
                                           if len(rows) == images_measured else
                                           f" (from {images_measured} of {len(paths)} files)"))
    for (suffix, dtype, channels, planes), count in sorted(kinds.items()):
        form = {1: "gray", 3: "colour"}.get(channels, f"{channels} channels")
        depth = depth_name(dtype)
        say(f"  {count} x {suffix} {depth} {form}" + (f", stacks of {planes} planes" if planes > 1 else ""))
    sizes = sorted({(r["width"], r["height"]) for r in rows})
    say(f"  sizes {sizes[0][0]}x{sizes[0][1]}" + (f" .. {sizes[-1][0]}x{sizes[-1][1]}" if len(sizes) > 1 else ""))
    if mapped:
        top = max(r["intensity_mapping"]["offset"] + r["intensity_mapping"]["scale"] for r in mapped)
        which = "the images" if len(mapped) == len(integer_rows) else \
            f"{len(mapped)} of the {len(integer_rows)} 8/16-bit images"
        say(f"dim 16-bit data: the values of {which} use only {top:.1%} of the 16-bit range (up to their 99.9th "
            "percentile): fit and restore map them to [0, 1] by their percentiles, and the noise levels below are "
            "on that mapped scale")
    over = "over the images" if not float_rows or floats else f"over the {len(integer_rows)} 8/16-bit images"
    number = "{:.4g}" if floats else "{:.2f}"  # float data: in its own units, whatever their scale
    low, middle, high = (number.format(v) for v in (sigmas.min(), np.median(sigmas), sigmas.max()))
    say(f"noise std {middle} {unit} (median; {low} .. {high} {over})")
    # nothing to measure: flat or noise-free images (no noise model, no method: a level of ~0 suggests neither)
    floor = NO_NOISE if any(r["dtype"] == "uint8" for r in integer_rows) else NO_NOISE / 257
    # on the data's own scale: a dim image's map magnifies its levels (and a noise-free one's quantisation)
    unmapped = [r["noise_sigma"] * (r["intensity_mapping"] or {"scale": 1.0})["scale"] for r in integer_rows]
    noiseless = bool(np.median(sigmas) == 0 if floats else np.median(unmapped) < floor)
    if noiseless:
        say("  no noise measured: the images look flat or noise-free")
    if float_rows and not floats:
        float_sigmas = [r["noise_sigma"] for r in float_rows]
        say(f"  float images: noise std {np.median(float_sigmas):.4g} in their own units (median of "
            f"{len(float_rows)}; not comparable with the 0-255 scale)")
    if correlation is None:
        say("neighbour correlation: images too small to tell")
    else:
        from ..noise_check import CORRELATION_LIMIT

        verdict = "independent" if correlation <= CORRELATION_LIMIT else "CORRELATED"
        say(f"neighbour correlation {correlation:.3f} (median): {verdict} (limit {CORRELATION_LIMIT})")
        flagged = [r["image"] for r in rows if (r["neighbour_correlation"] or 0) > CORRELATION_LIMIT]
        if flagged and len(flagged) < len(rows):
            say(f"  correlated noise in {len(flagged)} of {len(rows)} images: {', '.join(flagged[:5])}"
                  + (" ..." if len(flagged) > 5 else "") + " (leave them out of training)")
    levels = [(r["variance_a"], r["variance_b"]) for r in rows if r["variance_a"] is not None]
    noise_name = None
    if levels and not noiseless:
        a, b = (float(v) for v in np.median(np.array(levels), axis=0))
        noise_name, kind = noise_model_name(a, b, None if floats else float(np.median(sigmas)))
        say(f"noise variance ~ {a:.3g} x + {b:.3g} (x: brightness in [0, 1]; median over images): {kind}; "
              f"as a noise model: --noise {noise_name}")
    say()
    short = [v for v in videos if v in lengths and v not in movable]
    if short:
        say(f"{', '.join(short)}: a single frame; `selfrestore video` needs 2 frames or more (extract the frame "
            f"and use `selfrestore restore`)")
    advice_lines: list[str] = []
    if noiseless:
        advice_lines = ["No noise was measured: nothing to restore, so no method or noise model is suggested "
                        "(run inspect on the noisy images themselves)."]
    elif movable:
        advice_lines = list(video_advice(movable, None if floats else float(np.median(sigmas)), correlation,
                                         noise_name))
    elif readable := [item for item in found if str(Path(item)) not in unreadable]:
        maps = [r["intensity_mapping"] for r in integer_rows]
        data_map = None if not any(maps) else False if not all(maps) else \
            {key: float(np.median([m[key] for m in maps])) for key in ("offset", "scale")}
        advice_lines = list(advice(None if floats else float(np.median(sigmas)), correlation, readable,
                                   noise_name=noise_name, subsampled=subsampled,
                                   measured=images_measured, data_map=data_map))
        advice_lines += time_series_advice([item for item in time_series if item not in unreadable], noise_name)
    for line in advice_lines:
        say(line)
    if args.json:
        report = {"images": rows, "noise_sigma_median": float(np.median(sigmas)), "noise_sigma_unit": unit,
                  "dim_16_bit_mapped": len(mapped), "chroma_subsampled_jpegs": subsampled,
                  "neighbour_correlation": correlation, "noise_model": noise_name, "advice": advice_lines}
        text = json_report(report)
        if args.json == "-":
            print(text)
        else:
            from ..atomic_files import atomic_path

            with atomic_path(args.json) as tmp:
                Path(tmp).write_text(text)
    return 0
