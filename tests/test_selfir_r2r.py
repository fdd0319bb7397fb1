"""SelfIR-R2R: recorrupted same-pixel targets for blurry+noisy training (selfrestore.methods.selfir_r2r)."""
import numpy as np
import pytest
import torch

from selfrestore.cli import main
from selfrestore.corruption import parse_corruption
from selfrestore.corruption.blur import Blur
from selfrestore.data.blurry_noisy import SyntheticBlurryNoisy
from selfrestore.errors import UserError
from selfrestore.io import read_image, write_image
from selfrestore.methods.selfir_r2r import SelfIRRecorrupted, estimated_noise_levels, recorrupted_pair


def _delta_blur() -> Blur:
    k = np.zeros((5, 5), np.float32)
    k[2, 2] = 1
    return Blur(kernels=[k], sigma=0.0)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_recorrupted_input_and_target_carry_independent_noise(alpha):
    """Given the clean image, the input's and the target's noise are uncorrelated, with variances
    s^2 (1 + alpha^2) and s^2 (1 + 1 / alpha^2); a wrong s (here 0) leaves them correlated."""
    gen = torch.Generator().manual_seed(0)
    clean = torch.rand(1, 3, 64, 64, generator=gen).expand(64, -1, -1, -1)
    s = 0.1
    noisy = clean + s * torch.randn(clean.shape, generator=gen)
    noisy_in, target = recorrupted_pair(noisy, torch.tensor(s), alpha, gen)
    e_in, e_tgt = (noisy_in - clean).flatten(), (target - clean).flatten()
    assert abs(float((e_in * e_tgt).mean())) < 0.02 * s**2
    assert float(e_in.var()) == pytest.approx(s**2 * (1 + alpha**2), rel=0.02)
    assert float(e_tgt.var()) == pytest.approx(s**2 * (1 + 1 / alpha**2), rel=0.02)
    same_in, same_tgt = recorrupted_pair(noisy, torch.tensor(0.0), alpha, gen)
    assert float(((same_in - clean) * (same_tgt - clean)).mean()) == pytest.approx(s**2, rel=0.02)


def test_synthetic_pairs_carry_the_level_drawn_for_each_image(rgb_image):
    images = [rgb_image, rgb_image[::-1].copy(), rgb_image[:, ::-1].copy()]
    source = SyntheticBlurryNoisy(images, _delta_blur(), parse_corruption("gauss5_50"), seed=0, keep_clean=True)
    sigmas = source.params["sigma"]
    assert len(sigmas) == 3 and len(set(sigmas)) == 3 and all(5 / 255 <= v <= 50 / 255 for v in sigmas)
    for noisy, clean, sigma in zip(source.fields["noisy"], source.fields["clean"], sigmas):
        assert float((noisy - clean).std()) == pytest.approx(sigma, rel=0.05)
    batch = source.batch(np.random.default_rng(0), 6, 32)
    method = SelfIRRecorrupted(noise=parse_corruption("gauss5_50"))
    variance = method.noise_variance(batch, batch["blurry"])
    residual_std = (batch["noisy"] - batch["clean"]).flatten(1).std(dim=1)
    assert torch.allclose(variance.expand_as(batch["noisy"]).flatten(1).mean(1).sqrt(), residual_std, rtol=0.15)


def test_poisson_variance_follows_the_blurry_shot_and_estimated_levels_follow_the_image(astronaut):
    method = SelfIRRecorrupted(noise=parse_corruption("poisson20"))
    blurry = torch.full((1, 3, 8, 8), 0.4)
    assert torch.allclose(method.noise_variance({}, blurry), torch.full_like(blurry, 0.4 / 20))
    # real pairs without --noise: a noise-level function a * signal + b estimated from each textured noisy image
    rng = np.random.default_rng(0)
    noisy = [astronaut + s * rng.standard_normal(astronaut.shape) for s in (0.02, 0.08)]
    levels = estimated_noise_levels(noisy)
    mean = [float(np.clip(n, 0, 1).mean()) for n in noisy]
    est = [levels["nlf_a"][i] * mean[i] + levels["nlf_b"][i] for i in range(2)]
    # (the photo's own grain adds about 0.007 in quadrature: 0.021 is read at 0.02)
    assert np.sqrt(est[0]) == pytest.approx(0.02, rel=0.1) and np.sqrt(est[1]) == pytest.approx(0.08, rel=0.05)
    shot = rng.poisson(20 * astronaut) / 20  # variance x / 20: mostly shot noise, right on average
    level = estimated_noise_levels([shot])
    assert level["nlf_a"][0] * astronaut.mean() + level["nlf_b"][0] == pytest.approx(astronaut.mean() / 20, rel=0.15)
    assert level["nlf_a"][0] * astronaut.mean() > 2 * level["nlf_b"][0]
    batch = {"noise_params": {k: torch.tensor(v) for k, v in levels.items()}}
    signal = torch.tensor(mean, dtype=torch.float32).view(2, 1, 1, 1).expand(2, 3, 4, 4)
    variance = SelfIRRecorrupted(noise=None).noise_variance(batch, signal)
    assert torch.allclose(variance[:, 0, 0, 0], torch.tensor(est, dtype=torch.float32), rtol=1e-4)
    with pytest.raises(UserError, match="--noise"):
        SelfIRRecorrupted(noise=None).noise_variance({}, blurry)
    # an image too small to measure gets the median of the others; none measurable: a clear error
    tiny = noisy[0][:8, :8]
    assert estimated_noise_levels([noisy[0], tiny])["nlf_b"][1] == pytest.approx(levels["nlf_b"][0])
    with pytest.raises(UserError, match="--noise"):
        estimated_noise_levels([tiny])
    with pytest.raises(UserError, match="impulse"):
        SelfIRRecorrupted(noise=parse_corruption("impulse0.3"))


def test_cli_fit_on_real_pairs_estimates_the_level_and_restores(tmp_path, rgb_image, capsys):
    rng = np.random.default_rng(0)
    bdir, ndir = tmp_path / "blurry", tmp_path / "noisy"
    for i, name in enumerate(("a", "b")):
        img = np.roll(rgb_image, 7 * i, axis=1)
        write_image(bdir / f"{name}.png", img)
        write_image(ndir / f"{name}.png", np.clip(img + 0.1 * rng.standard_normal(img.shape), 0, 1))
    model = tmp_path / "r2r.safetensors"
    assert main(["fit", "--method", "selfir_r2r", "--blurry", str(bdir), "--noisy", str(ndir), "--width", "8",
                 "--depth", "2", "--steps", "3", "--patch-size", "32", "--batch-size", "2", "--mask-patch", "8",
                 "--alpha", "1", "-o", str(model)]) == 0
    said = capsys.readouterr().out
    assert "noise std measured on the 2 noisy images" in said  # written at 0.1 = 25.5/255, clipped to [0, 1]
    median = float(said.split("median ")[1].split("/255")[0])
    assert 20 < median < 27
    # a range of levels cannot be one image's level: measured per image too
    assert main(["fit", "--method", "selfir_r2r", "--blurry", str(bdir), "--noisy", str(ndir), "--noise", "gauss5_50",
                 "--width", "8", "--depth", "2", "--steps", "1", "--patch-size", "32", "--batch-size", "2",
                 "-o", str(tmp_path / "range.safetensors")]) == 0
    assert "noise std measured on the 2 noisy images" in capsys.readouterr().out
    out = tmp_path / "out"
    assert main(["restore", "--blurry", str(bdir / "a.png"), "--noisy", str(ndir / "a.png"), "--model", str(model),
                 "-o", str(out)]) == 0
    assert read_image(out / "a.png")[0].shape == rgb_image.shape
