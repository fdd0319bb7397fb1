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


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A tiny (untrained, seeded) single-frame denoiser file for `video` command tests: they check how the
    command runs, resumes and writes, not restoration quality."""
    from selfrestore.checkpoint import build_net, save_checkpoint

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_checkpoint(path, build_net("unet", in_channels=3, out_channels=3, width=4, depth=2),
                    {"method": {"name": "n2c", "noise": None}, "channels": 3})
    return path


@pytest.fixture
def fail_at_call(monkeypatch):
    """``fail_at_call(owner, "name", call, exc)``: ``owner.name`` raises ``exc`` at its ``call``-th call (a kill,
    a diverged loss, a full disk at a chosen moment) and works as before otherwise; returns the undo."""

    def arm(owner, name: str, call: int, exc: BaseException):
        original, calls = getattr(owner, name), {"n": 0}

        def failing(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == call:
                raise exc
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, failing)
        return lambda: monkeypatch.setattr(owner, name, original)

    return arm
