"""`restore` with a model trained for one Gaussian level says so when an image's noise is far from it (a gauss25
model on sigma-5 photos smooths away their detail), once per run, and not when the level fits or was given."""
import numpy as np
import torch
from PIL import Image

from selfrestore.checkpoint import build_net, save_checkpoint
from selfrestore.cli import main


def _noisy(path, sigma, seed=0):
    clean = 60 + 120 * np.mgrid[0:64, 0:64][1][:, :, None] / 63 * np.ones(3)
    noisy = clean + sigma * np.random.default_rng(seed).standard_normal(clean.shape)
    Image.fromarray(np.clip(np.round(noisy), 0, 255).astype(np.uint8)).save(path)
    return path


def _model(path, noise):
    torch.manual_seed(0)
    save_checkpoint(path, build_net("unet", in_channels=3, out_channels=3, width=4),
                    {"method": {"name": "n2n", "noise": noise}, "channels": 3, "step": 0})
    return path


def test_noise_far_from_the_model_level_is_said_once(tmp_path, capsys):
    model = _model(tmp_path / "m.safetensors", "gauss25")
    low, fitting = _noisy(tmp_path / "low.png", 5), _noisy(tmp_path / "fit.png", 25)
    assert main(["restore", str(fitting), "--model", str(model), "-o", str(tmp_path / "a.png"), "--quiet"]) == 0
    assert "trained for" not in capsys.readouterr().err
    assert main(["restore", str(low), "--model", str(model), "-o", str(tmp_path / "b.png"), "--quiet"]) == 0
    said = capsys.readouterr().err
    assert "low.png: noise std about 5." in said and "trained for 25: it may smooth away detail" in said
    second = _noisy(tmp_path / "low2.png", 5, seed=1)
    assert main(["restore", str(low), str(second), "--model", str(model), "-o", str(tmp_path / "out"),
                 "--quiet"]) == 0
    said = capsys.readouterr().err
    assert said.count("noise std about") == 1 and "2 inputs have noise far from the level" in said


def test_a_model_for_a_range_of_levels_says_nothing(tmp_path, capsys):
    model = _model(tmp_path / "m.safetensors", "gauss5_50")
    low = _noisy(tmp_path / "low.png", 2)
    assert main(["restore", str(low), "--model", str(model), "-o", str(tmp_path / "b.png"), "--quiet"]) == 0
    assert "trained for" not in capsys.readouterr().err


def test_transparent_clipped_or_tiny_areas_do_not_count(tmp_path, capsys):
    """A cut-out, 60% transparent (RGB 0 there), with sigma-25 noise in the opaque part read 'noise std about 0.0'
    and advised --noise-sigma 0.5; clipped values read low too; a few pixels gave a level at random."""
    model = _model(tmp_path / "m.safetensors", "gauss25")
    rgb = np.asarray(Image.open(_noisy(tmp_path / "n.png", 25)))
    alpha = np.full(rgb.shape[:2], 255, np.uint8)
    alpha[:, :38] = 0
    Image.fromarray(np.dstack([np.where(alpha[:, :, None] == 0, 0, rgb), alpha]).astype(np.uint8)).save(
        tmp_path / "cutout.png")
    dark = np.clip(np.round(8 + 25 * np.random.default_rng(2).standard_normal((64, 64, 3))), 0, 255)
    Image.fromarray(dark.astype(np.uint8)).save(tmp_path / "dark.png")  # a third of the values clipped at 0
    _noisy(tmp_path / "tiny.png", 2)  # 64 px: 1024 blocks
    Image.open(tmp_path / "tiny.png").crop((0, 0, 12, 12)).save(tmp_path / "tiny.png")  # 36 blocks: too few
    for name in ("cutout.png", "dark.png", "tiny.png"):
        assert main(["restore", str(tmp_path / name), "--model", str(model), "-o", str(tmp_path / f"o_{name}"),
                     "--quiet"]) == 0
        assert "trained for" not in capsys.readouterr().err, name


def test_the_advice_fits_the_model():
    """A Laine19 mean-only model takes no --noise-sigma: advising it led to an error."""
    from types import MethodType, SimpleNamespace

    from selfrestore.commands.restore import noise_mismatch
    from selfrestore.restore import Restorer
    from selfrestore.corruption import parse_corruption

    image = np.clip(0.5 + 2 / 255 * np.random.default_rng(0).standard_normal((64, 64, 3)), 0, 1)
    for accepted, advice in (((), "omit --model"), (("sigma",), "pass --noise-sigma 2.")):
        method = SimpleNamespace(noise=parse_corruption("gauss25"), accepted_noise_params=lambda a=accepted: a,
                                 restore_with_uncertainty=None)
        restorer = SimpleNamespace(method=method, noise_params={}, sensor_noise=None)
        restorer.level_mismatch = MethodType(Restorer.level_mismatch, restorer)
        said = noise_mismatch(restorer, image, None, "x")
        assert said is not None and f"; {advice}" in said
