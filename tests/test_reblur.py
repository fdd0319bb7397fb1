"""The reblurring module, the deblur_l1 / reblur methods and self-supervised test-time adaptation."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from scipy import ndimage
from torch import nn

from selfrestore.adapt_deblur import AdaptConfig, adapt_deblur
from selfrestore.corruption.blur import blur, gaussian_kernel
from selfrestore.errors import UserError
from selfrestore.nets.reblur import ReblurNet
from selfrestore.registry import METHODS, NETS

torch.manual_seed(0)


def _images(n: int = 2, size: int = 48, seed: int = 0) -> torch.Tensor:
    """Piecewise-smooth synthetic images with edges (blur is visible on them)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        img = np.zeros((size, size, 3), np.float32)
        for _ in range(6):
            y, x = rng.integers(0, size, 2)
            h, w = rng.integers(6, size // 2, 2)
            img[y:y + h, x:x + w] = rng.random(3)
        img = ndimage.gaussian_filter(img, (0.5, 0.5, 0))
        out.append(img.transpose(2, 0, 1))
    return torch.from_numpy(np.stack(out)).float()


def _gauss(sigma: float, size: int = 9) -> torch.Tensor:
    return torch.from_numpy(gaussian_kernel(size, sigma))


class _Filter(nn.Module):
    """A one-layer 'deblurring network': a learnable 7x7 convolution per channel, started at a kernel."""

    size_multiple = 1

    def __init__(self, kernel: np.ndarray):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 7, padding=3, padding_mode="reflect", groups=3, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.from_numpy(kernel).float().expand(3, 1, 7, 7))

    def forward(self, x):
        return self.conv(x)


def _sharpening_kernel(amount: float) -> np.ndarray:
    delta = np.zeros((7, 7), np.float32)
    delta[3, 3] = 1
    return delta + amount * (delta - gaussian_kernel(7, 1.0))


def _high_freq(x: torch.Tensor) -> float:
    return float((x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean())


# ------------------------------------------------------------------------------------------ M_R
@pytest.mark.parametrize("blocks", [1, 2])
def test_reblur_net_shape_registry_and_receptive_field(blocks):
    net = NETS.get("reblur_resnet")(3, blocks=blocks, features=8)
    x = torch.rand(1, 3, 41, 41, requires_grad=True)
    y = net(x)
    assert y.shape == x.shape
    y[0, :, 20, 20].sum().backward()
    reach = x.grad[0].abs().sum(0).nonzero()
    radius = int((reach - 20).abs().max())
    assert radius == net.receptive_field == 2 * (2 + 2 * blocks)


def test_reblur_net_rejects_bad_sizes():
    with pytest.raises(ValueError):
        ReblurNet(3, blocks=0)
    with pytest.raises(ValueError):
        METHODS.get("reblur")(reblur_blocks=3)
    with pytest.raises(ValueError):
        METHODS.get("reblur")(reblur_sharp_input="other")


def test_trained_reblur_module_amplifies_blur_but_leaves_sharp_images_alone():
    """The paper's premise: trained with L_blur + L_sharp, M_R adds blur to a partly deblurred image and
    (almost) nothing to a sharp one."""
    torch.manual_seed(0)
    sharp = _images(8, 40)
    blurry = blur(sharp, _gauss(2.0))
    partly = blur(sharp, _gauss(0.9))       # what an imperfect deblurring network would return
    net = ReblurNet(3, features=16)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    for _ in range(200):
        loss = (net(partly) - blurry).abs().mean() + (net(sharp) - sharp).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        change_partly = (net(partly) - partly).abs().mean()
        change_sharp = (net(sharp) - sharp).abs().mean()
    assert change_partly > 2.5 * change_sharp
    assert _high_freq(net(partly).detach()) < _high_freq(partly)  # it blurs


# ------------------------------------------------------------------------------------------ methods
def _batch() -> dict[str, torch.Tensor]:
    sharp = _images(2, 32)
    return {"blurry": blur(sharp, _gauss(1.5)), "clean": sharp}


def test_deblur_l1_is_the_supervised_l1_loss():
    method = METHODS.get("deblur_l1")()
    assert method.batch_kind == "blurry" and method.needs_clean
    batch = _batch()
    identity = nn.Identity()
    expected = (batch["blurry"] - batch["clean"]).abs().mean()
    torch.testing.assert_close(method.loss(identity, batch), expected)
    assert method.extra_modules() == {}


@pytest.mark.parametrize("sharp_input", ["sharp", "deblurred"])
def test_reblur_loss_gradients_stay_with_their_player(sharp_input):
    """One backward pass of ``loss`` must give M_D exactly the gradient of L1 + w * reblurring loss (M_R
    fixed), and M_R exactly the gradient of L_blur + L_sharp (M_D fixed)."""
    method = METHODS.get("reblur")(reblur_weight=0.7, reblur_features=8, reblur_sharp_input=sharp_input)
    method.net_kwargs(3)
    reblur = method.extra_modules()["reblur"]
    deblur = _Filter(_sharpening_kernel(0.5))
    batch = _batch()

    def grads(module, loss):
        g = torch.autograd.grad(loss, list(module.parameters()), allow_unused=True)
        return [torch.zeros_like(p) if x is None else x for p, x in zip(module.parameters(), g)]

    t = method.terms(deblur, batch)
    g_d_expected = grads(deblur, t["l1"] + 0.7 * t["reblur"])
    t = method.terms(deblur, batch)
    g_r_expected = grads(reblur, t["blur"] + t["sharp"])
    total = method.loss(deblur, batch)
    g_d, g_r = grads(deblur, total), None
    total = method.loss(deblur, batch)
    g_r = grads(reblur, total)
    for a, b in zip(g_d + g_r, g_d_expected + g_r_expected):
        torch.testing.assert_close(a, b)
    assert any(g.abs().sum() > 0 for g in g_d) and any(g.abs().sum() > 0 for g in g_r)
    # M_R's term must not depend on M_D and vice versa
    t = method.terms(deblur, batch)
    assert all(g.abs().sum() == 0 for g in grads(deblur, t["blur"] + t["sharp"]))
    t = method.terms(deblur, batch)
    assert all(g.abs().sum() == 0 for g in grads(reblur, t["l1"] + t["reblur"]))


def test_reblurring_loss_is_zero_for_a_perfect_deblurring():
    method = METHODS.get("reblur")(reblur_features=8)
    batch = _batch()

    class Oracle(nn.Module):
        def forward(self, x):
            return batch["clean"] if x is batch["blurry"] else x

    t = method.terms(Oracle(), batch)
    assert float(t["l1"]) == 0 and float(t["reblur"]) == 0
    assert float(method.terms(nn.Identity(), batch)["reblur"]) > 0


def test_reblur_trains_with_the_driver_and_its_module_survives_the_checkpoint(tmp_path):
    from selfrestore.checkpoint import build_net, load_model
    from selfrestore.corruption import parse_corruption
    from selfrestore.data.blur_pairs import SyntheticBlurPairs
    from selfrestore.train import TrainConfig, train

    method = METHODS.get("reblur")(noise=parse_corruption("blur9"), reblur_features=8)
    net = build_net("unet", **method.net_kwargs(3), width=8, depth=2)
    source = SyntheticBlurPairs([_images(1, 40)[0].numpy().transpose(1, 2, 0)], parse_corruption("blur9"))
    before = copy.deepcopy(method.extra_modules()["reblur"].state_dict())
    config = TrainConfig(steps=3, batch_size=2, patch_size=16, progress=False, plot=False, amp=False)
    train(method, net, source, config, tmp_path / "m.safetensors")
    trained = method.extra_modules()["reblur"].state_dict()
    assert any(not torch.equal(before[k], trained[k]) for k in before)  # M_R was optimised
    loaded, net2, header = load_model(tmp_path / "m.safetensors")
    assert loaded.name == "reblur" and loaded.noise.name == "blur9"
    for k, v in loaded.extra_modules()["reblur"].state_dict().items():
        torch.testing.assert_close(v, trained[k].cpu())


# ------------------------------------------------------------------------------------------ adaptation
def test_adaptation_moves_the_deblurred_image_against_the_blur_m_r_finds():
    """After the warm-up M_R has learned the blur; an M_D step (M_R fixed) lowers ||M_R(L) - sg(L)||:
    the gradient goes through M_R into M_D, not into the stop-gradient target, and pushes L away from
    its reblurred version (a sharpening step)."""
    torch.manual_seed(0)
    sharp = _images(4, 48, seed=3)
    blurry = blur(sharp, _gauss(1.5, 7))
    deblur = _Filter(_sharpening_kernel(0.4))
    reblur = ReblurNet(3, features=16)
    history = adapt_deblur(deblur, reblur, list(blurry), AdaptConfig(steps=0, warmup=40, lr_reblur=2e-3,
                                                                     patch_size=32))
    assert len(history["reblur"]) == 40 and history["self"] == []
    assert np.mean(history["reblur"][-5:]) < np.mean(history["reblur"][:5])  # M_R learns the blur

    image = blurry[:1]
    with torch.no_grad():
        start = deblur(image)
        before = float((reblur(start) - start).abs().mean())
    fixed = copy.deepcopy(reblur.state_dict())
    history = adapt_deblur(deblur, reblur, [image], AdaptConfig(steps=1, lr_deblur=1e-4, lr_reblur=0.0,
                                                                 patch_size=None))
    assert history["self"] == [pytest.approx(before, rel=1e-4)]
    for k, v in reblur.state_dict().items():
        torch.testing.assert_close(v, fixed[k])
    with torch.no_grad():
        moved = deblur(image)
        after = float((reblur(moved) - start).abs().mean())  # the objective with its stop-gradient target
        change = moved - start
        residual = start - reblur(start)  # the blur M_R still finds: M_D must move against it
    assert after < before
    assert float((change * torch.sign(residual)).sum()) > 0


def test_method_adapt_uses_a_copy_of_the_trained_reblur_module():
    method = METHODS.get("reblur")(reblur_features=8)
    method.net_kwargs(3)
    trained = copy.deepcopy(method.extra_modules()["reblur"].state_dict())
    deblur = _Filter(_sharpening_kernel(0.3))
    start = copy.deepcopy(deblur.state_dict())
    history = method.adapt(deblur, [blur(_images(1, 32), _gauss(1.0))[0]], steps=3, patch_size=16, batch_size=2)
    assert len(history["self"]) == 3 and len(history["reblur"]) == 3  # trained M_R: no warm-up
    assert not torch.equal(start["conv.weight"], deblur.state_dict()["conv.weight"])
    for k, v in method.extra_modules()["reblur"].state_dict().items():
        torch.testing.assert_close(v, trained[k])
    baseline = METHODS.get("deblur_l1")()
    as_array = blur(_images(1, 32), _gauss(1.0))[0].numpy().transpose(1, 2, 0)  # what restore --adapt passes
    history = baseline.adapt(deblur, [as_array], steps=2, warmup=4,
                             patch_size=16, batch_size=1)
    assert len(history["reblur"]) == 6 and len(history["self"]) == 2


def test_fit_reblur_from_the_command_line_then_restore_with_adaptation(tmp_path, capsys):
    """`fit --method reblur` gets its data from --synthetic sharp images (kernels from a file) or --pairs;
    the model then restores with `restore --adapt`, and a missing data source is a one-line error."""
    from selfrestore.cli import main
    from selfrestore.io import write_image

    rng = np.random.default_rng(0)
    sharp = tmp_path / "sharp"
    for i in range(2):
        write_image(sharp / f"s{i}.png", rng.random((40, 40, 3)).astype(np.float32))
    kernel = np.zeros((5, 5), np.float32)
    kernel[2, :] = 1
    np.save(tmp_path / "k.npy", kernel[None])
    model = tmp_path / "rb.safetensors"
    common = ["--method", "reblur", "--steps", "2", "--batch-size", "2", "--patch-size", "32", "--width", "4",
              "--depth", "2", "--quiet", "--no-amp"]
    assert main(["fit", str(sharp), "--synthetic", "--kernels", str(tmp_path / "k.npy"), "-o", str(model),
                 *common]) == 0
    assert model.exists()
    out = tmp_path / "out"
    assert main(["restore", str(sharp / "s0.png"), "--model", str(model), "-o", str(out), "--adapt", "1"]) == 0
    assert (out / "s0.png").exists()
    assert main(["fit", str(sharp), "-o", str(tmp_path / "x.safetensors"), *common]) != 0
    assert main(["fit", str(sharp), "--synthetic", "--noise", "gauss25", "-o", str(tmp_path / "y.safetensors"),
                 *common]) != 0
    err = capsys.readouterr().err
    assert "--pairs BLURRY_DIR SHARP_DIR" in err and "needs a blur model" in err and "Traceback" not in err
    # a method option out of range is a one-line error too
    assert main(["fit", str(sharp), "--synthetic", "--kernels", str(tmp_path / "k.npy"), "-o",
                 str(tmp_path / "z.safetensors"), "--reblur-lr-scale", "0", *common]) != 0
    assert "reblur_lr_scale must be > 0" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ M_D and training blur
def test_residual_unet_starts_as_the_identity_and_learns():
    net = NETS.get("unet_residual")(3, 3, width=8, depth=2)
    x = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(net(x), x)
    assert net.size_multiple == 4 and net.receptive_field > 0
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    target = blur(x, _gauss(1.0, 5))
    for _ in range(3):
        loss = (net(x) - target).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert not torch.equal(net(x), x)


def test_scale_kernel_keeps_mass_and_shrinks_the_spread():
    from selfrestore.corruption.blur import kernel_moments, scale_kernel

    k = np.zeros((21, 21), np.float32)
    k[10, 2:19] = 1  # a horizontal line of 17 px: major std sqrt((17^2 - 1) / 12)
    major, minor = kernel_moments(k)
    assert major == pytest.approx(np.sqrt((17**2 - 1) / 12), rel=1e-6) and minor == pytest.approx(0, abs=1e-6)
    half = scale_kernel(k, 0.5)
    assert half.shape[0] % 2 == 1 and half.sum() == pytest.approx(1, abs=1e-5)
    assert 0.4 * major < kernel_moments(half)[0] < 0.65 * major


def test_motion_blur_mixes_file_kernels_and_trajectories():
    from selfrestore.corruption.blur import CameraShake, kernel_moments, pad_kernel
    from selfrestore.data.blur_pairs import SyntheticBlurPairs

    line = np.zeros((7, 7), np.float32)
    line[3] = 1
    model = CameraShake([line], kernel_size=15, length=(6, 12), file_fraction=0.5)
    rng = np.random.default_rng(0)
    draws = [model.draw_kernel(rng) for _ in range(60)]
    assert all(k.shape == (15, 15) and k.sum() == pytest.approx(1, abs=1e-5) for k in draws)
    from_file = sum(np.allclose(k, pad_kernel(line, 15)) for k in draws)
    assert 10 < from_file < 50
    lengths = [kernel_moments(k)[0] for k in draws if not np.allclose(k, pad_kernel(line, 15))]
    assert max(lengths) < 12 / np.sqrt(12) + 0.5  # no trajectory spreads more than a 12 px straight line
    with pytest.raises(ValueError):
        CameraShake(None, file_fraction=0.5)
    source = SyntheticBlurPairs([_images(1, 40)[0].numpy().transpose(1, 2, 0)], model)
    batch = source.batch(np.random.default_rng(1), 2, 16)
    assert batch["blurry"].shape == batch["clean"].shape == (2, 3, 16, 16)


def test_reblur_module_learns_at_its_own_learning_rate_and_resumes(tmp_path):
    """``reblur_lr_scale`` puts M_R in its own Adam group at a multiple of M_D's rate; a resumed run gives
    the uninterrupted weights of both networks."""
    from selfrestore.checkpoint import build_net, read_checkpoint
    from selfrestore.corruption import parse_corruption
    from selfrestore.data.blur_pairs import SyntheticBlurPairs
    from selfrestore.train import TrainConfig, train

    def run(steps, out, resume=False, stop_at=None):
        method = METHODS.get("reblur")(noise=parse_corruption("blur9"), reblur_features=8, reblur_lr_scale=10)
        torch.manual_seed(0)
        net = build_net("unet", **method.net_kwargs(3), width=8, depth=2)
        method.extra_modules(3)
        source = SyntheticBlurPairs([_images(1, 40)[0].numpy().transpose(1, 2, 0)], parse_corruption("blur9"))
        config = TrainConfig(steps=steps, batch_size=2, patch_size=16, progress=False, plot=False, amp=False,
                             lr=1e-3, warmup=0, resume=resume, ckpt_every=100)

        def interrupt(step, _loss):  # Ctrl-C right after an update
            if step == stop_at:
                raise KeyboardInterrupt

        train(method, net, source, config, out, on_step=interrupt)
        return read_checkpoint(out)

    tensors, header = run(3, tmp_path / "a.safetensors")
    groups = header["optimizer"]["param_groups"]
    assert [g["lr_scale"] for g in groups] == [1.0, 10.0]
    assert groups[1]["lr"] == pytest.approx(10 * groups[0]["lr"])
    with pytest.raises(UserError):
        run(3, tmp_path / "b.safetensors", stop_at=1)
    assert read_checkpoint(tmp_path / "b.safetensors")[1]["step"] == 2
    resumed, _ = run(3, tmp_path / "b.safetensors", resume=True)
    for k, v in tensors.items():
        if k.startswith(("net.", "extra.")):
            torch.testing.assert_close(resumed[k], v)
