"""The label-free check that a trained network restores a region the same alone and inside a larger input."""
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from selfrestore.checkpoint import read_checkpoint, update_header
from selfrestore.cli import main
from selfrestore.data.images import NoisyImages
from selfrestore.io import write_image
from selfrestore.size_check import DRIFT_LIMIT, check_training_result, recorded_warning, size_drift


class BoxBlur(nn.Module):
    """A local denoiser (box filter, zero padding): interior pixels never see an input border, unless the
    box reaches past the check's margin."""

    def __init__(self, width: int):
        super().__init__()
        self.width = width
        self.receptive_field = width // 2
        self.scale = nn.Parameter(torch.ones(()))  # the check needs a parameter to find the device

    def forward(self, x):
        return self.scale * F.avg_pool2d(x, self.width, stride=1, padding=self.width // 2, count_include_pad=True)


class Direct:
    """A method whose restoration is the network's output."""

    def restore(self, net, x):
        return net(x)


def _noisy(n=2, size=128, seed=0):
    g = torch.Generator().manual_seed(seed)
    smooth = F.interpolate(torch.rand(n, 3, size // 16, size // 16, generator=g), size=(size, size),
                           mode="bilinear", align_corners=False)
    return smooth + 0.1 * torch.randn(n, 3, size, size, generator=g)


def test_a_local_network_passes_and_one_that_reaches_the_borders_fails():
    noisy = _noisy()
    local = size_drift(Direct(), BoxBlur(5), noisy, side=64)
    # a 65 px box with zero padding darkens every pixel of a 64 px region given alone: a network that
    # learned its output from where the borders are behaves like this on whole images
    wide = size_drift(Direct(), BoxBlur(65), noisy, side=64)
    assert local < 1e-6 and wide > 10 * DRIFT_LIMIT


def test_the_check_restores_the_networks_mode_and_skips_where_it_does_not_apply():
    net = BoxBlur(65).train()
    source = NoisyImages([n.permute(1, 2, 0).numpy() for n in _noisy()])
    drift = check_training_result(Direct(), net, source, side=64)
    assert drift is not None and drift > DRIFT_LIMIT and net.training
    assert check_training_result(Direct(), BoxBlur(5), source, side=64) is None  # sees no border from inside
    assert check_training_result(Direct(), net, source, side=32) is None  # no interior left inside the margin


def test_fit_records_the_check_and_restore_warns_about_a_failed_one(tmp_path, capsys):
    rng = np.random.default_rng(0)
    data = tmp_path / "noisy"
    for name in ("a", "b"):
        low = rng.random((8, 8, 3)).astype(np.float32)
        write_image(data / f"{name}.png", np.clip(np.kron(low, np.ones((16, 16, 1), np.float32))
                                                  + 0.1 * rng.standard_normal((128, 128, 3)), 0, 1))
    model = tmp_path / "m.safetensors"
    assert main(["fit", str(data), "--method", "n2v", "--width", "4", "--depth", "2", "--patch-size", "64",
                 "--batch-size", "2", "--steps", "2", "--no-amp", "-o", str(model)]) == 0
    assert "size check passed" in capsys.readouterr().out
    check = read_checkpoint(model)[1]["size_check"]
    assert check["side"] == 64 and 0 <= check["drift"] < DRIFT_LIMIT and recorded_warning({"size_check": check}) is None
    # test-time training on the inputs runs the same check on what it adapted (a short, sound run: silent)
    assert main(["restore", str(data / "a.png"), "--model", str(model), "-o", str(tmp_path / "adapted"),
                 "--adapt", "2"]) == 0
    assert "size of its input" not in capsys.readouterr().err and (tmp_path / "adapted" / "a.png").exists()
    update_header(model, size_check={**check, "drift": 0.5})  # as if training had ended border-reliant
    assert main(["restore", str(data / "a.png"), "--model", str(model), "-o", str(tmp_path / "out")]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "depends on the size of its input" in err and "Traceback" not in err
    assert (tmp_path / "out" / "a.png").exists()
    assert "trained on 64 px patches" in err and "--patch-sizes auto" in err


def test_the_size_warning_names_the_mixed_patch_sizes_a_network_trained_on(tmp_path, capsys, monkeypatch):
    """A blind-spot net trains on mixed patch sides by default (--patch-sizes auto), yet the warning said
    "trained on 64 px patches" and advised fine-tuning on mixed sizes: what it had just done."""
    import selfrestore.size_check as size_check

    rng = np.random.default_rng(0)
    data = tmp_path / "noisy"
    for name in ("a", "b"):
        write_image(data / f"{name}.png", rng.random((96, 96)).astype(np.float32))
    model = tmp_path / "m.safetensors"
    monkeypatch.setattr(size_check, "check_training_result", lambda *args, **kwargs: 0.5)  # a failed check
    assert main(["fit", str(data), "--method", "laine19", "--noise", "gauss25", "--width", "4", "--depth", "2",
                 "--patch-size", "32", "--batch-size", "2", "--steps", "1", "--no-amp", "--quiet",
                 "-o", str(model)]) == 0
    header = read_checkpoint(model)[1]
    sides = header["train_config"]["patch_sizes"]
    assert len(sides) > 1 and min(sides) == 32
    said = [" ".join(capsys.readouterr().err.split()), recorded_warning(header)]  # fit's and restore's
    for err in said:
        assert f"trained on {'/'.join(map(str, sides))} px patches" in err and "another --seed" in err
        assert "--patch-sizes auto" not in err


def test_small_training_images_are_checked_on_a_region_that_fits_or_skipped(tmp_path, capsys):
    """Images smaller than two patches: the check was run on patches mostly made of mirrored padding and
    recorded "passed" for the patch size; now it uses the largest region a real image holds (a multiple of the
    network's input size multiple: 32 for a depth-5 net, which a first version fed 48 px and crashed), or
    records that it was skipped (a rerun with --resume then does not take the check for pending)."""
    from selfrestore.size_check import fitting_side

    rng = np.random.default_rng(0)
    data = tmp_path / "noisy"
    for name, size in (("a", 112), ("b", 64)):
        write_image(data / f"{name}.png", rng.random((size, size + 8, 3)).astype(np.float32))
    source = NoisyImages([rng.random((112, 120, 3)).astype(np.float32), rng.random((64, 72, 3)).astype(np.float32)])
    assert fitting_side(source, 64, 16) == 48 and fitting_side(source, 32, 16) == 32
    assert fitting_side(source, 128, 16) == 48 and fitting_side(source, 64, 32) == 32
    model = tmp_path / "m.safetensors"
    args = ["fit", str(data), "--method", "n2v", "--width", "4", "--depth", "2", "--batch-size", "2",
            "--steps", "2", "--no-amp"]
    assert main([*args, "--patch-size", "64", "-o", str(model)]) == 0
    assert "size check passed: a 56 px crop" in capsys.readouterr().out  # depth 2: multiples of 4
    check = read_checkpoint(model)[1]["size_check"]
    assert check["side"] == 56 and check["trained_side"] == 64
    assert "trained on 64 px patches" in recorded_warning({"size_check": {**check, "drift": 0.5}})
    # a depth-5 blind-spot net takes multiples of 32: the 112 px image holds no 2 x 64 px patch of real pixels
    deep = tmp_path / "deep.safetensors"
    deep_args = ["fit", str(data), "--method", "laine19", "--noise", "gauss25", "--width", "4", "--batch-size", "2",
                 "--steps", "1", "--no-amp", "--patch-size", "64", "-o", str(deep)]
    assert main(deep_args) == 0
    out = capsys.readouterr().out
    assert "size check skipped: no training image holds a 128 px patch (the smallest the check can use" in out
    assert "skipped" in read_checkpoint(deep)[1]["size_check"]
    assert main([*deep_args, "--resume"]) == 0
    assert "before its size check" not in capsys.readouterr().err  # finished: nothing pending
    assert main(["models", str(deep)]) == 0
    assert "size check skipped: no training image" in capsys.readouterr().out
    small = tmp_path / "small"
    write_image(small / "c.png", rng.random((60, 60, 3)).astype(np.float32))
    assert main([*args[:1], str(small), *args[2:], "--patch-size", "64", "-o", str(tmp_path / "s.safetensors")]) == 0
    assert "size check skipped: no training image holds a 128 px patch" in capsys.readouterr().out
