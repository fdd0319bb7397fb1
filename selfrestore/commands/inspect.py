"""``selfrestore inspect``: look at noisy images before training and say which method and command suit them."""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import Iterator

import numpy as np

from ._common import add_parser, refuse_report_over_inputs, warn

DESCRIPTION = """\
Look at your noisy images, without any clean reference, and get advice before training: their formats,
sizes and bit depths, the noise level (standard deviation on the 0-255 scale for 8/16-bit data, in the
data's own units for float data, estimated per image from the finest-scale wavelet coefficients), and whether
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


def advice(sigma: float | None, correlation: float | None, inputs: list[str], pairs_hint: bool = True,
           noise_name: str | None = None) -> list[str]:
    """What to run, from the measured noise level (0-255 scale), neighbour correlation and noise model."""
    from ..noise_check import CORRELATION_LIMIT

    target = " ".join(inputs)
    lines = []
    if correlation is not None and correlation > CORRELATION_LIMIT:
        lines.append(f"The noise is correlated between neighbouring pixels ({correlation:.2f} > {CORRELATION_LIMIT}: "
                     "JPEG, demosaicking or in-camera noise reduction). Single-image methods (nb2nb, n2v, laine19) "
                     "will keep much of it.")
        if pairs_hint:
            lines.append("Best: two shots of each scene, or the raw / uncompressed files: "
                         "selfrestore fit --pairs SHOTS_A/ SHOTS_B/ -o model.safetensors")
        lines.append(f"Otherwise try: selfrestore fit {target} -o model.safetensors   (and judge the result)")
        return lines
    lines.append(f"Train on these images (Neighbor2Neighbor, no noise model needed): selfrestore fit {target} "
                 f"-o model.safetensors --minutes 30")
    if noise_name and not noise_name.startswith("gauss"):
        lines.append(f"Or, with the noise model measured above (posterior mean, per-pixel uncertainty): "
                     f"selfrestore fit {target} --method laine19 --noise {noise_name} -o model.safetensors")
        a, b = ((float(v) for v in noise_name[2:].split("_")) if noise_name.startswith("pg")
                else (1 / float(noise_name[len("poisson"):]), 0.0))
        lines.append(f"Or restore now, without training, with the shipped Gaussian model through the Anscombe "
                     f"transform: selfrestore restore {target} --noise-pg {a:.3g} {b:.3g} -o restored/")
        return lines
    if sigma is not None and 5 <= sigma <= 50:
        lines.append(f"Or restore now with the shipped Gaussian model (std 5-50, level estimated per image): "
                     f"selfrestore restore {target} -o restored/")
        lines.append(f"For a posterior mean and per-pixel uncertainty: selfrestore fit {target} --method laine19 "
                     f"--noise gauss5_50 -o model.safetensors, then restore --uncertainty")
    elif sigma is not None and sigma < 2:
        lines.append("The noise is very low (below 2 on the 0-255 scale): there may be little to restore.")
    return lines


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
             f"selfrestore video {video} -o {out} --method mf2f --online{' --warp-loss l2' if shot else ''}   "
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


def run(args: argparse.Namespace) -> int:
    """Measure the noise of the images or videos and print the report and the advice (JSON with --json);
    returns 0 (unreadable inputs are warned about and skipped)."""
    from tqdm import tqdm

    from ..errors import ImageReadError, UserError
    from ..io import depth_name, json_report, list_images, read_frames, refuse_folder
    from ..noise_check import neighbour_correlation, noise_level_function, noise_sigma

    from ..video_io import is_video_file

    if args.limit < 1:
        raise UserError("--limit must be at least 1")
    if args.json and args.json != "-":
        refuse_folder(args.json)
    videos = [item for item in args.inputs if is_video_file(item) and Path(item).is_file()]
    image_inputs = [item for item in args.inputs if item not in videos]
    paths, problems = list_images(image_inputs) if image_inputs else ([], [])
    if args.json and args.json != "-":
        refuse_report_over_inputs(args.json, [*paths, *videos])
    for problem in problems:
        warn(problem)
    if not paths and not videos:
        raise UserError("no images to inspect")
    chosen = [paths[int(i)] for i in np.linspace(0, len(paths) - 1, min(args.limit, len(paths)))] if paths else []
    chosen = list(dict.fromkeys(chosen))
    rows, kinds = [], Counter()
    unreadable: set[str] = set()  # files named on the command line that the advice must not name back

    def measure(name: str, frame: np.ndarray, dtype: str, suffix: str, planes: int,
                usable: np.ndarray | None = None) -> None:
        """``usable``: the pixels to measure (the opaque ones of an image with alpha), or None for all."""
        scale = 1.0 if dtype == "float32" else 255.0  # float: the level in the data's own units, shown as is
        sigma = noise_sigma(frame, usable) if min(frame.shape[:2]) >= 2 else float("nan")
        if not np.isfinite(sigma):  # a 1-px side has no 2x2 block: "nan" in the report and invalid JSON before
            warn(f"{name}: " + ("no opaque 2x2 pixels to measure its noise on" if min(frame.shape[:2]) >= 2 else
                                f"too small to measure its noise ({frame.shape[1]}x{frame.shape[0]} px)")
                 + "; left out")
            return
        kinds[(suffix, dtype, frame.shape[2], planes)] += 1
        correlation = neighbour_correlation([frame], usable=[usable])
        level = noise_level_function(frame, usable=usable) if dtype != "float32" else None
        rows.append({"image": name, "height": frame.shape[0], "width": frame.shape[1],
                     "channels": frame.shape[2], "dtype": dtype, "planes": planes,
                     "noise_sigma": float(f"{sigma * scale:.4g}"),  # float data may be on any scale
                     "neighbour_correlation": None if correlation is None else round(correlation, 4),
                     "variance_a": level[0] if level else None, "variance_b": level[1] if level else None,
                     "float_range": [float(frame.min()), float(frame.max())] if dtype == "float32" else None})

    for path in tqdm(chosen, desc="inspect", unit="img", disable=len(chosen) < 4):
        try:
            frames, info = read_frames(path)
        except ImageReadError as exc:
            warn(str(exc))
            unreadable.add(str(path))
            continue
        middle = len(frames) // 2
        alpha = info.alpha if info.alpha is None or info.alpha.ndim == 2 else info.alpha.reshape(
            -1, *info.alpha.shape[-2:])[middle]  # a stack's alphas: the measured plane's
        usable = None if alpha is None or alpha.shape != frames[middle].shape[:2] else alpha > 0
        measure(str(path), frames[middle], info.dtype, path.suffix.lower(), len(frames), usable)
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
    unit = "in the data's units" if floats else "on the 0-255 scale"
    def say(*parts) -> None:  # the report; on stderr when the JSON goes to stdout
        print(*parts, file=sys.stderr if args.json == "-" else sys.stdout)

    what = "image(s) / video frame(s)" if videos else "image(s)"
    say(f"{len(rows)} {what} inspected" + (f" of {len(paths)}" if not videos and len(paths) > len(rows) else ""))
    for (suffix, dtype, channels, planes), count in sorted(kinds.items()):
        form = {1: "gray", 3: "colour"}.get(channels, f"{channels} channels")
        depth = depth_name(dtype)
        say(f"  {count} x {suffix} {depth} {form}" + (f", stacks of {planes} planes" if planes > 1 else ""))
    sizes = sorted({(r["width"], r["height"]) for r in rows})
    say(f"  sizes {sizes[0][0]}x{sizes[0][1]}" + (f" .. {sizes[-1][0]}x{sizes[-1][1]}" if len(sizes) > 1 else ""))
    over = "over the images" if not float_rows or floats else f"over the {len(integer_rows)} 8/16-bit images"
    number = "{:.4g}" if floats else "{:.2f}"  # float data: in its own units, whatever their scale
    low, middle, high = (number.format(v) for v in (sigmas.min(), np.median(sigmas), sigmas.max()))
    say(f"noise std {middle} {unit} (median; {low} .. {high} {over})")
    # nothing to measure: flat or noise-free images (no noise model, no method: a level of ~0 suggests neither)
    floor = NO_NOISE if any(r["dtype"] == "uint8" for r in integer_rows) else NO_NOISE / 257
    noiseless = bool(np.median(sigmas) == 0 if floats else np.median(sigmas) < floor)
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
    elif readable := [item for item in image_inputs if str(Path(item)) not in unreadable]:
        advice_lines = list(advice(None if floats else float(np.median(sigmas)), correlation, readable,
                                   noise_name=noise_name))
    for line in advice_lines:
        say(line)
    if args.json:
        report = {"images": rows, "noise_sigma_median": float(np.median(sigmas)), "noise_sigma_unit": unit,
                  "neighbour_correlation": correlation, "noise_model": noise_name, "advice": advice_lines}
        text = json_report(report)
        if args.json == "-":
            print(text)
        else:
            from ..io import atomic_path

            with atomic_path(args.json) as tmp:
                Path(tmp).write_text(text)
    return 0
