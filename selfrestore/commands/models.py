"""``selfrestore models``: the pretrained models shipped inside the package."""
from __future__ import annotations

import argparse

from ._common import add_parser


def register(sub) -> None:
    p = add_parser(sub, "models", "list the pretrained models shipped with the package",
                   "List the pretrained models shipped with selfrestore: pass a NAME to --model of "
                   "`restore`, `evaluate` or `video` instead of a file.")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..checkpoint import read_checkpoint, shipped_models

    models = shipped_models()
    if not models:
        print("no pretrained models are shipped in this version")
        return 0
    for name, path in models.items():
        _, header = read_checkpoint(path)
        method = header.get("method", {})
        info = header.get("info", "")
        print(f"{name:24s} method {method.get('name')}, noise {method.get('noise')}, "
              f"net {header['net']['name']}, {header.get('step', '?')} steps. {info}")
    return 0
