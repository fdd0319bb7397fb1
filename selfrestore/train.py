"""The generic training / fine-tuning driver. It knows nothing of any particular method.

Per step: draw a batch from the data source with a generator seeded from (seed, step), compute
``method.loss(net, batch)`` under mixed precision (bf16 autocast + channels_last on CPU, fp16/bf16 AMP on
CUDA), one Adam step with a warm-up + cosine learning-rate schedule. Every step's randomness is a pure
function of the step, and the checkpoint holds the weights and the optimizer state, so a run that is
killed and resumed ends with exactly the weights of an uninterrupted run.

Distributed data parallel: launched by ``torchrun``, every rank draws the same global batch and trains on
its own slice (gloo on CPU, nccl on GPU); only rank 0 writes checkpoints and prints.
"""
from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

from .checkpoint import (check_training_header, load_net_state, load_optimizer_state, read_checkpoint,
                         save_checkpoint, unwrap)
from .errors import Interrupted, Terminated, UserError
from .methods.base import Method
from .stop_signals import StopSignals

if TYPE_CHECKING:
    from .data.base import DataSource


@dataclass
class TrainConfig:
    steps: int = 2000
    batch_size: int = 4
    patch_size: int = 128
    #: if set, each step draws its patch side from these (batch size scaled so that a step covers about
    #: ``batch_size * patch_size**2`` pixels): a net with a receptive field wider than one fixed patch can
    #: otherwise learn to rely on where the patch borders are, and change its output on larger images
    patch_sizes: tuple[int, ...] = ()
    #: with ``patch_sizes``: False keeps ``batch_size`` patches at every side (more pixels per step)
    scale_batch: bool = True
    #: with ``patch_sizes``: train on ``patch_size`` alone until this fraction of the run (steps, or the time
    #: budget), then on the mixed sides (a short mixed tail removes a learned border reliance)
    mixed_from: float = 0.0
    lr: float = 3e-4
    warmup: float = 0.02           #: fraction of the steps with a linear ramp-up of the learning rate
    min_lr_ratio: float = 0.02     #: cosine decay ends at lr * min_lr_ratio
    ckpt_every: int = 200          #: write the checkpoint every N steps (and at the end)
    val_every: int = 0             #: validation PSNR every N steps (0: only at the end)
    seed: int = 0
    #: bf16 autocast (CPU) / bf16 AMP (CUDA); None: where the hardware computes bf16 natively (see
    #: :func:`bf16_is_native`), else fp32. Resolved when training starts; the checkpoint records the choice
    amp: bool | None = None
    device: str = "auto"
    progress: bool = True
    resume: bool = False
    grad_clip: float = 0.0
    plot: bool = True              #: write <model>.training.png at the end
    extra: dict[str, Any] = field(default_factory=dict)
    #: > 0: train for this many seconds instead of a step count (``steps`` becomes a cap) and let the
    #: learning-rate schedule follow the elapsed fraction of the budget. Timing-dependent, hence not
    #: bit-reproducible: meant for fixed-budget comparisons (benchmarks) and "train for an hour" runs.
    #: Time spent in ``on_step`` is not counted; the time already spent is stored in each checkpoint, so
    #: ``resume`` continues the same budget.
    budget_seconds: float = 0.0
    #: the budget's clock: "wall", or "cpu" (process CPU time / torch threads: a run on a shared CPU is
    #: charged for the compute it got, not for the time other jobs held the cores)
    budget_clock: str = "wall"
    #: on Ctrl-C (or SIGTERM), checkpoint at the end of the step and end with a UserError (Interrupted, or
    #: Terminated) saying how to --resume; False (a throw-away run in a temporary folder: restore / burst --adapt,
    #: demo) lets the KeyboardInterrupt through (SIGTERM keeps its default action), nothing to resume
    interrupt_checkpoint: bool = True


def learning_rate(config: TrainConfig, step: int) -> float:
    """Linear warm-up, then cosine decay from lr to lr * min_lr_ratio."""
    warm = max(1, int(config.warmup * config.steps))
    if step < warm:
        return config.lr * (step + 1) / warm
    t = (step - warm) / max(1, config.steps - warm)
    return config.lr * (config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t)))


def learning_rate_at_fraction(config: TrainConfig, fraction: float) -> float:
    """The same warm-up + cosine shape as :func:`learning_rate`, as a function of the elapsed fraction of a
    time budget."""
    if fraction < config.warmup:
        return config.lr * max(fraction, 1e-3) / config.warmup
    t = min(1.0, (fraction - config.warmup) / max(1e-9, 1 - config.warmup))
    return config.lr * (config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * t)))


def budget_clock(kind: str) -> Callable[[], float]:
    """A monotonic clock in seconds: "wall" or "cpu" (process CPU time divided by torch's thread count)."""
    if kind == "wall":
        return time.perf_counter
    if kind == "cpu":
        threads = max(1, torch.get_num_threads())
        return lambda: time.process_time() / threads
    raise ValueError(f"budget clock must be 'wall' or 'cpu', not {kind!r}")


def pick_device(name: str | torch.device = "auto", option: str = "--device") -> torch.device:
    """The torch device for ``name`` ("auto": the first CUDA GPU if there is one, else the CPU); a device
    that does not exist here is a UserError that says which ones do (torch would fail deep inside), naming the
    choice as the caller wrote it: ``option`` "--device" (the command line) or "device" (a Python argument)."""
    if isinstance(name, str) and name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    given, other = (f"--device {name}", "use --device cpu or auto") if option.startswith("-") else \
        (f"{option}={str(name)!r}", f"use {option}='cpu' or 'auto'")
    try:  # a torch.device is checked too: torch.device("cuda") on a CPU-only torch failed deep inside
        device = name if isinstance(name, torch.device) else torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise UserError(f"{given}: not a device name (use auto, cpu, cuda, cuda:1 ...)") from None
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device.type == "cuda" and (device.index or 0) >= gpus:
        have = f"{gpus} CUDA GPU(s)" if gpus else "no CUDA GPU (or a CPU-only torch)"
        raise UserError(f"{given}: this machine has {have}; {other}")
    if device.type not in ("cpu", "cuda"):
        backend = getattr(torch.backends, device.type, None)
        if backend is None or not getattr(backend, "is_available", lambda: False)():
            raise UserError(f"{given}: not available here; {other}")
    return device


def bf16_is_native(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 natively, so that bf16 autocast speeds training up: a CUDA GPU of compute
    capability 8.0 or more (Ampere on), a ROCm GPU, or a CPU with AVX512-BF16 or AMX. Elsewhere bf16 is emulated
    and slower than fp32 (a 2-core Xeon without either: 3.1-4.1x slower per step,
    ``benchmarks/results/precision_speed.md``)."""
    if device.type == "cuda":  # torch.cuda.is_bf16_supported() is True on older GPUs too: it counts emulation
        if torch.version.hip:
            return bool(torch.cuda.is_bf16_supported())
        return torch.cuda.get_device_capability(device)[0] >= 8
    if device.type != "cpu":
        return False
    cpu = getattr(torch, "cpu", None)
    return any(bool(getattr(cpu, check, lambda: False)())
               for check in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))


def amp_of(precision: str) -> bool | None:
    """The ``amp`` of a ``--precision`` choice: bf16 True, fp32 False, auto None (:func:`resolve_amp`)."""
    return {"bf16": True, "fp32": False, "auto": None}[precision]


def resolve_amp(amp: bool | None, device: torch.device) -> bool:
    """``amp`` as given, or (None: automatic) whether bf16 is native on ``device``."""
    return bf16_is_native(device) if amp is None else bool(amp)


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager[Any]:
    """A bf16 autocast context for ``device`` (a no-op context when not ``enabled``): mixed precision for training
    and inference with one switch."""
    if not enabled:
        return contextlib.nullcontext()
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", dtype=torch.bfloat16)


def step_seed(seed: int, step: int, salt: int = 0) -> int:
    """A seed that is a pure function of (seed, step, salt), so every step's randomness reproduces on resume."""
    return (int(seed) * 1_000_003 + int(step) * 7_919 + salt) % (2**63 - 1)


def step_geometry(config: TrainConfig, rng: np.random.Generator, progress: float = 1.0) -> tuple[int, int]:
    """(batch size, patch side) of one step: fixed, or drawn from ``config.patch_sizes`` with the batch
    scaled to keep the pixel count per step (at least one patch; unless ``config.scale_batch`` is off).
    ``progress``: the fraction of the run done (mixed sides only from ``config.mixed_from`` on)."""
    if not config.patch_sizes or progress < config.mixed_from:
        return config.batch_size, config.patch_size
    side = int(config.patch_sizes[int(rng.integers(len(config.patch_sizes)))])
    if not config.scale_batch:
        return config.batch_size, side
    return max(1, round(config.batch_size * (config.patch_size / side) ** 2)), side


def auto_patch_sizes(net: nn.Module, patch_size: int, largest: int | None = None,
                     multiple: int | None = None) -> tuple[int, ...]:
    """Mixed patch sides for a blind-spot net whose receptive field is wider than one patch: ``patch_size``
    to 1.5 times it in quarter steps (batches of at least 2 at the default 4 x 128 px), each rounded to
    ``multiple`` (default: the net's size multiple; pass the method's ``patch_side_multiple``, e.g. twice the
    net's for the neighbour sub-samplers, so no side breaks the method's rule) and at most ``largest``; ()
    (one size) for other nets or when one side is left."""
    if not getattr(net, "blind_spot", False) or getattr(net, "receptive_field", 0) <= patch_size:
        return ()
    multiple = multiple or getattr(net, "size_multiple", 1)
    cap = max(multiple, int(patch_size * 1.5 // multiple) * multiple)  # rounding up could pass 1.5 times (32 -> 64)
    sides = tuple(dict.fromkeys(min(cap, max(multiple, round(patch_size * f / multiple) * multiple))
                                for f in (1.0, 1.25, 1.5)))
    sides = tuple(v for v in sides if largest is None or v <= largest)
    return sides if len(sides) > 1 else ()


def _to_device(batch: Any, device: torch.device) -> Any:
    if torch.is_tensor(batch):
        out = batch.to(device, non_blocking=True)
        return out.contiguous(memory_format=torch.channels_last) if out.dim() == 4 else out
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    return batch


def _slice(batch: Any, start: int, stop: int) -> Any:
    if torch.is_tensor(batch):
        return batch[start:stop]
    if isinstance(batch, dict):
        return {k: _slice(v, start, stop) for k, v in batch.items()}
    return batch


class _Distributed:
    """torchrun environment: rank / world size, process group set-up and tear-down."""

    def __init__(self, device: torch.device):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.active = self.world > 1
        self.owned = False
        if self.active and not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
            self.owned = True

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def average_gradients(self, params: Sequence[nn.Parameter]) -> None:
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            dist.all_reduce(p.grad)
            p.grad /= self.world

    def close(self) -> None:
        """Tear the process group down before exit (gloo aborts at interpreter exit otherwise)."""
        if self.owned and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()


def validate(method: Method, net: nn.Module, pairs: Sequence[tuple[Tensor, Tensor]], device: torch.device) -> float:
    """Mean PSNR (8-bit rounded, full image) of the method's restoration of each noisy validation image."""
    from .metrics import psnr, quantize8
    from .restore import restore_tensor

    values = []
    bare = unwrap(net)
    was_training = bare.training
    bare.eval()
    for noisy, clean in pairs:
        out = restore_tensor(method, bare, noisy, device=device)
        values.append(psnr(quantize8(out[0].numpy()), clean[0].numpy()))
    bare.train(was_training)
    return float(np.mean(values))


def best_model_path(out_path: str | os.PathLike) -> Path:
    """Where a run with held-out images keeps the weights of its lowest held-out loss: ``NAME.best.safetensors``."""
    out_path = Path(out_path)
    return out_path.with_name(out_path.stem + ".best" + out_path.suffix)


def plot_path(out_path: str | os.PathLike) -> Path:
    """Where a run draws its loss curves at the end: ``NAME.training.png`` beside the model file (a folder's
    listing leaves such files out: :data:`selfrestore.file_lists.LOSS_PLOT_SUFFIX`)."""
    from .file_lists import LOSS_PLOT_SUFFIX

    return Path(out_path).with_suffix(LOSS_PLOT_SUFFIX)


def holdout_batches(source: DataSource, batch_size: int, patch_size: int, count: int = 4,
                    seed: int = 2024) -> list[dict]:
    """Fixed batches from held-out images (the same every time), for :func:`holdout_loss`."""
    rng = np.random.default_rng(seed)
    return [source.batch(rng, batch_size, patch_size) for _ in range(count)]


def holdout_loss(method: Method, net: nn.Module, batches: Sequence[dict], device: torch.device) -> float:
    """The method's own self-supervised loss on held-out images: no clean data needed, and for the
    Noise2Noise-type losses its expectation is the MSE to the clean image plus a constant, so it falls
    while the network improves and rises when it starts to fit the training images' noise. The loss's own
    randomness (masks, sub-samplers) is fixed, and schedules are taken at their end, so values compare
    across the run; the training RNG streams are left as they were."""
    bare = unwrap(net)
    was_training, progress = bare.training, getattr(method, "progress", None)
    bare.eval()
    method.progress = 1.0
    values = []
    with torch.no_grad(), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(2024)
        for batch in batches:
            values.append(float(method.loss(bare, _to_device(batch, device))))
    bare.train(was_training)
    method.progress = progress
    return float(np.mean(values))


def train(method: Method, net: nn.Module, source: DataSource, config: TrainConfig, out_path: str | os.PathLike,
          val_pairs: Sequence[tuple[Tensor, Tensor]] | None = None, meta: dict[str, Any] | None = None,
          on_step: Callable[[int, float], None] | None = None, holdout: Sequence[dict] | None = None) -> nn.Module:
    """Train ``net`` with ``method`` on batches from ``source``; checkpoints go to ``out_path``.

    ``holdout``: fixed batches of held-out images (:func:`holdout_batches`): the method's loss on them is
    recorded as ``holdout_loss`` every ``val_every`` steps (or every ``ckpt_every``) and at the end, and the
    weights of its lowest value are kept in :func:`best_model_path`."""
    if source.kind != method.batch_kind:
        raise UserError(f"method {method.name!r} needs batches of kind {method.batch_kind!r}, "
                        f"the data gives {source.kind!r}")
    device = pick_device(config.device, option="device")
    if device.type == "cuda" and device.index is None and "LOCAL_RANK" in os.environ:
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))  # torchrun: one GPU per process
        torch.cuda.set_device(device)
    ddp = _Distributed(device)
    out_path = Path(out_path)
    automatic_precision = config.amp is None
    config = replace(config, amp=resolve_amp(config.amp, device))
    torch.manual_seed(config.seed)
    net.to(device).to(memory_format=torch.channels_last).train()
    extra_modules: dict[str, nn.Module] = getattr(method, "extra_modules", lambda: {})()
    for module in extra_modules.values():
        module.to(device).train()
    # one Adam, one parameter group per network; a method may run an extra module at a multiple of the lr
    lr_scales: dict[str, float] = getattr(method, "lr_scales", {}) or {}
    groups = [{"params": list(net.parameters()), "lr_scale": 1.0}]
    groups += [{"params": list(m.parameters()), "lr_scale": float(lr_scales.get(name, 1.0))}
               for name, m in extra_modules.items()]
    groups = [g for g in groups if g["params"]]
    params = [p for g in groups for p in g["params"]]  # every trained parameter (gradient clipping)
    optimizer = torch.optim.Adam(groups, lr=config.lr, betas=(0.9, 0.99))
    history: list[dict[str, float]] = []
    start, spent_before = 0, 0.0
    if config.resume and out_path.exists():
        tensors, header = read_checkpoint(out_path)
        check_training_header(out_path, header)
        if header.get("method", {}).get("name") != method.name:
            raise UserError(f"{out_path}: was trained with method {header.get('method', {}).get('name')!r}, "
                            f"not {method.name!r}; resume with the same options or choose another -o")
        try:
            load_net_state(net, tensors)
            for name, module in extra_modules.items():
                load_net_state(module, tensors, prefix=f"extra.{name}.")
            if "optimizer" in header:
                load_optimizer_state(optimizer, tensors, header)
        except (RuntimeError, ValueError) as exc:  # another width, depth, channel count or network
            recorded = header.get("net", {})
            raise UserError(f"{out_path}: its network ({recorded.get('name')} {recorded.get('kwargs')}) does not "
                            f"match the one these options build ({str(exc).strip().splitlines()[0]}); resume "
                            f"with the same options, or choose another -o") from None
        start = int(header.get("step", 0))
        history = header.get("history", [])
        recorded_amp = (header.get("train_config") or {}).get("amp")
        if automatic_precision and isinstance(recorded_amp, bool):  # one run in one precision, not two mixed
            config = replace(config, amp=recorded_amp)
        spent_before = float(header.get("budget_spent", 0.0)) if config.budget_seconds > 0 else 0.0
        if ddp.main and config.progress and start >= config.steps:
            print(f"{out_path} is already at step {start} of {config.steps}: finished, nothing to train")
        elif ddp.main and config.progress:
            print(f"resuming {out_path} at step {start}"
                  + (f" ({spent_before / 60:.3g} of {config.budget_seconds / 60:.3g} min spent)"
                     if config.budget_seconds > 0 else f"/{config.steps}"))
    model = nn.parallel.DistributedDataParallel(net) if ddp.active else net
    channels = getattr(source, "channels", None)
    base_meta = {"method": method.config(), "channels": channels, "steps": config.steps,
                 "train_config": asdict(config), **(meta or {})}

    clock = budget_clock(config.budget_clock) if config.budget_seconds > 0 else None
    clock_start, not_counted = (clock() - spent_before if clock else 0.0), 0.0

    def spent() -> float:
        """Budget seconds used so far (this run and the runs it resumes)."""
        return clock() - clock_start - not_counted if clock else 0.0

    saved = [start if config.resume and out_path.exists() else None]  # the step the file in out_path holds

    def checkpoint(step: int) -> None:
        if ddp.main:
            extra_meta = {"budget_spent": spent()} if clock else {}
            save_checkpoint(out_path, net, {**base_meta, "step": step, "history": history, **extra_meta},
                            optimizer, extra_modules)
            saved[0] = step

    best_path = best_model_path(out_path)

    def keep_if_best(record: dict[str, float]) -> None:
        """With held-out batches: the weights of the lowest held-out loss so far go to ``best_path``."""
        earlier = [h["holdout_loss"] for h in history if "holdout_loss" in h and h is not record]
        if not earlier or record["holdout_loss"] < min(earlier) or not best_path.exists():
            save_checkpoint(best_path, net, {**base_meta, "step": record["step"],
                                             "holdout_loss": record["holdout_loss"]}, None, extra_modules)

    if holdout and ddp.main and start == 0:
        # the first best weights are written just before the first checkpoint: a kill in between must not leave
        # NAME.best without NAME (fit refuses that, even with --resume)
        checkpoint(0)
    progress = None
    if ddp.main and config.progress:
        from tqdm import tqdm

        label = config.extra.get("label", "fit")  # what the bar says the steps do ("adapt": `burst --adapt`)
        if clock:  # a time budget: the bar counts budget seconds, the postfix the steps
            progress = tqdm(total=round(config.budget_seconds), initial=round(spent_before),
                            desc=f"{label} {method.name}", unit="s", dynamic_ncols=True)
        else:
            progress = tqdm(total=config.steps, initial=start, desc=f"{label} {method.name}", unit="step",
                            dynamic_ncols=True)
    ema, t0, step = None, time.time(), start
    completed = start  # steps whose update is in the weights (what an interrupt must checkpoint)
    boundaries = StopSignals(config.interrupt_checkpoint)  # Ctrl-C / SIGTERM take effect between steps
    try:
        boundaries.install()
        for step in range(start, config.steps):
            fraction = None
            if clock is not None:
                fraction = spent() / config.budget_seconds
                if fraction >= 1.0:
                    checkpoint(step)
                    break
            rng = np.random.default_rng(step_seed(config.seed, step))
            torch.manual_seed(step_seed(config.seed, step, salt=1 + ddp.rank))
            batch_size, patch_size = step_geometry(config, rng, step / max(1, config.steps) if fraction is None
                                                   else fraction)
            global_batch = source.batch(rng, batch_size * ddp.world, patch_size)
            batch = _to_device(_slice(global_batch, ddp.rank * batch_size, (ddp.rank + 1) * batch_size), device)
            lr = learning_rate(config, step) if fraction is None else learning_rate_at_fraction(config, fraction)
            for group in optimizer.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)
            # for methods with schedules (e.g. Nb2Nb gamma)
            method.progress = step / max(1, config.steps) if fraction is None else fraction
            with autocast(device, config.amp):
                loss = method.loss(model, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if ddp.active and extra_modules:  # DDP wraps only the main net: average the extra modules' grads
                ddp.average_gradients([p for m in extra_modules.values() for p in m.parameters()])
            if config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            boundaries.defer()  # from the update on, a signal waits for the end of the step
            optimizer.step()
            completed = step + 1
            value = float(loss.detach())
            if not math.isfinite(value):
                raise UserError(f"training diverged at step {step} (loss {value}); lower --lr")
            ema = value if ema is None else 0.98 * ema + 0.02 * value
            record: dict[str, float] = {"step": step + 1, "loss": value}
            done = step + 1
            if val_pairs and ddp.main and ((config.val_every and done % config.val_every == 0)
                                           or done == config.steps):
                record["val_psnr"] = validate(method, net, val_pairs, device)
            if holdout and ddp.main and (done % (config.val_every or config.ckpt_every) == 0
                                         or done == config.steps):
                record["holdout_loss"] = holdout_loss(method, net, holdout, device)
                keep_if_best(record)
            history.append(record)
            if on_step:
                paused = clock() if clock else 0.0
                on_step(step, value)
                not_counted += (clock() - paused) if clock else 0.0
            if progress is not None:
                postfix = {"loss": f"{ema:.4g}", "lr": f"{lr:.2g}"}
                if "val_psnr" in record:
                    postfix["val"] = f"{record['val_psnr']:.2f}dB"
                if "holdout_loss" in record:
                    postfix["held-out"] = f"{record['holdout_loss']:.4g}"
                if clock:
                    postfix["step"] = str(done)
                progress.set_postfix(postfix, refresh=False)
                progress.update(min(round(spent()), progress.total) - progress.n if clock else 1)
            if done % config.ckpt_every == 0 or done == config.steps:
                checkpoint(done)
            boundaries.allow()  # a signal that came meanwhile stops the run here
    except KeyboardInterrupt:
        if not config.interrupt_checkpoint:
            raise
        stopped = Terminated if boundaries.terminated else Interrupted
        what = "terminated (SIGTERM)" if boundaries.terminated else "interrupted"
        if progress is not None:
            progress.close()
        if boundaries.abandoned:  # a second signal inside a step: its weights are not those of a whole step
            kept = (f"{out_path} keeps step {saved[0]} (continue with --resume)" if saved[0] is not None
                    else "nothing saved")
            raise stopped(f"{what} again during step {step + 1}: stopped at once; {kept}") from None
        boundaries.inside = False
        checkpoint(completed)  # keep what was learned; --resume continues from here
        raise stopped(f"{what} after step {completed}; checkpoint saved to {out_path} (continue with "
                      "--resume)") from None
    finally:
        boundaries.restore()
        if progress is not None:
            progress.close()
    if holdout and ddp.main and history and "holdout_loss" not in history[-1]:  # a time budget's last step
        history[-1]["holdout_loss"] = holdout_loss(method, net, holdout, device)
        keep_if_best(history[-1])
        checkpoint(completed)
    ddp.barrier()
    if ddp.main and config.plot and history:
        from .plot import plot_history

        plot_history(history, plot_path(out_path), title=f"{method.name} ({time.time() - t0:.0f} s)")
    ddp.close()
    return net
