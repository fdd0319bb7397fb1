"""The command line as Python functions, for notebooks and scripts.

Each function takes the same options as its command, written as keyword arguments (``--patch-size 96``
becomes ``patch_size=96``; a flag is ``True``; a list gives several values), and goes through the very
parser and code the command uses, so the two never drift apart and every default is the command's. A
mistake raises :class:`selfrestore.errors.UserError` with the command's one-line message.

>>> from selfrestore import api                                                   # doctest: +SKIP
>>> model = api.fit("noisy_photos/", method="laine19", noise="gauss25", minutes=10,
...                 output="photos.safetensors")                                  # doctest: +SKIP
>>> api.restore("noisy_photos/", model=model, output="restored/")                 # doctest: +SKIP

Arrays in, arrays out: :class:`selfrestore.restore.Restorer` (``Restorer(model).restore(array)``).
(The functions live here, not at the package's top level, where ``restore`` and ``video`` are modules.)
"""
from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Any, Sequence

from .errors import UserError

PathLike = str | os.PathLike


def command_line(verb: str, positional: Sequence[PathLike], options: dict[str, Any]) -> list[str]:
    """The argument list of ``selfrestore VERB`` for these positional arguments and keyword options."""
    argv = [verb, *map(str, positional)]
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            argv.append(flag)
        elif isinstance(value, (list, tuple)):
            argv += [flag, *map(str, value)]
        else:
            argv += [flag, str(value)]
    return argv


def run_command(verb: str, *positional: PathLike, **options: Any) -> int:
    """Run ``selfrestore VERB`` in this process; returns its exit code (0: everything done, 1: some inputs
    failed and were reported on stderr). Bad options or data raise UserError."""
    from .cli import build_parser

    argv = command_line(verb, positional, options)
    messages = io.StringIO()
    try:
        with contextlib.redirect_stderr(messages):
            args = build_parser().parse_args(argv)
    except SystemExit as exc:
        if exc.code in (0, None):  # --help
            return 0
        lines = [line for line in messages.getvalue().splitlines() if line.strip()]
        raise UserError(lines[-1] if lines else f"selfrestore {verb}: bad options") from None
    return int(args.func(args) or 0)


def _as_list(items: PathLike | Sequence[PathLike]) -> list[PathLike]:
    return [items] if isinstance(items, (str, os.PathLike)) else list(items)


def fit(data: PathLike | Sequence[PathLike] = (), *, output: PathLike, **options: Any) -> Path:
    """Train a model on corrupted images (``selfrestore fit``); returns the model file's path.

    ``data``: image files or folders (none for methods that take theirs from ``pairs=(A, B)`` or
    ``blurry=..., noisy=...``). Options as in ``selfrestore fit --help``, e.g. ``method="laine19",
    noise="gauss25", minutes=10``. ``quiet=True`` hides the progress bar.
    """
    from .commands.fit import model_path

    run_command("fit", *_as_list(data), output=output, **options)
    return model_path(output)


def restore(inputs: PathLike | Sequence[PathLike] = (), *, model: PathLike, output: PathLike, **options: Any) -> int:
    """Restore image files or folders into ``output`` (a folder, or a file name for one input) with a model
    file or shipped model name (``selfrestore restore``). Returns 0, or 1 when some inputs failed (each
    reported on stderr; the others were restored)."""
    return run_command("restore", *_as_list(inputs), model=model, output=output, **options)


def video(source: PathLike, *, output: PathLike, **options: Any) -> int:
    """Fine-tune a denoiser on one noisy video and restore it (``selfrestore video``): ``method="f2f"`` or
    ``"mf2f"``, ``offline=True`` for several passes first."""
    return run_command("video", source, output=output, **options)


def burst(frames: PathLike | Sequence[PathLike], *, output: PathLike, **options: Any) -> int:
    """Restore the reference frame of a burst (``selfrestore burst``): ``task="demosaic"`` or ``"superres"``."""
    return run_command("burst", *_as_list(frames), output=output, **options)


def evaluate(clean: PathLike | Sequence[PathLike], *, model: PathLike, noise: str, **options: Any) -> int:
    """Corrupt clean images with ``noise``, restore them and print PSNR / SSIM (``selfrestore evaluate``);
    ``json="report.json"`` also writes the numbers."""
    return run_command("evaluate", clean=_as_list(clean), model=model, noise=noise, **options)


def inspect(inputs: PathLike | Sequence[PathLike], **options: Any) -> int:
    """Measure the noise of images and print which method and command suit them (``selfrestore inspect``);
    ``json="report.json"`` also writes the measurements."""
    return run_command("inspect", *_as_list(inputs), **options)
