"""Registration on noisy, aliased and Bayer bursts with known motion: error in pixels."""
import pytest
import torch

from selfrestore.burst.registration import motion_error, phase_correlation, register, register_burst
from selfrestore.burst.synthesis import BurstConfig, synthesize_burst
from selfrestore.errors import UserError


def _scene(size=192, seed=0):
    """Smooth random texture with edges (a stand-in for a photo)."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 3, size // 8, size // 8, generator=g)
    img = torch.nn.functional.interpolate(base, size=(size, size), mode="bicubic", align_corners=False)
    y, x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    img = img + 0.3 * (((x // 24) + (y // 24)) % 2).float()
    return img.clamp(0, 1.3) / 1.3


@pytest.mark.parametrize("scale, mosaic, noise, model, tol", [
    (1, False, "pg0.004_0.02", "affine", 0.1),
    (2, False, "pg0.02_0.05", "affine", 0.12),     # heavy noise, aliased low-resolution frames
    (1, True, "pg0.004_0.02", "euclidean", 0.12),  # Bayer frames
    (1, False, "pg0.004_0.02", "translation", 0.1),
])
def test_registration_error_in_pixels(scale, mosaic, noise, model, tol):
    rotation = 0.0 if model == "translation" else 1.5
    cfg = BurstConfig(frames=4, max_shift=5, max_rotation=rotation, scale=scale, mosaic=mosaic,
                      blur_sigma=0.4 * scale if scale > 1 else 0.0, noise=noise, exposure=(0.8, 1.2))
    burst = synthesize_burst(_scene(), cfg, torch.Generator().manual_seed(3))
    frames = burst["frames"][0]
    est = register_burst(frames, model=model, raw=mosaic)
    err = motion_error(est, burst["motion"][0], *frames.shape[-2:])
    assert err[0] == 0
    assert err.max() < tol, err
    # and the identity guess would be far off: the test can fail
    naive = motion_error(torch.eye(2, 3).expand(4, 2, 3), burst["motion"][0], *frames.shape[-2:])
    assert naive[1:].min() > 0.5


def test_phase_correlation_finds_large_integer_shift():
    img = _scene(128).mean(dim=1, keepdim=True).double()
    moved = torch.roll(img, shifts=(7, -11), dims=(2, 3))  # moved(p) = img(p - (−11, 7))
    dx, dy = phase_correlation(img, moved)
    assert abs(dx - (-11)) < 0.2 and abs(dy - 7) < 0.2


def test_bad_input_is_user_error():
    with pytest.raises(UserError):
        register(torch.rand(3, 32, 32), torch.rand(3, 32, 30))
    with pytest.raises(UserError):
        register(torch.rand(3, 32, 32), torch.rand(3, 32, 32), model="homography")


@pytest.mark.parametrize("model", ["translation", "euclidean", "affine"])
def test_featureless_frames_register_to_no_motion(model):
    """Frames without usable gradients (a flat dark frame, a pixel-period pattern whose central differences
    vanish) give the identity, not a singular-matrix traceback."""
    rows, cols = torch.meshgrid(torch.arange(48), torch.arange(48), indexing="ij")
    checker = (0.5 + 0.1 * ((rows + cols) % 2 * 2 - 1).float())[None]
    for frame in (torch.full((1, 48, 48), 0.02), checker):
        affines = register_burst(torch.stack([frame, frame + 0.01]), model=model)
        assert torch.allclose(affines[1], torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]), atol=1e-3)
