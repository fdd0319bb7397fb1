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
