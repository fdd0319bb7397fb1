"""Model files: one safetensors file holding the network weights, the optimizer state (while training)
and a JSON header (method, network, noise model, step, history). Written atomically, so a kill -9 at any
moment leaves either the previous checkpoint or the new one, never a broken file.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .atomic_files import atomic_path
from .errors import UserError, short_repr
from .registry import METHODS, NETS

if TYPE_CHECKING:
    from .methods.base import Method

FORMAT = "selfrestore-1"
WEIGHTS_DIR = Path(__file__).parent / "weights"


def build_net(name: str, **kwargs: Any) -> nn.Module:
    """Instantiate a registered network and remember how, so a checkpoint can rebuild it."""
    net = NETS.get(name)(**kwargs)
    net.registry_name = name
    net.init_kwargs = dict(kwargs)
    return net


def unwrap(net: nn.Module) -> nn.Module:
    """The bare module inside DistributedDataParallel / torch.compile wrappers."""
    while hasattr(net, "module") and isinstance(getattr(net, "module"), nn.Module):
        net = net.module
    return getattr(net, "_orig_mod", net)


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"optim.{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def save_checkpoint(path: str | os.PathLike, net: nn.Module, meta: dict[str, Any],
                    optimizer: torch.optim.Optimizer | None = None,
                    extra_modules: dict[str, nn.Module] | None = None) -> Path:
    """Write weights (+ optimizer state) and metadata to ``path`` atomically."""
    bare = unwrap(net)
    tensors = {f"net.{k}": v.detach().cpu().contiguous() for k, v in bare.state_dict().items()}
    for name, module in (extra_modules or {}).items():
        tensors.update({f"extra.{name}.{k}": v.detach().cpu().contiguous() for k, v in module.state_dict().items()})
    header = {"format": FORMAT, "net": {"name": getattr(bare, "registry_name", type(bare).__name__.lower()),
                                        "kwargs": getattr(bare, "init_kwargs", {})}, **meta}
    if optimizer is not None:
        optim_tensors, optim_meta = _optimizer_tensors(optimizer)
        tensors.update(optim_tensors)
        header["optimizer"] = optim_meta
    return _write(path, tensors, header)


def _write(path: str | os.PathLike, tensors: dict[str, torch.Tensor], header: dict[str, Any]) -> Path:
    """Tensors + JSON header to a safetensors file, atomically."""
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"selfrestore": json.dumps(header, default=_json_default)})
    return Path(path)


def _json_default(value: Any) -> Any:
    if torch.is_tensor(value):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in checkpoint metadata")


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, header) of a model file; a clear UserError for anything else."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such model file")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = json.loads((f.metadata() or {}).get("selfrestore", "{}"))
        tensors = load_file(str(path))
    except Exception as exc:
        raise UserError(f"{path}: not a selfrestore model file ({str(exc).splitlines()[0][:120]})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise UserError(f"{path}: not a selfrestore model file (no '{FORMAT}' header)")
    refuse_non_finite_weights(path, tensors)
    return tensors, header


def refuse_non_finite_weights(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """A UserError naming ``path`` when a network weight is NaN or infinite (a corrupted file, a diverged run
    saved by hand): such a model restored every image all black, exit 0, with a raw numpy warning."""
    for name, tensor in tensors.items():
        if name.startswith(("net.", "extra.")) and tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise UserError(f"{path}: damaged model file: non-finite weights ({name} holds NaN or infinity)")


def export_model(source: str | os.PathLike, target: str | os.PathLike, info: str = "",
                 half: bool = True, scores: dict[str, float] | None = None) -> Path:
    """A shippable copy of a trained model file: the optimizer state dropped, weights stored as float16
    (``half``; they are cast back to float32 on load, a relative change below 1e-3), and ``info`` (how
    it was trained: data, budget, machine) recorded for ``selfrestore models``."""
    tensors, header = read_checkpoint(source)
    kept = {k: (v.half() if half and v.is_floating_point() else v).contiguous()
            for k, v in tensors.items() if not k.startswith("optim.")}
    header = {k: v for k, v in header.items() if k != "optimizer"}
    # the per-step loss log can be megabytes of JSON: keep the validation points and the last record
    history = header.get("history") or []
    header["history"] = [r for r in history[:-1] if "val_psnr" in r] + history[-1:]
    if info:
        header["info"] = info
    if scores:  # measured by a committed benchmark, e.g. {"Kodak24 gauss25 PSNR": 30.76}; demo picks the best
        header["scores"] = {k: float(v) for k, v in scores.items()}
    return _write(target, kept, header)


def update_header(path: str | os.PathLike, **fields: Any) -> None:
    """Add or replace fields of a model file's JSON header, keeping its tensors (written atomically)."""
    tensors, header = read_checkpoint(path)
    _write(path, tensors, {**header, **fields})


def is_shipped(model: Any) -> bool:
    """Whether ``model`` names (or is the file of) a model shipped inside the package."""
    try:
        return resolve_model(model).resolve().parent == WEIGHTS_DIR.resolve()
    except Exception:  # not a model: load_model has said so already
        return False


def unfinished_training(header: dict[str, Any]) -> str | None:
    """Why a model file's training is not finished (stopped by Ctrl-C or a kill before its ``--steps`` or
    ``--minutes``: ``fit --resume`` continues it), or None for a finished run, a held-out best-weights file
    (``NAME.best``: stopped on purpose) or a file that records no plan (a shipped or exported model)."""
    config = header.get("train_config") or {}
    step, steps = header.get("step"), config.get("steps")
    if header.get("holdout_loss") is not None or not isinstance(step, int) or not isinstance(steps, int):
        return None
    budget = float(config.get("budget_seconds") or 0.0)
    if step >= steps or (budget and float(header.get("budget_spent", 0.0)) >= budget - 1.0):
        return None
    planned = f"{budget / 60:g} min ({float(header.get('budget_spent', 0.0)) / 60:.3g} spent)" if budget \
        else f"{steps} steps"
    return f"its training stopped at step {step} of a planned {planned} (fit ... --resume continues it)"


#: the header fields a resumed training run reads, and their JSON types (bool is no number here)
_TRAINING_FIELDS: dict[str, tuple[type, ...]] = {"step": (int,), "history": (list,), "method": (dict,),
                                                 "net": (dict,), "train_config": (dict,), "optimizer": (dict,),
                                                 "data_options": (dict,), "data": (list,),
                                                 "budget_spent": (int, float)}
#: the numbers of ``train_config`` that a resumed run takes as its options
_TRAINING_NUMBERS = ("steps", "budget_seconds", "val_every", "ckpt_every", "batch_size", "patch_size", "seed", "lr")


def check_training_header(path: str | os.PathLike, header: dict[str, Any]) -> None:
    """A UserError naming ``path`` when the header of a model file to resume has a field of the wrong type (a
    hand-edited ``"step": "abc"``, ``"history": "x"``, ``"method": null``): one line, as ``restore --model`` says
    of such a file, instead of a traceback deep in the training driver."""
    def number(value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    problems = [f"{key} {short_repr(header[key])}" for key, types in _TRAINING_FIELDS.items()
                if key in header and (not isinstance(header[key], types) or isinstance(header[key], bool))]
    if not problems:
        method, config, history = header.get("method"), header.get("train_config") or {}, header.get("history") or []
        if method is None or not isinstance(method.get("name"), str):
            problems.append("no method name")
        if "step" in header and header["step"] < 0:
            problems.append(f"step {header['step']}")
        problems += [f"train_config {key} is {short_repr(config[key])}" for key in _TRAINING_NUMBERS
                     if config.get(key) is not None and not number(config[key])]
        if not all(isinstance(r, dict) and "step" in r and all(number(v) for v in r.values()) for r in history):
            problems.append("history holds other records than numbers by name with a step")
    if problems:
        raise UserError(f"{path}: damaged or incompatible selfrestore model file ({'; '.join(problems)}): "
                        "it cannot be resumed; choose another -o")


def load_net_state(net: nn.Module, tensors: dict[str, torch.Tensor], prefix: str = "net.") -> None:
    """Load the weights stored under ``prefix`` in a model file's tensors into ``net`` (unwrapped from DDP),
    to rebuild a trained network or resume training it."""
    state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    unwrap(net).load_state_dict(state)


def load_optimizer_state(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                         header: dict[str, Any]) -> None:
    """Restore the Adam state saved in a model file into ``optimizer`` so a resumed run continues exactly;
    saved parameter groups are re-split to match the current ones if they were grouped differently."""
    meta = header["optimizer"]
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    for index, values in meta.get("scalars", {}).items():
        state.setdefault(int(index), {}).update(values)
    groups = meta["param_groups"]
    if len(groups) != len(optimizer.param_groups):
        # saved with another grouping of the same parameters in the same order (e.g. one group for all):
        # re-split the saved indices along the current groups, keeping each current group's lr_scale
        flat = [i for g in groups for i in g["params"]]
        base = {k: v for k, v in groups[0].items() if k != "params"}
        groups, at = [], 0
        for current in optimizer.param_groups:
            n = len(current["params"])
            groups.append({**base, "lr_scale": current.get("lr_scale", 1.0), "params": flat[at:at + n]})
            at += n
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def shipped_models() -> dict[str, Path]:
    """Pretrained models inside the package: name -> file."""
    return {p.stem: p for p in sorted(WEIGHTS_DIR.glob("*.safetensors"))}


def resolve_model(name_or_path: str | os.PathLike) -> Path:
    """A path to a model file, or the name of a shipped model (see ``selfrestore models``)."""
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise UserError(f"a model is a model file or the name of a shipped model ({', '.join(shipped_models())}), "
                        f"not {type(name_or_path).__name__}")
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = shipped_models()
    if str(name_or_path) in shipped:  # before folders: an output folder named after a model must not hide it
        return shipped[str(name_or_path)]
    known = ", ".join(shipped) or "none shipped yet"
    if path.is_dir():
        raise UserError(f"{name_or_path}: a folder, not a model file (a .safetensors file `fit` writes, or the name "
                        f"of a shipped model: {known})")
    raise UserError(f"{name_or_path}: no such model file, and not a shipped model ({known})")


def method_from_header(header: dict[str, Any]) -> Method:
    """The method a model file's header describes (its registered class, noise model and options). Raises
    KeyError / TypeError / ValueError for a header that does not describe one."""
    from .corruption import parse_corruption

    method_cfg = dict(header["method"])
    method_cls = METHODS.get(method_cfg.pop("name"))
    noise_name = method_cfg.pop("noise", None)
    return method_cls(noise=parse_corruption(noise_name) if noise_name else None, **method_cfg)


def load_model(name_or_path: str | os.PathLike, device: str | torch.device = "cpu"
               ) -> tuple[Method, nn.Module, dict[str, Any]]:
    """(method, net, header) ready for restoration; the net is in eval mode. The caller's torch random state
    is left as it was (building the net draws initial weights, which the file's then replace)."""
    path = resolve_model(name_or_path)
    tensors, header = read_checkpoint(path)
    with torch.random.fork_rng(devices=[]):  # modules are built on the CPU, drawing initial weights
        try:  # a hand-edited or truncated header: one line naming the file, not a KeyError deep in here
            net = build_net(header["net"]["name"], **header["net"]["kwargs"])
            load_net_state(net, tensors)
            method = method_from_header(header)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            detail = f"missing {exc}" if isinstance(exc, KeyError) else str(exc).splitlines()[0][:120]
            raise UserError(f"{path}: damaged or incompatible selfrestore model file ({detail})") from None
        net.to(device).eval()
        extras = {k for k in tensors if k.startswith("extra.")}
        if extras and hasattr(method, "load_extra_modules"):
            method.load_extra_modules(tensors)
    return method, net, header
