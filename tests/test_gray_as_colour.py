"""Gray images through colour models (selfrestore.gray_as_colour): the colour view has the noise a colour
model was trained on, the restorer uses it, and the uncertainty is that of the gray value."""
import math

import numpy as np
import pytest
import torch

from selfrestore.gray_as_colour import colour_view, target_level
from selfrestore.methods import gaussian_posterior as gp

S25, S50 = 25 / 255, 50 / 255


def _noise_covariance(view, gray_noise):
    """Channel covariance of the view's noise: its values minus what the clean gray (0.5) became."""
    noise = view.colour.reshape(-1, 3).astype(np.float64) - 0.5
    return np.cov(noise.T), gray_noise


@pytest.mark.parametrize("sigma, levels, level, scale", [
    (S25, (S25, S25), S25, math.sqrt(3)),            # a single-level model at its own level
    (50 / 255, (S25, S25), S25, 2 * math.sqrt(3)),   # noisier than the model: scaled down more
    (S25, (5 / 255, S50), math.sqrt(3) * S25, 1.0),  # a range model: sqrt(3) sigma, not scaled
    (S50, (5 / 255, S50), S50, math.sqrt(3)),        # ... unless that is above the range
    (S25, None, S25, math.sqrt(3)),                  # unknown noise: the gray's level per channel
])
def test_the_colour_view_has_independent_noise_of_the_models_level_per_channel(sigma, levels, level, scale):
    """The point of the view: noise independent across channels, std t in each (a gray image's repeated
    channel has fully correlated noise), and the mean of the channels scaled back is the gray image."""
    gray = (0.5 + sigma * np.random.default_rng(1).standard_normal((256, 256, 1))).astype(np.float32)
    view = colour_view(gray, sigma, levels)
    assert view.level == pytest.approx(level) and view.scale == pytest.approx(scale)
    cov = np.cov(view.colour.reshape(-1, 3).astype(np.float64).T)
    assert np.allclose(np.sqrt(np.diag(cov)), level, rtol=0.03)
    correlation = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
    assert np.abs(correlation - np.eye(3)).max() < 0.03
    assert np.abs(view.gray_of(view.colour) - gray).max() < 1e-5
    assert np.array_equal(colour_view(gray, sigma, levels).colour, view.colour)  # a fixed draw: results repeat


def test_a_gray_image_quieter_than_the_models_luma_noise_is_not_amplified():
    """sigma 10 to a sigma-25 model: its luma noise (25 / sqrt(3) = 14.4) is already above the image's, so
    the gray value keeps its scale (s = 1) and only the chroma gets the model's level."""
    sigma = 10 / 255
    gray = (0.5 + sigma * np.random.default_rng(2).standard_normal((256, 256, 1))).astype(np.float32)
    view = colour_view(gray, sigma, (S25, S25))
    assert view.scale == 1.0 and target_level(sigma, (S25, S25)) == S25
    luma = view.colour.mean(axis=2)
    assert np.std(luma - 0.5) == pytest.approx(sigma, rel=0.03)


def test_the_posterior_variance_of_the_channel_mean_is_a_sigma_a():
    """Known answer: a^T P a, P = Sx - Sx (Sx + Sn)^-1 Sx, by dense linear algebra; not the mean of the
    channels' variances (the posterior is correlated across channels)."""
    g = torch.Generator().manual_seed(4)
    a = torch.randn(3, 3, generator=g, dtype=torch.float64) * 0.1
    prior = a @ a.T + 0.002 * torch.eye(3, dtype=torch.float64)
    noise = torch.tensor([0.01, 0.02, 0.015], dtype=torch.float64)
    posterior = prior - prior @ torch.linalg.inv(prior + torch.diag(noise)) @ prior
    expected = posterior.mean().item()
    prior_map = prior[None, :, :, None, None].expand(1, 3, 3, 2, 2).float()
    noise_map = noise[None, :, None, None].expand(1, 3, 2, 2).float()
    found = gp.posterior_variance_of_mean(prior_map, noise_map)
    assert found.shape == (1, 1, 2, 2) and torch.allclose(found.double(), torch.full_like(found.double(), expected),
                                                           rtol=1e-4)
    assert abs(torch.diagonal(posterior).mean().item() / 3 - expected) > 0.1 * expected


@pytest.fixture(scope="module")
def camera_crop():
    from skimage import data

    clean = data.camera()[100:228, 150:278] / 255.0
    noisy = (clean + np.random.default_rng(0).normal(0, 25 / 255, clean.shape)).astype(np.float32)
    return clean, noisy


def _psnr(restored, clean):
    return 10 * np.log10(1 / np.mean((np.asarray(restored, np.float64).reshape(clean.shape) - clean) ** 2))


@pytest.mark.parametrize("model", ["laine19-gauss5_50", "unet-gauss25"])
def test_the_shipped_colour_models_denoise_gray_images(camera_crop, model):
    """A gray image was its channel repeated: the colour models saw noise sqrt(3) stronger than in training
    (unet-gauss25 left most of it) and the default could not read the level; as the colour view, several dB
    better (Set12: benchmarks/results/gray_default.md). A colour image whose channels are all equal (a gray
    photo saved as RGB) is restored the same way."""
    from selfrestore.restore import Restorer

    clean, noisy = camera_crop
    restorer = Restorer(model, device="cpu", clipping="off")
    restorer.warn_level_mismatch = False
    now = restorer.restore(noisy)
    assert np.array_equal(restorer.restore(np.repeat(noisy[:, :, None], 3, axis=2)), np.repeat(now[:, :, None], 3, 2))
    restorer.gray_as_colour = False
    before = restorer.restore(noisy)
    assert _psnr(now, clean) > _psnr(before, clean) + 2.5, (_psnr(now, clean), _psnr(before, clean))


def test_gray_through_a_colour_model_tiled_equals_untiled(camera_crop):
    """The chroma noise is drawn for the whole image before tiling: tiles with full context agree with one
    pass, mean and std."""
    from selfrestore.restore import Restorer

    _, noisy = camera_crop
    whole = Restorer("laine19-gauss5_50", device="cpu", clipping="off", tile=0)
    tiled = Restorer("laine19-gauss5_50", device="cpu", clipping="off", tile=64, tile_context="full")
    for restorer in (whole, tiled):
        restorer.warn_level_mismatch = False
    mean, std = whole.restore_with_uncertainty(noisy)
    mean_t, std_t = tiled.restore_with_uncertainty(noisy)
    assert np.abs(mean - mean_t).max() < 1e-5 and np.abs(std - std_t).max() < 1e-5


def test_a_noisier_gray_image_is_not_warned_about_its_level(camera_crop):
    """A single-level model warns when an image's noise is over twice its level ("it may leave noise"): a gray
    image's colour view is scaled to the model's level, so only a quieter one is still warned about."""
    from selfrestore.restore import Restorer

    clean, _ = camera_crop
    restorer = Restorer("unet-gauss25", device="cpu")
    rng = np.random.default_rng(5)
    loud = (0.5 + rng.normal(0, 70 / 255, (128, 128, 1))).astype(np.float32)
    quiet = (clean + rng.normal(0, 5 / 255, clean.shape)).astype(np.float32)[:, :, None]
    assert restorer.level_mismatch(loud) is None
    assert restorer.level_mismatch((0.5 + rng.normal(0, 70 / 255, (128, 128, 3))).astype(np.float32)) is not None
    assert restorer.level_mismatch(quiet) is not None
    restorer.gray_as_colour = False
    assert restorer.level_mismatch(loud) is not None


def _with_method(tmp_path, method_header):
    """unet-gauss25's weights saved under another method header (a user's model of another kind)."""
    from selfrestore.checkpoint import load_model, save_checkpoint

    _, net, header = load_model("unet-gauss25")
    header = {k: v for k, v in header.items() if k not in ("format", "net")}
    header["method"] = method_header
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, net, header)
    return path


def test_where_the_colour_view_is_not_taken(tmp_path):
    """Found by a review: the view read texture as noise on clean gray photos (the default model took a
    noise-free camera crop 6 dB away from itself), fed chroma noise to a deblurring net (no noise model),
    kept the model's level where a lower one was given, and divided by zero for a level-0 model."""
    from skimage import data

    from selfrestore.restore import Restorer

    clean = (data.camera()[100:228, 150:278] / 255.0).astype(np.float32)
    default = Restorer("laine19-gauss5_50", device="cpu", clipping="off")
    assert default._colour_view(clean[:, :, None], {})[0] is None  # measured under the range: no view
    noisy = clean + np.random.default_rng(1).normal(0, 25 / 255, clean.shape).astype(np.float32)
    assert default._colour_view(noisy[:, :, None], {})[0] is not None
    given = Restorer("laine19-gauss25", device="cpu", noise_params={"sigma": 8 / 255})
    assert given._colour_view(noisy[:, :, None], {"sigma": 8 / 255})[0] is None
    assert given._colour_view(noisy[:, :, None], {"sigma": 20 / 255})[0] is not None
    deblur = Restorer(_with_method(tmp_path, {"name": "reblur", "noise": None}), device="cpu", clipping="off")
    assert not deblur.takes_gray_as_colour(noisy[:, :, None])
    level0 = Restorer(_with_method(tmp_path, {"name": "n2n", "noise": "gauss0"}), device="cpu", clipping="off")
    assert level0.restore(noisy).shape == noisy.shape


def test_adapt_trains_on_the_colour_view_it_restores(monkeypatch, camera_crop):
    """restore --adapt fine-tuned on the gray channel repeated while restore gave the net the colour view
    (-1.4 dB after 40 steps; a review): the training images are the view."""
    import selfrestore.data.images as images_module
    from selfrestore.commands.restore import adapt_model
    from selfrestore.restore import Restorer

    _, noisy = camera_crop
    restorer = Restorer("laine19-gauss25", device="cpu", clipping="off")
    seen = []

    class Recording(images_module.NoisyImages):
        def __init__(self, images, *args, **kwargs):
            seen.extend(images)
            super().__init__(images, *args, **kwargs)

    monkeypatch.setattr(images_module, "NoisyImages", Recording)
    adapt_model(restorer, [noisy[:, :, None]], steps=1, quiet=True)
    assert len(seen) == 1 and seen[0].shape == (*noisy.shape, 3)
    assert np.array_equal(seen[0], restorer.model_input(noisy[:, :, None]))
    assert np.abs(seen[0][:, :, 0] - seen[0][:, :, 1]).max() > 0.1  # not one channel repeated


def test_model_input_is_what_the_network_is_given_with_poisson_gaussian_noise(monkeypatch):
    """Review: model_input (what --adapt trains on) gave the plain scaled image for a Restorer with
    sensor_noise, which restores the Anscombe-stabilised image: it must hand over what restore() restores."""
    import selfrestore.restore as restore_module
    from selfrestore.restore import Restorer

    rng = np.random.default_rng(3)
    a, b = 0.01, 0.02
    image = (a * rng.poisson(np.full((48, 48, 3), 0.4) / a) + b * rng.standard_normal((48, 48, 3))).astype(np.float32)
    restorer = Restorer("laine19-gauss5_50", device="cpu", sensor_noise=(a, b))
    given = []
    real = restore_module.restore_array
    monkeypatch.setattr(restore_module, "restore_array", lambda method, net, x, **kw: given.append(x) or
                        real(method, net, x, **kw))
    restorer.restore(image)
    assert len(given) == 1 and np.allclose(given[0], restorer.model_input(image), atol=1e-6)
