"""Video I/O: frame folders, printf patterns and video files keep their form, bit depth and frame rate."""
import numpy as np
import pytest

from selfrestore.data.synthetic_motion import make_motion_sequence
from selfrestore.errors import UserError
from selfrestore.io import VIDEO_SUFFIXES, read_image, write_image, ImageInfo
from selfrestore.video_io import VideoInfo, VideoReader, VideoWriter, read_video, write_video


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    from skimage import data

    return make_motion_sequence(data.astronaut() / 255.0, frames=4, size=(48, 64), speed=2.0).frames


def info(dtype="uint8", fps=24.0) -> VideoInfo:
    return VideoInfo("folder", "test", 4, 48, 64, 3, dtype, fps=fps)


def test_folder_of_16bit_frames_round_trips_with_names_and_depth(tmp_path, frames):
    src = tmp_path / "in"
    src.mkdir()
    names = ["a_010.png", "a_020.png", "a_030.png", "a_040.png"]  # sorted order, not numbered from 0
    for name, frame in zip(names, frames):
        write_image(src / name, frame, ImageInfo(dtype="uint16"))
    video, vinfo = read_video(src)
    assert vinfo.kind == "folder" and vinfo.dtype == "uint16" and vinfo.names == names
    assert np.abs(video - frames).max() < 1e-4  # 16 bits survive
    write_video(tmp_path / "out", video, vinfo)
    for name in names:
        back, back_info = read_image(tmp_path / "out" / name)
        assert back_info.dtype == "uint16"


def test_printf_pattern_keeps_its_numbering(tmp_path, frames):
    for i, frame in enumerate(frames):
        write_image(tmp_path / f"{i + 1:05d}.png", frame)
    (tmp_path / "notes.txt").write_text("not a frame")
    reader = VideoReader(str(tmp_path / "%05d.png"))
    assert len(reader) == 4 and reader.info.first_index == 1 and reader.info.kind == "pattern"
    video = reader.read_all()
    assert np.abs(video - frames).max() <= 0.5 / 255 + 1e-6
    with VideoWriter(str(tmp_path / "out" / "f%03d.png"), reader.info) as writer:
        for frame in video:
            writer.write(frame)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["f001.png", "f002.png", "f003.png",
                                                                     "f004.png"]


def test_mp4_round_trip_keeps_frame_count_and_rate(tmp_path, frames):
    write_video(tmp_path / "v.mp4", frames, info(fps=12.0))
    video, vinfo = read_video(tmp_path / "v.mp4")
    assert vinfo.kind == "file" and vinfo.frames == 4 and vinfo.fps == pytest.approx(12.0)
    assert vinfo.dtype == "uint8" and video.shape == frames.shape
    assert np.abs(video - frames).mean() < 0.02  # lossy H.264, but close


def test_16bit_video_stays_16bit(tmp_path, frames):
    write_video(tmp_path / "v.mkv", frames, info("uint16"))
    video, vinfo = read_video(tmp_path / "v.mkv")
    assert vinfo.dtype == "uint16"
    # lossless: FFV1 in planar RGB (it stored YUV 4:4:4 16-bit, up to 5/65535 off after the colour conversion)
    assert np.array_equal(np.round(video * 65535), np.round(frames * 65535))


@pytest.mark.parametrize("suffix", VIDEO_SUFFIXES)
@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
def test_every_video_suffix_writes_frames_that_read_back(tmp_path, frames, suffix, dtype):
    """.y4m was encoded with H.264, which YUV4MPEG cannot hold: ffmpeg wrote an empty file and the run said
    nothing. Every suffix `selfrestore video` accepts now writes a video that reads back."""
    write_video(tmp_path / f"v{suffix}", frames, info(dtype))
    video, vinfo = read_video(tmp_path / f"v{suffix}")
    assert video.shape == frames.shape
    assert np.abs(video - frames).mean() < 0.03  # lossy codecs, chroma subsampling


def test_a_video_ffmpeg_did_not_write_does_not_replace_the_output(tmp_path, frames, monkeypatch):
    """If ffmpeg writes nothing (its errors do not reach us), the run fails and an existing output stays."""
    import selfrestore.video_io as video_io

    target = tmp_path / "v.mp4"
    target.write_bytes(b"an earlier result")
    monkeypatch.setitem(video_io.CONTAINERS, ".mp4", "yuv4mpegpipe")  # H.264 into YUV4MPEG: nothing written
    with pytest.raises(UserError, match="ffmpeg wrote no video"):
        write_video(target, frames, info())
    assert target.read_bytes() == b"an earlier result"


def test_failed_write_leaves_no_partial_video(tmp_path, frames):
    with pytest.raises(RuntimeError):
        with VideoWriter(tmp_path / "v.mp4", info()) as writer:
            writer.write(frames[0])
            raise RuntimeError("crash mid-video")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("make", ["missing", "empty_folder", "fake_mp4", "no_match", "text_file"])
def test_bad_inputs_are_one_line_user_errors(tmp_path, make):
    target = {"missing": tmp_path / "nope.mp4", "empty_folder": tmp_path,
              "fake_mp4": tmp_path / "fake.mp4", "no_match": tmp_path / "%05d.png",
              "text_file": tmp_path / "notes.txt"}[make]
    if make == "fake_mp4":
        target.write_text("this is not a video")
    if make == "text_file":
        target.write_text("hello")
    with pytest.raises(UserError) as err:
        VideoReader(target)
    assert str(target) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("suffix", [".mkv", ".webm"])
def test_a_cut_off_video_file_is_refused_not_restored_shorter(tmp_path, suffix):
    """An interrupted copy whose header states more frames than decode: a one-line error naming both counts
    (it was read as the frames before the cut, and the restored video came back shorter with exit code 0)."""
    rng = np.random.default_rng(0)
    write_video(tmp_path / f"v{suffix}", rng.random((8, 48, 64, 3), dtype=np.float32), info(fps=10.0))
    assert len(VideoReader(tmp_path / f"v{suffix}")) == 8  # intact: read whole
    data = (tmp_path / f"v{suffix}").read_bytes()
    (tmp_path / f"cut{suffix}").write_bytes(data[:int(0.7 * len(data))])
    with pytest.raises(UserError, match=r"cut off: \d frames decode, where .* holds about 8 ") as err:
        VideoReader(tmp_path / f"cut{suffix}")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
def test_a_y4m_file_cut_mid_frame_is_refused(tmp_path, dtype):
    """YUV4MPEG states no length: a copy cut inside a frame was read as the frames before the cut (ffmpeg says
    nothing) and restored shorter with exit code 0. Its frame headers tell: a one-line error."""
    import re

    from selfrestore.video_io import y4m_whole_frames

    rng = np.random.default_rng(0)
    write_video(tmp_path / "v.y4m", rng.random((6, 48, 64, 3), dtype=np.float32), info(dtype, fps=10.0))
    assert y4m_whole_frames(tmp_path / "v.y4m") == (6, False) and len(VideoReader(tmp_path / "v.y4m")) == 6
    data = (tmp_path / "v.y4m").read_bytes()
    (tmp_path / "cut.y4m").write_bytes(data[:int(0.6 * len(data))])
    assert y4m_whole_frames(tmp_path / "cut.y4m") == (3, True)
    with pytest.raises(UserError, match=r"cut off: the file ends inside frame 4, after 3 whole frames") as err:
        VideoReader(tmp_path / "cut.y4m")
    assert "\n" not in str(err.value)
    header, frames = data.split(b"\n", 1)  # the older form: no C tag, the chroma in an XYSCSS tag
    older = re.sub(rb" C(\w+)", lambda m: b" XYSCSS=" + m.group(1).upper(), header)
    assert b" C" not in older and b"XYSCSS=" in older
    (tmp_path / "older.y4m").write_bytes(older + b"\n" + frames + b"\n")  # and a stray line break at the end
    assert y4m_whole_frames(tmp_path / "older.y4m") == (6, False) and len(VideoReader(tmp_path / "older.y4m")) == 6


def test_an_avi_cut_between_frames_is_refused(tmp_path):
    """Cut at a frame boundary, an AVI decodes without an error and ffmpeg takes its length from what is left:
    it was read as the frames before the cut. Its RIFF header still states the whole file's length."""
    import re

    from selfrestore.video_io import riff_length

    rng = np.random.default_rng(0)
    write_video(tmp_path / "v.avi", rng.random((8, 48, 64, 3), dtype=np.float32), info(fps=10.0))
    data = (tmp_path / "v.avi").read_bytes()
    assert riff_length(tmp_path / "v.avi") == (len(data), len(data), 8) and len(VideoReader(tmp_path / "v.avi")) == 8
    frame_chunks = [m.start() for m in re.finditer(rb"00dc", data)]
    (tmp_path / "cut.avi").write_bytes(data[:frame_chunks[5]])  # the header's 8 frames: 5 are left, whole
    with pytest.raises(UserError, match=r"cut off: its header states \d+ bytes, the file holds \d+") as err:
        VideoReader(tmp_path / "cut.avi")
    assert "\n" not in str(err.value)
    (tmp_path / "no_index.avi").write_bytes(data[:data.rindex(b"idx1")])  # every frame there, the index cut
    assert len(VideoReader(tmp_path / "no_index.avi")) == 8


def test_image_file_is_not_a_video_output(tmp_path):
    with pytest.raises(UserError):
        VideoWriter(tmp_path / "out.png", info())


def _streams(path) -> str:
    import subprocess

    import imageio_ffmpeg

    return subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)],
                          capture_output=True, text=True).stderr


@pytest.mark.parametrize("source,audio,target", [(".mp4", "aac", ".mp4"), (".mkv", "pcm_s16le", ".mp4"),
                                                 (".mp4", "aac", ".mkv")])
def test_restored_video_file_keeps_the_sound_track(tmp_path, frames, source, audio, target):
    """The sound of a video file survives restoration: copied, or re-encoded where the container needs it
    (PCM cannot go into an mp4)."""
    import subprocess

    import imageio_ffmpeg

    src = tmp_path / f"in{source}"
    write_video(src, frames, info(fps=8.0))
    with_sound = tmp_path / f"sound{source}"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-i", str(src), "-f", "lavfi", "-i",
                    "sine=frequency=440:sample_rate=16000", "-map", "0:v", "-map", "1:a", "-c:v", "copy",
                    "-c:a", audio, "-shortest", str(with_sound)], check=True)
    assert "Audio:" in _streams(with_sound)
    reader = VideoReader(with_sound)
    with VideoWriter(tmp_path / f"out{target}", reader.info) as writer:
        for frame in reader:
            writer.write(1 - frame)
    streams = _streams(tmp_path / f"out{target}")
    assert "Audio:" in streams and "Video:" in streams
    video, vinfo = read_video(tmp_path / f"out{target}")
    assert vinfo.frames == 4 and np.abs(video - (1 - frames)).mean() < 0.03
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporaries left
    # a silent source gives a silent output, without complaint
    with VideoWriter(tmp_path / f"silent{target}", VideoReader(src).info) as writer:
        writer.write(frames[0])
    assert "Audio:" not in _streams(tmp_path / f"silent{target}")


def _write_frames(folder, names, height=8, width=12, channels=3):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in names:
        write_image(folder / name, rng.random((height, width, channels), dtype=np.float32))


def test_folder_frames_are_read_in_natural_order(tmp_path):
    _write_frames(tmp_path, ["8.png", "9.png", "10.png", "11.png"])
    assert VideoReader(tmp_path).info.names == ["8.png", "9.png", "10.png", "11.png"]  # not 10 11 8 9


def test_a_gap_in_a_frame_pattern_is_an_error_naming_the_missing_frame(tmp_path):
    _write_frames(tmp_path, ["000.png", "001.png", "003.png", "004.png", "005.png"])
    with pytest.raises(UserError, match=r"frame 2 \(002\.png\) is missing"):
        VideoReader(tmp_path / "%03d.png")


def test_a_pattern_of_another_number_width_is_a_user_error(tmp_path):
    _write_frames(tmp_path, ["000.png", "001.png"])
    with pytest.raises(UserError, match="no frame matches.*000.png"):
        VideoReader(tmp_path / "%05d.png")
    assert VideoReader(tmp_path / "%03d.png").info.frames == 2


@pytest.mark.parametrize("bad", ["text", "size", "gray", "cut"])
def test_a_bad_frame_mid_video_is_found_before_any_frame_is_read(tmp_path, bad):
    """"cut": a frame cut short keeps a sound header; it stopped an online run after frames 000-002 were
    written (a rerun was then refused: the output exists)."""
    _write_frames(tmp_path, [f"{i:03d}.png" for i in range(5)])
    if bad == "text":
        (tmp_path / "003.png").write_text("not an image")
    elif bad == "cut":
        data = (tmp_path / "003.png").read_bytes()
        (tmp_path / "003.png").write_bytes(data[:len(data) // 2])
    else:
        _write_frames(tmp_path, ["003.png"], height=6 if bad == "size" else 8, channels=1 if bad == "gray" else 3)
    with pytest.raises(UserError, match="003.png") as err:
        VideoReader(tmp_path)  # the headers are checked here, not after frames 000-002 were restored
    assert "\n" not in str(err.value)


def test_frames_with_alpha_are_flagged(tmp_path):
    _write_frames(tmp_path / "rgba", ["0.png", "1.png"], channels=4)
    _write_frames(tmp_path / "rgb", ["0.png", "1.png"])
    assert VideoReader(tmp_path / "rgba").info.alpha and VideoReader(tmp_path / "rgba").info.channels == 3
    assert not VideoReader(tmp_path / "rgb").info.alpha


def test_numbering_of_frame_names():
    from selfrestore.video_io import numbering

    assert numbering(["f000.png", "f001.png"]) == "f%03d.png"
    assert numbering(["8.png", "9.png", "10.png"]) == "%d.png"
    assert numbering(["a.png", "b.png"]) is None and numbering(["x1.png", "y2.png"]) is None


@pytest.mark.parametrize("target", ["folder", "pattern"])
def test_pruning_writer_deletes_only_the_stale_frames_of_its_own_numbering(tmp_path, target):
    """--overwrite with a shorter video: the old frames 002-005 go, files named otherwise stay."""
    src, out = tmp_path / "src", tmp_path / "out"
    _write_frames(src, ["000.png", "001.png"])
    _write_frames(out, [f"{i:03d}.png" for i in range(6)] + ["keep.png", "0007.png"])
    (out / "notes.txt").write_text("mine")
    reader = VideoReader(src)
    with VideoWriter(out if target == "folder" else out / "%03d.png", reader.info, prune=True) as writer:
        for frame in reader:
            writer.write(frame)
    assert {p.name for p in out.iterdir()} == {"000.png", "001.png", "0007.png", "keep.png", "notes.txt"}
    assert [p.name for p in writer.removed] == ["002.png", "003.png", "004.png", "005.png"]


def test_frames_mixing_float_counts_with_8_bit_images_are_refused(tmp_path):
    """8-bit frames (read in [0, 1]) went through the map of the float frames' counts: near-black frames for the
    network, written back as counts. One video, one kind of values: refused, naming the mix."""
    import tifffile

    folder = tmp_path / "vid"
    folder.mkdir()
    rng = np.random.default_rng(0)
    tifffile.imwrite(folder / "000.tif", (rng.random((16, 16)) * 255).astype(np.uint8))
    for i in (1, 2):
        tifffile.imwrite(folder / f"{i:03d}.tif", (100 + 900 * rng.random((16, 16))).astype(np.float32))
    with pytest.raises(UserError, match="mix float counts with 8/16-bit images"):
        VideoReader(folder)
    for i in (1, 2):  # float frames in [0, 1] beside 8-bit ones need no map: they are read
        tifffile.imwrite(folder / f"{i:03d}.tif", rng.random((16, 16)).astype(np.float32))
    assert VideoReader(folder).info.dtype == "float32"


@pytest.mark.parametrize("chroma", ["yuv444p", "yuv420p"])
def test_an_8_bit_video_keeps_its_chroma_resolution(tmp_path, frames, chroma):
    """A 4:4:4 source came back 4:2:0 (half the colour detail); a 4:2:0 one stays 4:2:0 (what players expect)."""
    import imageio_ffmpeg

    source = tmp_path / "in.mp4"
    writer = imageio_ffmpeg.write_frames(str(source), (64, 48), pix_fmt_out=chroma, codec="libx264",
                                         macro_block_size=1, ffmpeg_log_level="error")
    writer.send(None)
    for frame in frames:
        writer.send(np.ascontiguousarray(np.round(frame * 255).astype(np.uint8)))
    writer.close()
    reader = VideoReader(source)
    assert reader.info.full_chroma == (chroma == "yuv444p")
    with VideoWriter(tmp_path / "out.mp4", reader.info) as out:
        for frame in reader:
            out.write(frame)
    meta = next(imageio_ffmpeg.read_frames(str(tmp_path / "out.mp4")))
    assert meta["pix_fmt"].startswith(chroma)


def test_a_variable_frame_rate_video_yields_each_frame_once(tmp_path):
    """The frames were read through a constant-rate pipe: 8 frames timed 0.1-0.3 s apart came as 15 (repeats),
    while the video was counted as 8 (an offline run failed after decoding, an online one stopped early)."""
    import subprocess

    import imageio_ffmpeg

    write_video(tmp_path / "cfr.mkv", np.random.default_rng(0).random((8, 48, 64, 3), dtype=np.float32),
                info(fps=10.0))
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i",
                    str(tmp_path / "cfr.mkv"), "-vf", "setpts='if(lt(N,4),N*0.1,0.4+(N-4)*0.3)/TB'", "-fps_mode",
                    "vfr", "-c:v", "libx264", str(tmp_path / "vfr.mkv")], check=True)
    reader = VideoReader(tmp_path / "vfr.mkv")
    assert len(reader) == 8 and len(list(reader)) == 8


def test_errors_of_other_streams_do_not_make_a_video_cut_off(tmp_path, monkeypatch):
    """A glitch in the sound track (AAC errors) with the sound 0.2 s longer than the pictures was refused as
    "30 of the 32 frames": only the video decoder's errors and the file's end count."""
    import subprocess

    import selfrestore.video_io as video_io

    log = ("[info]   Stream #0:0: Video: h264 (High), yuv420p, 96x64, 10 fps\n"
           "[info]   Stream #0:1: Audio: aac (LC), 44100 Hz, mono\n"
           "[aac @ 0x5644462d5400] [error] Prediction is not allowed in AAC-LC.\n"
           "[info] frame=   30 fps=0.0 q=-0.0 Lsize=N/A time=00:00:03.00\n")
    cut = log.replace("[aac @ 0x5644462d5400]", "[h264 @ 0x55851a08e600]")
    for text, errors in ((log, []), (cut, ["Prediction is not allowed in AAC-LC."])):
        monkeypatch.setattr(subprocess, "run", lambda *a, text=text, **k: subprocess.CompletedProcess(
            a, 0, stdout=text.encode(), stderr=b""))
        assert video_io.decoded_frames(tmp_path / "v.mp4") == (30, errors, 0.0)


@pytest.mark.parametrize("suffix,dtype,exact", [(".mkv", "uint16", True), (".avi", "uint8", True),
                                                (".mp4", "uint8", False)])
def test_a_gray_video_file_stays_gray(tmp_path, frames, suffix, dtype, exact):
    """A gray video file was read as colour (three channels, restored by a colour model into R != G) and a gray
    video was written as colour: now a gray pixel format reads as one channel, and gray frames go to .mkv / .avi
    as lossless FFV1 gray (elsewhere R = G = B: ffmpeg decodes gray H.264 as colour)."""
    gray = frames.mean(axis=3, keepdims=True).astype(np.float32)
    write_video(tmp_path / f"g{suffix}", gray, VideoInfo("folder", "test", 4, 48, 64, 1, dtype, fps=24.0))
    video, vinfo = read_video(tmp_path / f"g{suffix}")
    assert vinfo.channels == (3 if suffix == ".mp4" else 1) and video.shape[:3] == gray.shape[:3]
    if exact:  # lossless
        scale = 65535 if dtype == "uint16" else 255
        assert np.array_equal(np.round(video * scale), np.round(gray * scale))
    else:
        assert np.abs(video - gray).mean() < 0.03


@pytest.mark.parametrize("rate,tbn", [("24000/1001", "24k tbn"), ("2398/100", "19184 tbn")])
def test_an_ntsc_frame_rate_is_kept_exact(tmp_path, frames, rate, tbn):
    """ffmpeg reports 24000/1001 fps as "23.98": the output was encoded at 23.98 (a 2-hour film 1.2 s short, its
    sound drifting). Now the exact rate is read from the stream's time base, so a genuine 2398/100 (also
    reported as 23.98) stays 2398/100 and 24000/1001 stays 24000/1001."""
    import subprocess
    from fractions import Fraction

    import imageio_ffmpeg

    write_video(tmp_path / "src", frames, info())
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    subprocess.run([ffmpeg, "-v", "error", "-framerate", rate, "-i", str(tmp_path / "src" / "%05d.png"),
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", str(tmp_path / "src.mp4")], check=True)
    video, vinfo = read_video(tmp_path / "src.mp4")
    assert vinfo.fps == float(Fraction(rate))
    write_video(tmp_path / "out.mp4", video, vinfo)
    probe = subprocess.run([ffmpeg, "-hide_banner", "-i", str(tmp_path / "out.mp4")], capture_output=True, text=True)
    assert tbn in probe.stderr  # the time base of the exact rate, as in the source


def test_a_packed_422_colour_video_is_not_taken_for_gray(tmp_path):
    """y210le (10-bit 4:2:2 colour) matched the first gray pattern and came back gray."""
    import subprocess

    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i",
                    "testsrc=size=32x32:rate=5:duration=0.6", "-pix_fmt", "y210le", "-c:v", "rawvideo",
                    str(tmp_path / "y210.avi")], check=True)
    assert VideoReader(str(tmp_path / "y210.avi")).info.channels == 3


def test_a_resume_over_frames_spooled_in_colour_by_an_earlier_version_keeps_a_gray_video_gray(tmp_path, frames):
    """An earlier version read a gray video file as colour and spooled 3-channel frames; resumed by this one,
    which writes the gray frames as one channel, the stack's frames differed in shape (a traceback)."""
    import tifffile

    gray = frames.mean(axis=3, keepdims=True).astype(np.float32)
    vinfo = VideoInfo("folder", "test", 4, 48, 64, 1, "uint16", fps=24.0)
    with VideoWriter(tmp_path / "out.tif", vinfo, spool=True, keep_spool=True) as writer:
        writer.write(np.repeat(gray[0], 3, axis=2))  # as the earlier version spooled it
    with VideoWriter(tmp_path / "out.tif", vinfo, spool=True, resume=True) as writer:
        writer.skip(1)
        for frame in gray[1:]:
            writer.write(frame)
    stack = tifffile.imread(tmp_path / "out.tif")
    assert stack.shape == (4, 48, 64) and np.abs(stack / 65535 - gray[..., 0]).max() < 1e-4
