"""`selfrestore video`: wrong options and paths are refused before any work, float frames keep their values,
a failed run does not block its retry, and the messages say what happened."""
import numpy as np
import pytest

pytest.importorskip("cv2")

from selfrestore.cli import main  # noqa: E402
from selfrestore.errors import UserError  # noqa: E402
from selfrestore.io import write_image  # noqa: E402


def _frames(folder, count=3, height=32, width=48, digits=3):
    """``count`` random colour frames named 000.png ... (``digits`` wide) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for i in range(count):
        write_image(folder / f"{i:0{digits}d}.png", rng.random((height, width, 3), dtype=np.float32))
    return folder


def _video(source, output, model, *extra):
    return main(["video", str(source), "-o", str(output), "--method", "f2f", "--model", str(model),
                 "--steps-per-frame", "1", "--crop", "16", "--quiet", *extra])


@pytest.fixture
def no_model_loading(monkeypatch):
    """Loading the start model (the first real work) fails the test: what is checked must be refused before."""
    import selfrestore.checkpoint as checkpoint

    def load_model(*args, **kwargs):
        raise AssertionError("the model was loaded: the check came too late")

    monkeypatch.setattr(checkpoint, "load_model", load_model)


# ------------------------------------------------------------------------------------------- --save-model
@pytest.mark.parametrize("case", ["input frame", "output folder frame", "inside output folder", "pattern frame",
                                  "output file", "resume state", "existing file"])
def test_save_model_that_would_replace_a_file_is_refused_before_any_work(tmp_path, tiny_model, capsys, case,
                                                                         no_model_loading):
    vid = _frames(tmp_path / "vid")
    out, target = tmp_path / "out", None
    if case == "input frame":
        target = vid / "001.png"
    elif case == "output folder frame":
        target = out / "001.png"
    elif case == "inside output folder":
        target = out / "model.safetensors"
    elif case == "pattern frame":
        out = tmp_path / "pat" / "%03d.png"
        target = tmp_path / "pat" / "001.png"
    elif case == "output file":
        out = target = tmp_path / "clean.tif"
    elif case == "resume state":
        target = tmp_path / "out.resume.pt"
    else:
        target = tmp_path / "notes.txt"
        target.write_text("keep me")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert _video(vid, out, tiny_model, "--save-model", str(target)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--save-model" in err, err
    want = {"input frame": "over the input", "existing file": "--overwrite", "resume state": "resume state"}
    assert want.get(case, "over the output") in err, err
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before  # nothing written
    assert not (tmp_path / "out").exists() and not (tmp_path / "pat").exists()


def test_save_model_replaces_an_existing_file_with_overwrite(tmp_path, tiny_model):
    from selfrestore.checkpoint import load_model

    vid = _frames(tmp_path / "vid")
    target = tmp_path / "model.safetensors"
    target.write_text("an older model")
    assert _video(vid, tmp_path / "out", tiny_model, "--save-model", str(target), "--overwrite") == 0
    assert load_model(target)[2]["finetuned_on"] == str(vid)


# ------------------------------------------------------------------------------------------- float frames
def _float_frames(folder, levels):
    """Float32 TIFF frames of counts: frame i around levels[i] (far outside [0, 1]), noisy."""
    import tifffile

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    frames = []
    for i, level in enumerate(levels):
        frame = (level + 100 * rng.standard_normal((32, 48))).astype(np.float32)
        tifffile.imwrite(folder / f"f{i:03d}.tif", frame)
        frames.append(frame)
    return np.stack(frames)


def test_float_frames_are_mapped_once_per_video_and_written_back_as_they_were(tmp_path):
    import tifffile

    from selfrestore.video_io import VideoReader, VideoWriter

    counts = _float_frames(tmp_path / "vid", [500, 1000, 1500])
    reader = VideoReader(str(tmp_path / "vid"))
    frames = list(reader)
    assert reader.info.dtype == "float32" and reader.info.intensity is not None
    assert all(-0.5 < f.mean() < 1.5 for f in frames)  # the range the networks are made for
    assert frames[0].mean() < frames[1].mean() < frames[2].mean()  # one map: no frame is stretched on its own
    with VideoWriter(str(tmp_path / "out"), reader.info) as writer:
        for frame in frames:
            writer.write(frame)
    back = np.stack([tifffile.imread(tmp_path / "out" / f"f{i:03d}.tif") for i in range(3)])
    assert back.dtype == np.float32 and np.allclose(back, counts, rtol=1e-5, atol=1e-2)


def test_float_frames_in_zero_one_stay_float(tmp_path):
    import tifffile

    from selfrestore.video_io import VideoReader

    (tmp_path / "vid").mkdir()
    for i in range(2):
        tifffile.imwrite(tmp_path / "vid" / f"{i}.tif", np.full((32, 48), 0.25 * (i + 1), np.float32))
    reader = VideoReader(str(tmp_path / "vid"))
    assert reader.info.dtype == "float32" and reader.info.intensity is None
    assert [float(f.mean()) for f in reader] == [0.25, 0.5]


@pytest.mark.parametrize("output", ["out", "out/%03d.tif"])
def test_video_command_keeps_float_frames_float_and_on_their_scale(tmp_path, output):
    import tifffile

    counts = _float_frames(tmp_path / "vid", [800, 1000, 1200])
    assert main(["video", str(tmp_path / "vid"), "-o", str(tmp_path / output), "--method", "f2f", "--model",
                 "unet-gauss25", "--steps-per-frame", "0", "--quiet"]) == 0
    written = sorted((tmp_path / "out").iterdir())
    assert len(written) == 3
    restored = np.stack([tifffile.imread(p) for p in written])
    assert restored.dtype == np.float32  # it was uint16, every value saturated at 65535
    assert np.all(np.abs(restored.mean(axis=(1, 2)) / counts.mean(axis=(1, 2)) - 1) < 0.05)
    assert restored.std(axis=(1, 2)).max() < counts.std(axis=(1, 2)).min()  # denoised, on the counts' scale


def test_float_counts_to_an_output_that_cannot_hold_floats_are_refused(tmp_path, tiny_model):
    """As restore and burst refuse them: the mapped [0, 1] values would go silently into PNG / video frames."""
    _float_frames(tmp_path / "vid", [800, 1000, 1200])
    for output in ("png/%03d.png", "v.mp4"):
        assert _video(tmp_path / "vid", tmp_path / output, tiny_model) == 2
        assert not (tmp_path / "png").exists() and not (tmp_path / "v.mp4").exists()


def test_a_model_fine_tuned_on_float_counts_records_their_map(tmp_path, tiny_model):
    from selfrestore.checkpoint import read_checkpoint
    from selfrestore.video_io import VideoReader

    _float_frames(tmp_path / "vid", [800, 1000, 1200])
    assert _video(tmp_path / "vid", tmp_path / "out", tiny_model, "--save-model", str(tmp_path / "m.safetensors")) == 0
    assert read_checkpoint(tmp_path / "m.safetensors")[1]["intensity"] == VideoReader(tmp_path / "vid").info.intensity


# ------------------------------------------------------------------------------------ resume state on failure
def _diverges(fail_at_call, call=2):
    import selfrestore.video as video

    return fail_at_call(video.VideoFineTuner, "train_steps", call,
                        UserError("fine-tuning diverged at frame 2 (loss nan); lower --lr"))


@pytest.mark.parametrize("output,mode", [("out", "--online"), ("out", "--offline"), ("clean.tif", "--online")])
def test_a_failed_run_leaves_no_state_that_blocks_its_retry(tmp_path, tiny_model, fail_at_call, capsys, output,
                                                            mode):
    from selfrestore.video_io import spool_folder

    vid = _frames(tmp_path / "vid", count=4)
    restore = _diverges(fail_at_call)
    assert _video(vid, tmp_path / output, tiny_model, mode, "--passes", "1") == 2
    assert "diverged" in capsys.readouterr().err
    assert not (tmp_path / f"{output}.resume.pt").exists() and not spool_folder(tmp_path / output).exists()
    restore()
    assert _video(vid, tmp_path / output, tiny_model, mode, "--passes", "1", "--overwrite") == 0


def test_a_crash_that_is_no_user_mistake_keeps_the_state_for_resume(tmp_path, tiny_model, fail_at_call):
    """Out of memory (or a bug) is not the settings' fault: the state stays, and --resume (also with the model
    saved by the interrupted run already there) continues."""
    import selfrestore.video as video

    vid = _frames(tmp_path / "vid", count=4)
    undo = fail_at_call(video.VideoFineTuner, "train_steps", 3, MemoryError("out of memory"))
    with pytest.raises(MemoryError):
        _video(vid, tmp_path / "out", tiny_model, "--online")
    assert (tmp_path / "out.resume.pt").exists()
    undo()
    (tmp_path / "m.safetensors").write_bytes(b"saved before the kill")
    assert _video(vid, tmp_path / "out", tiny_model, "--online", "--resume", "--save-model",
                  str(tmp_path / "m.safetensors")) == 0
    assert not (tmp_path / "out.resume.pt").exists()


def test_a_full_disk_keeps_the_state_for_resume(tmp_path, tiny_model, fail_at_call):
    """Not the settings but the file system failed: once there is room, --resume continues."""
    import selfrestore.video_io as video_io

    vid = _frames(tmp_path / "vid", count=4)
    undo = fail_at_call(video_io, "write_image", 3, OSError(28, "No space left on device"))
    assert _video(vid, tmp_path / "out", tiny_model, "--online") == 1
    assert (tmp_path / "out.resume.pt").exists()
    undo()
    assert _video(vid, tmp_path / "out", tiny_model, "--online", "--resume") == 0
    assert not (tmp_path / "out.resume.pt").exists() and len(list((tmp_path / "out").iterdir())) == 4


def test_overwrite_discards_the_state_of_an_interrupted_run(tmp_path, tiny_model, capsys):
    vid = _frames(tmp_path / "vid")
    (tmp_path / "out.resume.pt").write_bytes(b"left by a killed run with other settings")
    assert _video(vid, tmp_path / "out", tiny_model) == 2
    assert "--overwrite to start over" in capsys.readouterr().err
    assert _video(vid, tmp_path / "out", tiny_model, "--resume") == 2  # a state this run cannot use: kept
    assert (tmp_path / "out.resume.pt").exists()
    assert _video(vid, tmp_path / "out", tiny_model, "--overwrite") == 0
    assert not (tmp_path / "out.resume.pt").exists() and len(list((tmp_path / "out").iterdir())) == 3


# ------------------------------------------------------------------------------- checks before any output
@pytest.mark.parametrize("pattern", ["%03d.xyz", "%03d", "frame_%03d.v2"])
def test_output_pattern_without_an_image_suffix_is_refused_before_any_work(tmp_path, tiny_model, capsys, pattern,
                                                                           no_model_loading):
    from selfrestore.video_io import output_kind

    vid = _frames(tmp_path / "vid")
    assert _video(vid, tmp_path / "out" / pattern, tiny_model) == 2
    err = capsys.readouterr().err
    assert "image suffix" in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()
    with pytest.raises(UserError):
        output_kind(f"out/{pattern}")
    assert output_kind("out/%03d.png") == "pattern" and output_kind("out/%03d.TIF") == "pattern"


@pytest.mark.parametrize("output", ["out", "clean.mp4", "clean.tif"])
@pytest.mark.parametrize("count,options,message", [
    (3, ["--flow-on", "noisy", "--occlusion-test", "residual"], "needs flow on denoised frames"),
    (3, ["--flow", "farneback", "--flow-preset", "fast"], "preset of DIS flow"),
    (1, [], "at least 2 frames")])
def test_impossible_settings_are_refused_before_any_output_is_made(tmp_path, tiny_model, capsys, output, count,
                                                                   options, message):
    vid = _frames(tmp_path / "vid", count=count)
    assert _video(vid, tmp_path / output, tiny_model, *options) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vid"]  # no output, no hidden .NAME.frames


def test_tvl1_without_opencv_contrib_is_refused_before_any_output_is_made(tmp_path, tiny_model, capsys,
                                                                          monkeypatch):
    import cv2

    monkeypatch.delattr(cv2, "optflow", raising=False)
    vid = _frames(tmp_path / "vid")
    assert _video(vid, tmp_path / "clean.mp4", tiny_model, "--flow", "tvl1") == 2
    assert "opencv-contrib" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vid"]


# ------------------------------------------------------------------------------------------------ messages
def test_resumed_run_reports_the_frames_it_restored_itself(tmp_path, tiny_model, monkeypatch, capsys, fail_at_call):
    import functools

    import selfrestore.video as video

    vid = _frames(tmp_path / "vid", count=5)
    monkeypatch.setattr(video, "VideoConfig", functools.partial(video.VideoConfig, checkpoint_seconds=0))
    undo = fail_at_call(video.VideoFineTuner, "train_steps", 3, KeyboardInterrupt())  # frames 0-2 written
    assert _video(vid, tmp_path / "out", tiny_model, "--online") == 130
    undo()
    capsys.readouterr()
    assert main(["video", str(vid), "-o", str(tmp_path / "out"), "--method", "f2f", "--model", str(tiny_model),
                 "--steps-per-frame", "1", "--crop", "16", "--online", "--resume"]) == 0
    out = capsys.readouterr().out
    assert "restored 2 frames in this run (3 by the interrupted run)" in out, out


def test_an_existing_file_as_a_folder_output_is_said_to_be_one(tmp_path, tiny_model, capsys, no_model_loading):
    vid = _frames(tmp_path / "vid")
    (tmp_path / "notes").write_text("keep me")
    assert _video(vid, tmp_path / "notes", tiny_model, "--overwrite") == 2
    err = capsys.readouterr().err
    assert "an existing file, not a folder" in err and "File exists" not in err, err
    assert (tmp_path / "notes").read_text() == "keep me"


def test_a_folder_as_model_is_said_to_be_one(tmp_path, capsys):
    vid = _frames(tmp_path / "vid")
    (tmp_path / "models").mkdir()
    assert _video(vid, tmp_path / "out", tmp_path / "models") == 2
    err = capsys.readouterr().err
    assert "is a folder" in err and "no such model file" not in err, err


def test_video_help_shows_the_method_default_and_no_confusing_offline_default(capsys):
    with pytest.raises(SystemExit):
        main(["video", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    text = text[text.index("-o OUTPUT, --output OUTPUT"):]  # the options' help, not the usage line
    method = text[text.index("--method {f2f,mf2f}"):text.index("--model MODEL")]
    assert "single-frame" in method and "(default: mf2f)" in method, method
    offline = text[text.index("--offline"):text.index("fine-tuning:")]
    assert "(default: online)" not in offline and "--online is the default" in offline, offline


def test_a_resumed_automatic_precision_run_keeps_the_precision_it_started_with(tmp_path, tiny_model, fail_at_call,
                                                                              monkeypatch, capsys):
    """A state saved in bf16 (the default before the precision followed the hardware, or another machine) was
    refused on --resume with --precision auto here ('other settings (--precision)'): it continues in bf16 now.
    An explicit other precision is still refused, and the message names the state's."""
    import selfrestore.train as train_module
    import selfrestore.video as video

    vid = _frames(tmp_path / "vid", count=4)
    monkeypatch.setattr(train_module, "bf16_is_native", lambda device: True)
    undo = fail_at_call(video.VideoFineTuner, "train_steps", 3, MemoryError("out of memory"))
    with pytest.raises(MemoryError):
        _video(vid, tmp_path / "out", tiny_model, "--online")
    undo()
    assert video.saved_precision(tmp_path / "out.resume.pt") is True
    monkeypatch.setattr(train_module, "bf16_is_native", lambda device: False)
    capsys.readouterr()
    assert _video(vid, tmp_path / "out", tiny_model, "--online", "--resume", "--precision", "fp32") == 2
    assert "--precision bf16" in capsys.readouterr().err and (tmp_path / "out.resume.pt").exists()
    assert _video(vid, tmp_path / "out", tiny_model, "--online", "--resume") == 0
    assert not (tmp_path / "out.resume.pt").exists() and len(list((tmp_path / "out").iterdir())) == 4


def test_frames_are_restored_in_fp32_where_bf16_fine_tunes(tmp_path, tiny_model, monkeypatch):
    """On bf16 hardware (--precision auto picks bf16) 16-bit frames were restored in bf16 too: about 8 bits
    left (322 distinct values where fp32 gives thousands, found by an audit). Fine-tuning may be bf16, the
    frames are restored in fp32, even with an explicit --precision bf16 (8-bit frames only may use it)."""
    import selfrestore.train as train_module
    from selfrestore.io import ImageInfo, read_image

    vid = tmp_path / "vid"
    vid.mkdir()
    rng = np.random.default_rng(2)
    for i in range(3):
        write_image(vid / f"{i:03d}.png", rng.random((32, 48, 3), dtype=np.float32), ImageInfo(dtype="uint16"))
    outputs = {}
    for precision in ("fp32", "auto", "bf16"):
        monkeypatch.setattr(train_module, "bf16_is_native", lambda device: precision == "auto")
        assert _video(vid, tmp_path / precision, tiny_model, "--steps-per-frame", "0", "--precision", precision) == 0
        frame, info = read_image(tmp_path / precision / "001.png")
        assert info.dtype == "uint16"
        outputs[precision] = frame
    assert len(np.unique(outputs["fp32"])) > 1000
    assert np.array_equal(outputs["auto"], outputs["fp32"]) and np.array_equal(outputs["bf16"], outputs["fp32"])


def test_offline_options_given_to_an_online_run_are_said_to_be_ignored(tmp_path, tiny_model, capsys):
    """`video --online --passes 2` (or --lr-schedule) ran once over the video without a word."""
    vid = _frames(tmp_path / "v")
    assert _video(vid, tmp_path / "o1", tiny_model, "--online", "--passes", "2", "--lr-schedule", "constant") == 0
    assert "--passes and --lr-schedule: for --offline runs" in " ".join(capsys.readouterr().err.split())
    assert _video(vid, tmp_path / "o2", tiny_model, "--online") == 0
    assert "--offline runs" not in capsys.readouterr().err


def test_selfir_refuses_a_threshold_it_can_never_meet_and_misalign_on_real_pairs(tmp_path, capsys):
    """`--eps-s 2` (an SSIM threshold above 1: no area is ever sharp) and `--misalign` with real pairs (it only
    shifts synthetic shots) were accepted and did nothing."""
    rng = np.random.default_rng(0)
    for folder in ("b", "n"):
        write_image(tmp_path / folder / "a.png", rng.random((64, 64, 3), dtype=np.float32))
    base = ["fit", "--method", "selfir", "--blurry", str(tmp_path / "b"), "--noisy", str(tmp_path / "n"),
            "--width", "4", "--depth", "2", "--steps", "1", "--patch-size", "32", "--quiet"]
    assert main([*base, "--eps-s", "2", "-o", str(tmp_path / "m1.safetensors")]) == 2
    assert "at most 1" in capsys.readouterr().err
    from selfrestore.methods.selfir import SelfIR

    assert SelfIR(eps_s=2).eps_s == 2  # a model file trained so by an earlier version still loads to restore
    assert main([*base, "--misalign", "2", "-o", str(tmp_path / "m2.safetensors")]) == 2
    assert "--misalign shapes the pairs made with --synthetic" in capsys.readouterr().err


def test_a_variable_frame_rate_input_is_said_to_be_written_at_a_constant_rate(tmp_path, tiny_model, capsys):
    """A variable-frame-rate video (a 0.8 s gap after frame 4 here) came out at a constant rate without a word,
    its later frames moved in time; now `video` says so. A constant-rate video gets no such warning."""
    import subprocess

    import imageio_ffmpeg

    frames = _frames(tmp_path / "f", count=8)
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    common = [ffmpeg, "-v", "error", "-framerate", "25", "-i", str(frames / "%03d.png")]
    subprocess.run([*common, "-vf", "setpts='if(gte(N,4),(N+20),N)/(25*TB)'", "-fps_mode", "vfr", "-c:v",
                    "libx264", "-pix_fmt", "yuv420p", str(tmp_path / "vfr.mp4")], check=True)
    subprocess.run([*common, "-c:v", "libx264", "-pix_fmt", "yuv420p", str(tmp_path / "cfr.mp4")], check=True)
    assert _video(tmp_path / "vfr.mp4", tmp_path / "o1.mp4", tiny_model, "--steps-per-frame", "0") == 0
    assert "variable frame rate" in capsys.readouterr().err
    assert _video(tmp_path / "cfr.mp4", tmp_path / "o2.mp4", tiny_model, "--steps-per-frame", "0") == 0
    assert "variable frame rate" not in capsys.readouterr().err
