"""The command line as Python functions, for notebooks and scripts.

Each function takes the same options as its command, written as keyword arguments (``--patch-size 96``
becomes ``patch_size=96``; a flag is ``True``, and left out when false; a list gives several values: separate
ones, or joined by commas for an option written ``S,S,...``), and goes through the very
parser and code the command uses, so the two never drift apart and every default is the command's. A
mistake raises :class:`selfrestore.errors.UserError` with the command's one-line message. A call leaves the
caller's torch random state as it was (``fit`` and ``video`` seed their own, ``--seed``).

>>> from selfrestore import api                                                   # doctest: +SKIP
>>> model = api.fit("noisy_photos/", method="laine19", noise="gauss25", minutes=10,
...                 output="photos.safetensors")                                  # doctest: +SKIP
>>> api.restore("noisy_photos/", model=model, output="restored/")                 # doctest: +SKIP

Arrays in, arrays out: :class:`selfrestore.restore.Restorer` (``Restorer(model).restore(array)``).
(The functions live here, not at the package's top level, where ``restore`` and ``video`` are modules.)
"""
from __future__ import annotations

import argparse
import contextlib
import io
import numbers
import os
from pathlib import Path
from collections.abc import Mapping
from typing import Any, Sequence

from .errors import UserError, file_system_message
from .errors import short_repr as _short

PathLike = str | os.PathLike


def command_line(verb: str, positional: Sequence[PathLike], options: dict[str, Any],
                 parser: argparse.ArgumentParser | None = None) -> list[str]:
    """The argument list of ``selfrestore VERB`` for these positional arguments and keyword options.

    Values are written ``--option=VALUE`` and the positionals go after ``--``, so that a value or a file name
    starting with ``-`` is not taken for an option; a list for an option of one value (``--patch-sizes
    S,S,...``) is joined by commas, and so is an array (numpy or torch) as its values; a flag is given when its
    value is true (a flag's value is a bool or an int: anything else, "no" say, is a UserError; True for an
    option that takes a value is one too); a key that is no option of the command is a UserError naming the
    nearest ones (never a prefix taken for an option: ``steps`` is not ``video``'s ``steps_per_frame``). A
    relative file name starting with ``-`` among an option's several values is written ``./-name``. ``parser``:
    the command line's (built here when not given), which says how each option is written."""
    import difflib

    import numpy as np

    if parser is None:
        from .cli import build_parser

        parser = build_parser(verb)
    verbs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    actions = {flag: a for a in verbs[verb]._actions for flag in a.option_strings} if verb in verbs else {}
    argv = [verb]
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        action = actions.get(flag)
        if actions and action is None:
            keys = sorted({f[2:].replace("-", "_") for f in actions if f.startswith("--")})
            near = difflib.get_close_matches(key, keys, n=3, cutoff=0.6) or [k for k in keys if k.startswith(key)]
            raise UserError(f"{verb}: no option {key}={_short(value)}"
                            + (f" (did you mean {' or '.join(near)}?)" if near else "")
                            + f"; the options: selfrestore {verb} --help")
        if isinstance(value, np.ndarray) or (hasattr(value, "tolist") and hasattr(value, "ndim")):
            value = value.tolist()  # an array (numpy, torch) as its values: noise_pg=np.array([a, b]) is two
        if isinstance(value, (bool, np.bool_)) and value and action is not None and action.nargs not in (0, "?"):
            # (steps=True gave a bare --steps, and argparse's own words)
            metavar = action.metavar or action.dest.upper()
            raise UserError(f"{key}=True: {flag} takes {'values' if isinstance(metavar, tuple) else 'a value'} "
                            f"({' '.join(metavar) if isinstance(metavar, tuple) else metavar}), not True or False")
        if action is not None and action.nargs == 0 and value is not None \
                and not isinstance(value, (bool, numbers.Integral, np.bool_)):  # quiet="no" gave the flag
            raise UserError(f"{key}={value!r}: a flag is True or False")
        if value is None or value is False or (action is not None and action.nargs == 0 and not value):
            continue
        if value is True or (action is not None and action.nargs == 0):
            argv.append(flag)
        elif isinstance(value, (list, tuple)) and (action is None or action.nargs not in (None, "?")):
            argv += [flag, *map(_not_an_option, value)]
        elif isinstance(value, (list, tuple)):
            argv.append(f"{flag}={','.join(map(str, value))}")
        else:
            argv.append(f"{flag}={value}")
    return argv + (["--", *map(str, positional)] if positional else [])


def _not_an_option(value: Any) -> str:
    """``value`` as one of an option's several values: a relative file name starting with ``-`` (``-n.png``) as
    ``./-n.png``, which argparse would otherwise take for an option; a negative number stays as it is."""
    text = os.fspath(value) if isinstance(value, os.PathLike) else str(value)
    if text.startswith("-") and not isinstance(value, numbers.Number):
        try:
            float(text)
        except ValueError:
            return os.path.join(".", text)
    return text


def _own_random_state() -> contextlib.AbstractContextManager:
    """A context that gives back the torch random state (CPU, and GPUs already in use) on leaving: commands
    seed torch for reproducible runs (``fit --seed``), which must not reseed the caller's notebook."""
    import torch

    gpus = list(range(torch.cuda.device_count())) if torch.cuda.is_available() and torch.cuda.is_initialized() else []
    return torch.random.fork_rng(devices=gpus)


def run_command(verb: str, *positional: PathLike, **options: Any) -> int:
    """Run ``selfrestore VERB`` in this process; returns its exit code (0: everything done, 1: some inputs
    failed and were reported on stderr). Bad options or data, and files that cannot be written, raise
    UserError. The torch random state is left as it was."""
    from .cli import build_parser

    for key in ("output", "model"):  # str() of anything else named a file: output=5 wrote into ./5/
        value = options.get(key)
        if value is not None and not isinstance(value, (str, os.PathLike)):
            what = "file or folder" if key == "output" else "model file or shipped model"
            raise UserError(f"{key}={_short(value)}: give a {what} name (a str or pathlib.Path), not "
                            f"{type(value).__name__}")
    parser = build_parser(verb)
    argv = command_line(verb, positional, options, parser)
    messages = io.StringIO()
    try:
        with contextlib.redirect_stderr(messages):
            args = parser.parse_args(argv)
    except SystemExit as exc:
        if exc.code in (0, None):  # --help
            return 0
        lines = [line for line in messages.getvalue().splitlines() if line.strip()]
        raise UserError(lines[-1] if lines else f"selfrestore {verb}: bad options") from None
    try:
        with _own_random_state():
            return int(args.func(args) or 0)
    except OSError as exc:  # the file system said no (a missing or read-only folder, a full disk): as the CLI
        if os.environ.get("SELFRESTORE_DEBUG"):
            raise
        raise UserError(file_system_message(exc)) from None


def _as_list(items: PathLike | Sequence[PathLike] | None) -> list[PathLike]:
    """One path, or any iterable of them, as a list (None: none); anything else is a UserError, not a
    TypeError from inside."""
    if items is None:
        return []
    if isinstance(items, (str, os.PathLike)):
        items = [items]
    if isinstance(items, (bytes, bytearray, Mapping)):  # bytes iterate as numbers, a dict as its keys
        raise UserError(f"{_short(items)}: expected a file or folder (a str or pathlib.Path), or a list of them, not "
                        f"{type(items).__name__}")
    kind = getattr(getattr(items, "dtype", None), "kind", None)  # numpy's; None for a torch tensor
    if hasattr(items, "shape") and (kind is None or kind in "biufc"):  # the image itself, not its file name
        raise UserError(f"an array of shape {tuple(items.shape)}: expected a file or folder (a str or pathlib.Path), "
                        "or a list of them; restore arrays with selfrestore.restore.Restorer(model).restore(array)")
    try:
        values = list(items)
    except TypeError:
        values = [items]
    wrong = next((v for v in values if not isinstance(v, (str, os.PathLike))), None)
    if wrong is not None:
        raise UserError(f"{_short(wrong)}: expected a file or folder (a str or pathlib.Path), or a list of them, not "
                        f"{type(wrong).__name__}")
    if any(isinstance(v, str) and not v.strip() for v in values):  # an unset variable; the CLI reads "" as "."
        raise UserError("an empty file name: give a file or folder (\".\" for the current folder)")
    return values


def fit(data: PathLike | Sequence[PathLike] = (), *, output: PathLike | None = None, **options: Any) -> Path | None:
    """Train a model on corrupted images (``selfrestore fit``); returns the model file's path.

    ``data``: image files or folders (none for methods that take theirs from ``pairs=(A, B)`` or
    ``blurry=..., noisy=...``). Options as in ``selfrestore fit --help``, e.g. ``method="laine19",
    noise="gauss25", minutes=10``. ``quiet=True`` hides the progress bar. Beside the model file the run also
    draws its loss curves (``NAME.training.png``) and, with ``holdout``, keeps ``NAME.best.safetensors``.
    (``help=True`` prints the command's help, trains nothing and returns None; ``output`` is needed otherwise.)
    """
    from .commands.fit import model_path

    run_command("fit", *_as_list(data), output=output, **options)
    return None if options.get("help") else model_path(output)


def restore(inputs: PathLike | Sequence[PathLike] = (), *, output: PathLike, model: PathLike | None = None,
            **options: Any) -> int:
    """Restore image files or folders into ``output`` (a folder, or a file name for one input) with a model
    file or shipped model name (``selfrestore restore``; None: the command's default shipped model). Returns
    0, or 1 when some inputs failed (each reported on stderr; the others were restored)."""
    return run_command("restore", *_as_list(inputs), model=model, output=output, **options)


def video(source: PathLike, *, output: PathLike, **options: Any) -> int:
    """Fine-tune a denoiser on one noisy video and restore it (``selfrestore video``): ``method="f2f"`` or
    ``"mf2f"``, ``offline=True`` for several passes first."""
    if isinstance(source, (list, tuple)) or len(sources := _as_list(source)) != 1:
        raise UserError(f"{_short(source)}: give one video (a file, a folder of frames or a frame pattern such as "
                        "frames/%05d.png)" + (", not a list" if isinstance(source, (list, tuple)) else ""))
    return run_command("video", *sources, output=output, **options)


def burst(frames: PathLike | Sequence[PathLike], *, output: PathLike, **options: Any) -> int:
    """Restore the reference frame of a burst (``selfrestore burst``): ``task="demosaic"`` or ``"superres"``."""
    return run_command("burst", *_as_list(frames), output=output, **options)


def _report(verb: str, positional: Sequence[PathLike], options: dict[str, Any]) -> dict[str, Any]:
    """Run a command that can write a JSON report and return that report as a dict. The report also goes
    to ``json=FILE`` when the caller names one; otherwise to a temporary file, removed afterwards
    (``json="-"`` prints it, as the command does, and is returned too)."""
    import json
    import tempfile

    wanted = options.pop("json", None)
    if wanted not in (None, False, "-") and not isinstance(wanted, (str, os.PathLike)):
        raise UserError(f"json={wanted!r}: give a file name (or leave it out: the report is returned)")
    with tempfile.TemporaryDirectory(prefix="selfrestore-report-") as folder:
        target = Path(folder) / "report.json" if wanted in (None, False, "-") else Path(wanted)
        code = run_command(verb, *positional, json=str(target), **options)
        if not target.is_file():  # help=True: nothing measured
            return {"exit_code": code}
        report = json.loads(target.read_text())
        if wanted == "-":
            print(json.dumps(report, indent=2))
    report["exit_code"] = code  # 1: some inputs could not be read (each reported on stderr)
    return report


def evaluate(clean: PathLike | Sequence[PathLike], *, model: PathLike, noise: str,
             **options: Any) -> dict[str, Any]:
    """Corrupt clean images with ``noise``, restore them and measure PSNR / SSIM (``selfrestore evaluate``).

    Returns the report: ``report["mean"]["psnr"]``, ``["ssim"]``, ``["psnr_noisy"]`` (and LPIPS / NIQE with
    ``perceptual=...``), ``report["images"]`` one dict per image, ``report["exit_code"]`` (1: some images
    were skipped). ``json="report.json"`` also writes it to a file. The scores are printed as well (per image and
    their mean, on stdout) unless ``quiet=True``."""
    return _report("evaluate", (), {"clean": _as_list(clean), "model": model, "noise": noise, **options})


def inspect(inputs: PathLike | Sequence[PathLike], **options: Any) -> dict[str, Any]:
    """Measure the noise of images or videos and say which method and command suit them (``selfrestore
    inspect``; the report is printed as well).

    Returns the measurements: ``report["noise_sigma_median"]`` (with its ``noise_sigma_unit``),
    ``report["noise_model"]`` (e.g. ``"gauss25"`` or ``"pg0.004_0.02"``; None for float data),
    ``report["neighbour_correlation"]``, ``report["advice"]`` (the suggested commands, as printed) and
    ``report["images"]`` (one dict per image or video frame). ``json="report.json"`` also writes it."""
    return _report("inspect", _as_list(inputs), options)


def models(names: PathLike | Sequence[PathLike] = (), **options: Any) -> int:
    """List the shipped models, or describe model files or shipped names, on stdout (``selfrestore models``)."""
    return run_command("models", *_as_list(names), **options)


def demo(**options: Any) -> int:
    """A tour on a bundled image (``selfrestore demo``): writes noisy / restored images into ``output``
    (default ``selfrestore-demo`` in the current folder); ``train=True`` trains a model first."""
    return run_command("demo", **options)
