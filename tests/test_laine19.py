"""Laine19: likelihood training and closed-form posterior, checked against known answers."""
import math

import pytest
import torch
from torch import nn

from selfrestore.corruption import parse_corruption
from selfrestore.errors import UserError
from selfrestore.methods import gaussian_posterior as gp
from selfrestore.methods import laine19
from selfrestore.methods.laine19 import Laine19
from selfrestore.nets.blindspot import BlindSpotUNet, head_channels, triangular_indices
from selfrestore.registry import METHODS

SIGMA = 25 / 255


class FixedPrior(nn.Module):
    """A stand-in 'network' that predicts the same prior N(mu, A^T A) at every pixel."""

    def __init__(self, mu, factor, extra=None, head="full"):
        super().__init__()
        c = len(mu)
        entries = [(i, i) for i in range(c)] if head == "diag" else triangular_indices(c)
        values = list(mu) + [factor[i][j] for i, j in entries]
        if extra is not None:
            values.append(extra)
        self.register_buffer("values", torch.tensor(values, dtype=torch.float32))

    def forward(self, x):
        n, _, h, w = x.shape
        return self.values.view(1, -1, 1, 1).expand(n, -1, h, w)


def _random_spd(generator):
    a = torch.randn(3, 3, generator=generator, dtype=torch.float64) * 0.05
    return a @ a.T + 0.001 * torch.eye(3, dtype=torch.float64)


def test_registered_and_rebuildable_from_config():
    method = METHODS.get("laine19")(noise=parse_corruption("gauss25"), head="diag", noise_level="unknown", width=8)
    cfg = method.config()
    assert cfg["head"] == "diag" and cfg["noise_level"] == "unknown" and cfg["width"] == 8
    kwargs = method.net_kwargs(3)
    assert kwargs["out_channels"] == 6 and kwargs["noise_outputs"] == 1 and kwargs["width"] == 8
    with pytest.raises(UserError):
        Laine19(noise=parse_corruption("bernoulli0.5"))
    with pytest.raises(UserError):
        Laine19(noise=parse_corruption("gauss25"), head="cholesky")


def test_nll_matches_torch_multivariate_normal():
    g = torch.Generator().manual_seed(0)
    cov = _random_spd(g)
    mean = torch.rand(3, dtype=torch.float64, generator=g)
    y = mean + torch.randn(3, dtype=torch.float64, generator=g) * 0.1
    expected = -torch.distributions.MultivariateNormal(mean, cov).log_prob(y)
    as_img = lambda v: v.float().view(1, 3, 1, 1)  # noqa: E731
    got = gp.gaussian_nll(as_img(y), as_img(mean), cov.float().view(1, 3, 3, 1, 1))
    assert got.shape == (1, 1, 1)
    assert abs(got.item() - expected.item()) < 1e-3


def test_posterior_matches_direct_bayes_with_full_covariance():
    g = torch.Generator().manual_seed(1)
    prior_cov = _random_spd(g)
    chol = torch.linalg.cholesky(prior_cov)
    factor = chol.T.tolist()  # upper-triangular A with A^T A = prior_cov
    mu = [0.3, 0.5, 0.7]
    method = Laine19(noise=parse_corruption("gauss25"), head="full")
    method.std_floor = 0.0  # exact Bayes (restoration's default floors the std's prior variance: below)
    y = torch.rand(1, 3, 4, 4, generator=g)
    mean, std = method.restore(FixedPrior(mu, factor), y, return_std=True)
    # direct: (Sx^-1 + Sn^-1)^-1 (Sx^-1 mu + Sn^-1 y), in float64
    sx_inv = torch.linalg.inv(prior_cov)
    sn_inv = torch.eye(3, dtype=torch.float64) / SIGMA**2
    post_cov = torch.linalg.inv(sx_inv + sn_inv)
    yv = y.double().permute(0, 2, 3, 1).reshape(-1, 3)
    expected = (post_cov @ (sx_inv @ torch.tensor(mu, dtype=torch.float64)[:, None] + sn_inv @ yv.T)).T
    got = mean.double().permute(0, 2, 3, 1).reshape(-1, 3)
    assert torch.allclose(got, expected, atol=2e-5)
    expected_std = post_cov.diagonal().sqrt()
    assert torch.allclose(std.double().permute(0, 2, 3, 1).reshape(-1, 3), expected_std.expand(16, 3), atol=2e-5)


def test_constant_image_posterior_is_calibrated():
    """Known answer: pixels x ~ N(c, s0^2) around a constant c, y = x + N(0, sigma^2). The posterior mean is
    (s0^2 y + sigma^2 c) / (s0^2 + sigma^2) and its error variance equals the posterior variance
    s0^2 sigma^2 / (s0^2 + sigma^2), which the method reports as its uncertainty (exact Bayes, no floor). With
    the default floor the std's prior variance is s0^2 + f sigma^2: slightly larger (by 2.6% here), within 5% of
    the empirical."""
    g = torch.Generator().manual_seed(2)
    c, s0 = 0.4, 10 / 255
    x = c + s0 * torch.randn(1, 3, 128, 128, generator=g)
    y = x + SIGMA * torch.randn(x.shape, generator=g)
    method = Laine19(noise=parse_corruption("gauss25"), head="diag")
    prior = FixedPrior([c] * 3, [[s0, 0, 0], [0, s0, 0], [0, 0, s0]], head="diag")
    floored_mean, floored_std = method.restore_with_uncertainty(prior, y)
    method.std_floor = 0.0
    mean, std = method.restore_with_uncertainty(prior, y)
    assert torch.equal(floored_mean, mean)  # the floor never moves the restored image
    floored_var = s0**2 + laine19.PRIOR_VARIANCE_FLOOR * SIGMA**2
    torch.testing.assert_close(floored_std, torch.full_like(std, math.sqrt(floored_var * SIGMA**2 / (floored_var
                                                                                                + SIGMA**2))))
    expected_mean = (s0**2 * y + SIGMA**2 * c) / (s0**2 + SIGMA**2)
    torch.testing.assert_close(mean, expected_mean, atol=1e-5, rtol=0)
    expected_std = s0 * SIGMA / math.sqrt(s0**2 + SIGMA**2)
    assert torch.allclose(std, torch.full_like(std, expected_std), atol=1e-6)
    empirical = (mean - x).pow(2).mean().sqrt().item()
    assert abs(empirical - expected_std) / expected_std < 0.03
    assert abs(empirical - floored_std.mean().item()) / empirical < 0.05
    # and the denoised error is far below the noise
    assert empirical < 0.5 * SIGMA


def test_per_image_sigma_from_batch_and_restore_kwargs():
    method = Laine19(noise=parse_corruption("gauss5_50"), head="diag")
    prior = FixedPrior([0.5] * 3, [[0.05, 0, 0], [0, 0.05, 0], [0, 0, 0.05]], head="diag")
    y = torch.full((2, 3, 4, 4), 0.7)
    low, high = method.restore(prior, y, sigma=torch.tensor([5 / 255, 50 / 255])).unbind(0)
    assert (low - 0.7).abs().max() < (high - 0.7).abs().max()  # small noise -> trust the pixel

    def loss(sigmas):
        return float(method.loss(prior, {"noisy": y, "noise_params": {"sigma": torch.tensor(sigmas)}}))

    mixed, both_low, both_high = loss([0.02, 0.2]), loss([0.02, 0.02]), loss([0.2, 0.2])
    assert both_low != pytest.approx(both_high)  # the batch's sigma is used
    assert mixed == pytest.approx((both_low + both_high) / 2, rel=1e-5)  # per image (the two images are equal)


def test_mu_head_restores_to_the_mean_and_has_no_uncertainty():
    method = Laine19(noise=parse_corruption("gauss25"), head="mu")
    y = torch.rand(1, 3, 4, 4)
    out = method.restore(_MuNet(), y)
    assert torch.equal(out, _MuNet()(y)[:, :3])
    with pytest.raises(UserError):
        method.restore_with_uncertainty(_MuNet(), y)
    assert method.net_kwargs(3)["out_channels"] == 3


class _MuNet(nn.Module):
    def forward(self, x):
        return torch.ones_like(x) * torch.tensor([0.1, 0.2, 0.3]).view(1, 3, 1, 1)


def test_impulse_posterior_keeps_plausible_pixels_and_replaces_outliers():
    method = Laine19(noise=parse_corruption("impulse0.5"), head="full")
    s = 0.02
    prior = FixedPrior([0.5] * 3, [[s, 0, 0], [0, s, 0], [0, 0, s]])
    y = torch.tensor([[0.5, 0.51, 0.49], [0.95, 0.05, 0.9]]).T.reshape(1, 3, 1, 2)
    mean, std = method.restore(prior, y, return_std=True)
    assert torch.allclose(mean[..., 0], y[..., 0], atol=1e-3)      # consistent with the prior: kept
    assert torch.allclose(mean[..., 1], torch.full((1, 3), 0.5), atol=1e-3)  # impossible under prior: mu
    assert torch.all(std[..., 0] < 1e-3)
    loss = method.loss(prior, {"noisy": torch.rand(2, 3, 4, 4)})
    assert torch.isfinite(loss)


def test_poisson_noise_variance_follows_the_prior_mean():
    method = Laine19(noise=parse_corruption("poisson30"), head="diag")
    dark = FixedPrior([0.05] * 3, [[0.05, 0, 0], [0, 0.05, 0], [0, 0, 0.05]], head="diag")
    bright = FixedPrior([0.9] * 3, [[0.05, 0, 0], [0, 0.05, 0], [0, 0, 0.05]], head="diag")
    y_dark, y_bright = torch.full((1, 3, 2, 2), 0.15), torch.full((1, 3, 2, 2), 1.0)
    # relative pull towards the prior is stronger where the signal (and so the Poisson variance) is larger
    pull_dark = (method.restore(dark, y_dark) - y_dark).abs().mean() / 0.1
    pull_bright = (method.restore(bright, y_bright) - y_bright).abs().mean() / 0.1
    assert pull_bright > pull_dark


def _train(method, net, y, steps, lr, params=None):
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        i, j = torch.randint(0, y.shape[2] - 32 + 1, (2,), generator=g).tolist()
        batch = {"noisy": y[:, :, i:i + 32, j:j + 32]}
        if params:
            batch["noise_params"] = params
        loss = method.loss(net, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net


def test_training_on_a_noisy_constant_image_learns_the_answer():
    """Trained by the likelihood alone on one noisy constant image, the net's posterior mean recovers the
    constant far better than the noise, and the reported uncertainty is much smaller than sigma."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(3)
    clean = torch.full((2, 3, 64, 64), 0.45)
    y = clean + SIGMA * torch.randn(clean.shape, generator=g)
    method = Laine19(noise=parse_corruption("gauss25"), head="full", width=8, depth=2)
    net = BlindSpotUNet(**method.net_kwargs(3))
    _train(method, net, y, steps=120, lr=3e-3)
    with torch.no_grad():
        mean, std = method.restore_with_uncertainty(net, y)
    noisy_rmse = (y - clean).pow(2).mean().sqrt().item()
    rmse = (mean - clean).pow(2).mean().sqrt().item()
    assert rmse < 0.3 * noisy_rmse
    assert std.mean().item() < 0.5 * SIGMA


@pytest.mark.parametrize("level", ["global", "unknown"])
def test_unknown_sigma_is_estimated_with_the_regulariser(level):
    """sigma is learned from the noisy data alone (one global value, or per image by a non-blind net)."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(4)
    clean = torch.full((2, 3, 64, 64), 0.5)
    y = clean + SIGMA * torch.randn(clean.shape, generator=g)
    method = Laine19(noise=parse_corruption("gauss25"), head="diag", noise_level=level, width=8, depth=2)
    net = BlindSpotUNet(**method.net_kwargs(3))
    _train(method, net, y, steps=150, lr=3e-3)
    with torch.no_grad():
        sigma_hat = method._level(net(y[:, :, :32, :32]), 3, None, "sigma").mean().item()
    assert abs(sigma_hat - SIGMA) / SIGMA < 0.15, sigma_hat * 255


def test_loss_is_float32_under_bf16_autocast():
    torch.manual_seed(0)
    method = Laine19(noise=parse_corruption("poisson30"), head="full", noise_level="unknown", width=4, depth=2)
    net = BlindSpotUNet(**method.net_kwargs(3))
    y = torch.rand(2, 3, 16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = method.loss(net, {"noisy": y})
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)
    assert head_channels("full", 3) == 9


@pytest.mark.parametrize("sigma_255", [8.0, 20.0, 45.0])
def test_range_model_estimates_each_images_noise_level_by_maximum_likelihood(sigma_255):
    """A model trained on a range (gauss5_50) restores an image of unknown sigma with the maximum-likelihood
    sigma under its prior: the result equals the posterior at the true sigma, not at the range's middle."""
    g = torch.Generator().manual_seed(5)
    mu, factor = [0.4, 0.5, 0.6], [[0.08, 0.02, 0.01], [0.0, 0.06, 0.02], [0.0, 0.0, 0.07]]
    net = FixedPrior(mu, factor)
    a = torch.tensor(factor)
    x = torch.tensor(mu).view(1, 3, 1, 1) + torch.einsum("ji,njhw->nihw", a, torch.randn(1, 3, 96, 96, generator=g))
    sigma = sigma_255 / 255
    y = x + sigma * torch.randn(x.shape, generator=g)
    method = Laine19(noise=parse_corruption("gauss5_50"), head="full")
    restored = method.restore(net, y)
    at_truth = method.restore(net, y, sigma=sigma)
    at_middle = method.restore(net, y, sigma=27.5 / 255)
    assert (restored - at_truth).abs().max() < 0.15 * (at_middle - at_truth).abs().max() + 1e-3
    est = gp.ml_noise_level(y, *gp_prior(net, y), lambda level, m: level**2, 1 / 255, 0.5)
    assert abs(est.item() - sigma) / sigma < 0.08


def gp_prior(net, y):
    from selfrestore.nets.blindspot import split_head

    return split_head(net(y), "full", 3)


def test_poisson_level_is_estimated_for_an_estimated_level_model():
    """Poisson, level unknown: restoration finds 1/lambda by maximum likelihood (within 10 %)."""
    g = torch.Generator().manual_seed(6)
    mu = [0.3, 0.5, 0.7]
    net = FixedPrior(mu, [[0.03, 0.0, 0.0], [0.0, 0.03, 0.0], [0.0, 0.0, 0.03]], extra=0.0)
    x = (torch.tensor(mu).view(1, 3, 1, 1) + 0.03 * torch.randn(1, 3, 96, 96, generator=g)).clamp_min(0)
    lam = 20.0
    y = torch.poisson(lam * x, generator=g) / lam
    method = Laine19(noise=parse_corruption("poisson30"), head="full", noise_level="global")
    params = method._ml_params(y, *gp_prior(net, y))
    assert abs(params["lam"].item() - lam) / lam < 0.1
    assert torch.allclose(method.restore(net, y), method.restore(net, y, lam=params["lam"]), atol=1e-5)



def test_a_gray_observation_gets_the_posterior_of_its_gray_value():
    """A gray image given to a colour model has one noise value repeated in every channel, not independent
    noise per channel: the colour posterior saw no noise across channels, and the default model returned
    noisy gray images almost unchanged (an audit). Known answer: the scalar Bayes of g = mean of the channels,
    prior N(mean(mu), a^T Sx a), observation g + N(0, sigma^2), the same in every channel."""
    g = torch.Generator().manual_seed(3)
    prior_cov = _random_spd(g)
    factor = torch.linalg.cholesky(prior_cov).T.tolist()
    mu = [0.3, 0.5, 0.7]
    method = Laine19(noise=parse_corruption("gauss25"), head="full")
    method.std_floor = 0.0
    gray = torch.rand(1, 1, 4, 4, generator=g)
    mean, std = method.restore(FixedPrior(mu, factor), gray.expand(1, 3, 4, 4), return_std=True)
    v = prior_cov.mean().item()  # a^T Sx a, a = (1/3, 1/3, 1/3)
    m = sum(mu) / 3
    expected = (v * gray.double() + SIGMA**2 * m) / (v + SIGMA**2)
    assert torch.allclose(mean.double(), expected.expand(1, 3, 4, 4), atol=2e-5)
    assert torch.allclose(std.double(), torch.full((1, 3, 4, 4), math.sqrt(v * SIGMA**2 / (v + SIGMA**2)),
                                                   dtype=torch.float64), atol=2e-5)
    # a colour observation is untouched by this (the channels differ)
    colour = torch.rand(1, 3, 4, 4, generator=g)
    assert laine19.gray_projection(colour, torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 3, 4, 4)) is None


def test_the_default_model_denoises_a_gray_image_and_says_its_uncertainty():
    """The shipped default (a colour model estimating the level) on a noisy gray photo: was RMSE 24.9 for
    25.0 of the noisy input (the level estimate collapsed); now it denoises and its std is calibrated (through
    the colour view, the std of the channel mean, on the safe side here: 0.797 of the error's by the median on
    this mostly flat crop; on Set12 see benchmarks/results/gray_default.md)."""
    import numpy as np
    from skimage import data

    from selfrestore.restore import Restorer

    clean = data.camera()[:128, :128] / 255.0
    noisy = (clean + np.random.default_rng(0).normal(0, 25 / 255, clean.shape)).astype(np.float32)
    mean, std = Restorer("laine19-gauss5_50", clipping="off").restore_with_uncertainty(noisy)
    error = np.abs(mean - clean)
    assert np.sqrt(np.mean(error**2)) < 0.7 * 25 / 255
    z = (error / std)[8:-8, 8:-8]
    assert 0.75 < np.median(z) / 0.6745 < 1.25 and np.mean(z > 4) < 0.005
