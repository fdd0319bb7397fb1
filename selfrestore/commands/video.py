"""``selfrestore video``: fine-tune a pretrained denoiser on one noisy video (F2F / MF2F) and restore it."""
from __future__ import annotations

import argparse
from pathlib import Path
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..atomic_files import remove_stale_temporaries
from ..errors import UserError
from ._common import (add_parser, add_tile_context, count, positive_float, positive_int, same_entry_finder,
                      tile_size, warn)

if TYPE_CHECKING:
    from torch import nn

    from ..methods.base import Method
    from ..video_io import VideoInfo

DESCRIPTION = """\
Denoise a video without any clean data of it: start from a pretrained denoiser (the default starts,
unet-gauss25 and fastdvd-gauss25, were trained on synthetic noise: `selfrestore models` says how) and fine-tune
it on the video itself with the frame-to-frame loss (the network's output for frame t, warped by the optical flow onto
frame t-1, must match the noisy frame t-1; occluded pixels are ignored).

  --method f2f   a single-frame network (Ehret et al. 2019)
  --method mf2f  a five-frame FastDVDnet-style network (Dewil et al. 2021)
  --online       adapt a few steps per frame while the video plays; each frame is written right after
                 its update (streaming: only a few frames in memory; resumable: --resume)
  --offline      several passes over the whole video, then restore every frame with the final weights
                 (the whole video is held in memory: about 48 bytes per pixel of each colour frame, so
                 ~100 MB per 1080p frame; a video that does not fit is refused: use --online)

INPUT is a folder of frames, a frame pattern (frames/%05d.png), a video file (mp4, mkv, avi, mov,
webm) or a TIFF / FITS time series (a microscope time-lapse: one plane per frame). The output's form follows
its name (a video suffix, a .tif / .fits stack, a %d pattern, or else a folder), with the input's bit depth
and frame rate (a stack output: the input stack's layout, tags and value range; float TIFF / FITS frames stay
float, in their own value range; int16, int32, float64 ... ones keep their own type in TIFF / FITS outputs).
"""

EPILOG = """\
examples:
  selfrestore video noisy.mp4 -o clean.mp4 --method mf2f --online
  selfrestore video frames/ -o restored/ --method f2f --offline --model my_unet.safetensors
  selfrestore video 'seq/%05d.png' -o 'out/%05d.png' --method mf2f --offline --passes 5
"""

DEFAULT_MODELS = {"f2f": "unet-gauss25", "mf2f": "fastdvd-gauss25"}
PASSES, LR_SCHEDULE = 3, "cosine"  #: offline defaults (an online run warns when given others)
#: the fine-tuning options' defaults: one given another value where it does nothing is said (ignored_options)
TUNING_DEFAULTS: dict[str, object] = {"passes": PASSES, "lr_schedule": LR_SCHEDULE, "lr": 5e-5, "crop": 128,
                                      "batch_size": 2, "stack": "shifted", "warp_loss": "l1", "flow": "dis",
                                      "flow_on": "denoised", "occlusion_test": "auto", "flow_preset": None}
#: batch kinds of the methods whose models are plain denoisers (noisy frame(s) in, clean frame out): starts
#: for F2F / MF2F (burst, deblurring and blurry+noisy models restore something else)
DENOISER_KINDS = ("single", "pair", "frames", "video_warp")

SUMMARY = "fine-tune on a noisy video (F2F / MF2F) and restore it"  # its line in `selfrestore --help`


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `selfrestore video` command to the CLI's subparsers."""
    p = add_parser(sub, "video", SUMMARY, DESCRIPTION, EPILOG)
    p.add_argument("input", metavar="INPUT", help="video file, folder of frames or frame pattern")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT",
                   help="video file, folder or frame pattern for the restored frames (a video file keeps the "
                        "source's depth and colour sampling: an 8-bit 4:2:0 source gives 4:2:0, which every player "
                        "shows; a 4:4:4 or RGB video file 4:4:4 H.264 / VP9, which fewer players show; 8-bit "
                        "image frames give 4:2:0; 16-bit or float frames give 10-bit 4:4:4, lossless 16-bit FFV1 "
                        "in .mkv / .avi)")
    p.add_argument("--method", choices=["f2f", "mf2f"], default="mf2f",
                   help="f2f fine-tunes a single-frame denoiser, mf2f a five-frame one (see above)")
    p.add_argument("--model", default=None,
                   help="starting model (file or shipped name); default: the shipped gauss25 model of the "
                        f"method ({', '.join(f'{k}: {v}' for k, v in DEFAULT_MODELS.items())})")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--online", dest="mode", action="store_const", const="online",
                      help="adapt while the video plays (default)")
    mode.add_argument("--offline", dest="mode", action="store_const", const="offline",
                      help="several passes over the whole video first, then restore it (--online is the "
                           "default)")
    p.set_defaults(mode="online")
    g = p.add_argument_group("fine-tuning")
    g.add_argument("--steps-per-frame", type=count, default=5,
                   help="Adam steps per frame (and per pass); 0: no fine-tuning")
    g.add_argument("--passes", type=count, default=TUNING_DEFAULTS["passes"], help="passes over the video (offline)")
    g.add_argument("--lr", type=positive_float, default=TUNING_DEFAULTS["lr"],
                   help="Adam learning rate of the fine-tuning")
    g.add_argument("--lr-schedule", choices=["cosine", "constant"], default=TUNING_DEFAULTS["lr_schedule"],
                   help="offline: decay the learning rate to 0 over all passes (cosine) or keep it (constant)")
    g.add_argument("--crop", type=positive_int, default=TUNING_DEFAULTS["crop"], help="training crop size in pixels")
    g.add_argument("--batch-size", type=positive_int, default=TUNING_DEFAULTS["batch_size"], help="crops per step")
    g.add_argument("--stack", choices=["shifted", "dilated"], default=TUNING_DEFAULTS["stack"],
                   help="MF2F training stack that excludes the target frame")
    g.add_argument("--warp-loss", choices=["l1", "l2"], default=TUNING_DEFAULTS["warp_loss"],
                   help="loss between the warped output and the noisy neighbour frame: l1 (the papers', robust "
                        "to flow errors) or l2 (unbiased for skewed noise: low-light photon counts)")
    g.add_argument("--flow", choices=["dis", "tvl1", "farneback"], default=TUNING_DEFAULTS["flow"],
                   help="optical flow (tvl1 needs opencv-contrib)")
    g.add_argument("--flow-on", choices=["denoised", "noisy"], default=TUNING_DEFAULTS["flow_on"],
                   help="estimate flow on pre-denoised frames (better) or on the noisy ones (faster)")
    g.add_argument("--occlusion-test", choices=["auto", "consistency", "residual"],
                   default=TUNING_DEFAULTS["occlusion_test"],
                   help="pixels the loss keeps: those whose warped pre-denoised frame matches (residual: keeps "
                        "flat areas such as sky or snow, where flow is ill-defined; needs --flow-on denoised), or "
                        "also those whose flow passes the forward-backward check (consistency). auto (default): "
                        "residual on denoised frames, consistency on noisy ones")
    g.add_argument("--flow-preset", choices=["ultrafast", "fast", "medium", "noisy"],
                   default=TUNING_DEFAULTS["flow_preset"],
                   help="DIS preset, for --flow dis only (default: medium on denoised frames, noisy on noisy "
                        "frames)")
    g.add_argument("--save-model", metavar="PATH",
                   help="also save the fine-tuned model here (a new file; an existing one only with --overwrite)")
    g.add_argument("--seed", type=count, default=0, help="seed of the crops and the frame order")
    r = p.add_argument_group("runtime")
    r.add_argument("--precision", choices=["auto", "bf16", "fp32"], default="auto",
                   help="bf16: bf16 autocast for fine-tuning, and for restoring 8-bit frames (fast where the "
                        "hardware computes bf16: CUDA GPUs from Ampere on, CPUs with AVX512-BF16 or AMX; 3-4x slower "
                        "than fp32 on CPUs without); auto (default): bf16 fine-tuning there, fp32 elsewhere. Frames "
                        "are restored in fp32 otherwise (bf16 keeps about 8 bits: 16-bit and float frames would "
                        "lose theirs)")
    r.add_argument("--tile", type=tile_size, default=1024, help="inference tile size in pixels (0: automatic)")
    add_tile_context(r, "the context each tile carries, as for restore: auto (default) at most 128 px (256 for "
                     "blind-spot nets), full the network's whole receptive field (frames larger than --tile only)")
    r.add_argument("--device", default="auto", help="auto (a GPU where there is one), cpu, cuda, cuda:1 ...")
    r.add_argument("--overwrite", action="store_true",
                   help="replace an existing output (and --save-model file), discarding the state of an "
                        "interrupted run (start over); frame files there named like the output's frames (its "
                        "%%d pattern, or the numbering of the frame names) that the new video does not have "
                        "are deleted once it is written (older, longer video); other files are left alone")
    r.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from OUTPUT.resume.pt (saved every minute and at Ctrl-C, "
                        "after the frame in hand: --offline while fine-tuning; --online after a written frame: "
                        "a video or stack OUTPUT is made at the "
                        "end from the frames kept, as PNG, in the hidden folder .NAME.frames beside it); same "
                        "settings needed; the result equals an uninterrupted run's")
    r.add_argument("--quiet", action="store_true",
                   help="no progress bar and no closing line (what was written); warnings are still said")
    p.set_defaults(func=run)


def ignored_options(args: argparse.Namespace) -> list[str]:
    """What to say of fine-tuning options given values that change nothing (an audit: `--method f2f --stack
    dilated`, or `--steps-per-frame 0 --lr 1 --crop 7`, ran without a word): one line per reason."""
    def given(keys: Iterable[str]) -> list[str]:
        return [f"--{key.replace('_', '-')}" for key in keys if getattr(args, key) != TUNING_DEFAULTS[key]]

    def said(options: list[str], why: str) -> list[str]:
        return [f"{' and '.join(options)}: {why}, so {'they are' if len(options) > 1 else 'it is'} ignored"] \
            if options else []

    if args.steps_per_frame == 0 or (args.mode == "offline" and args.passes == 0):
        nothing = "--steps-per-frame 0" if args.steps_per_frame == 0 else "--passes 0"
        return said(given(key for key in TUNING_DEFAULTS if not (key == "passes" and nothing == "--passes 0")),
                    f"{nothing} fine-tunes nothing (the start model restores the video as it is)")
    lines = said(given(["stack"]), "an option of --method mf2f (f2f trains on single frames)") \
        if args.method == "f2f" else []
    if args.mode == "online":  # options of offline runs, given to an online one
        lines += said(given(["passes", "lr_schedule"]), "for --offline runs; an online run sees each frame once")
    return lines


def resume_path(output: str) -> Path:
    """Where a run keeps its fine-tuning state: OUTPUT.resume.pt, next to the output (a pattern's beside its
    frames, named after the pattern: two patterns in one folder are two runs)."""
    path = Path(output)
    if path.name in ("", ".", ".."):  # ".", "..": the folder by its own name
        path = path.resolve()
    if not path.name:  # the root folder: beside nothing, so inside it
        return path / ".resume.pt"
    return path.with_name(path.name + ".resume.pt")


def _older_resume_path(output: str) -> Path | None:
    """Where earlier versions kept a frame pattern's resume state: FOLDER.resume.pt beside its folder."""
    path = Path(output)
    if "%" not in path.name:
        return None
    folder = path.parent if path.parent.name else path.parent.resolve()
    return folder.with_name(folder.name + ".resume.pt")


def _check_output(args: argparse.Namespace, info: VideoInfo, existing: bool = True) -> None:
    """Before anything is computed: refuse an output that would write over an input frame or the input
    (a pattern or folder too), float counts (mapped into [0, 1]) to an output that cannot hold floats, and
    (``existing``) an output that exists, frames of a pattern included, unless --overwrite."""
    from ..atomic_files import check_writable_place
    from ..io import IMAGE_SUFFIXES, STACK_SUFFIXES
    from ..video_io import input_paths, output_kind, output_paths, stale_frames

    kind = output_kind(args.output)  # a frame pattern without an image suffix: refused here
    targets = output_paths(args.output, info)
    out = Path(args.output)
    if kind == "folder" and out.exists() and not out.is_dir():  # --overwrite cannot make a folder of it
        raise UserError(f"-o {args.output}: an existing file, not a folder; a video output is a folder, a frame "
                        "pattern like out/%05d.png, a video file or a TIFF / FITS stack")
    if kind in ("file", "stack") and out.is_dir():
        raise UserError(f"-o {args.output}: an existing folder, where a {'video' if kind == 'file' else 'stack'} "
                        "file is to be written; give another name")
    if kind == "folder" and targets and targets[0].suffix.lower() not in IMAGE_SUFFIXES:
        raise UserError(f"-o {args.output}: the frames would be named like {targets[0].name}, not an image file "
                        "name; give a frame pattern like out/%05d.png")
    holds_floats = kind != "file" and all(path.suffix.lower() in STACK_SUFFIXES for path in
                                          ([Path(args.output)] if kind == "stack" or not targets else targets))
    if info.intensity and not holds_floats:  # as restore and burst refuse it (io.refuse_clipping)
        raise UserError(f"-o {args.output}: float frames outside [0, 1] need float output: a .tif / .fits stack, "
                        "or frames like out/%05d.tif")
    is_input = same_entry_finder([*input_paths(info), args.input])  # any spelling of an input (not a hard link)
    if kind == "folder":
        targets = [Path(args.output), *targets]
    clash = next((p for p in targets if is_input(p) is not None), None)
    if clash is not None:
        raise UserError(f"-o {args.output}: would write over the input ({clash}); choose another output")
    check_writable_place(args.output)
    frames_folder = Path(args.input) if info.kind == "folder" else Path(args.input).parent \
        if info.kind == "pattern" else None
    where = out if kind == "folder" else out.parent
    if frames_folder is not None and kind != "file" and where.resolve() == frames_folder.resolve():
        warn(f"{args.output} is in the input folder {frames_folder}: a later run on that folder will take the "
             "restored frames for frames of the video")
    if not existing or args.overwrite:
        return
    if kind == "folder" and out.exists():
        there = out.is_file() or any(out.iterdir())
    else:
        there = next((p for p in targets if p.exists()), None) or next(iter(stale_frames(args.output, info)), None)
    if there:
        raise UserError(f"{there if kind == 'pattern' else out}: already exists (use --overwrite to replace "
                        f"{'the frames' if kind == 'pattern' else 'it'})")


def _check_save_model(args: argparse.Namespace, info: VideoInfo, checkpoint: Path) -> None:
    """--save-model is written after the whole run: refuse before any work a PATH that is a folder, the input or
    one of its frames, the output (one of its frames, anything in its folder) or the resume state, and an
    existing file unless --overwrite (it was replaced without a word)."""
    from ..atomic_files import refuse_folder
    from ..video_io import input_paths, output_kind, output_paths, spool_folder, stale_frames

    if not args.save_model:
        return
    path = refuse_folder(args.save_model)
    where = path.resolve()
    if same_entry_finder([*input_paths(info), args.input])(path) is not None:  # any spelling of it
        raise UserError(f"--save-model {args.save_model}: would write over the input; choose another file")
    kind = output_kind(args.output)
    out = Path(args.output).resolve()
    is_output = same_entry_finder([*output_paths(args.output, info), *stale_frames(args.output, info), out])
    folder = out if kind == "folder" else spool_folder(args.output).resolve() if kind in ("file", "stack") else None
    if is_output(path) is not None or (folder is not None and folder in where.parents):
        raise UserError(f"--save-model {args.save_model}: would write over the output {args.output} or into its "
                        "folder; choose another file")
    if same_entry_finder([checkpoint])(path) is not None:
        raise UserError(f"--save-model {args.save_model}: is where this run keeps its resume state; choose "
                        "another file")
    if path.exists() and not (args.overwrite or args.resume):  # --resume: a kill after it was saved
        raise UserError(f"--save-model {args.save_model}: already exists (use --overwrite to replace it)")


def mixed_depths_warning(source: str, info: VideoInfo) -> str:
    """The one line that says a frame folder or pattern mixes bit depths and every frame is written in the
    deepest (``info.dtype``): 8-bit values v become v * 257 in 16 bits, the same intensity."""
    from ..io import depth_name

    mix = ", ".join(f"{count} {depth_name(dtype)}" for dtype, count in (info.mixed_depths or {}).items())
    shallower = " and ".join(depth_name(dtype) for dtype in (info.mixed_depths or {}) if dtype != info.dtype)
    return (f"{source}: the frames mix bit depths ({mix}); every output frame is written "
            f"{depth_name(info.dtype)} where its format allows (the {shallower} frames scaled to it)")


def _check_model_name(model: str | None) -> None:
    """A folder given as --model is said to be one (it was reported as a missing file)."""
    from ..checkpoint import shipped_models

    if model and Path(model).is_dir() and model not in shipped_models():
        raise UserError(f"--model {model}: is a folder; give a model file (.safetensors) or the name of a shipped "
                        "model (see selfrestore models)")


def _file_system_failure(exc: BaseException) -> bool:
    """Whether the file system failed (a full disk, a permission), not the run's settings: an OSError, or the
    one-line UserError a file write turns one into."""
    return isinstance(exc, OSError) or (isinstance(exc, UserError) and isinstance(exc.__context__, OSError))


def _discard_state(checkpoint: Path, output: str) -> None:
    """Delete a run's resume state and the frames it kept for a video or stack output (the hidden spool
    folder): after a failure the retry, with other settings, must not be blocked by them."""
    import shutil

    from ..video_io import output_kind, spool_folder

    checkpoint.unlink(missing_ok=True)
    if output_kind(output) in ("file", "stack"):
        shutil.rmtree(spool_folder(output), ignore_errors=True)


def check_start_model(model: str, method: Method, net: nn.Module, header: dict, video_method: str) -> None:
    """A UserError unless ``net`` is a plain denoiser that ``video_method`` can fine-tune: a single-frame one
    for f2f, a five-frame one for mf2f (not a Bayesian, burst, demosaicking or deblurring model)."""
    from ..methods.base import Method

    frames = int(getattr(net, "frames", 1))
    kwargs = header.get("net", {}).get("kwargs", {})
    fits = (method.batch_kind in DENOISER_KINDS and type(method).restore is Method.restore
            and kwargs.get("in_channels") == kwargs.get("out_channels"))
    need = "a single-frame" if video_method == "f2f" else "a five-frame"
    advice = (f"--method {video_method} fine-tunes {need} denoiser, such as the shipped "
              f"{DEFAULT_MODELS[video_method]} (see selfrestore models)")
    if not fits:
        raise UserError(f"{model}: not a plain denoiser (method {method.name}); {advice}")
    if frames != (1 if video_method == "f2f" else 5):
        raise UserError(f"{model}: a {frames}-frame network; {advice}")


def check_frame_size(info: VideoInfo, net: nn.Module, flow: str, crops: bool = True, flows: bool = True) -> None:
    """A UserError when the frames are too small for what the run does: smaller than the network's size multiple
    (``crops``: it fine-tunes) or than the optical flow can work on (``flows``: it computes flows). A run that
    does neither (--steps-per-frame 0 online) only restores, which takes frames of any size."""
    from ..video import DIS_MIN_SIDE

    needs = ([("training crops", int(getattr(net, "size_multiple", 1)))] if crops else []) + \
        ([("DIS flow", DIS_MIN_SIDE)] if flows and flow == "dis" else [])
    side = max((need for _, need in needs), default=1)
    if min(info.height, info.width) < side:
        what = "fine-tuning" if crops else "the optical flow of --offline (computed before its passes)"
        without_dis = max((need for why, need in needs if why != "DIS flow"), default=1)
        farneback = flows and flow == "dis" and min(info.height, info.width) >= without_dis  # DIS alone too large
        ways = (["--flow farneback"] if farneback else []) + \
            (["--online --steps-per-frame 0 (restore only, no fine-tuning)"] if crops else ["--online"])
        raise UserError(f"{info.source}: frames of {info.width}x{info.height} pixels are too small; {what} "
                        f"needs at least {side}x{side} ({', '.join(f'{why}: {need}' for why, need in needs)}); "
                        f"use {' or '.join(ways)}")


#: float32 values per pixel of each frame that --offline keeps besides the frames themselves: the frames
#: pre-denoised for the flow (one per channel) and, per frame, flows and occlusion masks to both neighbours
OFFLINE_EXTRA_PER_PIXEL = 6


def check_offline_memory(info: VideoInfo, channels: int) -> None:
    """--offline holds every frame, its pre-denoised copy and its flows in memory: refuse in one line, before
    minutes of decoding, a video that would not fit (the system would kill the run half-way instead)."""
    from ..memory_check import refuse_over_memory

    need = info.frames * info.height * info.width * (2 * channels + OFFLINE_EXTRA_PER_PIXEL) * 4
    refuse_over_memory(need, f"--offline keeps all {info.frames} frames of {info.width}x{info.height}, their "
                             "pre-denoised copies, flows and masks in memory",
                       "use --online (it streams the video: a few frames in memory) or cut the video into shorter "
                       "pieces")


def run(args: argparse.Namespace) -> int:
    """Fine-tune the start model on the input video (F2F / MF2F, online or offline) and write the restored
    video; returns 0 (problems raise UserError; Ctrl-C while fine-tuning saves a state --resume continues)."""
    import numpy as np

    from ..checkpoint import load_model, save_checkpoint
    from ..errors import Interrupted, ResumeRefused
    from ..io import to_channels
    from ..registry import METHODS
    from ..train import amp_of, pick_device, resolve_amp
    from ..video import VideoConfig, check_video_config, finetune_and_restore, saved_overwrite, saved_precision
    from ..video_io import VideoReader, VideoWriter, has_sound, numbering_gaps, output_paths, sound_kept

    device = pick_device(args.device)  # a device that is not here: one line, before anything is loaded
    for ignored in ignored_options(args):
        warn(ignored)
    _check_model_name(args.model)
    reader = VideoReader(args.input)  # every frame's header is read: a bad frame stops the run here
    checkpoint = resume_path(args.output)
    if args.resume:
        if not checkpoint.exists():
            older = _older_resume_path(args.output)
            raise UserError(f"nothing to resume: {checkpoint} does not exist" + (
                f" ({older} exists: the state of a run into the folder {older.name[:-len('.resume.pt')]}, or of this "
                "pattern's run by an earlier selfrestore, which that version resumes)"
                if older is not None and older.exists() else ""))
    elif checkpoint.exists() and not args.overwrite:  # --overwrite discards it, once every check has passed
        raise UserError(f"{checkpoint}: an interrupted {args.mode} run left its fine-tuning state here; add "
                        "--resume to continue it, or --overwrite to start over")
    _check_output(args, reader.info, existing=not args.resume)
    _check_save_model(args, reader.info, checkpoint)  # the model is written last: refused now, not then
    model = args.model or DEFAULT_MODELS[args.method]
    start_method, net, header = load_model(model, device)
    check_start_model(model, start_method, net, header, args.method)
    from ._common import say_if_depth_lost, say_if_unfinished

    say_if_unfinished(model, header)
    several = len(reader) >= 2  # (fine-tuning one frame is refused below; it has no flow)
    tunes = several and args.steps_per_frame > 0 and (args.mode == "online" or args.passes > 0)
    # --offline computes every flow before its passes, even when none trains on them
    check_frame_size(reader.info, net, args.flow, crops=tunes, flows=tunes or (several and args.mode == "offline"))
    if reader.info.alpha:  # said even with --quiet: it is data the output will not have
        warn(f"{args.input}: the frames' alpha channel is not restored; the output frames have none")
    if reader.info.kind == "file" and not sound_kept(args.output) and has_sound(args.input):  # said even with --quiet
        warn(f"{args.input}: the sound track is not kept; {args.output} holds no sound (a video file such as .mp4 "
             "or .mkv keeps it)")
    if reader.info.variable_rate:  # said even with --quiet: the output's frame timing will differ
        warn(f"{args.input}: variable frame rate ({100 * reader.info.variable_rate:.0f}% of the frame intervals "
             f"differ); the output is written at a constant {reader.info.fps:.4g} fps, so frame timing (and the "
             "sound's sync) can shift; re-encode the input at a constant rate first to control how")
    motion = args.method == "mf2f" or (args.steps_per_frame > 0 and (args.mode == "online" or args.passes > 0))
    if motion and reader.info.kind == "folder" and (gaps := numbering_gaps(reader.info.names)):  # even --quiet
        warn(f"{args.input}: the frame numbers skip ({gaps[0][0]} is followed by {gaps[0][1]}"
             f"{f', and {len(gaps) - 1} more gaps' if len(gaps) > 1 else ''}): the frames are taken as consecutive "
             "(the motion across a gap is larger); a frame pattern such as frames/%05d.png refuses missing frames")
    if reader.info.mixed_depths:  # said even with --quiet: the shallower frames are written deeper than they were
        warn(mixed_depths_warning(args.input, reader.info))
    from ..video_io import output_kind

    if output_kind(args.output) in ("pattern", "folder"):  # frames of a 16-bit video to .jpg ...: said
        first = next(iter(output_paths(args.output, reader.info)), None)
        if first is not None:
            say_if_depth_lost(first.parent / f"*{first.suffix}", reader.info.dtype, args.input)
    options = {"stack": args.stack} if args.method == "mf2f" else {}
    options["warp_loss"] = args.warp_loss
    method = METHODS.get(args.method)(noise=None, **options)
    channels = int(header.get("channels") or 3)
    have = reader.info.channels
    if args.mode == "offline":
        check_offline_memory(reader.info, channels)
    replacing = args.overwrite or (args.resume and saved_overwrite(checkpoint))  # prune an older video's frames
    precision = amp_of(args.precision)  # None: auto
    if precision is None and args.resume:  # the run goes on in the precision it started with
        precision = saved_precision(checkpoint)
    config = VideoConfig(mode=args.mode, steps_per_frame=args.steps_per_frame, passes=args.passes, lr=args.lr,
                         lr_schedule=args.lr_schedule,
                         crop=args.crop, batch_size=args.batch_size, flow_method=args.flow, flow_on=args.flow_on,
                         flow_preset=args.flow_preset, occlusion_test=args.occlusion_test,
                         amp=resolve_amp(precision, device),
                         amp_inference=args.precision == "bf16" and reader.info.dtype == "uint8",
                         tile=args.tile, tile_context=args.tile_context, seed=args.seed, progress=not args.quiet,
                         checkpoint=str(checkpoint), overwrite=replacing,
                         resume_key=f"input {Path(args.input).resolve()}, model "
                                    f"{Path(model).resolve() if Path(model).is_file() else model}")
    check_video_config(config, len(reader))  # settings that cannot work: refused before any output is made
    remove_stale_temporaries([checkpoint, *output_paths(args.output, reader.info)])  # of a run killed mid-write
    if not args.resume and checkpoint.exists():  # --overwrite: start over
        _discard_state(checkpoint, args.output)
        if not args.quiet:
            warn(f"{checkpoint}: discarded the state of an interrupted run (--overwrite)")

    class ChannelSink:
        def __init__(self, writer):
            self.writer = writer

        def write(self, frame: np.ndarray) -> None:
            self.writer.write(to_channels(frame, have) if frame.shape[2] != have else frame)

        def skip(self, count: int) -> None:
            self.writer.skip(count)

    frames = (to_channels(f, channels) if have != channels else f for f in reader)
    # online: each frame costs a fine-tuning step, so a video or stack file is built from frames kept on disk
    # (resumable); offline restores every frame at the end from the saved fine-tuning state
    try:
        with VideoWriter(args.output, reader.info, spool=args.mode == "online", resume=args.resume,
                         prune=replacing, keep_spool=True) as writer:
            stats = finetune_and_restore(method, net, frames, len(reader), ChannelSink(writer), config, device)
        if args.save_model:  # before the resume state goes: a kill in between leaves a run --resume completes
            header = {"method": method.config(), "channels": channels, "finetuned_on": str(args.input),
                      "video_mode": args.mode}
            if reader.info.intensity:  # float counts: restore maps them as this video was (one map, no flicker)
                header["intensity"] = reader.info.intensity
            save_checkpoint(args.save_model, net, header)
    except (Interrupted, ResumeRefused):
        raise  # Ctrl-C saved the state; a state this run could not use is the user's to keep or delete
    except UserError as exc:  # diverged, a format that refused the frames...: the retry starts over
        if not _file_system_failure(exc):  # a full disk, a lost permission: fixed, --resume continues
            _discard_state(checkpoint, args.output)
        raise  # anything else (out of memory, a bug): the state stays for --resume
    checkpoint.unlink(missing_ok=True)  # the restored video is written: nothing left to resume
    writer.remove_spool()  # only now: a kill before the unlink leaves a state whose frames are still there
    if said := writer.clipping_said():  # (even with --quiet: values the output lacks)
        warn(said)
    if not args.quiet:
        if writer.removed:
            print(f"deleted {len(writer.removed)} older frame(s) of {args.output} beyond this video's "
                  f"{len(reader)} (--overwrite)")
        earlier = f" in this run ({stats.resumed} by the interrupted run)" if stats.resumed else ""
        print(f"restored {stats.frames} frames{earlier} to {args.output} in {stats.seconds:.1f} s "
              f"({stats.fps:.3f} frames/s)")
    return 0
