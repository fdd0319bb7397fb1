"""Synthetic bursts: shapes, the reference frame, and that the returned motion is the true one."""
import torch

from selfrestore.burst.geometry import invert_affine, rescale_affine, compose_affine, warp_affine
from selfrestore.burst.synthesis import BurstConfig, downsample, synthesize_burst


def _image(size=128):
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    r = 0.5 + 0.25 * torch.sin(20 * x + 6 * y)
    g = 0.5 + 0.25 * torch.cos(9 * x * y * 7)
    b = 0.5 + 0.25 * torch.sin(15 * y)
    return torch.stack([r, g, b])[None]


def test_reference_frame_is_downsampled_clean_and_motion_aligns_frames():
    clean = _image()
    cfg = BurstConfig(frames=4, max_shift=3, max_rotation=1, scale=2, blur_sigma=0.5, noise=None)
    burst = synthesize_burst(clean, cfg, torch.Generator().manual_seed(0))
    frames, motion = burst["frames"][0], burst["motion"][0]
    assert frames.shape[:2] == (4, 3) and burst["clean"].shape[-1] == 2 * frames.shape[-1]
    assert torch.allclose(downsample(burst["clean"], 2, 0.5)[..., 3:-3, 3:-3], frames[0:1, :, 3:-3, 3:-3], atol=1e-5)
    aligned = warp_affine(frames, motion, mode="bicubic")
    before = (frames[1:] - frames[:1]).abs()[..., 6:-6, 6:-6].mean()
    after = (aligned[1:] - frames[:1]).abs()[..., 6:-6, 6:-6].mean()
    assert after < 0.2 * before


def test_mosaic_noise_and_exposure():
    clean = _image(96)
    cfg = BurstConfig(frames=3, mosaic=True, exposure=(0.5, 0.6), noise="pg0.004_0.02")
    burst = synthesize_burst(clean, cfg, torch.Generator().manual_seed(1))
    frames = burst["frames"][0]
    assert frames.shape[1] == 1 and frames.shape[-1] % 2 == 0
    assert burst["gains"][0, 0] == 1 and (burst["gains"][0, 1:] <= 0.6).all()
    assert frames[1:].mean() < 0.7 * frames[0].mean()
    # seeded: the same generator seed gives the same burst
    again = synthesize_burst(clean, cfg, torch.Generator().manual_seed(1))["frames"][0]
    assert torch.equal(frames, again)


def test_affine_rescale_roundtrip():
    a = torch.tensor([[[1.01, 0.02, 1.5], [-0.02, 0.99, -0.7]]])
    back = rescale_affine(rescale_affine(a, 2.0, 0.5), 0.5, -0.25)
    assert torch.allclose(back, a, atol=1e-6)
    assert torch.allclose(compose_affine(a, invert_affine(a)), torch.tensor([[[1.0, 0, 0], [0, 1.0, 0]]]), atol=1e-6)
