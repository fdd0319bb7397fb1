"""Every single-image model shipped inside the package loads and denoises the noise it was trained for."""
import numpy as np
import pytest
import torch
from skimage import data

from selfrestore.checkpoint import load_model, shipped_models
from selfrestore.corruption import parse_corruption
from selfrestore.metrics import psnr
from selfrestore.restore import restore_tensor

#: the test noise for a model trained on a range of levels: a level inside the range
TEST_NOISE = {"gauss5_50": "gauss25"}


def _single_image_models() -> list[str]:
    from selfrestore.commands.demo import _single_image_model

    return [name for name, path in shipped_models().items() if _single_image_model(path)]


@pytest.mark.parametrize("name", _single_image_models())
def test_shipped_model_denoises_an_image_it_never_saw(name):
    method, net, header = load_model(name)
    noise_name = header["method"].get("noise") or "gauss25"
    noise = parse_corruption(TEST_NOISE.get(noise_name, noise_name))
    clean = data.chelsea()[100:228, 150:278].astype(np.float32) / 255.0  # a cat: not in BSDS500
    x = torch.from_numpy(clean.transpose(2, 0, 1).copy())[None]
    noisy = noise.sample(x, torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = restore_tensor(method, net, noisy)
    before = psnr(noisy[0].clamp(0, 1).numpy().transpose(1, 2, 0), clean)
    after = psnr(out[0].clamp(0, 1).numpy().transpose(1, 2, 0), clean)
    assert after > before + 4.0, f"{name}: {before:.2f} -> {after:.2f} dB"
    assert header.get("info"), f"{name}: a shipped model must say how it was trained (export_model --info)"
