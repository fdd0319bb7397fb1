"""Reading bursts from disk: frame files or a folder of them (the first, in name order, is the reference),
camera raw files through rawpy, and folders of bursts for training."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import UserError

RAW_SUFFIXES = (".dng", ".cr2", ".cr3", ".nef", ".arw", ".orf", ".rw2", ".raf", ".pef", ".srw")


def read_raw(path: Path) -> np.ndarray:
    """A camera raw file -> (H, W, 1) RGGB mosaic in [0, 1] (black/white levels applied), via rawpy."""
    try:
        import rawpy
    except ImportError:
        raise UserError(f"{path}: reading camera raw files needs rawpy (pip install rawpy)") from None
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


def load_frames(inputs: list[str], task: str, minimum: int = 2):
    """(T, C, H, W) frames of one burst from files or a folder (raw files preferred where present) and the
    first image's ImageInfo (None for raw files); demosaic frames are single-channel, cropped to 4-px sides."""
    from ..io import list_images, read_image

    paths, problems = list_images(inputs)
    raw_paths = sorted(p for item in inputs for p in ([Path(item)] if Path(item).is_file() else
                                                      Path(item).glob("*")) if p.suffix.lower() in RAW_SUFFIXES)
    if problems and not raw_paths:
        raise UserError(problems[0])
    info = None
    arrays = []
    if raw_paths:
        arrays = [read_raw(p) for p in raw_paths]
    else:
        for path in paths:
            array, image_info = read_image(path)
            info = info or image_info
            arrays.append(array)
    if len(arrays) < minimum:
        raise UserError("a burst needs at least 2 frames" + (" (one raw frame is enough with --task demosaic and a "
                                                              "--model, without --adapt)" if task == "demosaic" else ""))
    shape = arrays[0].shape
    for array, path in zip(arrays, raw_paths or paths):
        if array.shape != shape:
            raise UserError(f"{path}: frame size {array.shape[:2]} differs from the first frame's {shape[:2]}")
    if task == "demosaic" and shape[2] != 1:
        raise UserError(f"{(raw_paths or paths)[0]}: --task demosaic needs single-channel RGGB Bayer frames, "
                        f"this one has {shape[2]} channels")
    frames = torch.from_numpy(np.stack(arrays).transpose(0, 3, 1, 2).copy())
    if task == "demosaic":
        frames = frames[..., : frames.shape[-2] // 4 * 4, : frames.shape[-1] // 4 * 4]
    return frames, info


def burst_folders(inputs: list[str]) -> list[Path]:
    """The bursts under ``inputs`` for training: a folder holding frame files is one burst; a folder holding
    only folders is a collection, each sub-folder a burst."""
    from ..io import IMAGE_SUFFIXES

    frame_suffixes = set(IMAGE_SUFFIXES) | set(RAW_SUFFIXES)
    found: list[Path] = []
    for item in inputs:
        folder = Path(item)
        if not folder.is_dir():
            raise UserError(f"{folder}: give a folder of burst frames, or a folder of such folders")
        if any(p.suffix.lower() in frame_suffixes for p in folder.iterdir() if p.is_file()):
            found.append(folder)
        else:
            found.extend(sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")))
    if not found:
        raise UserError(f"no burst folders under {', '.join(inputs)}")
    return found


def load_bursts(inputs: list[str], task: str) -> list[torch.Tensor]:
    """Every burst under ``inputs`` (see :func:`burst_folders`) as (T, C, H, W) float tensors (checked against
    memory before anything is decoded)."""
    from ..io import check_fits_in_memory

    folders = burst_folders(inputs)
    check_fits_in_memory([p for folder in folders for p in sorted(folder.iterdir()) if p.is_file()],
                         channels=1 if task == "demosaic" else None,
                         advice="train on fewer bursts (a folder holding a subset)")
    return [load_frames([str(folder)], task)[0].float() for folder in folders]
