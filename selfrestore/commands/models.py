"""``selfrestore models``: the pretrained models shipped inside the package, or what a model file holds."""
from __future__ import annotations

import argparse

from ._common import add_parser

EPILOG = """\
examples:
  selfrestore models                         # the shipped models, one line each
  selfrestore models photos.safetensors      # how a model file was trained: method, net, data, budget, checks
"""

SUMMARY = "list the shipped models, or describe model files"  # its line in `selfrestore --help`


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `selfrestore models` command to the CLI's subparsers."""
    p = add_parser(sub, "models", SUMMARY,
                   "List the pretrained models shipped with selfrestore (pass a NAME instead of a file to --model\n"
                   "of `restore`, `evaluate`, `video` or `burst`, or to `fit --init`), or describe the given model "
                   "files.", EPILOG)
    p.add_argument("models", nargs="*", metavar="MODEL", help="model files (or shipped names) to describe")
    p.set_defaults(func=run)


def describe(header: dict) -> list[str]:
    """Readable lines about one model file's header: what it restores and how it was trained."""
    method = dict(header.get("method", {}))
    name, noise = method.pop("name", "?"), method.pop("noise", None)
    net = header.get("net", {})
    kwargs = net.get("kwargs", {})
    cfg = header.get("train_config", {})
    options = ", ".join(f"{k} {v}" for k, v in method.items())
    if _restore_estimates_level(header):  # over a range of levels: known in training only
        options = options.replace("noise_level known", "noise_level known in training, estimated per image when "
                                  "restoring")
    lines = [f"method   {name}" + (f" ({options})" if method else ""),
             f"noise    {noise or _noise_when_not_given(name)}",
             f"network  {net.get('name', '?')} " + ", ".join(f"{k} {v}" for k, v in kwargs.items()),
             f"channels {header.get('channels', '?')}"]
    if cfg:
        budget = (f"{cfg['budget_seconds'] / 60:g} min budget, " if cfg.get("budget_seconds") else "")
        sides = cfg.get("patch_sizes") or [cfg.get("patch_size")]
        lines.append(f"training {header.get('step', '?')} steps ({budget}batch {cfg.get('batch_size')}, patch "
                     f"{'/'.join(map(str, sides))} px, lr {cfg.get('lr')}, seed {cfg.get('seed')})")
        from ..checkpoint import unfinished_training

        unfinished = unfinished_training(header)
        if unfinished:  # Ctrl-C or a kill: the file is usable, but not the model the run was to make
            lines.append(f"status   UNFINISHED: {unfinished}")
    if header.get("data"):
        kind = _data_kind(name, bool(header.get("synthetic")), len(header["data"]))
        if header.get("redraw"):  # --redraw: not corrupted once
            kind = kind.replace(" corrupted once", " corrupted afresh every batch (--redraw)")
        lines.append(f"data     {', '.join(map(str, header['data']))} ({kind})")
    defaults = _data_option_defaults(name)
    given = {k: v for k, v in (header.get("data_options") or {}).items()
             if v not in (None, False, "", []) and v != defaults.get(k)}
    if given:  # a blurry+noisy or deblurring run's own data options (folders, kernels, misalignment ...)
        lines.append("data     " + ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in given.items()))
    if header.get("holdout"):
        lines.append(f"holdout  {header['holdout']:g} of the images held out for the loss curve")
    if header.get("intensity"):
        low, span = header["intensity"]["offset"], header["intensity"]["scale"]
        lines.append(f"values   float data {low:.4g} .. {low + span:.4g} mapped to [0, 1] (restoring maps alike)")
    if header.get("init"):
        lines.append(f"started  from {header['init']}")
    history = header.get("history") or []
    if history and "loss" in history[-1]:
        lines.append(f"loss     {history[-1]['loss']:.4g} at step {history[-1].get('step', '?')}")
    check = header.get("size_check")
    if check and "skipped" in check:
        lines.append(f"checks   size check skipped: {check['skipped']}")
    elif check:
        verdict = "passed" if check["drift"] <= check["limit"] else "FAILED (restore whole images with care)"
        lines.append(f"checks   size check {verdict}: drift {check['drift']} (limit {check['limit']}, "
                     f"{check['side']} px crops)")
    noise = header.get("noise_check")
    if noise:
        verdict = ("independent" if noise["neighbour_correlation"] <= noise["limit"] else
                   "CORRELATED between neighbours (this method keeps such noise)")
        lines.append(f"checks   training noise {verdict}: neighbour correlation {noise['neighbour_correlation']} "
                     f"(limit {noise['limit']})")
    if header.get("scores"):
        lines.append(f"scored   {scores_text(header['scores'])}")
    if header.get("info"):
        lines.append(f"notes    {header['info']}")
    return lines


def _restore_estimates_level(header: dict) -> bool:
    """Whether the header's method estimates each image's noise level when restoring (``restore_estimates_level``:
    Laine19 over a range of levels); False for a method this version cannot build."""
    from ..checkpoint import method_from_header
    from ..errors import UserError

    try:
        return bool(getattr(method_from_header(header), "restore_estimates_level", False))
    except (KeyError, TypeError, ValueError, UserError):
        return False


def _noise_when_not_given(method: str) -> str:
    from ..methods.base import Method
    from ..registry import METHODS

    found = METHODS.get(method) if method in METHODS else Method  # (a model of a method this version lacks)
    return found.noise_when_not_given


def scores_text(scores: dict) -> str:
    """The scores a shipped model records (``scripts/export_model.py --score``, measured by a committed
    benchmark named in its notes), on one line: ``Kodak24 gauss25 PSNR 31.55; ...``."""
    def number(value: object) -> str:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return str(value)
        return f"{value:.2f}" if abs(value) >= 1 else f"{value:.4f}"  # dB to 0.01, SSIM / LPIPS to 1e-4

    return "; ".join(f"{name} {number(value)}" for name, value in scores.items())


def run(args: argparse.Namespace) -> int:
    """List the shipped models, or describe the given model files, on stdout; returns 0."""
    from ..checkpoint import read_checkpoint, resolve_model, shipped_models
    from ..errors import UserError

    if args.models:
        for i, model in enumerate(args.models):
            path = resolve_model(model)
            _, header = read_checkpoint(path)
            try:  # a hand-edited or damaged header: one line, as restore says it
                lines = describe(header)
            except (AttributeError, KeyError, OverflowError, TypeError, ValueError) as exc:
                raise UserError(f"{path}: damaged or incompatible selfrestore model file "
                                f"({str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__})") from None
            print(("\n" if i else "") + f"{model}:")
            for line in lines:
                print(f"  {line}")
        return 0
    models = shipped_models()
    if not models:
        print("no pretrained models are shipped in this version")
        return 0
    for name, path in models.items():
        _, header = read_checkpoint(path)
        method = header.get("method", {})
        info = header.get("info", "")
        noise = f"noise {method['noise']}, " if method.get("noise") else ""
        scored = f"Scored: {scores_text(header['scores'])}. " if header.get("scores") else ""
        print(f"{name:24s} method {method.get('name')}, {noise}net {header['net']['name']}, "
              f"{header.get('step', '?')} steps. {scored}{info}".rstrip())
    return 0


def _data_option_defaults(method: str) -> dict:
    """The defaults of ``method``'s data options (what a model file need not show); {} if it is unknown."""
    from ..registry import METHODS

    try:
        return {k: v.get("default") for k, v in METHODS.get(method).data_options.items()}
    except Exception:  # a model of a method this version lacks: show everything recorded
        return {}


def _data_kind(method: str, synthetic: bool, folders: int) -> str:
    """What a model's recorded DATA / --pairs folders held, in words."""
    from ..registry import METHODS

    try:
        kind = METHODS.get(method).batch_kind
    except Exception:  # a model of a method this version lacks
        kind = None
    if kind == "blurry":
        return "sharp images blurred here" if synthetic else "(blurry, sharp) pairs"
    if synthetic:
        return "clean images corrupted once"
    return "pairs of noisy shots" if kind == "pair" and folders == 2 else "noisy images"
