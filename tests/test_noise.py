import math

import pytest
import torch

from selfrestore.corruption import parse_corruption
from selfrestore.errors import UserError


def test_names_parse_into_models_with_the_right_scale():
    g = parse_corruption("gauss25")
    assert math.isclose(g.low, 25 / 255) and g.low == g.high
    r = parse_corruption("gauss5_50")
    assert math.isclose(r.low, 5 / 255) and math.isclose(r.high, 50 / 255)
    assert parse_corruption("poisson30").low == 30
    assert parse_corruption("impulse0.5").low == 0.5
    assert parse_corruption("bernoulli0.5").p == 0.5
    with pytest.raises(UserError, match="unknown noise model"):
        parse_corruption("gauss")
    with pytest.raises(UserError):
        parse_corruption("impulse1.5")


@pytest.mark.parametrize("name", ["gauss25", "gauss5_50", "poisson30", "poisson5_50", "pg0.01_0.02",
                                  "impulse0.5", "bernoulli0.3"])
def test_variance_model_matches_samples(name):
    model = parse_corruption(name)
    x = torch.rand(8, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    y, params = model.sample_with_params(x, torch.Generator().manual_seed(1))
    empirical = ((y - x) ** 2).mean() - ((y - x).mean() ** 2 if name.startswith("bern") else 0)
    predicted = model.variance(x, params).mean()
    if name.startswith("bern"):  # E[(y-x)^2] = p x^2 for dropout
        predicted = (model.p * x**2).mean()
        empirical = ((y - x) ** 2).mean()
    assert abs(float(empirical) / float(predicted) - 1) < 0.03


def test_sampling_is_reproducible_and_fresh_per_generator():
    model = parse_corruption("gauss25")
    x = torch.rand(1, 3, 16, 16)
    a = model.sample(x, torch.Generator().manual_seed(5))
    b = model.sample(x, torch.Generator().manual_seed(5))
    c = model.sample(x, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_gaussian_log_likelihood_peaks_at_the_truth():
    model = parse_corruption("gauss25")
    x = torch.full((1, 1, 4, 4), 0.5)
    y = model.sample(x, torch.Generator().manual_seed(0))
    ll = [float(model.log_likelihood(y, torch.full_like(x, v)).sum()) for v in (0.3, 0.5, 0.7)]
    assert ll[1] > ll[0] and ll[1] > ll[2]
    assert torch.allclose(model.log_likelihood(x, x), torch.full_like(x, -0.5 * math.log(2 * math.pi * (25 / 255) ** 2)))


@pytest.mark.parametrize("a, b", [(0.004, 0.02), (0.01, 0.0)])
def test_anscombe_stabilises_and_its_inverse_is_unbiased(a, b):
    """GAT: unit noise std at every signal level; the Makitalo-Foi inverse of E[f(y)] returns x (the
    algebraic inverse is biased low by ~a/4, which is what the exact unbiased inverse corrects)."""
    from selfrestore.corruption.noise import PoissonGaussian
    from selfrestore.corruption.stabilise import anscombe, inverse_anscombe

    model = PoissonGaussian(a, b)
    for level in (0.05, 0.2, 0.5, 1.0):
        y, _ = model.sample_with_params(torch.full((400_000,), level), torch.Generator().manual_seed(3))
        d = anscombe(y, a, b)
        assert abs(float(d.std()) - 1) < 0.02
        unbiased = float(inverse_anscombe(d.mean(), a, b))
        algebraic = a * ((float(d.mean()) / 2) ** 2 - 0.375 - (b / a) ** 2)
        assert abs(unbiased - level) < 0.1 * a
        assert abs(unbiased - level) < abs(algebraic - level)


def test_inverse_anscombe_std_matches_the_spread_of_the_inverse():
    """Delta method: a small spread s of the stabilised estimate D maps back to std(I(D)) = a |I'(D)| s,
    checked against the spread of the inverse of 100k samples of D, at dim and bright levels."""
    from selfrestore.corruption.stabilise import anscombe, inverse_anscombe, inverse_anscombe_std

    a, b, spread = 0.01, 0.02, 0.05
    for level in (0.02, 0.3, 0.9):
        d = anscombe(torch.tensor(level, dtype=torch.float64), a, b)
        samples = d + spread * torch.randn(100_000, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
        expected = float(inverse_anscombe(samples, a, b).std())
        got = float(inverse_anscombe_std(d, torch.tensor(spread, dtype=torch.float64), a, b))
        assert abs(got / expected - 1) < 0.02
    # a dark estimate (at or below the transform of zero signal) keeps a finite, positive spread
    zero = anscombe(torch.tensor([0.0]), a, b)
    dark = inverse_anscombe_std(torch.cat([zero / 4, zero / 2, zero]), torch.full((3,), spread), a, b)
    assert (dark > 0).all() and torch.allclose(dark, dark[2].expand(3))
