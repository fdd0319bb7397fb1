"""DSA and mosaic-to-mosaic: shapes, the self-supervised losses never read clean data, the target frame is
left out of the self-supervised fusion, and a few training steps through the core driver reduce the loss."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from selfrestore.burst.sources import BurstFrames, RealBursts, SyntheticBursts
from selfrestore.burst.synthesis import BurstConfig, downsample
from selfrestore.checkpoint import build_net
from selfrestore.corruption.mosaic import mosaic
from selfrestore.registry import METHODS, NETS


def _images(n=2, size=96):
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n):
        base = torch.rand(1, 3, size // 8, size // 8, generator=g)
        img = F.interpolate(base, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)
        out.append(img[0].permute(1, 2, 0).numpy())
    return out


@pytest.fixture(scope="module")
def sr_source():
    return SyntheticBursts(_images(), BurstConfig(frames=4, scale=2, blur_sigma=0.5), seed=0)


@pytest.fixture(scope="module")
def raw_source():
    return SyntheticBursts(_images(), BurstConfig(frames=3, mosaic=True), seed=0)


def test_registered_names():
    for name in ("dsa", "dsa_supervised", "m2m", "m2m_supervised"):
        assert name in METHODS.names()
    assert "dsa" in NETS.names() and "demosaic" in NETS.names()


def test_sources_batch_shapes_and_crop_consistency(sr_source, raw_source):
    batch = sr_source.batch(np.random.default_rng(0), 3, 24)
    assert batch["frames"].shape == (3, 4, 3, 24, 24) and batch["clean"].shape == (3, 3, 48, 48)
    assert batch["affines"].shape == (3, 4, 2, 3)
    raw = raw_source.batch(np.random.default_rng(1), 2, 30)  # rounded down to a multiple of 4
    assert raw["frames"].shape == (2, 3, 1, 28, 28) and raw["clean"].shape == (2, 3, 28, 28)
    assert sr_source.kind == raw_source.kind == "burst"
    # without noise the reference frame is exactly its clean crop: mosaicked with the RGGB phase kept (a crop at
    # an odd offset would put green where red is), and downsampled from the same area for super-resolution
    exact_raw = SyntheticBursts(_images(), BurstConfig(frames=3, mosaic=True, noise=None), seed=0)
    raw = exact_raw.batch(np.random.default_rng(1), 2, 30)
    assert torch.allclose(raw["frames"][:, 0], mosaic(raw["clean"]), atol=1e-5)
    exact_sr = SyntheticBursts(_images(), BurstConfig(frames=4, scale=2, blur_sigma=0.5, noise=None), seed=0)
    sr = exact_sr.batch(np.random.default_rng(0), 3, 24)
    assert torch.allclose(downsample(sr["clean"], 2, 0.5)[..., 3:-3, 3:-3], sr["frames"][:, 0, :, 3:-3, 3:-3],
                          atol=1e-5)


@pytest.mark.parametrize("name", ["dsa", "m2m"])
def test_self_supervised_losses_do_not_read_clean(name, sr_source, raw_source):
    source = sr_source if name == "dsa" else raw_source
    method = METHODS.get(name)()
    net = build_net(method.default_net, **method.net_kwargs(source.channels))
    batch = source.batch(np.random.default_rng(0), 2, 24)
    batch.pop("clean")
    loss = method.loss(net, batch)
    loss.backward()
    assert torch.isfinite(loss) and loss > 0


def test_dsa_self_supervised_estimate_ignores_the_target_frame(sr_source):
    """The estimate used in the self-supervised loss must not depend on the target frame's pixels (otherwise
    the network could copy the noisy target), and must depend on every input frame, the reference included."""
    method = METHODS.get("dsa")()
    net = build_net("dsa", **method.net_kwargs(3))
    batch = sr_source.batch(np.random.default_rng(0), 3, 24)
    frames = batch["frames"].clone().requires_grad_(True)
    torch.manual_seed(0)
    order, inputs = method.roles(3, frames.shape[1])
    views = method.split({**batch, "frames": frames}, order, inputs)
    flows = net.motion(views["inputs"], views["input_affines"])
    net.fuse(views["inputs"], flows.detach()).sum().backward()
    for i in range(3):
        assert frames.grad[i, order[i, -1]].abs().max() == 0
        for t in order[i, :-1]:
            assert frames.grad[i, t].abs().max() > 0
    assert torch.equal(views["targets"][1, 0], batch["frames"][1, order[1, -1]])


def test_dsa_accepts_any_number_of_frames(sr_source):
    method = METHODS.get("dsa")()
    net = build_net("dsa", **method.net_kwargs(3)).eval()
    batch = sr_source.batch(np.random.default_rng(0), 1, 24)
    for t in (1, 2, 4):
        out = method.restore(net, batch["frames"][:, :t], affines=batch["affines"][:, :t])
        assert out.shape == (1, 3, 48, 48)


@pytest.mark.parametrize("name", ["dsa", "m2m"])
def test_training_through_core_driver_reduces_loss(name, sr_source, raw_source, tmp_path):
    from selfrestore.train import TrainConfig, train

    source = sr_source if name == "dsa" else raw_source
    method = METHODS.get(name)()
    torch.manual_seed(0)
    net = build_net(method.default_net, **method.net_kwargs(source.channels))
    fixed = source.batch(np.random.default_rng(123), 4, 32)

    def fixed_loss() -> float:  # the loss draws frame roles from torch's RNG: the same draw before and after
        with torch.no_grad(), torch.random.fork_rng():
            torch.manual_seed(1)
            return float(method.loss(net, fixed))

    before = fixed_loss()
    train(method, net, source, TrainConfig(steps=25, batch_size=4, patch_size=32, lr=2e-3, amp=False,
                                           progress=False, plot=False), tmp_path / "m.safetensors")
    after = fixed_loss()
    assert after < before
    from selfrestore.checkpoint import load_model

    loaded_method, loaded_net, _ = load_model(tmp_path / "m.safetensors")
    assert loaded_method.name == name


def test_burst_frames_source_needs_two_frames():
    from selfrestore.errors import UserError

    with pytest.raises(UserError):
        BurstFrames(torch.rand(1, 3, 32, 32))


def test_real_bursts_of_different_lengths_use_every_frame():
    """Batches stack the shortest burst's frame count; a longer burst gives its reference (frame 0) first and
    a random subset of its other frames, so its extra frames are trained on too (they were cut off)."""
    rows, cols = torch.meshgrid(torch.arange(40), torch.arange(40), indexing="ij")
    checker = 0.5 + 0.1 * ((rows + cols) % 2 * 2 - 1).float()  # mean 0.5 on any even-sided crop

    def burst(t):  # frame k = checker + k / 100: recognisable by its mean
        return torch.stack([(checker + k / 100)[None] for k in range(t)])

    source = RealBursts([burst(3), burst(6)], registration="translation")
    assert source.frames == 3
    rng, seen = np.random.default_rng(0), set()
    for _ in range(40):
        batch = source.batch(rng, 2, 32)
        assert batch["frames"].shape == (2, 3, 1, 32, 32) and batch["affines"].shape[:2] == (2, 3)
        index = ((batch["frames"].mean(dim=(2, 3, 4)) - 0.5) * 100).round().long()
        assert (index[:, 0] == 0).all() and (index[:, 1:] > 0).all()
        seen.update(index.flatten().tolist())
    assert seen == set(range(6))


def test_dsa_decoder_is_shift_equivariant_on_the_high_resolution_grid():
    """The self-supervised loss only sees block averages; the decoder must apply one rule at every sub-pixel
    phase, i.e. commute with one-pixel shifts of the high-resolution grid (away from the borders)."""
    net = build_net("dsa", **METHODS.get("dsa")().net_kwargs(3)).eval()
    x = torch.rand(1, 3 + 32 + 1, 48, 48)
    with torch.no_grad():
        out, shifted = net.decoder(x), net.decoder(torch.roll(x, shifts=(1, 1), dims=(-2, -1)))
    r = net.decoder.receptive_field
    assert torch.allclose(torch.roll(out, shifts=(1, 1), dims=(-2, -1))[..., r:-r, r:-r], shifted[..., r:-r, r:-r],
                          atol=1e-5)


def test_dsa_roles_draw_distinct_reference_inputs_and_target(sr_source):
    method = METHODS.get("dsa")(min_frames=3)
    batch = sr_source.batch(np.random.default_rng(0), 4, 24)
    counts, references, targets = set(), set(), set()
    for seed in range(12):
        torch.manual_seed(seed)
        order, inputs = method.roles(4, 4)
        counts.add(order.shape[1])
        assert 3 <= order.shape[1] <= 4 and inputs == order.shape[1] - 1
        assert all(len(set(row.tolist())) == order.shape[1] for row in order)
        references.update(order[:, 0].tolist())
        targets.update(order[:, -1].tolist())
        views = method.split(batch, order, inputs)
        eye = torch.tensor([[1.0, 0, 0], [0, 1, 0]])
        assert torch.allclose(views["input_affines"][:, 0], eye.expand(4, -1, -1), atol=1e-5)
        assert views["inputs"].shape[1] == inputs and views["targets"].shape[1] == 1
    assert len(counts) > 1 and references == targets == {0, 1, 2, 3}
    order, inputs = METHODS.get("dsa")().roles(2, 4)
    assert order.shape == (2, 4) and inputs == 3
    # with several targets, every frame left out of the fusion is a target
    order, inputs = METHODS.get("dsa")(min_frames=3, targets=4).roles(2, 4)
    assert order.shape == (2, 4) and inputs in (2, 3)


def test_dsa_supervised_random_frames_keeps_the_reference(sr_source):
    method = METHODS.get("dsa_supervised")(min_frames=2)
    batch = sr_source.batch(np.random.default_rng(0), 2, 24)
    counts = set()
    for seed in range(12):
        torch.manual_seed(seed)
        kept = method.random_frames(batch)
        t = kept["frames"].shape[1]
        counts.add(t)
        assert 2 <= t <= 4 and kept["affines"].shape[1] == t
        assert torch.equal(kept["frames"][:, 0], batch["frames"][:, 0])
        assert torch.equal(kept["affines"][:, 0], batch["affines"][:, 0])
    assert len(counts) > 1
    assert METHODS.get("dsa_supervised")().random_frames(batch) is batch
