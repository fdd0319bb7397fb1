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
