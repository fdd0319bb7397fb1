"""The plain U-Nets build and run at every depth `fit --depth` accepts."""
import pytest
import torch

from selfrestore.checkpoint import build_net


@pytest.mark.parametrize("name, channels", [("unet", 3), ("dual_unet", 6)])
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_unet_of_any_depth_keeps_the_image_size(name, channels, depth):
    """`fit --depth 1` built a U-Net whose last block expected 2x the maps it got (a RuntimeError at step 1)."""
    net = build_net(name, in_channels=channels, out_channels=3, width=4, depth=depth)
    side = 4 * net.size_multiple
    assert net(torch.rand(1, channels, side, side)).shape == (1, 3, side, side)
