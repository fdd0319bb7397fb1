"""The ``selfrestore`` command line. Each verb lives in its own module under ``selfrestore/commands/``
and is discovered automatically: a module defines ``SUMMARY`` (its line in ``selfrestore --help``) and
``register(subparsers)``, which adds its parser and sets ``func`` to a function ``run(args) -> int`` (the exit
code)."""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys
from typing import NoReturn

from . import __version__
from .errors import Interrupted, UserError, file_system_message

DESCRIPTION = """\
Restore images and videos from corrupted data alone: train (or fine-tune) a restoration network on your
noisy / blurry data without any clean target, then restore.

typical use:
  selfrestore demo                                   # a tour in seconds on a bundled image (--train: minutes)
  selfrestore inspect noisy_dir/                     # measure the noise, get a method and a command
  selfrestore models                                 # the pretrained models shipped with the package
  selfrestore fit noisy_dir/ --method n2v -o my.safetensors
  selfrestore restore photos/ --model my.safetensors -o restored/
  selfrestore evaluate --clean clean_dir/ --noise gauss25 --model my.safetensors
"""


def command_names() -> list[str]:
    """The sub-commands: one per module of ``selfrestore/commands/``, found at run time (a new command needs no
    change here)."""
    from . import commands

    return sorted(info.name for info in pkgutil.iter_modules(commands.__path__) if not info.name.startswith("_"))


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse's parser (its sub-commands' too), whose errors are one line that points to --help: a mistyped
    value (``video --crop 0``) was answered with the 18-line usage block above the line saying what is wrong."""

    #: the help to point to, where not this parser's own: argparse reports an unknown option after a command
    #: through the top parser, whose --help does not list the command's options
    help_command: str | None = None

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (options: {self.help_command or self.prog} --help)\n")


def build_parser(command: str | None = None, summaries_only: bool = False) -> argparse.ArgumentParser:
    """The ``selfrestore`` parser with one sub-command per module of ``selfrestore/commands/``; given the
    ``command`` the user asked for, with that one only, so that ``selfrestore restore --help`` does not wait for
    what another command's options import (``fit`` gathers every method's options: torch, 2 s). With
    ``summaries_only``, each command is its one-line ``SUMMARY`` without options: enough for ``selfrestore
    --help`` and for argparse's list of choices after an unknown command."""
    parser = OneLineErrorParser(prog="selfrestore", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"selfrestore {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    names = command_names()
    if command in names:
        parser.help_command = f"selfrestore {command}"
    for name in [command] if command in names else names:  # (an unknown one: all, for argparse's choices)
        module = importlib.import_module(f"{__package__}.commands.{name}")
        if summaries_only:
            sub.add_parser(name, help=module.SUMMARY)
        else:
            module.register(sub)
    return parser


def parser_for(argv: list[str]) -> argparse.ArgumentParser:
    """The parser ``main`` needs for ``argv``: the one command named, or only the commands' summaries when no
    known command is named (``selfrestore``, ``selfrestore --help``, a misspelt command: 0.3 s instead of 2 s)."""
    first = argv[0] if argv else None
    if first in command_names():
        return build_parser(first)
    return build_parser(summaries_only=first is None or first in ("-h", "--help", "--version")
                        or not first.startswith("-"))


LOG_PROGRESS_SECONDS = 30  #: the least time between two progress updates written to a file rather than a terminal


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no stream, or a closed one
        return False


def main(argv: list[str] | None = None) -> int:
    """Run the command line on ``argv`` (default: sys.argv) and return the exit code: the command's own, 2 for a
    usage or user error, 130 when interrupted (143 for a SIGTERM that training saved its checkpoint for), 141 for
    a closed pipe, 1 when the file system refused."""
    logging.getLogger("tifffile").setLevel(logging.CRITICAL)  # raw lines on files that the commands report
    if not _is_terminal(sys.stderr):  # a log file or a batch job's output: a progress line every 30 s, not
        os.environ.setdefault("TQDM_MININTERVAL", str(LOG_PROGRESS_SECONDS))  # 10 a second (tqdm reads TQDM_*)
    try:  # Ctrl-C while the commands are imported (the first second) is an interruption too, not a traceback
        given = sys.argv[1:] if argv is None else argv
        parser = parser_for(given)
        args = parser.parse_args(given)
    except KeyboardInterrupt:
        print("selfrestore: interrupted", file=sys.stderr)
        return 130
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except Interrupted as exc:
        print(f"selfrestore {args.command}: {exc}", file=sys.stderr)
        return exc.exit_code
    except UserError as exc:
        print(f"selfrestore {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"selfrestore {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of our output went away (`selfrestore models | head -1`): quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that the interpreter's final flush does not complain
        return 141
    except OSError as exc:  # the file system said no: permissions, a missing folder, a full disk
        if os.environ.get("SELFRESTORE_DEBUG"):
            raise
        print(f"selfrestore {args.command}: error: {file_system_message(exc)} (SELFRESTORE_DEBUG=1 shows where)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
