"""Fine-tune a pretrained denoiser on one noisy video (F2F / MF2F) and restore it, online or offline.

* **online**: frames are read as a stream; when frame t arrives (plus the few future frames the network's
  input stack needs), the flow between frames t-1 and t is estimated, the network takes
  ``steps_per_frame`` Adam steps on the warped loss of frame t against the noisy frame t-1, and then
  restores frame t, which is written at once. Nothing but a small window of frames is kept in memory.
  With a ``checkpoint`` path, the state after the last written frame (weights, Adam, random generators,
  that frame's restoration, which the next flow needs) is saved at most every ``checkpoint_seconds`` and
  when Ctrl-C stops the run (after the frame in hand: :func:`stop_after_frame`); a
  rerun with the same settings reads past the frames already written, tells the sink to skip them, and
  ends with exactly the frames of an uninterrupted run (the sink must be able to skip: frame files can,
  a video file being encoded cannot).
* **offline**: all frames are pre-denoised by the starting network, the flows between all consecutive
  frames (both directions) are estimated once, and the network is fine-tuned for ``passes`` passes over
  the video (targets t-1 and t+1; the learning rate decays by half a cosine over all of them unless
  ``lr_schedule="constant"``) before every frame is restored with the final weights. With a
  ``checkpoint`` path, the fine-tuning state (weights, Adam, random generators, pass and position) is
  saved atomically at most every ``checkpoint_seconds`` and at Ctrl-C (after the frame in hand); a rerun
  with the same settings continues from
  it and ends with exactly the weights of an uninterrupted run. The caller removes the file once the
  restored video is safely written (the command line does).

Flow is computed on the frames pre-denoised by the current network (``flow_on="denoised"``, best, DIS
"medium" preset) or on the noisy frames (``"noisy"``, saves one network pass per frame in online mode;
DIS "noisy" preset), never on clean frames. The warped loss keeps the pixels whose warped pre-denoised frame
matches the target (the residual test; the default on denoised frames) and, with ``occlusion_test=
"consistency"`` (always on noisy frames), only those whose flow also passes the forward-backward check, which
drops flat areas (snow, sky) where flow is ill-defined but harmless (benchmarks/results/video_masks_f2f.md).
Training steps use random crops (``crop`` px) of the frame, because a full-frame backward pass is far too
slow on a CPU; pixels whose warp source falls outside the crop are masked out like occlusions.
"""
from __future__ import annotations

import contextlib
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Protocol, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from .errors import Interrupted, ResumeRefused, Terminated, UserError
from .stop_signals import StopSignals
from .flow import FlowEstimator, flow_to_tensor, inside_mask, occlusion_mask
from .methods.base import Method
from .restore import restore_array
from .train import autocast, pick_device, resolve_amp


@dataclass
class VideoConfig:
    mode: str = "online"              #: "online" or "offline"
    steps_per_frame: int = 5          #: Adam steps per frame (online) or per frame and pass (offline)
    passes: int = 3                   #: offline passes over the video
    lr: float = 5e-5
    #: offline learning-rate schedule over all passes: "cosine" (decays to 0 at the last step, so the final
    #: weights are not a snapshot of a noisy constant-rate walk) or "constant"; online always constant
    lr_schedule: str = "cosine"
    crop: int = 128                   #: training crop size (rounded down to the net's size multiple)
    batch_size: int = 2               #: crops per step
    flow_method: str = "dis"
    flow_on: str = "denoised"         #: "denoised" or "noisy"
    flow_preset: str | None = None    #: DIS preset; None: "medium" on denoised frames, "noisy" on noisy ones
    residual_threshold: float | None = 0.05  #: occlusion test on pre-denoised frames (None: off)
    residual_relative: float | None = 2.5    #: ... or below this times the frame's median residual
    #: which pixels the warped loss keeps: "consistency" (forward-backward flow check and the residual test),
    #: "residual" (the residual test alone: in flat areas flow is ill-defined and fails the consistency
    #: check although the warped frame matches; needs flow on denoised frames) or "auto" (residual when
    #: flow is on denoised frames, else consistency)
    occlusion_test: str = "auto"
    amp: bool | None = None           #: bf16 autocast for fine-tuning (None: where bf16 is native)
    #: bf16 for restoring the frames too (fp32 by default: bf16 keeps about 8 bits, less than 16-bit or float
    #: frames hold; `video --precision bf16` asks for it on 8-bit frames)
    amp_inference: bool = False
    tile: int = 1024
    tile_context: str = "auto"        #: the context each tile carries (restore.tile_margin)
    seed: int = 0
    progress: bool = True
    checkpoint: str | None = None     #: save the fine-tuning state here (and resume from it)
    checkpoint_seconds: float = 60.0  #: ... at most this often (0: after every frame)
    resume_key: str = ""              #: what else must match to resume (the command line: input and model)
    #: the run replaces an older video (`--overwrite`): saved in the resume state, so that its resume deletes
    #: the older video's extra frames as the run would have
    overwrite: bool = False


#: settings that must match for a checkpoint to be resumed (the others do not change the weights); the
#: occlusion test is matched as resolved (:func:`occlusion_test`), not as given
_RESUME_KEYS = ("steps_per_frame", "passes", "lr", "lr_schedule", "crop", "batch_size", "flow_method",
                "flow_on", "flow_preset", "residual_threshold", "residual_relative", "amp", "seed", "resume_key")

#: how the `video` command's user knows each resume setting (named in the refusal of a changed one)
SETTING_NAMES = {"steps_per_frame": "--steps-per-frame", "passes": "--passes", "lr": "--lr",
                 "lr_schedule": "--lr-schedule", "crop": "--crop", "batch_size": "--batch-size",
                 "flow_method": "--flow", "flow_on": "--flow-on", "flow_preset": "--flow-preset",
                 "residual_threshold": "the occlusion thresholds", "residual_relative": "the occlusion thresholds",
                 "occlusion_test": "--occlusion-test", "amp": "--precision", "seed": "--seed",
                 "resume_key": "the input or --model", "method": "--method or --warp-loss",
                 "mode": "--online / --offline", "frames": "the video's frame count", "shape": "the frame size"}


@dataclass
class VideoStats:
    frames: int = 0                   #: frames restored by this run
    resumed: int = 0                  #: frames an interrupted run had written (online --resume): not in frames
    seconds: float = 0.0
    losses: list[float] = field(default_factory=list)
    valid_fraction: list[float] = field(default_factory=list)   #: mean occlusion mask per aligned pair
    frame_seconds: list[float] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("nan")


def residual_test_possible(config: VideoConfig) -> bool:
    """The warping-residual test needs pre-denoised frames (on noisy ones every pixel differs)."""
    return config.flow_on == "denoised" and config.residual_threshold is not None


def occlusion_test(config: VideoConfig) -> str:
    """The occlusion test in use: ``auto`` is the residual test alone where it is possible (measured:
    benchmarks/results/video_*_residual.md), else the consistency check."""
    if config.occlusion_test != "auto":
        return config.occlusion_test
    return "residual" if residual_test_possible(config) else "consistency"


def flow_preset(config: VideoConfig) -> str:
    """DIS preset: the regularised "noisy" preset suits raw noisy frames; on pre-denoised frames the
    lighter "medium" preset follows fast motion better (lower warping error on Set8 GoPro)."""
    if config.flow_preset is not None:
        return config.flow_preset
    return "medium" if config.flow_on == "denoised" else "noisy"


#: the smallest frame side OpenCV's DIS flow takes with every preset and aspect ratio (below it, it fails, or
#: with some presets and shapes crashes the process; measured with OpenCV 5.0)
DIS_MIN_SIDE = 32


def min_frame_side(net: nn.Module, flow_method: str = "dis") -> int:
    """The smallest frame side fine-tuning on a video can use: training crops need the network's size
    multiple, and DIS flow needs :data:`DIS_MIN_SIDE` (checked before any frame is restored)."""
    return max(int(getattr(net, "size_multiple", 1)), DIS_MIN_SIDE if flow_method == "dis" else 1)


class FrameSink(Protocol):
    def write(self, frame: np.ndarray) -> None: ...

    def skip(self, count: int) -> None:
        """The next ``count`` frames were written by an interrupted run (online resume): move past them."""


def mirror_index(i: int, n: int) -> int:
    """Reflect a frame index into [0, n) (frame -1 is frame 1), as for image borders."""
    if n == 1:
        return 0
    period = 2 * (n - 1)
    i = i % period
    return i if i < n else period - i


def stack_indices(centre: int, offsets: Sequence[int], n: int, exclude: int | None = None) -> list[int]:
    """Frame indices of an input stack; a slot that would show ``exclude`` (the training target, which
    mirroring can bring back near the ends of the video) shows the centre frame instead."""
    out = [mirror_index(centre + o, n) for o in offsets]
    return [centre if i == exclude else i for i in out]


def check_video_config(config: VideoConfig, frames: int | None = None) -> FlowEstimator:
    """A UserError for settings that cannot work together (checked by the caller before it creates any output,
    so a refused run leaves nothing behind): an unknown mode, schedule or occlusion test, the residual test on
    noisy frames, a DIS preset for another flow method, a flow method OpenCV lacks (tvl1 without contrib), or
    fewer than 2 ``frames`` to fine-tune on. Returns the flow estimator the settings make."""
    if config.mode not in ("online", "offline"):
        raise UserError(f"unknown video mode {config.mode!r}; use online or offline")
    if config.lr_schedule not in ("cosine", "constant"):
        raise UserError(f"unknown learning-rate schedule {config.lr_schedule!r}; use cosine or constant")
    if config.flow_on not in ("denoised", "noisy"):
        raise UserError(f"flow_on must be 'denoised' or 'noisy', not {config.flow_on!r}")
    if config.occlusion_test not in ("auto", "consistency", "residual"):
        raise UserError(f"unknown occlusion test {config.occlusion_test!r}; use auto, consistency or residual")
    if config.occlusion_test == "residual" and not residual_test_possible(config):
        raise UserError("the residual occlusion test needs flow on denoised frames (--flow-on denoised)")
    if config.flow_preset is not None and config.flow_method != "dis":
        raise UserError(f"--flow-preset {config.flow_preset} is a preset of DIS flow; --flow {config.flow_method} "
                        "has none (leave --flow-preset out, or use --flow dis)")
    if frames is not None and frames < 2 and config.steps_per_frame > 0:
        raise UserError(f"fine-tuning on a video needs at least 2 frames, this one has {frames} "
                        "(--steps-per-frame 0 restores it with the start model as it is)")
    return FlowEstimator(config.flow_method, preset=flow_preset(config))


class VideoFineTuner:
    """Holds the network, its optimizer and the flow estimator; aligns, trains and restores frames."""

    def __init__(self, method: Method, net: nn.Module, config: VideoConfig,
                 device: torch.device | str = "cpu"):
        flow = check_video_config(config)
        if not hasattr(method, "training_offsets"):
            raise UserError(f"method {method.name!r} is not a video method (use f2f or mf2f)")
        self.method, self.net = method, net
        self.device = pick_device(device, option="device")
        self.config = replace(config, amp=resolve_amp(config.amp, self.device))
        self.net.to(self.device)
        self.optimizer = torch.optim.Adam(net.parameters(), lr=config.lr, betas=(0.9, 0.99))
        self.flow = flow
        self.rng = np.random.default_rng(config.seed)
        torch.manual_seed(config.seed)
        self.stats = VideoStats()
        multiple = int(getattr(net, "size_multiple", 1))
        self.multiple = multiple

    def set_lr(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    # ---------------------------------------------------------------------------------- inference
    def restore_frame(self, frames: Mapping[int, np.ndarray], centre: int, n: int) -> np.ndarray:
        """Restore frame ``centre`` from its normal input stack (frames: index -> (H, W, C))."""
        idx = stack_indices(centre, self.method.input_offsets, n)
        stack = np.concatenate([frames[i] for i in idx], axis=2)
        self.net.eval()
        return restore_array(self.method, self.net, stack, tile=self.config.tile,
                             precision="bf16" if self.config.amp_inference else "fp32", device=self.device,
                             context=self.config.tile_context)

    # ---------------------------------------------------------------------------------- alignment
    def align(self, target_ref: np.ndarray, source_ref: np.ndarray) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Flows and masks between two frames, in both directions.

        Returns (flow_ts, mask_ts, flow_st, mask_st): ``flow_ts`` warps the source onto the target,
        ``mask_ts`` marks target pixels visible in the source; the other two the other way round.
        """
        flow_ts = flow_to_tensor(self.flow(target_ref, source_ref))
        flow_st = flow_to_tensor(self.flow(source_ref, target_ref))
        t_ref = torch.from_numpy(np.ascontiguousarray(target_ref.transpose(2, 0, 1)))[None]
        s_ref = torch.from_numpy(np.ascontiguousarray(source_ref.transpose(2, 0, 1)))[None]
        threshold = self.config.residual_threshold if residual_test_possible(self.config) else None
        relative = self.config.residual_relative
        check = occlusion_test(self.config) == "consistency"
        mask_ts = occlusion_mask(flow_ts, flow_st if check else None, t_ref, s_ref, threshold,
                                 residual_relative=relative)
        mask_st = occlusion_mask(flow_st, flow_ts if check else None, s_ref, t_ref, threshold,
                                 residual_relative=relative)
        self.stats.valid_fraction += [float(mask_ts.mean()), float(mask_st.mean())]
        return flow_ts, mask_ts, flow_st, mask_st

    # ---------------------------------------------------------------------------------- training
    def _crops(self, stack: np.ndarray, target: np.ndarray, flow: Tensor, mask: Tensor) -> dict[str, Tensor]:
        """A batch of random crops; stack (T, H, W, C), target (H, W, C), flow/mask (1, k, H, W)."""
        _, h, w, _ = stack.shape
        m = self.multiple
        size_h = max(m, (min(self.config.crop, h) // m) * m)
        size_w = max(m, (min(self.config.crop, w) // m) * m)
        frames, targets, flows, masks = [], [], [], []
        for _ in range(self.config.batch_size):
            y0 = int(self.rng.integers(0, h - size_h + 1))
            x0 = int(self.rng.integers(0, w - size_w + 1))
            frames.append(torch.from_numpy(np.ascontiguousarray(
                stack[:, y0:y0 + size_h, x0:x0 + size_w].transpose(0, 3, 1, 2))))
            targets.append(torch.from_numpy(np.ascontiguousarray(
                target[y0:y0 + size_h, x0:x0 + size_w].transpose(2, 0, 1))))
            f = flow[0, :, y0:y0 + size_h, x0:x0 + size_w]
            flows.append(f)
            masks.append(mask[0, :, y0:y0 + size_h, x0:x0 + size_w] * inside_mask(f[None])[0])
        batch = {"frames": torch.stack(frames), "target": torch.stack(targets), "flow": torch.stack(flows),
                 "mask": torch.stack(masks)}
        return {k: v.to(self.device) for k, v in batch.items()}

    def train_steps(self, frames: Mapping[int, np.ndarray], centre: int, target: int, flow: Tensor, mask: Tensor,
                    n: int, steps: int) -> None:
        """``steps`` Adam steps on the warped loss of frame ``centre`` against noisy frame ``target``."""
        if steps <= 0 or float(mask.sum()) == 0:
            return
        idx = stack_indices(centre, self.method.training_offsets(target - centre), n, exclude=target)
        stack = np.stack([frames[i] for i in idx])
        self.net.train()
        for _ in range(steps):
            batch = self._crops(stack, frames[target], flow, mask)
            with autocast(self.device, self.config.amp):
                loss = self.method.loss(self.net, batch)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            value = float(loss.detach())
            if not np.isfinite(value):
                raise UserError(f"fine-tuning diverged at frame {centre} (loss {value}); lower --lr")
            self.stats.losses.append(value)
        self.net.eval()


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="frame", dynamic_ncols=True, disable=not enabled)


def _stopped(request: StopSignals, where: str, checkpoint: str | os.PathLike) -> Interrupted:
    """The error to raise once the fine-tuning state is saved: :class:`Terminated` (exit 143) after a SIGTERM."""
    kind, what = (Terminated, "terminated (SIGTERM)") if request.terminated else (Interrupted, "interrupted")
    return kind(f"{what} {where}; the fine-tuning state is saved in {checkpoint} (the same command with "
                "--resume continues it)")


@contextlib.contextmanager
def stop_after_frame(enabled: bool) -> Iterator[StopSignals]:
    """While fine-tuning with a checkpoint, the first Ctrl-C or SIGTERM (``kill``, a batch system's time limit)
    asks to stop once the current frame is done (the caller then saves its state and raises :func:`_stopped`),
    so the work since the last periodic save is kept and the saved state is a consistent one; a second Ctrl-C
    stops at once, a repeated SIGTERM does not (:class:`~selfrestore.stop_signals.StopSignals`). Yields it:
    called, "was a stop asked?"."""
    request = StopSignals(enabled, unit="frame", saving="the fine-tuning state")
    request.install()
    request.defer()  # every signal waits for the end of the frame in hand
    try:
        yield request
    finally:
        request.restore()


def _lookahead(method: Method) -> int:
    """Future frames online mode must have read: for the inference stack and the training stack of the
    target t-1."""
    return max(0, *method.input_offsets, *method.training_offsets(-1))


def _fingerprint(method: Method, config: VideoConfig, n: int, first_frame: np.ndarray) -> dict:
    """What a checkpoint must have been saved with to be resumed: the video, the method and its settings."""
    return {"frames": n, "shape": list(first_frame.shape), "method": method.config(), "mode": config.mode,
            **{k: asdict(config)[k] for k in _RESUME_KEYS}, "occlusion_test": occlusion_test(config)}


def run_online(tuner: VideoFineTuner, frames: Iterable[np.ndarray], n: int, sink: FrameSink) -> VideoStats:
    """Online F2F / MF2F: adapt on frame t against frame t-1, then restore and write frame t."""
    method, config = tuner.method, tuner.config
    ahead, behind = _lookahead(method), 4
    source = iter(frames)
    buffer: dict[int, np.ndarray] = {}
    loaded = 0

    def read_until(t: int) -> None:
        nonlocal loaded
        while loaded < min(n, t + ahead + 1):
            try:
                buffer[loaded] = next(source)
            except StopIteration:
                raise UserError(f"the video ended after {loaded} of {n} frames") from None
            loaded += 1

    previous_output: np.ndarray | None = None
    first, fingerprint = 0, {}
    if config.checkpoint:
        read_until(0)
        fingerprint = _fingerprint(method, config, n, buffer[0])
        resume = load_video_checkpoint(tuner, config.checkpoint, fingerprint)
        if resume is not None:
            _, first, _, extra = resume
            previous_output = extra.get("previous_output")
            sink.skip(first)
        else:  # the starting state, before any frame is written: a run stopped in its first checkpoint
            # interval leaves frames that --resume may then replace (without it, only --overwrite could)
            save_video_checkpoint(tuner, config.checkpoint, fingerprint, 0, 0, None)
    last_save = time.perf_counter()
    start = time.perf_counter()
    with _progress(n, f"{method.name} online", config.progress) as bar, \
            stop_after_frame(bool(config.checkpoint)) as stop_asked:
        bar.update(first)
        for t in range(n):
            frame_start = time.perf_counter()
            read_until(t)
            if t < first:  # written by the interrupted run; its frames are read only as context
                for old in [k for k in buffer if k < t - behind]:
                    del buffer[old]
                continue
            if t >= 1 and config.steps_per_frame > 0:
                if config.flow_on == "denoised":
                    target_ref, source_ref = previous_output, tuner.restore_frame(buffer, t, n)
                else:
                    target_ref, source_ref = buffer[t - 1], buffer[t]
                flow, mask, _, _ = tuner.align(target_ref, source_ref)
                tuner.train_steps(buffer, t, t - 1, flow, mask, n, config.steps_per_frame)
            previous_output = tuner.restore_frame(buffer, t, n)
            sink.write(previous_output)
            for old in [k for k in buffer if k < t - behind]:
                del buffer[old]
            tuner.stats.frame_seconds.append(time.perf_counter() - frame_start)
            bar.update(1)
            if tuner.stats.losses:
                bar.set_postfix(loss=f"{np.mean(tuner.stats.losses[-20:]):.4g}", refresh=False)
            if (config.checkpoint and t + 1 < n
                    and (stop_asked() or time.perf_counter() - last_save >= config.checkpoint_seconds)):
                save_video_checkpoint(tuner, config.checkpoint, fingerprint, 0, t + 1, None,
                                      previous_output=previous_output)
                last_save = time.perf_counter()
                if stop_asked():
                    raise _stopped(stop_asked, f"after frame {t + 1} of {n}", config.checkpoint)
    tuner.stats.frames, tuner.stats.resumed = n - first, first  # the speed is this run's
    tuner.stats.seconds = time.perf_counter() - start
    return tuner.stats


def offline_lr(config: VideoConfig, n: int, pass_index: int, position: int, step: int) -> float:
    """Learning rate of step ``step`` at frame ``position`` of pass ``pass_index`` (cosine: half a cosine from
    ``lr`` down to 0 over all ``passes x n x steps_per_frame`` steps; depends only on the position, so a
    resumed run follows the same schedule)."""
    if config.lr_schedule == "constant":
        return config.lr
    total = max(1, config.passes * n * config.steps_per_frame)
    k = (pass_index * n + position) * config.steps_per_frame + step
    return 0.5 * config.lr * (1.0 + float(np.cos(np.pi * k / total)))


def align_video(tuner: VideoFineTuner, video: dict[int, np.ndarray], n: int
                ) -> dict[int, list[tuple[int, Tensor, Tensor]]]:
    """For each frame t, its training samples (target frame t-1 or t+1, flow, occlusion mask): flows between
    consecutive frames pre-denoised by the network as it is now (or between the noisy frames)."""
    name = tuner.method.name
    if tuner.config.flow_on == "denoised":
        with _progress(n, f"{name} pre-denoise", tuner.config.progress) as bar:
            refs = {}
            for t in range(n):
                refs[t] = tuner.restore_frame(video, t, n)
                bar.update(1)
    else:
        refs = video
    samples: dict[int, list[tuple[int, Tensor, Tensor]]] = {t: [] for t in range(n)}
    with _progress(max(0, n - 1), f"{name} flow", tuner.config.progress) as bar:
        for t in range(1, n):
            flow_prev, mask_prev, flow_next, mask_next = tuner.align(refs[t - 1], refs[t])
            samples[t].append((t - 1, flow_prev, mask_prev))   # centre t, target t-1
            samples[t - 1].append((t, flow_next, mask_next))   # centre t-1, target t
            bar.update(1)
    return samples


def run_offline(tuner: VideoFineTuner, frames: Iterable[np.ndarray], n: int, sink: FrameSink) -> VideoStats:
    """Offline F2F / MF2F: several passes over the whole video, then restore every frame."""
    method, config = tuner.method, tuner.config
    start = time.perf_counter()
    video = {i: f for i, f in enumerate(frames)}
    if len(video) != n:
        raise UserError(f"the video has {len(video)} frames, expected {n}")
    samples = align_video(tuner, video, n)  # with the start network, before a checkpoint replaces it
    fingerprint = _fingerprint(method, config, n, video[0])
    resume = load_video_checkpoint(tuner, config.checkpoint, fingerprint) if config.checkpoint else None
    first_pass, position, order = resume[:3] if resume else (0, 0, None)
    last_save = time.perf_counter()
    for p in range(first_pass, config.passes):
        if order is None:
            order = [int(c) for c in tuner.rng.permutation(n)]
        with _progress(n, f"{method.name} pass {p + 1}/{config.passes}", config.progress) as bar, \
                stop_after_frame(bool(config.checkpoint)) as stop_asked:
            bar.update(position)
            for i in range(position, n):
                options = samples[order[i]]
                if options:
                    for j in range(config.steps_per_frame):
                        tuner.set_lr(offline_lr(config, n, p, i, j))
                        target, flow, mask = options[int(tuner.rng.integers(len(options)))]
                        tuner.train_steps(video, order[i], target, flow, mask, n, 1)
                bar.update(1)
                if tuner.stats.losses:
                    bar.set_postfix(loss=f"{np.mean(tuner.stats.losses[-20:]):.4g}", refresh=False)
                if config.checkpoint and (stop_asked()
                                          or time.perf_counter() - last_save >= config.checkpoint_seconds):
                    done = (p, i + 1, order) if i + 1 < n else (p + 1, 0, None)
                    save_video_checkpoint(tuner, config.checkpoint, fingerprint, *done)
                    last_save = time.perf_counter()
                    if stop_asked():
                        where = f"in fine-tuning pass {p + 1} of {config.passes}, after {i + 1} of {n} frames"
                        raise _stopped(stop_asked, where, config.checkpoint)
        position, order = 0, None
    if config.checkpoint:  # a kill while the frames are written need not repeat the training
        save_video_checkpoint(tuner, config.checkpoint, fingerprint, config.passes, 0, None)
    with _progress(n, f"{method.name} restore", config.progress) as bar:
        for t in range(n):
            sink.write(tuner.restore_frame(video, t, n))
            bar.update(1)
    tuner.stats.frames = n
    tuner.stats.seconds = time.perf_counter() - start
    return tuner.stats


def save_video_checkpoint(tuner: "VideoFineTuner", path: str, fingerprint: dict, next_pass: int, position: int,
                          order: list[int] | None, **extra: np.ndarray | None) -> None:
    """Atomically save what fine-tuning needs to continue exactly: weights, Adam state, the random
    generators, the pass, the position (in the pass's frame order offline; the next frame online), the
    settings it ran with, and ``extra`` arrays (online: the last restored frame)."""
    from .atomic_files import atomic_path

    state = {"fingerprint": fingerprint, "next_pass": next_pass, "position": position, "order": order,
             "net": tuner.net.state_dict(), "optimizer": tuner.optimizer.state_dict(),
             "numpy_rng": tuner.rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
             "losses": list(tuner.stats.losses), "overwrite": bool(tuner.config.overwrite),
             "extra": {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in extra.items() if v is not None}}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _saved_state(path: str | os.PathLike) -> dict:
    """The resume state at ``path`` ({} when unreadable: load_video_checkpoint says so)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return {}


def saved_precision(path: str | os.PathLike) -> bool | None:
    """Whether the resume state at ``path`` was fine-tuned in bf16 (its ``amp``), None when it cannot tell: a
    resumed ``--precision auto`` run keeps the precision it started with, whatever this machine would choose."""
    amp = _saved_state(path).get("fingerprint", {}).get("amp")
    return amp if isinstance(amp, bool) else None


def saved_overwrite(path: str | os.PathLike) -> bool:
    """Whether the interrupted run whose state is at ``path`` was started with ``--overwrite``: its resume
    deletes the extra frames of the older video too (the folder then holds one video)."""
    return _saved_state(path).get("overwrite") is True


def load_video_checkpoint(tuner: "VideoFineTuner", path: str, fingerprint: dict
                          ) -> tuple[int, int, list[int] | None, dict[str, np.ndarray]] | None:
    """Restore the state saved by :func:`save_video_checkpoint` into ``tuner``; returns (pass, position,
    order, extra arrays) to continue from, or None when there is no checkpoint. Other settings: a UserError."""
    if not Path(path).exists():
        return None
    try:
        state = torch.load(path, map_location=tuner.device, weights_only=True)
    except Exception as exc:
        raise ResumeRefused(f"{path}: cannot read the video checkpoint ({type(exc).__name__}); start over "
                            "without --resume, with --overwrite (or delete it)") from None
    saved = state.get("fingerprint", {})
    if any(k not in saved for k in fingerprint):  # written by an older selfrestore: not resumable
        raise ResumeRefused(f"{path}: saved by an older version of selfrestore, whose settings cannot be "
                            "matched; start over without --resume, with --overwrite (or delete it)")
    if saved != fingerprint:
        changed = sorted({SETTING_NAMES.get(k, k) + (f" {'bf16' if saved[k] else 'fp32'}" if k == "amp" else "")
                          for k in fingerprint if saved.get(k) != fingerprint[k]})
        raise ResumeRefused(f"{path}: saved by a run with other settings ({', '.join(changed)}); rerun with "
                            "those, or start over without --resume, with --overwrite")
    tuner.net.load_state_dict(state["net"])
    tuner.optimizer.load_state_dict(state["optimizer"])
    tuner.rng.bit_generator.state = state["numpy_rng"]
    torch.set_rng_state(state["torch_rng"])
    tuner.stats.losses = list(state["losses"])
    extra = {k: v.numpy() for k, v in state.get("extra", {}).items()}
    return int(state["next_pass"]), int(state["position"]), state["order"], extra


def finetune_and_restore(method: Method, net: nn.Module, frames: Iterable[np.ndarray], n: int,
                         sink: FrameSink, config: VideoConfig, device: torch.device | str = "cpu") -> VideoStats:
    """Fine-tune ``net`` with ``method`` on the video and write every restored frame to ``sink``."""
    check_video_config(config, n)
    tuner = VideoFineTuner(method, net, config, device)
    runner = run_online if config.mode == "online" else run_offline
    return runner(tuner, frames, n, sink)


class ListSink(list):
    """Collects restored frames in memory (tests, benchmarks); skipped frames are None."""

    def write(self, frame: np.ndarray) -> None:
        self.append(frame)

    def skip(self, count: int) -> None:
        self.extend([None] * count)
