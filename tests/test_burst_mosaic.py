"""Bayer RGGB mosaic, packing and bilinear demosaicking."""
import pytest
import torch

from selfrestore.corruption.mosaic import (bayer_mask, bilinear_demosaic, mosaic, pack_raw, raw_luminance,
                                           unpack_raw)
from selfrestore.errors import UserError


def test_rggb_layout_and_one_colour_per_pixel():
    mask = bayer_mask(4, 6)
    assert torch.equal(mask.sum(dim=1), torch.ones(1, 4, 6))
    assert mask[0, 0, 0, 0] == 1 and mask[0, 1, 0, 1] == 1 and mask[0, 1, 1, 0] == 1 and mask[0, 2, 1, 1] == 1
    assert mask[0, 0].sum() == 6 and mask[0, 1].sum() == 12 and mask[0, 2].sum() == 6


def test_mosaic_keeps_measured_colour_and_pack_roundtrip():
    rgb = torch.rand(2, 3, 8, 10)
    raw = mosaic(rgb)
    assert raw.shape == (2, 1, 8, 10)
    assert torch.equal(raw[:, 0, 0::2, 0::2], rgb[:, 0, 0::2, 0::2])
    assert torch.equal(raw[:, 0, 1::2, 1::2], rgb[:, 2, 1::2, 1::2])
    assert torch.equal(raw[:, 0, 0::2, 1::2], rgb[:, 1, 0::2, 1::2])
    packed = pack_raw(raw)
    assert packed.shape == (2, 4, 4, 5)
    assert torch.equal(unpack_raw(packed), raw)
    assert raw_luminance(raw).shape == (2, 1, 4, 5)


def test_bilinear_demosaic_exact_on_constant_and_linear_images():
    const = torch.tensor([0.2, 0.5, 0.7]).view(1, 3, 1, 1).expand(1, 3, 8, 8)
    assert torch.allclose(bilinear_demosaic(mosaic(const)), const, atol=1e-6)
    ramp = torch.linspace(0, 1, 16).view(1, 1, 1, 16).expand(1, 3, 16, 16).clone()
    out = bilinear_demosaic(mosaic(ramp))
    # bilinear interpolation reproduces a linear ramp away from the borders and keeps measured samples
    assert torch.allclose(out[..., 2:-2, 2:-2], ramp[..., 2:-2, 2:-2], atol=1e-6)
    assert torch.allclose(mosaic(out), mosaic(ramp))


def test_odd_sizes_are_a_user_error():
    with pytest.raises(UserError):
        mosaic(torch.rand(1, 3, 5, 6))
