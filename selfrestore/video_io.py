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

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import UserError
from .io import (IMAGE_SUFFIXES, STACK_SUFFIXES, ImageInfo, intensity_mapping, read_frames, read_image,
                 write_frames, write_image)

VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".y4m")
_PATTERN = re.compile(r"%0?\d*d")
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
    dtype: str = "uint8"         #: "uint8" or "uint16" (bit depth of frames / decoded video)
    fps: float = 25.0
    names: list[str] = field(default_factory=list)  #: frame file names (folder and pattern inputs)
    first_index: int = 0         #: first frame number of a pattern
    stack: ImageInfo | None = None  #: a stack input's layout (axes, pixel type, tags) to write it back alike
    #: a float stack far outside [0, 1] is mapped into it for the networks and back on writing
    intensity: dict[str, float] | None = None


def _ffmpeg():
    try:
        import imageio_ffmpeg
    except ImportError:  # pragma: no cover - depends on the environment
        raise UserError("video files need imageio-ffmpeg: pip install imageio-ffmpeg "
                        "(or pass a folder of frames)") from None
    return imageio_ffmpeg


def is_pattern(path: str | os.PathLike) -> bool:
    return bool(_PATTERN.search(str(path)))


def is_video_file(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def is_stack_file(path: str | os.PathLike) -> bool:
    """A TIFF or FITS name: a time series of planes in one file (microscopy time-lapse, telescope cube)."""
    return Path(path).suffix.lower() in STACK_SUFFIXES


def spool_folder(target: str | os.PathLike) -> Path:
    """The hidden folder next to a video or stack file where a resumable run keeps its restored frames."""
    path = Path(target)
    return path.with_name(f".{path.name}.frames")


def _pattern_frames(pattern: str) -> tuple[list[Path], int]:
    """Consecutive existing files of a printf pattern, starting at 0 or 1 (or the smallest index found)."""
    folder = Path(pattern).parent
    if not folder.is_dir():
        raise UserError(f"{pattern}: folder {folder} does not exist")
    regex = re.compile("^" + _PATTERN.sub(r"(\\d+)", re.escape(Path(pattern).name).replace(r"\%", "%"))
                       + "$")
    indices = sorted(int(m.group(1)) for p in folder.iterdir() if (m := regex.match(p.name)))
    if not indices:
        raise UserError(f"{pattern}: no frame matches this pattern")
    start, paths = indices[0], []
    while Path(pattern % (start + len(paths))).exists():
        paths.append(Path(pattern % (start + len(paths))))
    return paths, start


def _folder_frames(folder: Path) -> list[Path]:
    paths = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise UserError(f"{folder}: folder holds no frames ({', '.join(IMAGE_SUFFIXES)})")
    return paths


class VideoReader:
    """Iterate over the frames of a folder, a printf pattern or a video file (float32 (H, W, C))."""

    def __init__(self, source: str | os.PathLike):
        text = str(source)
        self._paths: list[Path] = []
        if is_pattern(text):
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
        dtype = image_info.dtype if image_info.dtype in ("uint8", "uint16") else "uint16"
        return VideoInfo(kind, source, len(self._paths), h, w, c, dtype,
                         names=[p.name for p in self._paths], first_index=first)

    def _read_stack(self, path: Path) -> VideoInfo:
        """A TIFF / FITS file whose planes are the frames (one leading axis: time)."""
        frames, image_info = read_frames(path)
        if len(image_info.stack_shape) != 1:
            raise UserError(f"{path}: " + ("one image, not a time series" if not image_info.stack_shape else
                                           f"a stack with axes {image_info.stack_axes}: a video needs one "
                                           f"leading (time) axis"))
        mapping = intensity_mapping(frames)
        if mapping:
            frames = [((f - mapping["offset"]) / mapping["scale"]).astype(np.float32) for f in frames]
        self._frames = frames
        h, w, c = frames[0].shape
        return VideoInfo("stack", str(path), len(frames), h, w, c, image_info.dtype, stack=image_info,
                         intensity=mapping)

    def _probe_file(self, path: Path) -> VideoInfo:
        ffmpeg = _ffmpeg()
        try:
            gen = ffmpeg.read_frames(str(path))
            meta = next(gen)
            gen.close()
            count, _ = ffmpeg.count_frames_and_secs(str(path))
        except Exception as exc:
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise UserError(f"{path}: cannot read video: {reason}") from None
        if count == 0:
            raise UserError(f"{path}: video holds no frames")
        width, height = meta["size"]
        pix_fmt = str(meta.get("pix_fmt", ""))
        deep = bool(re.search(r"(9|10|12|14|16)(le|be)|rgb48|rgba64", pix_fmt))
        return VideoInfo("file", str(path), count, height, width, 3, "uint16" if deep else "uint8",
                         fps=float(meta.get("fps") or 25.0))

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
                yield frame
            return
        deep = self.info.dtype == "uint16"
        gen = _ffmpeg().read_frames(self.info.source, pix_fmt="rgb48le" if deep else "rgb24",
                                    bits_per_pixel=48 if deep else 24)
        next(gen)
        shape = (self.info.height, self.info.width, 3)
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


def read_video(source: str | os.PathLike) -> tuple[np.ndarray, VideoInfo]:
    """All frames (T, H, W, C) float32 in [0, 1] and the :class:`VideoInfo`."""
    reader = VideoReader(source)
    return reader.read_all(), reader.info


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
    """

    def __init__(self, target: str | os.PathLike, info: VideoInfo, quality: int = 9, spool: bool = False,
                 resume: bool = False):
        self.target, self.info, self.count = str(target), info, 0
        self._image_info = ImageInfo(dtype=info.dtype, channels=info.channels)
        self._encoder = None
        self._frames: list[np.ndarray] = []
        self._spool: Path | None = None
        if is_video_file(self.target):
            self.kind = "file"
            Path(self.target).parent.mkdir(parents=True, exist_ok=True)
            self._tmp = Path(self.target).with_name(f".{Path(self.target).stem}.tmp{Path(self.target).suffix}")
            self._quality = quality
        elif is_stack_file(self.target) and not is_pattern(self.target):
            self.kind = "stack"
        elif is_pattern(self.target):
            self.kind = "pattern"
            Path(self.target).parent.mkdir(parents=True, exist_ok=True)
        else:
            if Path(self.target).suffix.lower() in IMAGE_SUFFIXES:
                raise UserError(f"{self.target}: output of a video must be a folder, a frame pattern "
                                "like out/%05d.png or a video file")
            self.kind = "folder"
            Path(self.target).mkdir(parents=True, exist_ok=True)
        if spool and self.kind in ("file", "stack"):
            self._spool = spool_folder(self.target)
            if self._spool.exists() and not resume:
                shutil.rmtree(self._spool)
            self._spool.mkdir(parents=True, exist_ok=True)

    def _frame_path(self, index: int) -> Path:
        if self.kind == "pattern":
            return Path(self.target % (self.info.first_index + index))
        if self.info.kind in ("folder", "pattern") and index < len(self.info.names):
            name = self.info.names[index]
        else:
            name = f"{index + 1:05d}.png"
        return Path(self.target) / name

    def _open_encoder(self, height: int, width: int) -> None:
        deep = self.info.dtype == "uint16"
        suffix = Path(self.target).suffix.lower()
        if deep and suffix in (".mkv", ".avi"):
            codec, pix_out = "ffv1", "yuv444p16le"          # lossless, 16 bits
        elif deep:
            codec, pix_out = "libx264", "yuv444p10le"       # 10-bit H.264 (High 4:4:4)
        elif suffix == ".webm":
            codec, pix_out = "libvpx-vp9", "yuv420p" if height % 2 == 0 and width % 2 == 0 else "yuv444p"
        else:
            codec, pix_out = "libx264", "yuv420p" if height % 2 == 0 and width % 2 == 0 else "yuv444p"
        quality, extra = self._quality, []
        if codec == "libvpx-vp9":  # VP9 ignores -qscale: constant quality needs -crf with -b:v 0
            quality, extra = None, ["-crf", str(int(63 * (1 - self._quality / 10))), "-b:v", "0"]
        self._encoder = _ffmpeg().write_frames(
            str(self._tmp), (width, height), pix_fmt_in="rgb48le" if deep else "rgb24", pix_fmt_out=pix_out,
            fps=self.info.fps, quality=quality, codec=codec, macro_block_size=1,
            output_params=extra + ["-f", CONTAINERS.get(suffix, suffix[1:])])
        self._encoder.send(None)

    def skip(self, count: int) -> None:
        """Move past ``count`` frames an interrupted run already wrote (frame files, or the spool folder of a
        video or stack file)."""
        if self.kind in ("file", "stack"):
            if self._spool is None:
                raise UserError(f"{self.target}: a video or stack file written without a spool folder cannot be "
                                "continued")
            missing = [i for i in range(self.count, self.count + count) if not self._spooled(i).exists()]
            if missing:
                raise UserError(f"{self._spool}: frame {missing[0] + 1} of the interrupted run is missing; start "
                                "over without --resume")
        self.count += count

    def _spool_depth(self) -> str:
        """What a spooled frame keeps, losslessly for the output: its 8 / 16 bits (a video holds no more),
        or float for a float stack."""
        if self.kind == "file" or self.info.dtype in ("uint8", "uint16"):
            return "uint16" if self.info.dtype == "uint16" else "uint8"
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
            if self.info.intensity:  # back to the input stack's own values (other outputs keep [0, 1])
                frame = frame * self.info.intensity["scale"] + self.info.intensity["offset"]
            self._frames.append(frame)
        elif self.kind != "file":
            write_image(self._frame_path(self.count), frame, self._image_info)
        else:
            if frame.shape[2] == 1:
                frame = np.repeat(frame, 3, axis=2)
            if self._encoder is None:
                self._open_encoder(*frame.shape[:2])
            if self.info.dtype == "uint16":
                raw = np.round(np.clip(frame, 0, 1) * 65535).astype("<u2")
            else:
                raw = np.round(np.clip(frame, 0, 1) * 255).astype(np.uint8)
            self._encoder.send(np.ascontiguousarray(raw).tobytes())

    def close(self, ok: bool = True) -> None:
        """Finish the file; with ``ok=False`` (an error happened) drop the partial video file (a spool
        folder is kept for a resumed run)."""
        if self._spool is not None and ok:
            for index in range(self.count):
                self._append(read_image(self._spooled(index))[0])
        if self.kind == "stack" and ok and self._frames:
            layout = self.info.stack or ImageInfo(dtype=self.info.dtype, channels=self.info.channels)
            same = layout.blank is not None and len(layout.blank) == len(self._frames)
            layout = replace(layout, stack_shape=(len(self._frames),), stack_axes=layout.stack_axes or "T",
                             blank=layout.blank if same else None)
            write_frames(self.target, self._frames, layout)
            self._frames = []
        if self._encoder is not None:
            self._encoder.close()
            self._encoder = None
            if ok:
                if self.info.kind == "file":
                    self._add_sound(self.info.source)
                os.replace(self._tmp, self.target)
        if self.kind == "file" and self._tmp.exists():
            self._tmp.unlink()
        if self._spool is not None and ok:
            shutil.rmtree(self._spool, ignore_errors=True)
            self._spool = None

    def _add_sound(self, source: str) -> None:
        """Mux the source's audio streams into the encoded video (stream copy; AAC / Opus if the container
        refuses the original codec). A source without sound is left alone; a failure only warns."""
        if Path(self.target).suffix.lower() == ".y4m":  # raw frames: no room for sound
            return
        exe = _ffmpeg().get_ffmpeg_exe()
        probe = subprocess.run([exe, "-hide_banner", "-i", source], capture_output=True, text=True)
        if not re.search(r"Stream #\S+.*: Audio:", probe.stderr):
            return
        suffix = Path(self.target).suffix.lower()
        seconds = (self.count + 0.5) / self.info.fps  # the sound ends with the frames written (+ half a frame)
        muxed = self._tmp.with_name(self._tmp.stem + ".sound" + self._tmp.suffix)
        fallback = "libopus" if suffix == ".webm" else "aac"
        for audio_codec in ("copy", fallback):
            cmd = [exe, "-hide_banner", "-v", "error", "-y", "-i", str(self._tmp), "-i", source, "-map", "0:v:0",
                   "-map", "1:a", "-c:v", "copy", "-c:a", audio_codec, "-t", f"{seconds:.4f}",
                   "-f", CONTAINERS.get(suffix, suffix[1:]), str(muxed)]
            if subprocess.run(cmd, capture_output=True).returncode == 0:
                os.replace(muxed, self._tmp)
                return
        if muxed.exists():
            muxed.unlink()
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
