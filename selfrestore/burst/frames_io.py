"""Reading bursts from disk: frame files or a folder of them (the first, in name order, is the reference),
camera raw files through rawpy, and folders of bursts for training."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import UserError

if TYPE_CHECKING:
    import torch  # imported where used (importing this module loads no torch)

    from ..io import ImageInfo

RAW_SUFFIXES = (".dng", ".cr2", ".cr3", ".nef", ".arw", ".orf", ".rw2", ".raf", ".pef", ".srw")


def read_raw(path: Path) -> np.ndarray:
    """A camera raw file -> (H, W, 1) RGGB mosaic in [0, 1] (black/white levels applied), via rawpy."""
    try:
        import rawpy
    except ImportError:
        raise UserError(f"{path}: reading camera raw files needs rawpy: pip install 'selfrestore[raw]'") from None
    try:
        with rawpy.imread(str(path)) as raw:
            mosaic = raw.raw_image_visible.astype(np.float32)
            black = float(np.mean(raw.black_level_per_channel))
            white = float(raw.white_level)
            pattern = raw.raw_pattern[:2, :2]
            colours = raw.color_desc.decode() if isinstance(raw.color_desc, bytes) else str(raw.color_desc)
    except Exception as exc:  # rawpy raises LibRawError subclasses for bad files
        raise UserError(f"{path}: cannot read raw file: {exc}") from None
    names = [[colours[int(pattern[r, c])] for c in range(2)] for r in range(2)]
    # shift the crop so the top-left 2x2 tile reads R G / G B
    for dy in range(2):
        for dx in range(2):
            if names[dy][dx] == "R" and names[1 - dy][1 - dx] == "B":
                mosaic = mosaic[dy:, dx:]
                h, w = mosaic.shape
                mosaic = mosaic[: h - h % 2, : w - w % 2]
                return np.clip((mosaic - black) / max(white - black, 1.0), 0, None)[..., None]
    raise UserError(f"{path}: not a Bayer RGGB-family sensor (pattern {names})")


def burst_paths(inputs: list[str]) -> list[Path]:
    """The frame files of one burst, in the order given (a folder's in name order): its camera raw files where
    there are any, else its images; known before any frame is decoded, e.g. to check an output path. A missing
    input, a folder holding several folders of frames (bursts) and a frame given twice are UserErrors."""
    from ..file_lists import list_images

    for item in inputs:
        if Path(item).is_dir():
            _refuse_several_bursts(Path(item))
    paths, problems = list_images(inputs)
    raw_paths = [p for item in inputs for p in ([Path(item)] if Path(item).is_file() else _raw_files(Path(item)))
                 if p.suffix.lower() in RAW_SUFFIXES]
    if problems and not raw_paths:
        raise UserError(problems[0])
    paths = raw_paths or paths
    _refuse_repeated_frames(paths)
    return paths


def _raw_files(folder: Path) -> list[Path]:
    """The camera raw files of a burst folder, in name order (hidden ones left out, as list_images does)."""
    return sorted(p for p in folder.glob("*") if p.is_file() and not p.name.startswith("."))


def _refuse_several_bursts(folder: Path) -> None:
    """A UserError when ``folder`` holds frames in more than one folder (itself or sub-folders, hidden ones left
    out): that is a collection of bursts (``fit``'s input), and reading it as one burst would merge them. Camera
    raw files in ``folder`` itself are the burst (only they are read): sub-folders (previews) do not count."""
    from ..file_lists import is_loss_plot
    from ..io import IMAGE_SUFFIXES

    if any(p.suffix.lower() in RAW_SUFFIXES for p in _raw_files(folder)):
        return
    suffixes = set(IMAGE_SUFFIXES) | set(RAW_SUFFIXES)
    holders = sorted({p.parent for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes
                      and not is_loss_plot(p)
                      and not any(part.startswith(".") for part in p.relative_to(folder).parts)})
    if len(holders) > 1:
        names = [folder.name + "/ itself" if h == folder else h.relative_to(folder).as_posix() + "/"
                 for h in holders]
        listed = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        raise UserError(f"{folder}: holds frames in {len(holders)} folders ({listed}), not one burst: give one "
                        f"burst's folder (a folder of burst folders is training data for `selfrestore fit`)")


def _refuse_repeated_frames(paths: list[Path]) -> None:
    """A UserError when one file is given twice (the same name, another spelling of it, a link, a folder and a
    file in it): a repeated frame is no second look at the scene, and registration would align it to itself."""
    from ..file_lists import file_identity

    seen: dict[tuple[int, int], Path] = {}
    for path in paths:
        key = file_identity(path)
        if key is None:  # unreadable: reported where it is read
            continue
        if key in seen:
            spelt = "" if str(seen[key]) == str(path) else f" (as {seen[key]} and {path})"
            raise UserError(f"{path}: frame given twice{spelt}; a burst's frames are distinct files")
        seen[key] = path


def _describe(shape: tuple[int, ...]) -> str:
    """(H, W, C) -> '40x56, 3 channels' for messages."""
    return f"{shape[0]}x{shape[1]}, {shape[2]} channel{'s' if shape[2] != 1 else ''}"


def load_frames(inputs: list[str], task: str, minimum: int = 2, training: bool = False
                ) -> tuple[torch.Tensor, ImageInfo | None]:
    """(T, C, H, W) frames of one burst from files or a folder (raw files preferred where present) and the
    first image's ImageInfo (None for raw files); demosaic frames are single-channel, at least 4x4 px.
    ``training``: the burst is one of ``fit``'s training bursts (one folder): problems name it and say what to do
    in ``fit``'s terms, and demosaic frames are cropped to whole 2x2 Bayer tiles."""
    import torch

    from ..io import depth_name, read_image

    if training:
        try:
            paths = burst_paths(inputs)
        except UserError as exc:
            reason = str(exc).split(": give one burst")[0]
            reason = reason[len(f"{inputs[0]}: "):] if reason.startswith(f"{inputs[0]}: ") else reason
            raise UserError(f"training burst {inputs[0]}: {reason}; a training burst is a folder holding its "
                            "frames directly: leave it out of the training data, or move its sub-folders out of "
                            "it") from None
    else:  # a training burst's frames were checked with the others' (load_bursts)
        from ..memory_check import check_fits_in_memory

        paths = burst_paths(inputs)
        check_fits_in_memory(paths, channels=1 if task == "demosaic" else None,
                             advice="give fewer or smaller frames (a decompression bomb: check the files)")
    raw = bool(paths) and paths[0].suffix.lower() in RAW_SUFFIXES
    info = None
    arrays = []
    if raw:
        arrays = [read_raw(p) for p in paths]
    else:
        for path in paths:
            array, image_info = read_image(path)
            if info is not None and image_info.dtype != info.dtype:
                # one map and one output depth for the burst: a float frame of counts beside an 8/16-bit first
                # frame was clamped to [0, 1] (every output pixel 1.0), a 16-bit one beside 8 bits lost depth
                raise UserError(f"{path}: {depth_name(image_info.dtype)} pixels, but the first frame "
                                f"{paths[0].name} has {depth_name(info.dtype)} ones; a burst's frames must share "
                                f"one pixel type (convert them alike)")
            info = info or image_info
            arrays.append(array)
    if len(arrays) < minimum:
        if training:
            raise UserError(f"training burst {inputs[0]}: {len(arrays)} frame{'s' if len(arrays) != 1 else ''}, "
                            f"but a training burst needs at least {minimum}; add frames to it, or leave it out of "
                            f"the training data")
        hint = " (one raw frame is enough with --task demosaic and a --model, without --adapt)"
        raise UserError("a burst needs at least 2 frames" + (hint if task == "demosaic" else ""))
    shape = arrays[0].shape
    for array, path in zip(arrays, paths):
        if array.shape != shape:
            raise UserError(f"{path}: frame of {_describe(array.shape)} differs from the first frame's "
                            f"({_describe(shape)}); a burst's frames must match")
    if task == "demosaic" and shape[2] != 1:
        if training:
            raise UserError(f"{paths[0]}: training burst {inputs[0]} has {shape[2]}-channel frames, but "
                            f"mosaic-to-mosaic (--method m2m) trains on single-channel RGGB Bayer frames (or camera "
                            f"raw files): leave it out of the training data, or train --method dsa on gray / RGB "
                            f"bursts")
        raise UserError(f"{paths[0]}: --task demosaic needs single-channel RGGB Bayer frames, "
                        f"this one has {shape[2]} channels")
    if task == "demosaic" and min(shape[:2]) < 4 and training:
        raise UserError(f"{paths[0]}: frames of {shape[0]}x{shape[1]} px (training burst {inputs[0]}) are too small "
                        f"to train on (at least whole 2x2 Bayer tiles, 4x4 px): leave it out of the training data")
    if task == "demosaic" and min(shape[:2]) < 4:
        raise UserError(f"{paths[0]}: frames of {shape[0]}x{shape[1]} px are too small to demosaic (at least 4x4: "
                        f"whole 2x2 Bayer tiles)")
    if task == "superres" and shape[0] * shape[1] < 2:  # one pixel: nothing to register (it crashed the splat)
        raise UserError(f"{paths[0]}: frames of 1x1 px are too small for super-resolution")
    frames = torch.from_numpy(np.stack(arrays).transpose(0, 3, 1, 2).copy())
    if task == "demosaic" and training:  # whole 2x2 Bayer tiles (``burst`` restores an odd frame whole: run pads it)
        frames = frames[..., : frames.shape[-2] // 2 * 2, : frames.shape[-1] // 2 * 2]
    return frames, info


def alpha_on_grid(alpha: np.ndarray | None, height: int, width: int) -> np.ndarray | None:
    """The reference frame's alpha (h, w) on the output grid (height, width), so that it is kept: as it is where
    the output has the frame's size (demosaic), cropped where it is smaller, else resized bilinearly (pixel
    centres aligned as in :func:`~selfrestore.burst.synthesis.lr_offset`, for super-resolution)."""
    if alpha is None or alpha.shape == (height, width):
        return alpha
    if height <= alpha.shape[0] and width <= alpha.shape[1]:
        return np.ascontiguousarray(alpha[:height, :width])
    import torch
    import torch.nn.functional as F

    resized = F.interpolate(torch.from_numpy(np.asarray(alpha, dtype=np.float32))[None, None], size=(height, width),
                            mode="bilinear", align_corners=False)
    return resized[0, 0].clamp(0, 1).numpy()


def burst_folders(inputs: list[str]) -> list[Path]:
    """The bursts under ``inputs`` for training: a folder holding frame files is one burst; a folder holding
    only folders is a collection, each sub-folder a burst (``fit``'s loss plot saved there is no frame)."""
    from ..file_lists import is_loss_plot
    from ..io import IMAGE_SUFFIXES

    frame_suffixes = set(IMAGE_SUFFIXES) | set(RAW_SUFFIXES)
    found: list[Path] = []
    for item in inputs:
        folder = Path(item)
        if not folder.is_dir():
            raise UserError(f"{folder}: give a folder of burst frames, or a folder of such folders")
        if any(p.suffix.lower() in frame_suffixes for p in folder.iterdir() if p.is_file() and not is_loss_plot(p)):
            found.append(folder)
        else:
            found.extend(sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")))
    if not found:
        raise UserError(f"no burst folders under {', '.join(inputs)}")
    return found


def load_bursts(inputs: list[str], task: str, minimum: int = 2, with_folders: bool = False
                ) -> list[torch.Tensor] | tuple[list[torch.Tensor], list[Path]]:
    """Every burst under ``inputs`` (see :func:`burst_folders`) as (T, C, H, W) float tensors (checked against
    memory before anything is decoded), each of at least ``minimum`` frames; a problem names its folder and says
    what to do in ``fit``'s terms. ``with_folders``: also the folders, in the same order."""
    from ..memory_check import check_fits_in_memory

    folders = burst_folders(inputs)
    check_fits_in_memory([p for folder in folders for p in sorted(folder.iterdir()) if p.is_file()],
                         channels=1 if task == "demosaic" else None,
                         advice="train on fewer bursts (a folder holding a subset)")
    bursts = [load_frames([str(folder)], task, minimum=minimum, training=True)[0].float() for folder in folders]
    return (bursts, folders) if with_folders else bursts
