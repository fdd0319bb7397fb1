"""F2F / MF2F: stacks that exclude the target, the multi-frame net, online/offline fine-tuning, the CLI."""
import numpy as np
import pytest
import torch

pytest.importorskip("cv2")

from selfrestore.checkpoint import build_net, save_checkpoint  # noqa: E402
from selfrestore.cli import main  # noqa: E402
from selfrestore.data.synthetic_motion import MotionClips, make_motion_sequence  # noqa: E402
from selfrestore.flow import flow_to_tensor, inside_mask  # noqa: E402
from selfrestore.io import write_image  # noqa: E402
from selfrestore.methods.f2f import warped_l1  # noqa: E402
from selfrestore.metrics import psnr  # noqa: E402
from selfrestore.registry import METHODS, NETS  # noqa: E402
from selfrestore.video import (ListSink, VideoConfig, VideoFineTuner, finetune_and_restore,  # noqa: E402
                               occlusion_test, stack_indices)


@pytest.fixture(scope="module")
def sequence():
    from skimage import data, transform

    image = transform.resize(data.astronaut(), (256, 256), anti_aliasing=True).astype(np.float32)
    seq = make_motion_sequence(image, frames=8, size=(64, 64), speed=1.5, seed=2)
    noisy = seq.frames + np.random.default_rng(0).normal(0, 25 / 255, seq.frames.shape).astype(np.float32)
    return seq, noisy


@pytest.mark.parametrize("stack", ["shifted", "dilated"])
def test_mf2f_training_stack_never_contains_its_target(stack):
    method = METHODS.get("mf2f")(stack=stack)
    for n in (2, 3, 6, 12):
        for centre in range(n):
            for target in (centre - 1, centre + 1):
                if 0 <= target < n:
                    idx = stack_indices(centre, method.training_offsets(target - centre), n, exclude=target)
                    assert target not in idx and idx[2] == centre and all(0 <= i < n for i in idx)
    assert stack_indices(0, method.input_offsets, 6) == [2, 1, 0, 1, 2]  # mirrored at the start


def test_multiframe_net_shapes_identity_start_and_receptive_field():
    net = NETS.get("fastdvd")(in_channels=3, out_channels=3, width=(8, 8, 8))
    x = torch.rand(1, 5, 3, 96, 96)
    assert torch.allclose(net(x), x[:, 2])  # untrained: returns the middle frame
    for p in net.parameters():  # break the identity start so the receptive field shows
        p.data.add_(0.05 * torch.randn_like(p))
    x = x.flatten(1, 2).requires_grad_()
    net(x)[0, :, 48, 48].sum().backward()
    reach = (x.grad[0].abs().sum(0) > 0).nonzero()
    radius = (reach - 48).abs().max().item()
    assert 8 < radius <= net.receptive_field
    assert x.grad[0, 6:9, 48, 48].abs().sum() > 0 and x.grad[0, 0:3].abs().sum() > 0  # sees all frames


def test_warped_l1_is_small_only_with_the_right_flow(sequence):
    seq, _ = sequence
    cur = torch.from_numpy(seq.frames[3]).permute(2, 0, 1)[None]
    prev = torch.from_numpy(seq.frames[2]).permute(2, 0, 1)[None]
    flow = flow_to_tensor(seq.flows[3])
    # target = frame 2; the backward flow of frame 2 towards frame 3 is minus the forward flow here
    batch = {"target": prev, "flow": -flow, "mask": inside_mask(-flow)}
    right = warped_l1(cur, batch)
    wrong = warped_l1(cur, {**batch, "flow": torch.zeros_like(flow)})
    assert right < 0.02 and wrong > 2 * right


def test_warped_l2_seeks_the_mean_of_low_count_poisson_noise_where_l1_is_biased():
    """A flat grey 0.35 seen through Poisson(10 x) / 10 (3.5 photons on average): the constant output that
    minimises the warped L1 against the noisy frame is the noise's median, 0.3, below the clean value; the
    L2 option's minimiser is the clean value. The mask counts: masked-out pixels do not pull."""
    from selfrestore.methods.f2f import warped_loss

    gen = torch.Generator().manual_seed(0)
    target = torch.poisson(torch.full((1, 3, 64, 64), 3.5), generator=gen) / 10
    mask = torch.ones(1, 1, 64, 64)
    mask[..., :8] = 0
    target[..., :8] = 5.0  # outliers under the mask
    batch = {"target": target, "flow": torch.zeros(1, 2, 64, 64), "mask": mask}
    levels = torch.linspace(0.0, 0.6, 121)

    def best(kind: str) -> float:
        losses = [float(warped_loss(torch.full((1, 3, 64, 64), float(c)), batch, kind)) for c in levels]
        return float(levels[int(np.argmin(losses))])

    assert abs(best("l2") - 0.35) <= 0.01
    assert abs(best("l1") - 0.3) <= 0.005
    assert METHODS.get("f2f")(warp_loss="l2").config()["warp_loss"] == "l2"
    from selfrestore.errors import UserError
    with pytest.raises(UserError, match="warped loss"):
        METHODS.get("mf2f")(warp_loss="huber")


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_f2f_fine_tuning_denoises_a_noisy_video(sequence, mode):
    seq, noisy = sequence
    torch.manual_seed(0)
    net = build_net("unet", in_channels=3, out_channels=3, width=8, depth=2)
    config = VideoConfig(mode=mode, steps_per_frame=20 if mode == "online" else 10, passes=3, lr=1e-3, crop=64,
                         progress=False, flow_on="noisy")
    sink = ListSink()
    stats = finetune_and_restore(METHODS.get("f2f")(), net, list(noisy), len(noisy), sink, config)
    assert len(sink) == len(noisy) and stats.frames == len(noisy) and len(stats.losses) > 0
    noisy_psnr = np.mean([psnr(np.clip(n, 0, 1), c) for n, c in zip(noisy, seq.frames)])
    last = np.mean([psnr(o, c) for o, c in zip(sink[-3:], seq.frames[-3:])])
    assert last > noisy_psnr + 1.5, (last, noisy_psnr)  # it learned to denoise from noisy frames alone
    assert 0.5 < np.mean(stats.valid_fraction) < 1.0  # occlusions (borders) were masked


def test_residual_occlusion_test_keeps_flat_areas_and_still_drops_occlusions():
    """Flat areas (faint texture that changes between frames, as pre-denoised snow or sky) have no
    well-defined flow: the forward-backward check drops most of them although the warped frame matches;
    the residual test alone keeps them, and still drops an object the source frame does not show."""
    from scipy.ndimage import gaussian_filter

    from selfrestore.errors import UserError

    def flat(seed):
        texture = gaussian_filter(np.random.default_rng(seed).normal(0, 1, (96, 96)), 2.0)
        return np.repeat((0.5 + 0.01 * texture / texture.std())[..., None], 3, axis=2).astype(np.float32)

    target, source = flat(1), flat(2)
    target[40:56, 40:56] = 0.95  # occluded in the source
    net = build_net("unet", in_channels=3, out_channels=3, width=4, depth=2)
    kept = {}
    for test in ("consistency", "residual"):
        tuner = VideoFineTuner(METHODS.get("f2f")(), net, VideoConfig(progress=False, occlusion_test=test))
        mask = tuner.align(target, source)[1][0, 0].numpy()
        assert mask[44:52, 44:52].max() == 0  # the object is dropped either way
        kept[test] = mask.mean()
    assert kept["consistency"] < 0.6 and kept["residual"] > 0.85, kept
    with pytest.raises(UserError, match="denoised"):
        VideoFineTuner(METHODS.get("f2f")(), net, VideoConfig(occlusion_test="residual", flow_on="noisy"))
    # the default: the residual test where it is possible (flow on denoised frames), else the consistency check
    assert occlusion_test(VideoConfig()) == "residual"
    assert occlusion_test(VideoConfig(flow_on="noisy")) == "consistency"


def test_mf2f_online_streams_with_bounded_lookahead(sequence):
    seq, noisy = sequence
    consumed = []

    def stream():
        for i, frame in enumerate(noisy):
            consumed.append(i)
            yield frame

    class Sink(ListSink):
        def write(self, frame):
            self.append((len(consumed), frame))

    net = build_net("fastdvd", in_channels=3, out_channels=3, width=(8, 8, 8))
    sink = Sink()
    config = VideoConfig(mode="online", steps_per_frame=1, crop=32, lr=1e-4, progress=False)
    finetune_and_restore(METHODS.get("mf2f")(), net, stream(), len(noisy), sink, config)
    assert len(sink) == len(noisy)
    for t, (read, frame) in enumerate(sink):
        assert read <= min(len(noisy), t + 3)  # frame t needs frames up to t+2 only
        assert frame.shape == noisy[t].shape


def test_motion_clips_source_gives_aligned_frames_and_clean_middle():
    image = np.random.default_rng(0).random((80, 90, 3)).astype(np.float32)
    from selfrestore.corruption import parse_corruption

    source = MotionClips([image], parse_corruption("gauss25"))
    batch = source.batch(np.random.default_rng(1), 2, 32)
    assert batch["frames"].shape == (2, 5, 3, 32, 32) and batch["clean"].shape == (2, 3, 32, 32)
    residual = (batch["frames"][:, 2] - batch["clean"]).std().item() * 255
    assert 20 < residual < 30


def test_video_command_restores_a_frame_folder(tmp_path, sequence):
    seq, noisy = sequence
    frames = tmp_path / "frames"
    for i, frame in enumerate(noisy[:5]):
        write_image(frames / f"f{i:03d}.png", frame)
    model = tmp_path / "start.safetensors"
    net = build_net("fastdvd", in_channels=3, out_channels=3, frames=5, width=[8, 8, 8])
    save_checkpoint(model, net, {"method": {"name": "mf2c", "noise": None}, "channels": 3})
    out = tmp_path / "out"
    code = main(["video", str(frames), "-o", str(out), "--method", "mf2f", "--offline", "--model", str(model),
                 "--steps-per-frame", "1", "--passes", "1", "--crop", "32", "--quiet", "--warp-loss", "l2",
                 "--save-model", str(tmp_path / "tuned.safetensors")])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [f"f{i:03d}.png" for i in range(5)]
    from selfrestore.checkpoint import read_checkpoint
    assert read_checkpoint(tmp_path / "tuned.safetensors")[1]["method"]["warp_loss"] == "l2"
    # a single-frame model with --method mf2f, and a missing input, are one-line errors
    assert main(["video", str(frames), "-o", str(tmp_path / "o2"), "--method", "f2f", "--model", str(model),
                 "--quiet"]) == 2
    assert main(["video", str(tmp_path / "nope.mp4"), "-o", str(tmp_path / "o3"), "--model", str(model)]) == 2


def test_flow_preset_follows_the_frames_flow_is_computed_on():
    from selfrestore.video import flow_preset

    assert flow_preset(VideoConfig(flow_on="denoised")) == "medium"
    assert flow_preset(VideoConfig(flow_on="noisy")) == "noisy"
    assert flow_preset(VideoConfig(flow_on="noisy", flow_preset="fast")) == "fast"


def test_offline_learning_rate_decays_by_half_a_cosine_over_all_passes():
    """Offline fine-tuning starts at --lr and ends near 0 (the final weights are not a snapshot of a noisy
    constant-rate walk); the rate depends only on (pass, frame, step), so a resumed run follows it too."""
    from selfrestore.errors import UserError
    from selfrestore.video import VideoFineTuner, offline_lr

    config = VideoConfig(mode="offline", passes=3, steps_per_frame=4, lr=1e-4)
    n = 5
    rates = [offline_lr(config, n, p, i, j) for p in range(3) for i in range(n) for j in range(4)]
    assert rates[0] == pytest.approx(1e-4)
    assert all(b < a for a, b in zip(rates, rates[1:]))
    assert rates[len(rates) // 2] == pytest.approx(0.5e-4)
    assert 0 < rates[-1] < 1e-4 * 1e-2
    constant = VideoConfig(mode="offline", passes=3, steps_per_frame=4, lr=1e-4, lr_schedule="constant")
    assert {offline_lr(constant, n, p, 2, 1) for p in range(3)} == {1e-4}
    with pytest.raises(UserError, match="schedule"):
        VideoFineTuner(METHODS.get("f2f")(), build_net("unet", in_channels=3, out_channels=3, width=4, depth=2),
                       VideoConfig(lr_schedule="step"))


def _fine_tune(frames, checkpoint=None, method="f2f", method_options=None, **overrides):
    """(net, restored frames) of a small seeded fine-tuning run on ``frames`` (checkpoint saved every frame)."""
    torch.manual_seed(0)
    net = (build_net("unet", in_channels=3, out_channels=3, width=4, depth=2) if method == "f2f" else
           build_net("fastdvd", in_channels=3, out_channels=3, width=(4, 4, 4)))
    settings = dict(steps_per_frame=2, passes=2, lr=1e-3, crop=32, amp=False, progress=False, flow_on="noisy",
                    checkpoint=checkpoint, checkpoint_seconds=0)
    sink = ListSink()
    finetune_and_restore(METHODS.get(method)(**(method_options or {})), net, frames, len(frames), sink,
                         VideoConfig(**{**settings, **overrides}))
    return net, sink


def _killed_at_training_call(fail_at_call, call: int, run) -> None:
    """Call ``run()`` with the ``call``-th call of VideoFineTuner.train_steps raising KeyboardInterrupt (a kill)."""
    import selfrestore.video as video

    undo = fail_at_call(video.VideoFineTuner, "train_steps", call, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        run()
    undo()


def _assert_same_weights(net_a, net_b) -> None:
    for a, b in zip(net_a.state_dict().values(), net_b.state_dict().values()):
        assert torch.equal(a, b)


def test_offline_fine_tuning_killed_mid_pass_resumes_to_the_same_result(tmp_path, sequence, fail_at_call):
    """Offline fine-tuning saves its state as it goes; a run killed in its second pass, rerun with the same
    settings, ends with exactly the weights and frames of an uninterrupted run, and other settings are refused."""
    from selfrestore.errors import UserError

    frames = list(sequence[1][:5])
    reference_net, reference = _fine_tune(frames, mode="offline")
    checkpoint = str(tmp_path / "state.pt")
    # pass 1 made 2 steps per frame; die in the middle of pass 2
    _killed_at_training_call(fail_at_call, 2 * len(frames) + 5,
                             lambda: _fine_tune(frames, checkpoint, mode="offline"))
    state = torch.load(checkpoint, weights_only=True)
    assert state["next_pass"] == 1 and 0 < state["position"] < len(frames)
    with pytest.raises(UserError, match=r"other settings \(--lr\)"):  # named as the command's option
        _fine_tune(frames, checkpoint, mode="offline", lr=2e-3)
    with pytest.raises(UserError, match="other settings.*--warp-loss"):  # the loss is a setting too
        _fine_tune(frames, checkpoint, mode="offline", method_options={"warp_loss": "l2"})
    older = torch.load(checkpoint, weights_only=True)  # a state written before lr_schedule existed
    del older["fingerprint"]["lr_schedule"]
    torch.save(older, tmp_path / "older.pt")
    with pytest.raises(UserError, match="older version"):
        _fine_tune(frames, str(tmp_path / "older.pt"), mode="offline")
    # the occlusion test is recorded as used: "auto" on noisy frames is the consistency check, so naming it resumes
    resumed_net, resumed = _fine_tune(frames, checkpoint, mode="offline", occlusion_test="consistency")
    _assert_same_weights(reference_net, resumed_net)
    assert all(np.array_equal(a, b) for a, b in zip(reference, resumed))


@pytest.mark.parametrize("method, flow_on", [("f2f", "denoised"), ("mf2f", "noisy")])
def test_online_fine_tuning_killed_mid_video_resumes_to_the_same_frames(tmp_path, sequence, fail_at_call, method,
                                                                         flow_on):
    """Online: a run killed after some frames were written, rerun with the same settings, skips the written
    frames and writes exactly the remaining frames of an uninterrupted run (with flow on denoised frames the
    last restored frame comes from the checkpoint)."""
    frames = list(sequence[1][:6])
    settings = dict(method=method, mode="online", flow_on=flow_on)
    reference_net, reference = _fine_tune(frames, **settings)
    checkpoint = str(tmp_path / "state.pt")
    # one training call per frame from frame 1: frames 0-3 written, killed while adapting on frame 4
    _killed_at_training_call(fail_at_call, 4, lambda: _fine_tune(frames, checkpoint, **settings))
    assert torch.load(checkpoint, weights_only=True)["position"] == 4
    resumed_net, resumed = _fine_tune(frames, checkpoint, **settings)
    assert resumed[:4] == [None] * 4 and len(resumed) == len(frames)
    assert all(np.array_equal(a, b) for a, b in zip(reference[4:], resumed[4:]))
    _assert_same_weights(reference_net, resumed_net)


def test_online_run_stopped_before_its_first_timed_save_resumes_from_the_start(tmp_path, sequence, fail_at_call):
    """The state was first saved after --checkpoint-seconds (a minute): a run stopped earlier left frames and
    no state, so a rerun was refused (the output exists) and --resume had nothing to continue. The starting
    state is now saved before any frame is written; --resume rewrites the frames, as an uninterrupted run."""
    frames = list(sequence[1][:4])
    reference_net, reference = _fine_tune(frames, mode="online")
    checkpoint = str(tmp_path / "state.pt")
    _killed_at_training_call(fail_at_call, 2, lambda: _fine_tune(frames, checkpoint, mode="online",
                                                                   checkpoint_seconds=1e9))
    assert torch.load(checkpoint, weights_only=True)["position"] == 0
    resumed_net, resumed = _fine_tune(frames, checkpoint, mode="online", checkpoint_seconds=1e9)
    assert all(np.array_equal(a, b) for a, b in zip(reference, resumed)) and len(resumed) == len(frames)
    _assert_same_weights(reference_net, resumed_net)


def test_video_command_resume_flags(tmp_path, sequence, capsys, tiny_model):
    _, noisy = sequence
    frames = tmp_path / "frames"
    for i, frame in enumerate(noisy[:3]):
        write_image(frames / f"f{i:03d}.png", frame)
    model = tiny_model
    base = ["video", str(frames), "--method", "f2f", "--model", str(model), "--steps-per-frame", "1",
            "--passes", "1", "--crop", "32", "--quiet"]
    assert main([*base, "-o", str(tmp_path / "out"), "--offline", "--resume"]) == 2  # nothing to resume
    assert "nothing to resume" in capsys.readouterr().err
    (tmp_path / "out.resume.pt").write_bytes(b"left by a killed run")
    assert main([*base, "-o", str(tmp_path / "out"), "--offline"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main([*base, "-o", str(tmp_path / "out"), "--offline", "--resume"]) == 2  # unreadable: one line
    assert "cannot read the video checkpoint" in capsys.readouterr().err
    (tmp_path / "out.resume.pt").unlink()
    assert main([*base, "-o", str(tmp_path / "out"), "--offline"]) == 0
    assert not (tmp_path / "out.resume.pt").exists() and len(list((tmp_path / "out").iterdir())) == 3
    assert main([*base, "-o", str(tmp_path / "out2"), "--offline", "--occlusion-test", "residual",
                 "--flow-on", "noisy"]) == 2  # a setting that cannot work: one line, not a traceback
    assert "needs flow on denoised frames" in capsys.readouterr().err
    assert main([*base, "-o", str(tmp_path / "out2"), "--offline", "--occlusion-test", "residual"]) == 0
    assert main([*base, "-o", str(tmp_path / "clean.mp4"), "--online", "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    (tmp_path / "online.resume.pt").write_bytes(b"left by a killed run")  # online runs into frames resume
    assert main([*base, "-o", str(tmp_path / "online"), "--online"]) == 2
    assert "interrupted online run" in capsys.readouterr().err


@pytest.mark.parametrize("suffix", [".tif", ".mp4"])
def test_online_run_into_a_video_or_stack_file_resumes_after_a_kill(tmp_path, sequence, monkeypatch, suffix,
                                                                   tiny_model, fail_at_call):
    """`video --online -o FILE` killed mid-video keeps the frames it restored (hidden .FILE.frames) and its
    state (saved after every frame here; every minute by default); `--resume` finishes the file: a stack
    equals the uninterrupted run's exactly, a video has every frame; the spool folder is gone afterwards."""
    import functools

    import tifffile

    from selfrestore.video_io import VideoReader, spool_folder

    _, noisy = sequence
    frames = tmp_path / "frames"
    for i, frame in enumerate(noisy[:5]):
        write_image(frames / f"f{i:03d}.png", frame)
    model = tiny_model
    base = ["video", str(frames), "--method", "f2f", "--model", str(model), "--steps-per-frame", "1",
            "--crop", "32", "--online", "--quiet"]
    import selfrestore.video as video

    monkeypatch.setattr(video, "VideoConfig", functools.partial(video.VideoConfig, checkpoint_seconds=0))
    reference, resumed = tmp_path / f"reference{suffix}", tmp_path / f"resumed{suffix}"
    assert main([*base, "-o", str(reference)]) == 0
    undo = fail_at_call(video.VideoFineTuner, "train_steps", 3, KeyboardInterrupt())  # frames 0-2 written
    assert main([*base, "-o", str(resumed)]) == 130
    undo()
    assert not resumed.exists() and len(list(spool_folder(resumed).iterdir())) == 3
    assert main([*base, "-o", str(resumed)]) == 2  # the state is there: a plain rerun is told to --resume
    assert main([*base, "-o", str(resumed), "--resume"]) == 0
    assert not spool_folder(resumed).exists() and not (tmp_path / f"resumed{suffix}.resume.pt").exists()
    if suffix == ".tif":
        assert np.array_equal(tifffile.imread(reference), tifffile.imread(resumed))
    else:
        assert len(VideoReader(str(resumed))) == 5


def test_a_tiff_time_series_is_a_video_and_comes_back_as_one(tmp_path, sequence):
    """Microscopy time-lapse: a float TIFF stack (T, H, W) of counts far outside [0, 1] is fine-tuned on and
    written back as a float TIFF of the same axes, shape and value range."""
    import tifffile

    _, noisy = sequence
    counts = (100 + 3000 * noisy[:4].mean(axis=3)).astype(np.float32)  # (T, H, W) gray counts
    src = tmp_path / "timelapse.tif"
    tifffile.imwrite(src, counts, photometric="minisblack", metadata={"axes": "TYX"})
    model = "unet-gauss25"  # a real denoiser: the output must stay near the input's values
    out = tmp_path / "restored.tif"
    assert main(["video", str(src), "-o", str(out), "--method", "f2f", "--model", str(model), "--offline",
                 "--passes", "1", "--steps-per-frame", "1", "--crop", "32", "--quiet"]) == 0
    with tifffile.TiffFile(out) as tif:
        assert tif.series[0].axes == "TYX" and tif.series[0].shape == counts.shape
        restored = tif.asarray()
    assert restored.dtype == np.float32 and abs(restored.mean() / counts.mean() - 1) < 0.1  # the data's own scale
    assert not (tmp_path / "restored.tif.resume.pt").exists()
    assert main(["video", str(src), "-o", str(tmp_path / "again.tif"), "--method", "f2f", "--model", str(model),
                 "--online", "--resume", "--quiet"]) == 2  # a single output file cannot be continued


# ------------------------------------------------------------------------- command-line input checks
def _frames(folder, names, height=32, width=48, channels=3):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for name in names:
        write_image(folder / name, rng.random((height, width, channels), dtype=np.float32))
    return folder


def _video(source, output, model, *extra):
    return main(["video", str(source), "-o", str(output), "--method", "f2f", "--model", str(model),
                 "--steps-per-frame", "1", "--crop", "16", "--quiet", *extra])


def test_video_command_never_writes_over_input_frames_and_asks_before_replacing_frames(tmp_path, tiny_model,
                                                                                       capsys):
    vid = _frames(tmp_path / "vid", [f"{i:03d}.png" for i in range(3)])
    before = {p.name: p.read_bytes() for p in vid.iterdir()}
    for source, output in ((vid / "%03d.png", vid / "%03d.png"), (vid, vid / "%03d.png"), (vid / "%03d.png", vid)):
        assert _video(source, output, tiny_model, "--overwrite") == 2
        assert "would write over the input" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in vid.iterdir()} == before
    other = _frames(tmp_path / "other", ["001.png"])  # frames elsewhere that the output pattern names
    old = (other / "001.png").read_bytes()
    assert _video(vid, other / "%03d.png", tiny_model) == 2
    assert "--overwrite" in capsys.readouterr().err and (other / "001.png").read_bytes() == old
    assert _video(vid, other / "%03d.png", tiny_model, "--overwrite") == 0
    assert sorted(p.name for p in other.iterdir()) == ["000.png", "001.png", "002.png"]


def test_video_command_overwrite_deletes_the_old_frames_beyond_the_new_video(tmp_path, tiny_model, capsys):
    out = _frames(tmp_path / "out", [f"{i:03d}.png" for i in range(6)] + ["poster.png"])
    vid = _frames(tmp_path / "vid", ["000.png", "001.png"])
    assert _video(vid, out, tiny_model, "--overwrite") == 0
    assert sorted(p.name for p in out.iterdir()) == ["000.png", "001.png", "poster.png"]
    with pytest.raises(SystemExit):
        main(["video", "--help"])
    assert "are deleted" in capsys.readouterr().out  # --help says what --overwrite deletes


def _interrupted(fail_at_call, monkeypatch, source, output, model, *extra) -> None:
    """A `video --online` run into ``output`` killed at its third fine-tuning step (frames 0-2 written, the
    state saved after each: every minute by default)."""
    import functools

    import selfrestore.video as video

    monkeypatch.setattr(video, "VideoConfig", functools.partial(video.VideoConfig, checkpoint_seconds=0))
    undo = fail_at_call(video.VideoFineTuner, "train_steps", 3, KeyboardInterrupt())
    assert _video(source, output, model, "--online", *extra) == 130
    undo()


def test_a_resumed_overwrite_run_still_deletes_the_older_videos_extra_frames(tmp_path, tiny_model, fail_at_call,
                                                                            monkeypatch):
    """The state records --overwrite: resuming as told (--resume alone) left the older video's frames 3-5."""
    out = _frames(tmp_path / "out", [f"{i:03d}.png" for i in range(7)] + ["poster.png"])
    vid = _frames(tmp_path / "vid", [f"{i:03d}.png" for i in range(5)])
    _interrupted(fail_at_call, monkeypatch, vid, out, tiny_model, "--overwrite")
    assert _video(vid, out, tiny_model, "--online", "--resume") == 0
    assert sorted(p.name for p in out.iterdir()) == [f"{i:03d}.png" for i in range(5)] + ["poster.png"]


def test_two_frame_patterns_in_one_folder_keep_their_own_resume_state(tmp_path, tiny_model, fail_at_call,
                                                                     monkeypatch):
    """Both kept their state in cam.resume.pt: the second was told to --resume a run it never made, and its
    --overwrite destroyed the first one's state."""
    vid = _frames(tmp_path / "vid", [f"{i:03d}.png" for i in range(5)])
    _interrupted(fail_at_call, monkeypatch, vid, tmp_path / "cam" / "left_%03d.png", tiny_model)
    assert (tmp_path / "cam" / "left_%03d.png.resume.pt").exists()
    assert _video(vid, tmp_path / "cam" / "right_%03d.png", tiny_model, "--online") == 0
    assert _video(vid, tmp_path / "cam" / "left_%03d.png", tiny_model, "--online", "--resume") == 0
    assert sorted(p.name for p in (tmp_path / "cam").iterdir()) == [f"{side}_{i:03d}.png" for side in
                                                                     ("left", "right") for i in range(5)]


@pytest.mark.parametrize("output", ["out", "out/f%03d.png"])
def test_a_resume_whose_earlier_frames_are_gone_is_refused(tmp_path, tiny_model, fail_at_call, capsys, output,
                                                           monkeypatch):
    """The frames of an interrupted run deleted, then --resume: it wrote the later frames alone, exit code 0."""
    vid = _frames(tmp_path / "vid", [f"{i:03d}.png" for i in range(5)])
    _interrupted(fail_at_call, monkeypatch, vid, tmp_path / output, tiny_model)
    written = sorted((tmp_path / "out").glob("*.png"))
    assert len(written) == 3
    kept = written[1].read_bytes()
    written[1].unlink()
    capsys.readouterr()
    assert _video(vid, tmp_path / output, tiny_model, "--online", "--resume") == 2
    err = capsys.readouterr().err
    assert "missing" in err and "--overwrite" in err and len(err.strip().splitlines()) == 1, err
    written[1].write_bytes(kept)  # the state was kept: with the frame back, the run continues
    assert _video(vid, tmp_path / output, tiny_model, "--online", "--resume") == 0
    assert len(list((tmp_path / "out").glob("*.png"))) == 5


def test_a_frame_pattern_in_the_input_folder_is_warned_about(tmp_path, tiny_model, capsys):
    """A later run on the folder takes the restored frames for frames of the video (burst warned, video not)."""
    vid = _frames(tmp_path / "vid", ["000.png", "001.png"])
    assert _video(vid, vid / "den_%03d.png", tiny_model) == 0
    assert "a later run on that folder" in capsys.readouterr().err
    assert _video(vid, tmp_path / "elsewhere", tiny_model) == 0
    assert "a later run" not in capsys.readouterr().err


@pytest.mark.parametrize("model", ["m2m-pg0.004_0.02", "laine19-gauss25"])
def test_video_command_refuses_start_models_that_are_not_plain_denoisers(tmp_path, model, capsys):
    from selfrestore.checkpoint import shipped_models

    if model not in shipped_models():
        pytest.skip(f"{model} not shipped")
    vid = _frames(tmp_path / "vid", ["000.png", "001.png"])
    assert _video(vid, tmp_path / "out", model) == 2
    err = capsys.readouterr().err
    assert "not a plain denoiser" in err and "unet-gauss25" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_video_command_checks_the_device_before_loading_anything(tmp_path, tiny_model, capsys):
    vid = _frames(tmp_path / "vid", ["000.png", "001.png"])
    for device in ("bogus", "cuda:99"):
        assert _video(vid, tmp_path / "out", tiny_model, "--device", device) == 2
        assert f"--device {device}" in capsys.readouterr().err
    assert _video(vid, tmp_path / "out", tiny_model, "--device", "auto") == 0


@pytest.mark.parametrize("size,depth", [((5, 7), 2), ((13, 20), 5)])
def test_video_command_refuses_frames_too_small_before_any_work(tmp_path, capsys, size, depth):
    model = tmp_path / "net.safetensors"
    save_checkpoint(model, build_net("unet", in_channels=3, out_channels=3, width=4, depth=depth),
                    {"method": {"name": "n2c", "noise": None}, "channels": 3})
    vid = _frames(tmp_path / "vid", ["000.png", "001.png", "002.png"], *size)
    assert _video(vid, tmp_path / "out", model) == 2
    assert "at least 32x32" in capsys.readouterr().err and not (tmp_path / "out").exists()


@pytest.mark.parametrize("option,value", [("--batch-size", "0"), ("--lr", "-1"), ("--lr", "nan"), ("--passes", "-1"),
                                          ("--steps-per-frame", "-2"), ("--crop", "0"), ("--seed", "-1")])
def test_video_command_refuses_impossible_numbers(tmp_path, tiny_model, capsys, option, value):
    vid = _frames(tmp_path / "vid", ["000.png", "001.png"])
    with pytest.raises(SystemExit) as exit_info:
        _video(vid, tmp_path / "out", tiny_model, option, value)
    assert exit_info.value.code == 2 and option in capsys.readouterr().err


def test_video_command_says_that_alpha_is_dropped(tmp_path, tiny_model, capsys):
    vid = _frames(tmp_path / "vid", ["000.png", "001.png"], channels=4)
    assert _video(vid, tmp_path / "out", tiny_model) == 0
    assert "alpha" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["text", "size"])
def test_video_command_with_a_bad_frame_mid_video_writes_nothing(tmp_path, tiny_model, capsys, bad):
    vid = _frames(tmp_path / "vid", [f"{i:03d}.png" for i in range(5)])
    if bad == "text":
        (vid / "003.png").write_text("not an image")
    else:
        _frames(vid, ["003.png"], 16, 48)
    assert _video(vid, tmp_path / "out", tiny_model, "--online") == 2
    assert "003.png" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_video_save_model_onto_a_folder_is_refused_before_any_work(tmp_path, tiny_model, capsys):
    vid = _frames(tmp_path / "vid", ["000.png", "001.png"])
    (tmp_path / "models").mkdir()
    assert _video(vid, tmp_path / "out", tiny_model, "--save-model", str(tmp_path / "models")) == 2
    assert "is a folder" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_offline_video_too_large_for_memory_is_refused_before_decoding(tmp_path, monkeypatch, capsys,
                                                                       tiny_model):
    """--offline holds every frame, its pre-denoised copy and its flows: a long video would be killed by the
    system half-way; it is refused in one line pointing at --online, which streams (and still runs)."""
    import selfrestore.memory_check as memory_check

    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        write_image(frames / f"{i:03d}.png", np.full((40, 40, 3), 0.5, np.float32))
    per_video = 3 * 40 * 40 * (2 * 3 + 6) * 4
    monkeypatch.setattr(memory_check, "physical_memory", lambda: per_video)  # the video needs all of it (> 80%)
    base = ["video", str(frames), "--method", "f2f", "--model", str(tiny_model), "--steps-per-frame", "1",
            "--crop", "32", "--quiet"]
    assert main([*base, "--offline", "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "--offline keeps all 3 frames" in err and "--online" in err, err
    assert not (tmp_path / "out").exists()
    assert main([*base, "--online", "-o", str(tmp_path / "out")]) == 0


def test_video_stack_too_large_for_memory_is_refused_before_reading(tmp_path, monkeypatch, capsys,
                                                                    tiny_model):
    """A TIFF time series is read whole: one larger than memory is refused in one line (it was read until
    the system killed the run), with the way out (a folder of frames is read one frame at a time)."""
    import tifffile

    import selfrestore.memory_check as memory_check

    tifffile.imwrite(tmp_path / "clip.tif", np.zeros((4, 40, 40), np.uint16), photometric="minisblack")
    monkeypatch.setattr(memory_check, "physical_memory", lambda: 10**4)
    assert main(["video", str(tmp_path / "clip.tif"), "--method", "f2f", "--model", str(tiny_model),
                 "-o", str(tmp_path / "out.tif"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "folder of images" in err and "GB of memory" in err, err


def test_a_pattern_resume_names_the_state_an_earlier_version_left(tmp_path, tiny_model, capsys):
    """Earlier versions kept a pattern's state beside its folder (cam.resume.pt): --resume said only "nothing
    to resume"; it names that file now. `-o .` (the current folder) was a traceback ('has an empty name')."""
    from pathlib import Path

    from selfrestore.commands.video import resume_path

    vid = _frames(tmp_path / "vid", ["000.png", "001.png"])
    (tmp_path / "cam").mkdir()
    (tmp_path / "cam.resume.pt").write_bytes(b"left by an earlier version")
    assert _video(vid, tmp_path / "cam" / "%03d.png", tiny_model, "--resume") == 2
    err = capsys.readouterr().err
    assert "nothing to resume" in err and "cam.resume.pt exists" in err and "earlier selfrestore" in err
    assert resume_path(".") == Path.cwd().with_name(Path.cwd().name + ".resume.pt")
    assert resume_path("..") == Path.cwd().parent.with_name(Path.cwd().parent.name + ".resume.pt")
    assert resume_path("/") == Path("/.resume.pt")
