"""Shift-and-add: splatting is exact for on-grid samples, differentiable, and fusing a burst beats one frame."""
import torch
import torch.nn.functional as F

from selfrestore.burst.geometry import identity_affine
from selfrestore.burst.shift_and_add import normalize, shift_and_add, splat
from selfrestore.burst.synthesis import BurstConfig, synthesize_burst
from selfrestore.corruption.mosaic import bilinear_demosaic


def _scene(size=128):
    g = torch.Generator().manual_seed(0)
    base = torch.rand(1, 3, size // 8, size // 8, generator=g)
    return F.interpolate(base, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)


def _psnr(a, b):
    return float(10 * torch.log10(1 / ((a.clamp(0, 1) - b) ** 2).mean()))


def test_splat_on_grid_is_exact_and_conserves_weight():
    values = torch.rand(1, 2, 5, 6)
    ys, xs = torch.meshgrid(torch.arange(5.0), torch.arange(6.0), indexing="ij")
    acc, wsum = splat(values, torch.stack([xs, ys])[None], (5, 6))
    assert torch.allclose(acc / wsum, values)
    shifted = torch.stack([xs + 0.3, ys + 0.6])[None]
    _, wsum = splat(values, shifted * 0.5, (5, 6))  # all inside: total weight = number of samples
    assert torch.isclose(wsum.sum(), torch.tensor(30.0))


def test_splat_is_differentiable_in_values_and_positions():
    values = torch.rand(1, 1, 4, 4, requires_grad=True)
    ys, xs = torch.meshgrid(torch.arange(4.0), torch.arange(4.0), indexing="ij")
    positions = (torch.stack([xs, ys])[None] * 1.5 + 0.25).requires_grad_(True)
    acc, wsum = splat(values, positions, (7, 7))
    (normalize(acc, wsum) * torch.rand(1, 1, 7, 7)).sum().backward()
    assert values.grad.abs().sum() > 0 and positions.grad.abs().sum() > 0


def test_identity_burst_averages_noise():
    clean = _scene(64)
    frames = clean + 0.1 * torch.randn(8, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    out = shift_and_add(frames, identity_affine(8), scale=1)
    assert torch.allclose(out, frames.mean(dim=0), atol=2e-3)  # up to the small hole-filling prior


def test_superres_and_raw_burst_beat_single_frame():
    clean = _scene(160)
    sr = synthesize_burst(clean, BurstConfig(frames=8, scale=2, blur_sigma=0.5), torch.Generator().manual_seed(2))
    frames = sr["frames"][0]
    bicubic = F.interpolate(frames[:1], scale_factor=2, mode="bicubic", align_corners=False)
    fused = shift_and_add(frames, scale=2)  # registers the noisy frames itself
    assert fused.shape == sr["clean"][0].shape
    assert _psnr(fused[None], sr["clean"]) > _psnr(bicubic, sr["clean"]) + 1.0
    raw = synthesize_burst(clean, BurstConfig(frames=8, mosaic=True), torch.Generator().manual_seed(3))
    fused = shift_and_add(raw["frames"][0], scale=1, raw=True)
    assert fused.shape == (3, *raw["frames"].shape[-2:])
    assert _psnr(fused[None], raw["clean"]) > _psnr(bilinear_demosaic(raw["frames"][:, 0]), raw["clean"]) + 2.0
