"""Helpers shared by the command-line verbs."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

if TYPE_CHECKING:
    import torch


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Show defaults and keep the hand-written line breaks of descriptions and epilogs.

    A default is shown only when it says something: not for None / False (an option left out, a flag off),
    and not where the help text already states it. Compared by identity: ``0 in (None, False)`` is true in
    Python, which hid every default of 0 (a seed, a limit, an automatic tile size)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default is None or action.default is False or "default" in text.lower():
            return text
        return super()._get_help_string(action)


def add_parser(sub: argparse._SubParsersAction, name: str, help: str, description: str,
               epilog: str = "") -> argparse.ArgumentParser:
    """Add a command's parser to the CLI's subparsers, with the shared help formatting (defaults shown). Options
    are taken only as written in full: argparse's prefix matching read ``video --steps 5`` as ``--steps-per-frame``
    and ``--noise-s 12`` as ``--noise-sigma``, where a misspelt option should be an error."""
    return sub.add_parser(name, help=help, description=description, epilog=epilog, formatter_class=HelpFormatter,
                          allow_abbrev=False)


def warn(message: str) -> None:
    """Print a warning on stderr, prefixed with ``selfrestore:``, so it stays out of piped output; on a line of
    its own above any progress bar (tqdm.write: printed into the bar, it was glued to the bar's line)."""
    from tqdm import tqdm

    tqdm.write(f"selfrestore: {message}", file=sys.stderr)


def command_device(name: str) -> "torch.device":
    """--device as a torch device; one that is not here is a UserError in the command's words (``--device
    cuda:7: ...``; torch is imported here, not for --help)."""
    from ..train import pick_device

    return pick_device(name)


#: image formats that hold 8 bits per channel: a deeper input written to one loses depth, and is said to
EIGHT_BIT_SUFFIXES = (".jpg", ".jpeg", ".webp", ".bmp")


def say_if_depth_lost(target: Path, dtype: str, source: object) -> None:
    """Warn when ``source``, of a pixel type ``dtype`` deeper than 8 bits, goes to ``target``, a format of 8
    bits per channel: outputs keep the input's bit depth where the format can hold it, and say so where not."""
    from ..io import depth_name

    if dtype != "uint8" and target.suffix.lower() in EIGHT_BIT_SUFFIXES:
        warn(f"{target}: {target.suffix} holds 8 bits per channel; the {depth_name(dtype)} {source} is written "
             "with 8 (choose .png or .tif to keep its depth)")


def say_if_unfinished(model: object, header: dict) -> None:
    """Warn when the model file's training was stopped before its end (Ctrl-C, a kill): it is used as it is,
    but it is not the model its run was to make (:func:`selfrestore.checkpoint.unfinished_training`)."""
    from ..checkpoint import unfinished_training

    if unfinished := unfinished_training(header):
        warn(f"{model}: {unfinished}")


def json_report(report: Any) -> str:
    """``report`` as indented, standard JSON: a non-finite number (the PSNR of an exact restoration is
    infinite) becomes null, where ``json.dumps`` writes Infinity / NaN that other readers refuse."""
    import json
    import math

    def finite(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {key: finite(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [finite(item) for item in value]
        return value

    return json.dumps(finite(report), indent=2, allow_nan=False)


def refuse_report_over_inputs(report: str | os.PathLike, inputs: Iterable[str | os.PathLike],
                               option: str = "--json") -> None:
    """A one-line UserError, before any work, when the report file ``report`` is one of the ``inputs`` (the
    input files, a folder's images included; any spelling of the same directory entry counts: relative, through
    a symlinked folder; a hard link is another entry, which the atomic write leaves whole) or is named like an
    image or video: the report would overwrite an input, or lie where a later run reads images."""
    from ..errors import UserError
    from ..io import IMAGE_SUFFIXES, VIDEO_SUFFIXES

    item = same_entry_finder(inputs)(report)
    if item is not None:
        raise UserError(f"{option} {report}: this is the input {item}; writing the report there would "
                        f"overwrite it (give another file name, e.g. report.json)")
    if Path(report).suffix.lower() in IMAGE_SUFFIXES + VIDEO_SUFFIXES:
        raise UserError(f"{option} {report}: an image or video file name; the report is JSON (give e.g. "
                        f"report.json)")


def same_entry_finder(candidates: Iterable[str | os.PathLike]) -> Callable[[str | os.PathLike], Path | None]:
    """A function that tells which of ``candidates`` (e.g. a command's inputs) a path is: the first that is the
    same directory entry (:func:`selfrestore.file_lists.same_entry`: the same resolved name, or the same folder and name
    however reached: a symlinked folder, a bind mount, ``..``); None for none of them. A hard link of a
    candidate is none of them: outputs are written atomically (a new file renamed over the name), which leaves
    the candidate's bytes whole under its own name. Each candidate is looked at once, so checking every output
    of a long video stays cheap."""
    from ..file_lists import entry_identity, folded_entry, resolved, same_entry

    by_name: dict[Path, Path] = {}
    by_entry: dict[tuple[int, int, str], list[Path]] = {}
    for item in candidates:
        item = Path(item)
        by_name.setdefault(resolved(item, loop_ok=True), item)  # a looping input: unreadable, reported as such
        identity = entry_identity(item)
        if identity is not None:
            by_entry.setdefault(folded_entry(identity), []).append(item)

    def find(path: str | os.PathLike) -> Path | None:
        found = by_name.get(resolved(path))  # a looping output name: refused, naming it
        if found is None and by_entry:
            identity = entry_identity(path)
            near = [] if identity is None else by_entry.get(folded_entry(identity), [])
            found = next((item for item in near if same_entry(path, item)), None)
        return found

    return find


def _number(text: str, kind: type, least: float, what: str, above: bool = False) -> int | float:
    """``text`` as a finite ``kind`` of at least (``above``: more than) ``least``; else an argparse error,
    which the command line prints as one usage line."""
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    if not ((least < value) if above else (least <= value)) or not value < float("inf"):  # NaN fails too
        raise argparse.ArgumentTypeError(f"{text}: must be {'above' if above else 'at least'} {least}")
    return value


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1 (a batch size, a crop side)."""
    return _number(text, int, 1, "a whole number")


def count(text: str) -> int:
    """argparse type: a whole number of at least 0 (a seed; video steps or passes, where 0 restores with the
    start model as it is)."""
    return _number(text, int, 0, "a whole number")


def positive_float(text: str) -> float:
    """argparse type: a finite number above 0 (a learning rate)."""
    return _number(text, float, 0, "a number", above=True)


def tile_size(text: str) -> int:
    """argparse type of ``--tile``: 0 (automatic) or a side of at least MIN_TILE pixels (smaller tiles would
    spend nearly all their time on the context margin each one carries)."""
    from ..restore import MIN_TILE

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of pixels") from None
    if value != 0 and value < MIN_TILE:
        raise argparse.ArgumentTypeError(f"{value}: use 0 (automatic) or a tile of at least {MIN_TILE} pixels")
    return value


def add_tile_context(group: argparse._ArgumentGroup, help: str) -> None:
    """Add ``--tile-context`` (restore.TILE_CONTEXTS, spelled out here: this module does not import torch)."""
    group.add_argument("--tile-context", choices=["auto", "full"], default="auto", help=help)


def add_runtime_options(parser: argparse.ArgumentParser) -> None:
    """Add the shared inference options (--tile, --subsample, --ensemble, --precision, --device) to a parser."""
    group = parser.add_argument_group("inference")
    group.add_argument("--tile", type=tile_size, default=0,
                       help="tile size in pixels (0: automatic, whole image up to 1.5 MP, else tiles that with "
                            "their context are at most about 1.5 MP, evened out over the image: up to 704 px for "
                            "the blind-spot nets); peak memory grows with it")
    add_tile_context(group, "the context each tile carries: auto (default) at most 128 px (blind-spot nets "
                     "256); full the network's whole receptive field (U-Nets 224 px, blind-spot nets 384; the "
                     "others are under 128), so that the result does not depend on --tile, at about 1.4x the time "
                     "when the image is tiled (with --tile 0: over 1.5 MP). What auto changes: "
                     "benchmarks/results/tile_context.md")
    group.add_argument("--subsample", type=int, choices=(1, 2), default=1, metavar="{1,2}",
                       help="2: restore the image's four half-size sub-images (every other pixel) apart and "
                            "interleave them: for strong noise spread over neighbouring pixels (demosaicked or "
                            "smoothed: `selfrestore inspect` measures the correlation), which a blind-spot model "
                            "otherwise keeps; costs fine detail. With the default model: +1.4 / +1.75 dB on strong "
                            "box-filtered / demosaicked noise, +0.16 on weaker demosaicked noise, nothing on JPEG'd "
                            "noise, -2 to -4 dB on white noise and clean images; unet-gauss25 lost in all but one "
                            "case (benchmarks/results/subsample_correlated.md). 1 (default): the image as it is")
    group.add_argument("--ensemble", action="store_true",
                       help="average over the 8 flips/rotations (9x slower; unet-gauss25 on Kodak24, sigma 25: "
                            "+0.08 dB)")
    group.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                       help="bf16 was 1.5-1.75x faster for the shipped models on a CPU with AVX512-BF16, at a "
                            "small accuracy cost (sigma 25: 0.004-0.015 dB PSNR); on CPUs without it bf16 is "
                            "emulated and slower than fp32; keep fp32 for 16-bit or float data")
    group.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ...")

