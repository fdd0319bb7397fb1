"""Commands stopped at awkward moments (Ctrl-C, kill -9 between two writes) and run again: nothing is lost or
left behind, a rerun finishes the work, and --resume ends where an uninterrupted run ends."""
import functools
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from selfrestore.checkpoint import _write, read_checkpoint
from selfrestore.cli import main
from selfrestore.io import write_image


class Killed(BaseException):
    """A kill -9 at this point: nothing of the command's own clean-up (except/finally for Exception) runs."""


def _noisy_images(folder: Path, n: int = 2, size: int = 48, seed: int = 0) -> Path:
    from skimage import data

    image = data.astronaut().astype(np.float32) / 255
    rng = np.random.default_rng(seed)
    for i in range(n):
        crop = image[60 * i:60 * i + size, 200:200 + size]
        write_image(folder / f"img{i}.png", np.clip(crop + rng.normal(0, 0.1, crop.shape), 0, 1).astype(np.float32))
    return folder


def _fit(data: Path, out: Path, *extra: str) -> list[str]:
    return ["fit", str(data), "--method", "n2v", "--width", "4", "--depth", "2", "--batch-size", "2",
            "--patch-size", "32", "--quiet", "-o", str(out), *extra]


def _interrupt_at_step(monkeypatch, step: int, exc: type[BaseException] = KeyboardInterrupt) -> None:
    """Raise ``exc`` when training asks for the learning rate of ``step`` (Ctrl-C in the middle of a run)."""
    import selfrestore.train as train_module

    original = train_module.learning_rate

    def stop(config, at):
        if at == step:
            raise exc
        return original(config, at)

    monkeypatch.setattr(train_module, "learning_rate", stop)


def _same_tensors(a: Path, b: Path, prefix: str = "net.") -> bool:
    ta, tb = read_checkpoint(a)[0], read_checkpoint(b)[0]
    keys = [k for k in ta if k.startswith(prefix)]
    return bool(keys) and all(torch.equal(ta[k], tb[k]) for k in keys)


def test_ctrl_c_during_restore_adapt_is_a_plain_interrupt(tmp_path, monkeypatch, capsys):
    """restore --adapt trains in a temporary folder: Ctrl-C must not claim a checkpoint there and advise a
    --resume that restore does not have; it ends as any interrupted command (exit 130, one line)."""
    data = _noisy_images(tmp_path / "data")
    model = tmp_path / "m.safetensors"
    assert main(_fit(data, model, "--steps", "2")) == 0
    capsys.readouterr()
    _interrupt_at_step(monkeypatch, 2)
    assert main(["restore", str(data), "--model", str(model), "-o", str(tmp_path / "out"), "--adapt", "4",
                 "--quiet"]) == 130
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == "selfrestore restore: interrupted" and "--resume" not in err, err
    assert not (tmp_path / "out").exists()


def test_skip_existing_finishes_an_input_stopped_between_its_image_and_its_std(tmp_path, capsys):
    """restore --uncertainty writes NAME.png, then NAME.std.tif: a batch killed between the two left an input
    that --skip-existing refused forever; it now writes the missing file and leaves the other alone."""
    from skimage import data as skdata

    image = skdata.astronaut()[100:132, 150:182].astype(np.float32) / 255
    write_image(tmp_path / "in" / "a.png", image)
    write_image(tmp_path / "in" / "b.png", image[::-1].copy())
    args = ["restore", str(tmp_path / "in"), "--model", "laine19-gauss25", "-o", str(tmp_path / "out"),
            "--uncertainty", "--quiet"]
    assert main(args) == 0
    folder = tmp_path / "out" / "in"
    std = (folder / "b.std.tif").read_bytes()
    (folder / "b.std.tif").unlink()  # killed after b.png was written
    os.utime(folder / "b.png", (1e9, 1e9))
    assert main([*args, "--skip-existing"]) == 0, capsys.readouterr().err
    assert (folder / "b.std.tif").read_bytes() == std and (folder / "b.png").stat().st_mtime == 1e9


def test_resume_keeps_no_amp_and_refuses_a_changed_precision_or_budget(tmp_path, monkeypatch, capsys):
    """A --no-amp run resumed with the options left out continued in bf16 (weights off by ~1e-3); it now
    takes fp32 from the file and ends with the uninterrupted weights exactly. --no-amp on a bf16 run, and a
    --minutes budget on a step-count run, mix two runs: refused."""
    data = _noisy_images(tmp_path / "data")
    full, cut = tmp_path / "full.safetensors", tmp_path / "cut.safetensors"
    assert main(_fit(data, full, "--steps", "6", "--no-amp")) == 0
    with monkeypatch.context() as patch:
        _interrupt_at_step(patch, 3)
        assert main(_fit(data, cut, "--steps", "6", "--no-amp")) == 130  # Ctrl-C: checkpoint saved
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("selfrestore fit: interrupted after step 3; checkpoint saved") and "error" not in err[-1]
    assert read_checkpoint(cut)[1]["step"] == 3
    assert main(["fit", str(data), "-o", str(cut), "--resume", "--quiet"]) == 0
    assert read_checkpoint(cut)[1]["train_config"]["amp"] is False and _same_tensors(full, cut)
    bf16 = tmp_path / "bf16.safetensors"
    assert main(_fit(data, bf16, "--steps", "2", "--precision", "bf16")) == 0
    capsys.readouterr()
    assert main(["fit", str(data), "-o", str(bf16), "--resume", "--steps", "4", "--no-amp"]) == 2
    assert "trained in bf16, not fp32" in capsys.readouterr().err
    assert main(["fit", str(data), "-o", str(bf16), "--resume", "--minutes", "1"]) == 2
    assert "not for --minutes" in capsys.readouterr().err and read_checkpoint(bf16)[1]["step"] == 2


def test_holdout_run_killed_before_its_first_checkpoint_resumes(tmp_path, monkeypatch):
    """With --holdout the best weights are written just before the checkpoint of the same step: a kill in
    between left NAME.best.safetensors without NAME.safetensors, which fit refuses even with --resume. A
    step-0 checkpoint comes first now, and the resumed run equals an uninterrupted one (model and best)."""
    import selfrestore.train as train_module

    data = _noisy_images(tmp_path / "data", n=4)
    options = ("--steps", "4", "--ckpt-every", "2", "--holdout", "0.5")
    full, cut = tmp_path / "full.safetensors", tmp_path / "cut.safetensors"
    assert main(_fit(data, full, *options)) == 0
    original = train_module.save_checkpoint

    def dies(path, net, meta, *args, **kwargs):
        if Path(path) == cut and meta.get("step") == 2:
            raise Killed
        return original(path, net, meta, *args, **kwargs)

    monkeypatch.setattr(train_module, "save_checkpoint", dies)
    with pytest.raises(Killed):
        main(_fit(data, cut, *options))
    monkeypatch.setattr(train_module, "save_checkpoint", original)
    assert (tmp_path / "cut.best.safetensors").exists() and read_checkpoint(cut)[1]["step"] == 0
    assert main(_fit(data, cut, *options, "--resume")) == 0
    assert _same_tensors(full, cut) and _same_tensors(tmp_path / "full.best.safetensors",
                                                      tmp_path / "cut.best.safetensors")


def test_resume_of_a_run_stopped_before_its_size_check_records_it(tmp_path, capsys):
    """fit records the size check after the last step: a kill or Ctrl-C in between left a finished model
    without it, and --resume said "finished" and never checked (restore then cannot warn)."""
    data = _noisy_images(tmp_path / "data", size=128)  # holds a 2 x 64 px patch
    out = tmp_path / "m.safetensors"
    args = _fit(data, out, "--steps", "2", "--patch-size", "64")
    assert main(args) == 0
    tensors, header = read_checkpoint(out)
    check = header.pop("size_check")
    assert "drift" in check  # a real check (on smaller images it is recorded as skipped)
    _write(out, tensors, header)  # as left by a run stopped before the check
    capsys.readouterr()
    assert main([*args, "--resume"]) == 0
    assert "checking it now" in capsys.readouterr().err
    resumed, after = read_checkpoint(out)
    assert after["size_check"] == check and after["step"] == 2
    assert all(torch.equal(tensors[k], resumed[k]) for k in tensors)  # nothing trained again
    assert main([*args, "--resume"]) == 0 and "checking it now" not in capsys.readouterr().err


def test_video_killed_after_its_file_is_made_resumes(tmp_path, monkeypatch, tiny_model):
    """`video --online -o FILE`: the file is made from the spooled frames, then the resume state deleted. The
    spool went first, so a kill between the two left a state whose frames were gone: --resume failed ("frame 1
    missing") and a plain rerun was told to --resume. The spool now goes last; --resume remakes the same file."""
    import tifffile

    import selfrestore.video as video

    frames = tmp_path / "frames"
    _noisy_images(frames, n=3, size=48)
    model = tiny_model
    base = ["video", str(frames), "--method", "f2f", "--model", str(model), "--steps-per-frame", "1",
            "--crop", "32", "--online", "--quiet"]
    monkeypatch.setattr(video, "VideoConfig", functools.partial(video.VideoConfig, checkpoint_seconds=0))
    reference, resumed = tmp_path / "reference.tif", tmp_path / "resumed.tif"
    assert main([*base, "-o", str(reference)]) == 0
    with monkeypatch.context() as patch:
        original = Path.unlink

        def dies(self, missing_ok=False):
            if self.name.endswith(".resume.pt"):
                raise Killed
            return original(self, missing_ok=missing_ok)

        patch.setattr(Path, "unlink", dies)
        with pytest.raises(Killed):
            main([*base, "-o", str(resumed)])
    assert resumed.exists() and (tmp_path / "resumed.tif.resume.pt").exists()
    assert main([*base, "-o", str(resumed), "--resume"]) == 0
    assert np.array_equal(tifffile.imread(reference), tifffile.imread(resumed))
    assert [p.name for p in tmp_path.iterdir() if "resumed" in p.name] == ["resumed.tif"]
    # --save-model: written before the resume state goes (it came after, so the same kill lost the model)
    saved = tmp_path / "tuned.safetensors"
    with monkeypatch.context() as patch:
        patch.setattr(Path, "unlink", dies)
        with pytest.raises(Killed):
            main([*base, "-o", str(tmp_path / "third.tif"), "--save-model", str(saved)])
    assert saved.is_file()


def test_temporary_files_of_a_killed_write_are_removed_by_the_next_run(tmp_path):
    """A kill -9 while a file is written atomically leaves its hidden temporary file (.NAME.XXXXXXXX.tmp.SUFFIX)
    beside it, forever: the next run of a command writing NAME removes it, but not one a run now writing is
    using (newer than this process), nor other hidden files."""
    data = _noisy_images(tmp_path / "data")
    model = tmp_path / "m.safetensors"
    stale_model = tmp_path / ".m.safetensors.ab12cd_9.tmp.safetensors"
    folder = tmp_path / "out" / "data"
    folder.mkdir(parents=True)
    stale_image, live_image = folder / ".img0.png.x1y2z3w4.tmp.png", folder / ".img1.png.q1w2e3r4.tmp.png"
    other = folder / ".img0.png.notes"
    for path in (stale_model, stale_image, live_image, other):
        path.write_bytes(b"partial")
    for path in (stale_model, stale_image, other):
        os.utime(path, (time.time() - 3600,) * 2)
    assert main(_fit(data, model, "--steps", "1")) == 0
    assert not stale_model.exists()
    assert main(["restore", str(data), "--model", str(model), "-o", str(tmp_path / "out"), "--quiet"]) == 0
    assert sorted(p.name for p in folder.iterdir()) == [".img0.png.notes", ".img1.png.q1w2e3r4.tmp.png",
                                                        "img0.png", "img1.png"]


def test_hidden_files_in_a_folder_of_frames_are_not_frames(tmp_path):
    """A restored folder of frames read back as a video: the temporary file of a frame write that was killed
    (or a macOS ._NAME file) is no frame; it stopped the run as an unreadable frame."""
    from selfrestore.video_io import VideoReader

    frames = _noisy_images(tmp_path / "frames", n=3, size=32)
    (frames / ".img1.png.a1b2c3d4.tmp.png").write_bytes(b"")
    (frames / "._img0.png").write_bytes(b"\x00\x05\x16\x07")
    reader = VideoReader(frames)
    assert len(reader) == 3 and reader.info.names == ["img0.png", "img1.png", "img2.png"]


def test_ctrl_c_while_a_video_file_is_made_leaves_no_partial_file(tmp_path, monkeypatch):
    """An online run makes its video file from the spooled frames at the end; Ctrl-C (or an error) then left
    the half-encoded hidden .NAME.XXXXXXXX.tmp.mp4 beside the output. It is dropped now; the spool stays for
    --resume."""
    import selfrestore.video_io as video_io
    from selfrestore.video_io import VideoInfo, VideoWriter, spool_folder

    target = tmp_path / "out.mp4"
    writer = VideoWriter(target, VideoInfo("folder", "x", 3, 64, 64), spool=True)
    for value in (0.2, 0.5, 0.8):
        writer.write(np.full((64, 64, 3), value, np.float32))
    original, calls = video_io.read_image, {"n": 0}

    def interrupted(path, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # the encoder holds the first frame: Ctrl-C once its file is there
            deadline = time.time() + 10
            while not writer._tmp.stat().st_size and time.time() < deadline:  # (made empty, then ffmpeg's)
                time.sleep(0.02)
            calls["partial"] = writer._tmp.name.startswith(".out.mp4.") and writer._tmp.stat().st_size > 0
            raise KeyboardInterrupt
        return original(path, *args, **kwargs)

    monkeypatch.setattr(video_io, "read_image", interrupted)
    with pytest.raises(KeyboardInterrupt):
        writer.close()
    assert calls.get("partial"), "the encoder never made its temporary file: nothing was tested"
    assert sorted(p.name for p in tmp_path.iterdir()) == [spool_folder(target).name]
    assert len(list(spool_folder(target).iterdir())) == 3


@pytest.mark.parametrize("mode", ["offline", "online"])
def test_ctrl_c_in_video_fine_tuning_saves_the_state_and_resume_ends_as_uninterrupted(tmp_path, monkeypatch,
                                                                                      capsys, tiny_model, mode):
    """The state was saved only every minute, so Ctrl-C lost up to a minute of fine-tuning. Now the first
    Ctrl-C lets the frame in hand finish, saves the state, and exits 130 naming --resume; the resumed run
    writes exactly the frames of an uninterrupted one."""
    import signal

    import tifffile

    import selfrestore.video as video

    frames = tmp_path / "frames"
    _noisy_images(frames, n=4, size=48)
    base = ["video", str(frames), "--method", "f2f", "--model", str(tiny_model), "--steps-per-frame", "2",
            "--crop", "32", f"--{mode}", "--quiet"] + (["--passes", "2"] if mode == "offline" else [])
    monkeypatch.setattr(video, "VideoConfig", functools.partial(video.VideoConfig, checkpoint_seconds=3600))
    reference, resumed = tmp_path / "reference.tif", tmp_path / "resumed.tif"
    assert main([*base, "-o", str(reference)]) == 0
    # Python's own handler, as in a terminal (pytest run as a background job starts with SIGINT ignored)
    handler_before = signal.signal(signal.SIGINT, signal.default_int_handler)
    original, calls = video.VideoFineTuner.train_steps, []

    def ctrl_c_on_second(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the key press arrives in the middle of a frame's steps
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, *args, **kwargs)

    try:
        with monkeypatch.context() as patch:
            patch.setattr(video.VideoFineTuner, "train_steps", ctrl_c_on_second)
            capsys.readouterr()
            assert main([*base, "-o", str(resumed)]) == 130
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is given back
    finally:
        signal.signal(signal.SIGINT, handler_before)
    err = capsys.readouterr().err
    assert "--resume" in err and "interrupted" in err, err
    assert (tmp_path / "resumed.tif.resume.pt").exists()
    assert main([*base, "-o", str(resumed), "--resume"]) == 0
    assert np.array_equal(tifffile.imread(reference), tifffile.imread(resumed))


def test_ctrl_c_stays_ignored_where_the_shell_ignores_it():
    """A job started in the background (or under nohup) ignores Ctrl-C meant for the foreground: the video
    fine-tuning does not take it over."""
    import signal

    from selfrestore.video import stop_after_frame

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with stop_after_frame(True) as asked:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN and not asked()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        with stop_after_frame(True) as asked:
            assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler  # taken over in a terminal
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)


def test_automatic_precision_follows_the_hardware_and_resume_keeps_the_runs(tmp_path, monkeypatch, capsys):
    """bf16 autocast is ~3x slower than fp32 on a CPU that emulates bf16: by default fit trains in bf16 only
    where the hardware computes it (train.bf16_is_native); the checkpoint records the choice and a resume on a
    machine that would choose otherwise keeps it (the same weights as one run)."""
    import selfrestore.train as train_module
    data = _noisy_images(tmp_path / "data")
    for native, expected in ((False, False), (True, True)):
        out = tmp_path / f"auto_{native}.safetensors"
        monkeypatch.setattr(train_module, "bf16_is_native", lambda device, native=native: native)
        assert main(_fit(data, out, "--steps", "2")) == 0
        assert read_checkpoint(out)[1]["train_config"]["amp"] is expected
    full, cut = tmp_path / "full.safetensors", tmp_path / "cut.safetensors"
    monkeypatch.setattr(train_module, "bf16_is_native", lambda device: True)
    assert main(_fit(data, full, "--steps", "4")) == 0
    with monkeypatch.context() as patch:
        _interrupt_at_step(patch, 2)
        assert main(_fit(data, cut, "--steps", "4")) == 130
    monkeypatch.setattr(train_module, "bf16_is_native", lambda device: False)  # "another machine"
    assert main(["fit", str(data), "-o", str(cut), "--resume", "--steps", "4", "--quiet"]) == 0
    assert read_checkpoint(cut)[1]["train_config"]["amp"] is True and _same_tensors(full, cut)
    capsys.readouterr()
    assert main(_fit(data, tmp_path / "x.safetensors", "--steps", "2", "--no-amp", "--precision", "bf16")) == 2
    assert "contradicts" in capsys.readouterr().err


def test_bf16_is_native_on_cuda_asks_for_ampere_not_for_emulated_bf16(monkeypatch):
    """torch.cuda.is_bf16_supported() is True on pre-Ampere GPUs too (it counts emulated bf16, slower than fp32),
    so auto chose bf16 on a V100 / T4. The compute capability decides; a CPU device never asks torch.cuda."""
    import torch

    from selfrestore.train import bf16_is_native

    def no_cuda(*args, **kwargs):
        raise AssertionError("torch.cuda was asked about a CPU device")

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", no_cuda)
    monkeypatch.setattr(torch.cuda, "get_device_capability", no_cuda)
    assert isinstance(bf16_is_native(torch.device("cpu")), bool)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)  # emulation counted
    monkeypatch.setattr(torch.version, "hip", None)
    for major, native in ((6, False), (7, False), (8, True), (9, True)):
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None, major=major: (major, 0))
        assert bf16_is_native(torch.device("cuda", 0)) is native, major


def test_library_train_resumed_with_automatic_precision_keeps_the_runs(tmp_path, monkeypatch):
    """train() with TrainConfig(amp=None, resume=True) took the precision from the hardware, not from the
    checkpoint: a run started in bf16 continued in fp32 (and recorded fp32). It keeps the run's now."""
    import selfrestore.train as train_module
    from selfrestore.checkpoint import build_net
    from selfrestore.data.images import NoisyImages
    from selfrestore.registry import METHODS
    from selfrestore.train import TrainConfig, train

    rng = np.random.default_rng(0)
    source = NoisyImages([rng.random((40, 40, 3), dtype=np.float32) for _ in range(2)])
    method = METHODS.get("n2v")()
    out = tmp_path / "m.safetensors"

    def run(steps: int, resume: bool) -> None:
        torch.manual_seed(0)
        net = build_net("unet", in_channels=3, out_channels=3, width=4, depth=2)
        train(method, net, source, TrainConfig(steps=steps, batch_size=2, patch_size=32, progress=False, plot=False,
                                               resume=resume), out)

    monkeypatch.setattr(train_module, "bf16_is_native", lambda device: True)
    run(2, resume=False)
    assert read_checkpoint(out)[1]["train_config"]["amp"] is True
    monkeypatch.setattr(train_module, "bf16_is_native", lambda device: False)
    used = []
    original = train_module.autocast
    monkeypatch.setattr(train_module, "autocast", lambda device, enabled: used.append(enabled) or original(device,
                                                                                                         enabled))
    run(4, resume=True)
    assert used and all(used) and read_checkpoint(out)[1]["train_config"]["amp"] is True


def test_every_hidden_temporary_is_one_a_later_run_removes(tmp_path):
    """The streamed-stack writer and the video file writer used fixed hidden names (.NAME.partial.tif,
    .NAME.tmp.mp4, .NAME.decoded): two runs writing one output shared them, and a killed run's, possibly tens
    of GB, stayed forever. Now each is a fresh .NAME.XXXXXXXX.tmp.SUFFIX, which remove_stale_temporaries
    removes once no running process holds it (a long run's is held: another run's cleanup leaves it alone)."""
    import selfrestore.atomic_files as atomic_files
    from selfrestore.video_io import VideoInfo, VideoWriter

    target = tmp_path / "out.tif"
    first, second = atomic_files.temporary_beside(target), atomic_files.temporary_beside(target)
    writer = VideoWriter(tmp_path / "clip.mp4", VideoInfo("folder", "x", 3, 64, 64))
    writer.write(np.full((64, 64, 3), 0.5, np.float32))  # the encoder's file is made with the first frame
    video = writer._tmp
    assert first != second and video.name.startswith(".clip.mp4.") and video.suffix == ".mp4"
    writer._encoder.close()
    for leftover in (first, second, video):
        os.utime(leftover, (0, 0))  # older than this process, as if left by a killed run ...
    assert atomic_files.remove_stale_temporaries([target, tmp_path / "clip.mp4"]) == []  # ... but held: in use
    for leftover in (first, second, video):
        atomic_files._release(leftover)  # what a killed run's exit does
    removed = atomic_files.remove_stale_temporaries([target, tmp_path / "clip.mp4"])
    assert sorted(removed) == sorted([first, second, video]) and not list(tmp_path.iterdir())
