"""Video input/output: folders of frames, printf patterns (``frames/%05d.png``) and video files.

Frames are float32 (H, W, C) arrays in [0, 1], as for still images (:mod:`selfrestore.io`). A
:class:`VideoInfo` remembers the input's form (folder, pattern or file), its bit depth and frame rate, so
the restored video is written back in the same form: 16-bit PNG frames give 16-bit PNG frames, an mp4
gives an mp4. Video files are decoded and encoded by the ffmpeg executable that ships with the
``imageio-ffmpeg`` package (no system ffmpeg needed); high-bit-depth sources are decoded as 16-bit RGB.
Frames are streamed, never all held in memory, so online restoration can start on the first frame.
A video file restored into a video file keeps the source's sound track (copied; re-encoded only if the
output container cannot hold it as it is).
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from .atomic_files import discard, publish, temporary_beside
from .errors import ResumeRefused, UserError, unreadable_image
from .intensity_map import apply_mapping, intensity_mapping
from .io import (FITS_SUFFIXES, IMAGE_SUFFIXES, OTHER_VIDEO_SUFFIXES, STACK_SUFFIXES, TIFF_SUFFIXES, VIDEO_SUFFIXES,
                 ImageInfo, compressed_fits_name, kept_stored_type, palette_colours, pixel_type, read_frames,
                 read_image, refuse_animation, stored_type_clipped_share, stored_type_clipping_said, tiff_pages_lost,
                 to_channels, uncompressed_fits_name, write_frames, write_image)
from .memory_check import check_fits_in_memory

#: a printf frame pattern's frame-number field, or ``%%`` (a literal %), in a frame file's name
_FIELD = re.compile(r"(%%|%0?\d*d)")
#: ffmpeg's muxer name for the suffixes whose name is not the muxer's
CONTAINERS = {".mkv": "matroska", ".m4v": "mp4", ".mpg": "mpeg", ".y4m": "yuv4mpegpipe"}


@dataclass
class VideoInfo:
    """How a video was stored, to write the restored one in the same form."""

    kind: str                    #: "folder", "pattern", "file" or "stack" (a TIFF / FITS time series)
    source: str
    frames: int
    height: int
    width: int
    channels: int = 3
    dtype: str = "uint8"         #: "uint8", "uint16" or "float32" (pixel type of frames / decoded video)
    fps: float = 25.0
    names: list[str] = field(default_factory=list)  #: frame file names (folder and pattern inputs)
    first_index: int = 0         #: first frame number of a pattern
    stack: ImageInfo | None = None  #: a stack input's layout (axes, pixel type, tags) to write it back alike
    #: float frames (a stack, or TIFF / FITS frames) far outside [0, 1] are mapped into it for the networks, one
    #: map for the whole video (no flicker), and back on writing float frames
    intensity: dict[str, float] | None = None
    alpha: bool = False          #: some input frames have an alpha channel (restored frames are written without)
    #: frames of a folder or pattern in more than one bit depth: the number of frames of each ("uint8": 2,
    #: "uint16": 1); ``dtype`` is then the deepest of them, so that no frame loses depth on writing
    mixed_depths: dict[str, int] | None = None
    #: a video file's colour is stored at full resolution (4:4:4 YUV or RGB): an 8-bit output keeps it so
    full_chroma: bool = False
    #: a video file's share of frame intervals that differ from the others (ffmpeg's vfrdet): a variable rate,
    #: which the output (written at a constant ``fps``) does not keep
    variable_rate: float = 0.0
    #: the frames' own pixel type where they are float counts of one wider or signed type (int16, int32, float64
    #: ...: :attr:`selfrestore.io.ImageInfo.stored_type`): TIFF / FITS frame and stack outputs are written in it
    stored_type: str | None = None


def _ffmpeg():
    try:
        import imageio_ffmpeg
    except ImportError:  # pragma: no cover - depends on the environment
        raise UserError("video files need imageio-ffmpeg: pip install 'selfrestore[video]' "
                        "(or pass a folder of frames)") from None
    return imageio_ffmpeg


def decoded_frames(path: str | os.PathLike) -> tuple[int, list[str], float]:
    """Decode every frame of the first video stream of ``path`` (ffmpeg, output discarded): how many decode,
    the errors ffmpeg reported for that stream or the file's end on the way (a damaged or cut-off file;
    empty for an intact one; other streams' errors, a glitch in the sound, are not the video's), and the share
    of frame intervals that differ from the others (ffmpeg's vfrdet filter; 0 for a constant rate, and for
    one rounded to a fine clock: see :func:`rounded_intervals` and :func:`steady_times`)."""
    cmd = [_ffmpeg().get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "repeat+level+info", "-i",
           str(path), "-map", "0:v:0", "-vf", "vfrdet", "-f", "null", "-"]
    run = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines = run.stdout.decode(errors="replace").splitlines()
    errors = [(found.group(1), found.group(2).strip()) for line in lines
              if (found := re.search(r"^(.*?)\[(?:error|fatal)\] (.*)", line))]
    if run.returncode:
        raise RuntimeError(errors[-1][1] if errors else f"ffmpeg exited with code {run.returncode}")
    codec = next((found.group(1) for line in lines if (found := re.search(r"Stream #0:\d+.*?: Video: (\w+)", line))),
                 None)
    video = [message for source, message in errors  # the video decoder's (its name, or ffmpeg's decoder thread)
             if (codec and f"[{codec} @" in source) or "vist#" in source or "[dec:" in source
             or re.search(r"partial file|ended prematurely|truncat", message, re.IGNORECASE)]
    vfr = next((found for line in lines
                if (found := re.search(r"\] VFR:([0-9.]+) \(\d+/\d+\)(?: min: (-?\d+) max: (-?\d+))?", line))), None)
    variable = float(vfr.group(1)) if vfr else 0.0
    clock = next((found for line in lines if (found := re.search(r"Stream #0:\d+.*?: Video: .*?([0-9.]+)(k?) tbn",
                                                                 line))), None)
    ticks_per_second = float(clock.group(1)) * (1000 if clock.group(2) else 1) if clock else 0.0
    if variable and vfr.group(2) is not None \
            and rounded_intervals(int(vfr.group(2)), int(vfr.group(3)), ticks_per_second) \
            and steady_times(presentation_times(path)):
        variable = 0.0
    for line in reversed(lines):
        if (found := re.search(r"frame=\s*(\d+)", line)):
            return int(found.group(1)), video, variable
    raise RuntimeError("ffmpeg did not say how many frames it decoded")


def rounded_intervals(shortest: int, longest: int, ticks_per_second: float = 0.0) -> bool:
    """Whether frame intervals of ``shortest`` to ``longest`` ticks of the stream's clock may be one constant rate
    rounded to that clock: at most one tick apart, a tick at most about a tenth of the interval or at most 1 ms.
    MKV / WebM keep milliseconds, so a constant 29.97, 30, 24 or 60 fps alternates 33 / 34 ms (16 / 17 ms)
    intervals and 120 / 240 fps 8 / 9 ms (4 / 5 ms), a QuickTime file at 600 Hz 20 / 21 ticks, an MP4 at 15360
    Hz 512 / 513. On a coarse clock (a tick of 1/25 s at 25 fps) one tick apart is a frame dropped or doubled: a
    variable rate. Intervals that pass may still drift (30 fps, then 29.4): :func:`steady_times` checks the
    frames' times themselves."""
    return 0 <= longest - shortest <= 1 and (shortest >= 10 or ticks_per_second >= 1000)


def presentation_times(path: str | os.PathLike) -> list[int] | None:
    """The presentation times of the first video stream's packets of ``path``, in ticks of its clock, in
    presentation order: demuxed only (ffmpeg's framecrc muxer, stream copy), no decoding. None when ffmpeg
    fails or a packet has no time."""
    run = subprocess.run([_ffmpeg().get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-i", str(path),
                          "-map", "0:v:0", "-c", "copy", "-f", "framecrc", "-"], capture_output=True)
    times = []
    for line in run.stdout.decode(errors="replace").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        fields = [field.strip() for field in line.split(",")]
        if len(fields) < 3 or not fields[2].lstrip("-").isdigit() or int(fields[2]) == -2**63:  # no time (NOPTS)
            return None
        times.append(int(fields[2]))
    return sorted(times) if run.returncode == 0 and times else None


def steady_times(times: Sequence[int] | None, tolerance: float = 1.5) -> bool:
    """Whether frame times (ticks, sorted) are one constant rate up to the clock's rounding: each at most
    ``tolerance`` ticks off the straight line from the first to the last (rounding puts each at most half a tick
    off its exact time, so at most one tick off that line). A rate that changes on the way (30 fps, then 29.4 on
    a millisecond clock: every interval 33 or 34 ms, yet 0.2 s off by 20 s) drifts from it."""
    if times is None or len(times) < 2:
        return times is not None
    spacing = (times[-1] - times[0]) / (len(times) - 1)
    return max(abs(time - times[0] - index * spacing) for index, time in enumerate(times)) <= tolerance


def has_sound(path: str | os.PathLike) -> bool:
    """Whether the video file ``path`` has an audio stream (ffmpeg's listing of its streams)."""
    probe = subprocess.run([_ffmpeg().get_ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True,
                           text=True, errors="replace")
    return bool(re.search(r"Stream #\S+.*: Audio:", probe.stderr))


def sound_kept(target: str | os.PathLike) -> bool:
    """Whether a video written to ``target`` can carry the source's sound: a video file, but not YUV4MPEG (raw
    frames only); frame folders, patterns and stacks hold none."""
    return output_kind(target) == "file" and Path(target).suffix.lower() != ".y4m"


#: bytes per frame of a YUV4MPEG chroma tag, per luma pixel count (w, h) and bytes per sample
_Y4M_PLANES = {"420": lambda w, h: w * h + 2 * ((w + 1) // 2) * ((h + 1) // 2),
               "422": lambda w, h: w * h + 2 * ((w + 1) // 2) * h, "444": lambda w, h: 3 * w * h,
               "444alpha": lambda w, h: 4 * w * h, "411": lambda w, h: w * h + 2 * ((w + 3) // 4) * h,
               "mono": lambda w, h: w * h}


def y4m_whole_frames(path: str | os.PathLike) -> tuple[int, bool] | None:
    """(frames, cut) of a YUV4MPEG file, read from its frame headers alone: how many frames it holds whole,
    and whether it ends inside a frame. A YUV4MPEG file states no length, so ffmpeg reads a copy cut mid-frame
    as the frames before the cut, without an error. None when the header is not understood (left to ffmpeg)."""
    with open(path, "rb") as f:
        header = f.readline(4096)
        fields = header.decode("ascii", "replace").split()
        if not fields or fields[0] != "YUV4MPEG2" or not header.endswith(b"\n"):
            return None
        tags = {field[0]: field[1:] for field in fields[1:] if field}
        older = next((field[7:] for field in fields[1:] if field.startswith("XYSCSS=")), None)
        chroma = tags.get("C") or (older.lower() if older else "420jpeg")  # ffmpeg reads XYSCSS without a C tag
        found = re.fullmatch(r"(?:(420)(?:jpeg|paldv|mpeg2)?|(422|444|444alpha|411|mono))"
                             r"|(?:(420|422|444)p|(mono))(9|10|12|14|16)", chroma)
        if not found or not tags.get("W", "").isdigit() or not tags.get("H", "").isdigit():
            return None
        planes = next(group for group in found.groups()[:4] if group)
        size = _Y4M_PLANES[planes](int(tags["W"]), int(tags["H"])) * (2 if found.group(5) else 1)
        end = os.fstat(f.fileno()).st_size
        frames = 0
        while f.tell() < end:
            line = f.readline(4096)
            if not line.startswith(b"FRAME") or not line.endswith(b"\n"):
                rest = line + f.read(4096)  # a stray line break or space after the last frame is no frame
                return frames, bool(rest.strip()) or f.tell() < end
            if f.tell() + size > end:
                return frames, True
            f.seek(size, os.SEEK_CUR)
            frames += 1
        return frames, False


RIFF_SLACK = 16  #: bytes a RIFF file may hold fewer than its chunks state (a missing pad byte, a writer that
#: stated the whole file's size): a cut at a frame boundary removes a whole frame chunk, header and data


def riff_length(path: str | os.PathLike) -> tuple[int, int, int | None] | None:
    """(bytes its RIFF chunks state, bytes it holds, frames its main header counts or None) of an AVI, or None
    when it states no length (not RIFF, or written to a pipe: 0 or 0xFFFFFFFF). A copy cut at a frame boundary
    decodes without an error and ffmpeg takes its length from what is left; the chunk sizes still state the
    whole. The top-level chunks are walked (an OpenDML file over 1 GB continues in RIFF 'AVIX' chunks); the frame
    count is given for a single-chunk file only (OpenDML's main header counts the first chunk's frames)."""
    with open(path, "rb") as f:
        head = f.read(52)
        actual = os.fstat(f.fileno()).st_size
        if len(head) < 12 or head[:4] != b"RIFF":
            return None
        frames = int.from_bytes(head[48:52], "little") \
            if len(head) == 52 and head[12:16] == b"LIST" and head[20:28] == b"hdrlavih" else None
        position, chunks = 0, 0
        while position + 8 <= actual:
            f.seek(position)
            chunk = f.read(8)
            if chunk[:4] != b"RIFF":  # trailing data after the last chunk
                break
            size = int.from_bytes(chunk[4:8], "little")
            if size in (0, 0xFFFFFFFF):
                return None
            position, chunks = position + 8 + size + (size & 1), chunks + 1
    return position, actual, frames if chunks == 1 else None


def is_pattern(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a printf frame pattern (``frames/%05d.png``) rather than a file or folder name: its
    file name has a ``%d`` field (``%%`` is a literal %; the folders are taken as they are, on reading and on
    writing alike)."""
    return any(token != "%%" for token in _FIELD.findall(Path(path).name))


def check_pattern(pattern: str | os.PathLike) -> None:
    """A UserError unless the frame pattern ``pattern`` fills in one frame number: exactly one ``%d`` field,
    and no other ``%`` than ``%%`` (two fields crashed with a traceback where the number was filled in)."""
    name = Path(pattern).name
    try:
        fits = sum(token != "%%" for token in _FIELD.findall(name)) == 1 and bool(name % 0)
    except (TypeError, ValueError):  # another printf field (%s), or a lone %
        fits = False
    if not fits:
        raise UserError(f"{pattern}: a frame pattern has exactly one %d field (e.g. %05d); write a literal % as %%")


def _name_regex(name: str, number: str) -> re.Pattern:
    """A regex of the file names the pattern file name ``name`` gives: its field as ``number``, ``%%`` as the
    one % it writes (``re.escape`` of the name kept both)."""
    parts = _FIELD.split(name)  # literal text at even positions, fields and %% at odd ones
    return re.compile("^" + "".join(re.escape(part) if i % 2 == 0 else "%" if part == "%%" else number
                                    for i, part in enumerate(parts)) + "$")


def is_video_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` has a video file suffix (decoded through ffmpeg, not read as an image)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def is_stack_file(path: str | os.PathLike) -> bool:
    """A TIFF or FITS name (compressed FITS too: ``NAME.fits.fz``): a time series of planes in one file
    (microscopy time-lapse, telescope cube)."""
    return Path(path).suffix.lower() in STACK_SUFFIXES or compressed_fits_name(Path(path).name)


def spool_folder(target: str | os.PathLike) -> Path:
    """The hidden folder next to a video or stack file where a resumable run keeps its restored frames."""
    path = Path(target)
    return path.with_name(f".{path.name}.frames")


def natural_key(name: str) -> tuple:
    """Sort key that orders the numbers inside names by value: ``8.png 9.png 10.png``, not ``10 8 9``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)], name


def frames_on_disk(pattern: str | os.PathLike) -> dict[int, Path]:
    """The existing files a printf pattern names, by frame number; only files the pattern would write under
    that number count (``%03d`` names ``007.png``, not ``7.png`` or ``0007.png``)."""
    path = Path(pattern)
    if not path.parent.is_dir():
        return {}
    regex = _name_regex(path.name, r"(\d+)")
    found = {}
    for p in path.parent.iterdir():
        m = regex.match(p.name)
        if m and path.name % int(m.group(1)) == p.name:
            found[int(m.group(1))] = p
    return found


def _pattern_frames(pattern: str) -> tuple[list[Path], int]:
    """The files of a printf pattern from its smallest frame number on; a number missing in between is a
    UserError (a video with a hole would be restored with frames silently dropped)."""
    folder = Path(pattern).parent
    if not folder.is_dir():
        raise UserError(f"{pattern}: folder {folder} does not exist")
    found = frames_on_disk(pattern)
    if not found:
        loose = _name_regex(Path(pattern).name, r"\d+")
        near = sorted((p.name for p in folder.iterdir() if loose.match(p.name)), key=natural_key)
        hint = f" (files such as {near[0]} exist: mind the number's width)" if near else ""
        raise UserError(f"{pattern}: no frame matches this pattern{hint}")
    start, end = min(found), max(found)
    missing = next((i for i in range(start, end + 1) if i not in found), None)
    if missing is not None:
        raise UserError(f"{pattern}: frame {missing} ({Path(pattern).name % missing}) is missing between frames "
                        f"{start} and {end}; restore the frame, or give a folder or pattern of consecutive frames")
    return [found[i] for i in range(start, end + 1)], start


def _folder_frames(folder: Path) -> list[Path]:
    """A folder's image files in natural order (``frame8.png`` before ``frame10.png``); hidden files are not
    frames (the temporary file a killed run left mid-write, macOS ``._NAME`` companions)."""
    paths = sorted((p for p in folder.iterdir()
                    if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")),
                   key=lambda p: natural_key(p.name))
    if not paths:
        raise UserError(f"{folder}: folder holds no frames ({', '.join(IMAGE_SUFFIXES)})")
    return paths


#: a frame file name: what comes before its last number, the number, what follows (no digit)
FRAME_NUMBER = re.compile(r"(.*?)(\d+)(\D*)")


def numbering(names: Sequence[str]) -> str | None:
    """The printf pattern all ``names`` follow (``f%03d.png`` for ``f000.png f001.png``; the last number in a
    name is the frame number), or None when they share none."""
    parts = [FRAME_NUMBER.fullmatch(name) for name in names]
    if not parts or None in parts or len({(m.group(1), m.group(3)) for m in parts}) != 1:
        return None
    head, tail = (parts[0].group(k).replace("%", "%%") for k in (1, 3))
    widths = {len(m.group(2)) for m in parts}
    spec = f"{head}%0{widths.pop()}d{tail}" if len(widths) == 1 else f"{head}%d{tail}"
    return spec if all(spec % int(m.group(2)) == m.group(0) for m in parts) else None


def numbering_gaps(names: Sequence[str]) -> list[tuple[str, str]]:
    """(before, after) name pairs where the frame numbers of a folder's ``names`` (in order, all following one
    :func:`numbering`) skip: a frame pattern refuses a missing frame, a folder takes its files as consecutive."""
    if numbering(names) is None:
        return []
    numbers = [int(FRAME_NUMBER.fullmatch(name).group(2)) for name in names]  # type: ignore[union-attr]
    return [(names[i], names[i + 1]) for i in range(len(names) - 1) if numbers[i + 1] - numbers[i] != 1]


#: the pixel types of frames, shallowest first (the order in which a video's output depth is chosen)
DEPTHS = ("uint8", "uint16", "float32")


def _pixel_type_of(array: np.ndarray) -> str:
    """The pixel type :func:`selfrestore.io.read_image` reports for the decoded pixels ``array``."""
    return pixel_type(array) or "float32"


def _frame_header(path: Path) -> tuple[int, int, int, bool, str, str | None]:
    """(height, width, colour channels, alpha, pixel type, stored type) of one frame file; its pixels are decoded
    too (a file cut short has a sound header): milliseconds per frame, where fine-tuning then takes seconds; an
    unreadable file is a UserError naming it. The pixel type is the one :func:`selfrestore.io.read_image`
    reports ("uint8", "uint16" or "float32"), the stored type its :attr:`~selfrestore.io.ImageInfo.stored_type`
    (int16, float64 ... read as float counts, or None)."""
    if path.stat().st_size == 0:
        raise UserError(f"{path}: empty file (0 bytes)")
    suffix = path.suffix.lower()
    try:
        if suffix in TIFF_SUFFIXES:
            import tifffile

            with tifffile.TiffFile(str(path)) as tif:
                tiff_pages_lost(tif, path)
                page = tif.pages[0]
                if tif.series and int(np.prod(tif.series[0].shape)) > int(np.prod(page.shape)):
                    raise UserError(f"{path}: a stack of images, not one frame")
                samples, photometric = int(page.samplesperpixel), int(page.photometric)
                pixels = page.asarray()
                depth = _pixel_type_of(pixels)
                if photometric == 3 and page.colormap is not None:  # indices: read_image applies the colour map
                    return (int(page.imagelength), int(page.imagewidth), 3, False, pixel_type(palette_colours(page)),
                            None)
                if photometric == 5 and samples >= 4:  # CMYK (+ alpha): read as RGB
                    return int(page.imagelength), int(page.imagewidth), 3, samples > 4, depth, None
                return (int(page.imagelength), int(page.imagewidth), 1 if samples <= 2 else 3, samples in (2, 4),
                        depth, kept_stored_type(pixels.dtype, depth, inverted=photometric == 0))
        if suffix not in FITS_SUFFIXES + (".ppm", ".pnm"):  # (PIL reads a 16-bit PPM as 8 bits: read_image below)
            from .io import png16_colour_type, pil_image

            Image = pil_image()

            with Image.open(path) as img:
                refuse_animation(img, path)  # (found at its turn, it stopped the video halfway)
                mode, (width, height) = img.mode, img.size
                transparent = "transparency" in img.info
                img.load()
                # PIL reads a 16-bit colour PNG as 8 bits (read_image does not); "I" / "F": 32-bit pixels
                depth = "uint16" if mode.startswith("I;16") or png16_colour_type(path) else \
                    _pixel_type_of(np.asarray(img)) if mode in ("I", "F") else "uint8"
            gray = mode in ("1", "L", "LA", "La", "I", "F") or mode.startswith("I;16")
            alpha = mode in ("LA", "La", "RGBA", "RGBa", "PA") or (transparent and (mode in ("P", "L", "RGB")
                                                                                   or mode.startswith("I;16")))
            return height, width, 1 if gray else 3, alpha, depth, None  # (PNG ...: no type of its own kept)
    except UserError:
        raise
    except Exception as exc:  # PIL / tifffile raise many types for data that is not an image
        raise unreadable_image(path, exc) from None
    frame, info = read_image(path)
    return frame.shape[0], frame.shape[1], frame.shape[2], info.alpha is not None, info.dtype, info.stored_type


def samples_per_frame(frames: int) -> int:
    """How many pixels of each frame :func:`~selfrestore.intensity_map.intensity_mapping` samples for a video's one map:
    2 million over the whole video (at least 500 a frame), so the samples of a long video stay small; the same
    for a video kept as a folder of frames and as a stack file, so both get the same map."""
    return max(500, 2_000_000 // max(frames, 1))


DIM_CHECK_FRAMES = 16  #: frames (evenly spread) read to tell whether 16-bit frames are dim data


def _spread(count: int) -> list[int]:
    """Up to DIM_CHECK_FRAMES frame indices spread evenly over ``count`` frames."""
    return sorted({round(i * (count - 1) / max(1, DIM_CHECK_FRAMES - 1)) for i in range(min(count, DIM_CHECK_FRAMES))})


def dim_16_bit_frames(count: int, frame: Callable[[int], np.ndarray]) -> bool:
    """Whether the ``count`` 16-bit frames of a video (``frame(i)``: the i-th, read when asked) use only a sliver
    of their range (12-bit counts kept in 16-bit files, a dim sensor's), judged on up to DIM_CHECK_FRAMES of them
    spread evenly: ``restore`` maps such images to the range its networks work on
    (:func:`~selfrestore.intensity_map.intensity_mapping` with ``dim``), ``video`` does not yet, and its networks
    would return them far off (a 12-bit time-lapse came back at 5x its mean). ``inspect`` asks the same."""
    return intensity_mapping((frame(i) for i in _spread(count)), dim=True) is not None


def refuse_dim_frames(source: str | os.PathLike, count: int, frame: Callable[[int], np.ndarray]) -> None:
    """A UserError for the dim 16-bit frames of :func:`dim_16_bit_frames`, saying what to do instead."""
    if not dim_16_bit_frames(count, frame):
        return
    raise UserError(f"{source}: its 16-bit frames use only a small part of the 16-bit range (12- or 14-bit counts?), "
                    "which selfrestore video does not map to its networks' range yet (restore does): save the frames "
                    "as float32 TIFF (their counts as float: video maps those), or scale them to the full 16-bit range "
                    "first; or restore the frames one by one with selfrestore restore")


class VideoReader:
    """Iterate over the frames of a folder, a printf pattern or a video file (float32 (H, W, C))."""

    def __init__(self, source: str | os.PathLike):
        text = str(source)
        self._paths: list[Path] = []
        if is_pattern(text):
            check_pattern(text)
            self._paths, first = _pattern_frames(text)
            self.info = self._frames_info("pattern", text, first)
        elif Path(text).is_dir():
            self._paths = _folder_frames(Path(text))
            self.info = self._frames_info("folder", text, 0)
        elif not Path(text).exists():
            raise UserError(f"{text}: no such file, folder or frame pattern")
        elif is_video_file(text):
            self.info = self._probe_file(Path(text))
        elif is_stack_file(text):
            self.info = self._read_stack(Path(text))
        else:
            raise UserError(f"{text}: not a video ({', '.join(VIDEO_SUFFIXES)}), a TIFF / FITS time series, "
                            "a folder of frames or a frame pattern like frames/%05d.png")

    def _frames_info(self, kind: str, source: str, first: int) -> VideoInfo:
        frame, image_info = read_image(self._paths[0])
        h, w, c = frame.shape
        alpha, depths, stored = self._check_frames()
        # the deepest frame's depth for every frame: 8-bit frames (read as v / 255) are written 16-bit as v * 257
        deepest = max([image_info.dtype, *depths], key=DEPTHS.index)
        mapping = self._intensity() if deepest == "float32" else None
        if deepest == "uint16":
            refuse_dim_frames(source, len(self._paths), lambda i: read_image(self._paths[i])[0])
        dtype = "float32" if mapping else deepest  # counts cannot go back into 8 / 16 bits
        if mapping and len(depths) > 1:  # 8/16-bit frames (read in [0, 1]) through the counts' map: near black
            whole = ", ".join(f"{n} {depth}" for depth, n in depths.items())
            raise UserError(f"{source}: the frames mix float counts with 8/16-bit images ({whole}); one video needs "
                            "one kind of values: convert them alike")
        return VideoInfo(kind, source, len(self._paths), h, w, c, dtype, names=[p.name for p in self._paths],
                         first_index=first, intensity=mapping, alpha=alpha,
                         mixed_depths=depths if len(depths) > 1 else None,
                         stored_type=stored if dtype == "float32" else None)

    def _intensity(self) -> dict[str, float] | None:
        """The one :func:`intensity_mapping` of float frames far outside [0, 1] (counts kept as float TIFF /
        FITS), from samples of every frame, read one at a time: a map per frame would make the restored video
        flicker. None for frames in about [0, 1]; only TIFF / FITS frames can hold floats (others are not read
        twice)."""
        if not any(p.suffix.lower() in STACK_SUFFIXES for p in self._paths):
            return None
        return intensity_mapping((read_image(path)[0] for path in self._paths),
                                 per_image=samples_per_frame(len(self._paths)))

    def _check_frames(self) -> tuple[bool, dict[str, int], str | None]:
        """Read every frame before anything is restored, so that a file which is no image, is cut short or has
        another size stops the run before a frame is written (not half-way); returns whether any frame
        has an alpha channel, how many frames there are of each pixel type (shallowest first), and the stored
        type (int16, float64 ...) that every frame shares (None where they differ: float32 holds them all)."""
        height, width, channels, alpha, depth, stored = _frame_header(self._paths[0])
        counts = {depth: 1}
        for path in self._paths[1:]:
            h, w, c, a, depth, own = _frame_header(path)
            counts[depth] = counts.get(depth, 0) + 1
            stored = stored if own == stored else None
            if (h, w) != (height, width):
                raise UserError(f"{path}: {w}x{h} pixels, but the first frame {self._paths[0].name} is "
                                f"{width}x{height}; every frame of a video needs the same size")
            if c != channels:
                raise UserError(f"{path}: {'gray' if c == 1 else 'colour'}, but the first frame "
                                f"{self._paths[0].name} is {'gray' if channels == 1 else 'colour'}; every frame "
                                "of a video needs the same channels")
            alpha = alpha or a
        return alpha, dict(sorted(counts.items(), key=lambda item: DEPTHS.index(item[0]))), stored

    def _read_stack(self, path: Path) -> VideoInfo:
        """A TIFF / FITS file whose planes are the frames (one leading axis: time); they are held in memory."""
        check_fits_in_memory([path], copies=2, advice="save its frames as a folder of images (read one at a "
                                                      "time) or split the stack into shorter ones")
        frames, image_info = read_frames(path)
        if len(image_info.stack_shape) != 1:
            raise UserError(f"{path}: " + ("one image, not a time series" if not image_info.stack_shape else
                                           f"a stack with axes {image_info.stack_axes}: a video needs one "
                                           f"leading (time) axis"))
        if image_info.dtype == "uint16":
            refuse_dim_frames(path, len(frames), frames.__getitem__)
        mapping = intensity_mapping(frames, per_image=samples_per_frame(len(frames)))  # as the same frames in a folder
        if mapping:
            frames = [apply_mapping(f, mapping) for f in frames]
        self._frames = frames
        h, w, c = frames[0].shape
        return VideoInfo("stack", str(path), len(frames), h, w, c, image_info.dtype, stack=image_info,
                         intensity=mapping, alpha=image_info.stack_alpha_dropped, stored_type=image_info.stored_type)

    def _probe_file(self, path: Path) -> VideoInfo:
        ffmpeg = _ffmpeg()
        try:
            gen = ffmpeg.read_frames(str(path))
            meta = next(gen)
            gen.close()
            count, errors, variable = decoded_frames(path)
        except Exception as exc:
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise UserError(f"{path}: cannot read video: {reason}") from None
        if count == 0:
            raise UserError(f"{path}: video holds no frames")
        cut = None  # why the file is a cut-off copy, if it is one
        whole = y4m_whole_frames(path) if path.suffix.lower() == ".y4m" else None
        if whole is not None and whole[1]:
            cut = f"the file ends inside frame {whole[0] + 1}, after {whole[0]} whole frames"
        riff = riff_length(path) if path.suffix.lower() == ".avi" else None
        if cut is None and riff is not None and riff[0] > riff[1] + RIFF_SLACK and not (riff[2] and count >= riff[2]):
            cut = f"its header states {riff[0]} bytes, the file holds {riff[1]} ({count} frames decode)"
        stated = float(meta.get("duration") or 0.0) * float(meta.get("fps") or 0.0)
        if cut is None and errors and count < stated - 0.5:  # the video fails before the file's stated end
            cut = (f"{count} frames decode, where its length ({float(meta['duration']):.2f} s at "
                   f"{float(meta['fps']):g} fps) holds about {round(stated)} (ffmpeg: {errors[0]})")
        if cut is not None:
            raise UserError(f"{path}: damaged or cut off: {cut}; every frame is needed: re-encode the frames that "
                            "decode into a new file to restore those")
        width, height = meta["size"]
        pix_fmt = str(meta.get("pix_fmt", ""))
        deep = bool(re.search(r"(9|10|12|14|16)(le|be)|rgb48|rgba64", pix_fmt))
        alpha = bool(re.match(r"(yuva|rgba|argb|bgra|abgr|gbrap|ya\d)", pix_fmt))
        gray = bool(re.match(r"(gray|ya\d|monob|monow)", pix_fmt))  # read as one channel (not y210le: 4:2:2 colour)
        return VideoInfo("file", str(path), count, height, width, 1 if gray else 3, "uint16" if deep else "uint8",
                         fps=exact_rate(path, float(meta.get("fps") or 25.0)), alpha=alpha,
                         full_chroma=bool(re.match(r"(yuva?j?444|gbr|[0a]?rgb|[0a]?bgr|pal8|nv24|nv42)", pix_fmt)),
                         variable_rate=variable)

    def __len__(self) -> int:
        return self.info.frames

    def __iter__(self) -> Iterator[np.ndarray]:
        if self.info.kind == "stack":
            yield from self._frames
            return
        if self.info.kind != "file":
            for path in self._paths:
                frame, _ = read_image(path)
                if frame.shape != (self.info.height, self.info.width, self.info.channels):
                    raise UserError(f"{path}: frame of shape {frame.shape} in a video of "
                                    f"{self.info.height}x{self.info.width}x{self.info.channels}")
                yield apply_mapping(frame, self.info.intensity)
            return
        deep, channels = self.info.dtype == "uint16", self.info.channels
        pix_fmt = ("gray16le" if deep else "gray") if channels == 1 else ("rgb48le" if deep else "rgb24")
        gen = _ffmpeg().read_frames(self.info.source, pix_fmt=pix_fmt,  # each frame once
                                    bits_per_pixel=(16 if deep else 8) * channels,
                                    output_params=["-fps_mode", "passthrough"])
        next(gen)
        shape = (self.info.height, self.info.width, channels)
        try:
            for raw in gen:
                if deep:
                    yield np.frombuffer(raw, dtype="<u2").reshape(shape).astype(np.float32) / 65535.0
                else:
                    yield np.frombuffer(raw, dtype=np.uint8).reshape(shape).astype(np.float32) / 255.0
        finally:
            gen.close()

    def read_all(self) -> np.ndarray:
        """All frames as one (T, H, W, C) array."""
        return np.stack(list(self))


def exact_rate(path: str | os.PathLike, reported: float) -> float:
    """The frame rate of a video file's first video stream as the exact fraction ffmpeg holds (the time base
    of its frame-by-frame output), where ``reported`` (ffmpeg's rounded text: 23.98 for 24000/1001, and for
    2398/100 too) is within 1% of it; else ``reported`` (a variable rate, whose average it is). Encoding at the
    rounded rate made a 2-hour 24000/1001 film 1.2 s short, its sound drifting."""
    cmd = [_ffmpeg().get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(path),
           "-map", "0:v:0", "-frames:v", "1", "-f", "framecrc", "-"]
    try:
        out = subprocess.run(cmd, capture_output=True, timeout=60).stdout.decode(errors="replace")
    except (OSError, subprocess.SubprocessError):
        return reported
    found = re.search(r"#tb 0: (\d+)/(\d+)", out)
    if not found or int(found.group(1)) == 0:
        return reported
    rate = int(found.group(2)) / int(found.group(1))
    return rate if abs(rate - reported) <= 0.01 * reported else reported


def read_video(source: str | os.PathLike) -> tuple[np.ndarray, VideoInfo]:
    """All frames (T, H, W, C) float32 in [0, 1] and the :class:`VideoInfo`."""
    reader = VideoReader(source)
    return reader.read_all(), reader.info


def output_kind(target: str | os.PathLike) -> str:
    """What a video written to ``target`` becomes: "file" (a video suffix), "stack" (a TIFF / FITS name),
    "pattern" (a ``%d`` field) or "folder"; an image file name, a video format it cannot write (.gif ...: not
    made a folder of that name) or a pattern without an image suffix (its frames could not be written), is a
    UserError."""
    text = str(target)
    if is_video_file(text):
        return "file"
    if Path(text).suffix.lower() in STACK_SUFFIXES and not is_pattern(text):
        return "stack"
    if compressed_fits_name(Path(text).name):  # read, not written (as restore writes NAME.fits for them)
        raise UserError(f"{text}: compressed FITS is read but not written; choose "
                        f"{uncompressed_fits_name(Path(text).name)} (uncompressed)")
    if is_pattern(text):
        check_pattern(text)
        suffix = Path(text).suffix.lower()
        if suffix not in IMAGE_SUFFIXES:  # said now, not at the first frame written after all the fine-tuning
            what = f"unknown image suffix {suffix!r}" if suffix else "no image suffix"
            raise UserError(f"{text}: {what}; a frame pattern ends with one of {', '.join(IMAGE_SUFFIXES)} "
                            f"(such as {Path(text).with_suffix('.png')})")
        return "pattern"
    suffix = Path(text).suffix.lower()
    if suffix in IMAGE_SUFFIXES or (suffix in OTHER_VIDEO_SUFFIXES and not Path(text).is_dir()):
        raise UserError(f"{text}: output of a video must be a folder, a frame pattern like out/%05d.png, a video "
                        f"file ({', '.join(VIDEO_SUFFIXES)}) or a TIFF / FITS stack")
    return "folder"


def output_frame_path(target: str | os.PathLike, info: VideoInfo, index: int) -> Path:
    """The file frame ``index`` of the video ``info`` goes to in a pattern or folder output ``target``."""
    if output_kind(target) == "pattern":  # (the file name only: its folders are taken as they are, as on reading)
        return Path(target).with_name(Path(target).name % (info.first_index + index))
    if info.kind in ("folder", "pattern") and index < len(info.names):
        name = info.names[index]
    else:
        name = f"{index + 1:05d}.png"
    return Path(target) / name


def output_paths(target: str | os.PathLike, info: VideoInfo, count: int | None = None) -> list[Path]:
    """Every file a :class:`VideoWriter` writes for the first ``count`` (default: all) frames of ``info``:
    the frame files of a pattern or folder output, or the one video / stack file."""
    if output_kind(target) in ("file", "stack"):
        return [Path(target)]
    return [output_frame_path(target, info, i) for i in range(info.frames if count is None else count)]


def input_paths(info: VideoInfo) -> list[Path]:
    """The files a video was read from: its frame files (folder, pattern) or its one file."""
    if info.kind == "folder":
        return [Path(info.source) / name for name in info.names]
    if info.kind == "pattern":
        return [Path(info.source).parent / name for name in info.names]
    return [Path(info.source)]


def stale_frames(target: str | os.PathLike, info: VideoInfo, count: int | None = None) -> list[Path]:
    """Frame files already in a pattern or folder output that are named like its frames (the pattern, or
    the one numbering of the frame names) but are not among the ``count`` (default: all) frames of
    ``info``: what is left of an older, longer video. Other files, and the input's frames, never count."""
    if output_kind(target) in ("file", "stack"):
        return []
    paths = output_paths(target, info, count)
    spec = str(target) if output_kind(target) == "pattern" else numbering([p.name for p in paths])
    if spec is None:
        return []
    if output_kind(target) == "folder":
        spec = str(Path(target) / spec)
    keep = {p.resolve() for p in paths + input_paths(info)}
    return [p for _, p in sorted(frames_on_disk(spec).items()) if p.resolve() not in keep]


class VideoWriter:
    """Write frames one at a time, in the form given by ``target``'s name, the bit depth of ``info``.

    ``target`` with a video suffix -> a video file (written to a temporary name, renamed on close);
    a TIFF / FITS name -> one stack file, written on close (the input stack's layout and tags when the input
    was one); with a ``%d`` field -> a frame pattern; anything else -> a folder (frame names kept from a
    folder or pattern input, ``00001.png`` ... otherwise). Use as a context manager.

    ``spool=True`` (a video or stack file): each frame also goes to disk at once, into the hidden folder
    ``.NAME.frames`` next to ``target`` (losslessly, in the output's bit depth), and the file is made from
    it on close; an interrupted run keeps the folder, so a rerun with ``resume=True`` can :meth:`skip` the
    frames already restored. Without ``resume`` a folder left by an earlier run is cleared.

    ``prune=True`` (a pattern or folder output): once every frame is written, delete the :func:`stale_frames`
    of an older, longer video there (``--overwrite``), so that the output holds this video alone.

    ``keep_spool=True``: the spool folder outlives :meth:`close`, until :meth:`remove_spool` (the caller first
    deletes its resume state: a kill in between must not leave that state without the frames it skips).
    """

    def __init__(self, target: str | os.PathLike, info: VideoInfo, quality: int = 9, spool: bool = False,
                 resume: bool = False, prune: bool = False, keep_spool: bool = False):
        self.target, self.info, self.count, self.prune = str(target), info, 0, prune
        self.keep_spool = keep_spool
        self.removed: list[Path] = []  #: stale frames deleted on close (``prune``)
        #: frame files and a stack output made of them: the input's bit depth and own type (int16 ...: stored_type)
        self._image_info = ImageInfo(dtype=info.dtype, channels=info.channels, stored_type=info.stored_type)
        self._clipped: list[float] = []  # of each frame written: its values clipped to the input's integer type
        self._encoder = None
        self._frames: list[np.ndarray] = []
        self._spool: Path | None = None
        self.kind = output_kind(self.target)
        if self.kind == "file":
            Path(self.target).parent.mkdir(parents=True, exist_ok=True)
            self._tmp: Path | None = None  # the encoder's file, made when the first frame comes
            self._quality = quality
        elif self.kind == "pattern":
            Path(self.target).parent.mkdir(parents=True, exist_ok=True)
        elif self.kind == "folder":
            Path(self.target).mkdir(parents=True, exist_ok=True)
        if spool and self.kind in ("file", "stack"):
            self._spool = spool_folder(self.target)
            if self._spool.exists() and not resume:
                shutil.rmtree(self._spool)
            self._spool.mkdir(parents=True, exist_ok=True)

    def _frame_path(self, index: int) -> Path:
        return output_frame_path(self.target, self.info, index)

    @property
    def _deep(self) -> bool:
        """A video file gets 16 bits (10 or 16 in the file) from 16-bit or float frames, else 8."""
        return self.info.dtype in ("uint16", "float32")

    def _open_encoder(self, height: int, width: int, gray: bool = False) -> None:
        """``gray``: one-channel frames, kept as one channel in .mkv / .avi (lossless FFV1 gray, 8 or 16 bits)."""
        deep, full = self._deep, self.info.full_chroma  # 8 bits: 4:2:0 (players' default) unless the source was 4:4:4
        suffix = Path(self.target).suffix.lower()
        even = height % 2 == 0 and width % 2 == 0  # 4:2:0 needs even sides
        if suffix == ".y4m":  # YUV4MPEG holds raw frames only (an encoded stream wrote an empty file)
            codec, pix_out = "rawvideo", "yuv444p16le" if deep else "yuv444p"
        elif (deep or gray) and suffix in (".mkv", ".avi"):
            codec, pix_out = "ffv1", "gbrp16le"             # lossless 16-bit RGB (no YUV conversion), or gray
        elif suffix == ".webm":  # WebM holds VP8 / VP9 / AV1 only
            codec, pix_out = "libvpx-vp9", "yuv444p10le" if deep else "yuv420p" if even and not full else "yuv444p"
        elif deep:
            codec, pix_out = "libx264", "yuv444p10le"       # 10-bit H.264 (High 4:4:4)
        else:
            codec, pix_out = "libx264", "yuv420p" if even and not full else "yuv444p"
        gray = gray and codec == "ffv1"  # (ffmpeg decodes gray H.264 as 4:2:0 colour)
        if gray:
            pix_out = "gray16le" if deep else "gray"
        quality, extra = self._quality, []
        if codec == "libvpx-vp9":  # VP9 ignores -qscale: constant quality needs -crf with -b:v 0
            quality, extra = None, ["-crf", str(int(63 * (1 - self._quality / 10))), "-b:v", "0"]
        elif codec == "rawvideo":
            quality, extra = None, (["-strict", "-1"] if deep else [])  # 16-bit YUV4MPEG is an extension
        self._tmp = temporary_beside(Path(self.target))  # (two runs never share it; a killed run's is removed)
        self._encoder = _ffmpeg().write_frames(
            str(self._tmp), (width, height), pix_fmt_out=pix_out,
            pix_fmt_in=("gray16le" if deep else "gray") if gray else ("rgb48le" if deep else "rgb24"),
            fps=self.info.fps, quality=quality, codec=codec, macro_block_size=1, ffmpeg_log_level="error",
            output_params=extra + ["-f", CONTAINERS.get(suffix, suffix[1:])])
        self._encoder.send(None)
        self._encoder_gray = gray

    def skip(self, count: int) -> None:
        """Move past ``count`` frames an interrupted run already wrote (frame files, or the spool folder of a
        video or stack file)."""
        if self.kind in ("file", "stack"):
            if self._spool is None:
                raise UserError(f"{self.target}: a video or stack file written without a spool folder cannot be "
                                "continued")
            missing = [i for i in range(self.count, self.count + count) if not self._spooled(i).exists()]
            if missing:  # the state is kept: the frame may be put back
                raise ResumeRefused(f"{self._spool}: frame {missing[0] + 1} of the interrupted run is missing; "
                                    "put it back, or start over without --resume, with --overwrite")
        else:  # frame files: deleted or moved since, the restored video would lack them
            gone = next((path for path in map(self._frame_path, range(self.count, self.count + count))
                         if not path.exists()), None)
            if gone is not None:  # the state is kept: the frame may be put back
                raise ResumeRefused(f"{gone}: a frame the interrupted run wrote is missing; put it back, or start "
                                    "over without --resume, with --overwrite")
        self.count += count

    def _spool_depth(self) -> str:
        """What a spooled frame keeps, losslessly for the output: its 8 / 16 bits (a video holds no more),
        or float for a float stack."""
        if self.kind == "file" or self.info.dtype in ("uint8", "uint16"):
            return "uint16" if self._deep else "uint8"
        return "float32"

    def _spooled(self, index: int) -> Path:
        """A spooled frame: PNG for 8 / 16 bits (compressed: a long video takes less disk), else float TIFF."""
        return self._spool / f"{index:06d}.{'tif' if self._spool_depth() == 'float32' else 'png'}"

    def write(self, frame: np.ndarray) -> None:
        """Append one (H, W, C) float frame in [0, 1]."""
        frame = np.asarray(frame, dtype=np.float32)
        if frame.ndim == 2:
            frame = frame[:, :, None]
        if self._spool is not None:  # lossless in the output's depth; the file is made from these on close
            write_image(self._spooled(self.count), frame, dtype=self._spool_depth())
            self.count += 1
            return
        self._append(frame)
        self.count += 1

    def _append(self, frame: np.ndarray) -> None:
        """Put one frame into the stack or the encoder (not counted)."""
        if self.kind == "stack":
            self._frames.append(self._unmapped(frame))
            self._clipped.append(stored_type_clipped_share(self.target, self._frames[-1:], self._image_info))
        elif self.kind != "file":
            path = self._frame_path(self.count)
            frame = self._unmapped(frame) if path.suffix.lower() in STACK_SUFFIXES else frame
            self._clipped.append(stored_type_clipped_share(path, [frame], self._image_info))
            write_image(path, frame, self._image_info)
        else:
            if self._encoder is None:
                self._open_encoder(*frame.shape[:2], gray=frame.shape[2] == 1)
            if frame.shape[2] == 1 and not self._encoder_gray:  # a codec without a gray format
                frame = np.repeat(frame, 3, axis=2)
            if self._deep:
                raw = np.round(np.clip(frame, 0, 1) * 65535).astype("<u2")
            else:
                raw = np.round(np.clip(frame, 0, 1) * 255).astype(np.uint8)
            self._encoder.send(np.ascontiguousarray(raw).tobytes())

    def _unmapped(self, frame: np.ndarray) -> np.ndarray:
        """A frame going to a float file (a stack, TIFF / FITS frames) back in the input's own values when
        they were mapped into [0, 1] (8 / 16-bit frames and video files keep [0, 1])."""
        if not self.info.intensity:
            return frame
        return (frame * self.info.intensity["scale"] + self.info.intensity["offset"]).astype(np.float32)

    def close(self, ok: bool = True) -> None:
        """Finish the file; with ``ok=False`` (an error happened) drop the partial video file (a spool
        folder is kept for a resumed run). An error or Ctrl-C while the file is being made drops it too."""
        try:
            self._close(ok)
        except BaseException:
            if self._encoder is not None:
                with contextlib.suppress(Exception):
                    self._encoder.close()
                self._encoder = None
            if self.kind == "file" and self._tmp is not None:
                discard(self._tmp)
            raise

    def _close(self, ok: bool) -> None:
        if self._spool is not None and ok:
            for index in range(self.count):
                frame = read_image(self._spooled(index))[0]
                if frame.shape[2] != self.info.channels:  # spooled by an earlier version that read gray as colour
                    frame = to_channels(frame, self.info.channels)
                self._append(frame)
        if self.kind == "stack" and ok and self._frames:
            layout = self.info.stack or self._image_info
            same = layout.blank is not None and len(layout.blank) == len(self._frames)
            layout = replace(layout, stack_shape=(len(self._frames),), stack_axes=layout.stack_axes or "T",
                             blank=layout.blank if same else None)
            write_frames(self.target, self._frames, layout)
            self._frames = []
        if self._encoder is not None:
            self._encoder.close()
            self._encoder = None
            if ok and not (self._tmp.exists() and self._tmp.stat().st_size > 0):
                # ffmpeg's failures do not reach us through imageio: never replace the output by nothing
                raise UserError(f"{self.target}: ffmpeg wrote no video (the {Path(self.target).suffix} format "
                                "refused these frames); try .mp4 or .mkv")
            if ok:
                if self.info.kind == "file":
                    self._add_sound(self.info.source)
                publish(self._tmp, Path(self.target))
        if self.kind == "file" and self._tmp is not None:
            discard(self._tmp)
        if self._spool is not None and ok and not self.keep_spool:
            self.remove_spool()
        if self.prune and ok and self.count and self.kind in ("pattern", "folder"):
            self.removed = stale_frames(self.target, self.info, self.count)
            for path in self.removed:
                path.unlink(missing_ok=True)
            self.prune = False

    def clipping_said(self) -> str | None:
        """The warning that restored values of the frames written were clipped to the range of the input's
        integer type (int16 ...: :func:`selfrestore.io.stored_type_clipping_said`), or None."""
        if not self._clipped:
            return None
        return stored_type_clipping_said(self.info.source, self.target, float(np.mean(self._clipped)),
                                         self._image_info)

    def remove_spool(self) -> None:
        """Delete the spool folder (the video or stack file is made from it)."""
        if self._spool is not None:
            shutil.rmtree(self._spool, ignore_errors=True)
            self._spool = None

    def _add_sound(self, source: str) -> None:
        """Mux the source's audio streams into the encoded video (stream copy; AAC / Opus if the container
        refuses the original codec). A source without sound is left alone; a failure only warns."""
        if not sound_kept(self.target) or not has_sound(source):  # (y4m: raw frames, no room for sound)
            return
        exe = _ffmpeg().get_ffmpeg_exe()
        suffix = Path(self.target).suffix.lower()
        seconds = (self.count + 0.5) / self.info.fps  # the sound ends with the frames written (+ half a frame)
        muxed = temporary_beside(Path(self.target))  # (ffmpeg -y writes over it; a killed run's is removed)
        fallback = "libopus" if suffix == ".webm" else "aac"
        for audio_codec in ("copy", fallback):
            cmd = [exe, "-hide_banner", "-v", "error", "-y", "-i", str(self._tmp), "-i", source, "-map", "0:v:0",
                   "-map", "1:a", "-c:v", "copy", "-c:a", audio_codec, "-t", f"{seconds:.4f}",
                   "-f", CONTAINERS.get(suffix, suffix[1:]), str(muxed)]
            if subprocess.run(cmd, capture_output=True).returncode == 0:
                publish(muxed, self._tmp)
                return
        discard(muxed)
        print(f"selfrestore: {self.target}: could not carry the sound of {source} over; the video is silent",
              file=sys.stderr)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(ok=exc_type is None)


def write_video(target: str | os.PathLike, frames: np.ndarray, info: VideoInfo) -> None:
    """Write all frames (T, H, W, C) at once (see :class:`VideoWriter`)."""
    with VideoWriter(target, info) as writer:
        for frame in frames:
            writer.write(frame)
