import os

os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np
import pytest
import torch

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.fixture
def rgb_image():
    """A natural-looking 96x128 RGB image in [0, 1] from scikit-image's bundled astronaut."""
    from skimage import data

    return (data.astronaut()[100:196, 150:278].astype(np.float32) / 255.0).copy()


@pytest.fixture(scope="session")
def astronaut():
    """scikit-image's bundled astronaut, 512x512 RGB in [0, 1]."""
    from skimage import data

    return data.astronaut().astype(np.float32) / 255


@pytest.fixture
def tiny_video_start(tmp_path):
    """A tiny (untrained, seeded) single-frame denoiser file for `video` command tests: they check how the
    command runs, resumes and writes, not restoration quality."""
    from selfrestore.checkpoint import build_net, save_checkpoint

    torch.manual_seed(0)
    path = tmp_path / "start.safetensors"
    save_checkpoint(path, build_net("unet", in_channels=3, out_channels=3, width=4, depth=2),
                    {"method": {"name": "n2c", "noise": None}, "channels": 3})
    return path
