"""Noise2Void masking and Neighbor2Neighbor sub-sampling / loss, plus short trainings that must denoise."""
import numpy as np
import pytest
import torch
from torch import nn

from selfrestore.corruption import parse_corruption
from selfrestore.errors import UserError
from selfrestore.methods.n2v import Noise2Void, n2v_mask
from selfrestore.methods.nb2nb import Neighbor2Neighbor
from selfrestore.methods.subsample import ADJACENT_PAIRS, neighbour_indices, neighbour_pair, subsample
from selfrestore.registry import METHODS, NETS


def _coordinates(n, h, w):
    """A 2-channel image whose values are each pixel's own (row, col)."""
    rows = torch.arange(h).view(1, 1, h, 1).expand(n, 1, h, w)
    cols = torch.arange(w).view(1, 1, 1, w).expand(n, 1, h, w)
    return torch.cat([rows, cols], dim=1).float()


# --- the neighbour sub-sampler ---------------------------------------------------------------------------

def test_subsampled_pixels_are_adjacent_neighbours_in_the_same_cell():
    g = torch.Generator().manual_seed(0)
    coords = _coordinates(3, 10, 14)
    a, b = neighbour_pair(coords, g)
    assert a.shape == b.shape == (3, 2, 5, 7)
    dist = (a - b).abs().sum(dim=1)
    assert torch.all(dist == 1), "g1 and g2 must be 4-neighbours (never the same pixel, never diagonal)"
    cell_rows = torch.arange(5).view(1, 5, 1) * 2
    assert torch.all((a[:, 0] - cell_rows).abs() <= 1) and torch.all(a[:, 0] >= cell_rows)


def test_all_eight_adjacent_pairs_are_drawn_about_equally():
    g = torch.Generator().manual_seed(1)
    i1, i2 = neighbour_indices(torch.zeros(4, 1, 64, 64), g)
    codes = (i1 * 4 + i2).flatten()
    expected = {int(p[0] * 4 + p[1]) for p in ADJACENT_PAIRS}
    counts = torch.bincount(codes, minlength=16)
    assert {int(k) for k in torch.nonzero(counts).flatten()} == expected
    freq = counts[list(expected)].float() / codes.numel()
    assert torch.all((freq - 1 / 8).abs() < 0.02)


def test_same_indices_apply_to_other_images():
    g = torch.Generator().manual_seed(2)
    x = torch.rand(2, 3, 8, 8)
    idx1, _ = neighbour_indices(x, g)
    coords = _coordinates(2, 8, 8)
    picked = subsample(coords, idx1).long()  # where each sub-image pixel came from
    expected = x[torch.arange(2).view(2, 1, 1, 1), torch.arange(3).view(1, 3, 1, 1),
                 picked[:, None, 0], picked[:, None, 1]]
    torch.testing.assert_close(subsample(x, idx1), expected)


# --- Neighbor2Neighbor -------------------------------------------------------------------------------

class Identity(nn.Module):
    size_multiple = 1

    def forward(self, x):
        return x * 1.0


def test_nb2nb_gamma_ramps_from_zero_to_gamma():
    method = METHODS.get("nb2nb")(gamma=2.0)
    values = []
    for p in (0.0, 0.5, 1.0):
        method.progress = p
        values.append(method.gamma())
    assert values == [0.0, 1.0, 2.0]
    assert method.config()["gamma"] == 2.0


def test_nb2nb_loss_terms():
    torch.manual_seed(0)
    y = torch.rand(2, 3, 16, 16)
    method = Neighbor2Neighbor(gamma=2.0)
    method.progress = 1.0
    # identity net: f(g1(y)) - g2(y) equals g1(f(y)) - g2(f(y)), the regulariser vanishes
    torch.manual_seed(5)
    with_reg = method.loss(Identity(), {"noisy": y})
    method.progress = 0.0
    torch.manual_seed(5)
    without = method.loss(Identity(), {"noisy": y})
    torch.testing.assert_close(with_reg, without)

    class Constant(nn.Module):
        size_multiple = 1

        def forward(self, x):
            return torch.full_like(x, 0.5)

    method.progress = 1.0
    torch.manual_seed(5)
    loss = method.loss(Constant(), {"noisy": y})
    torch.manual_seed(5)
    i1, i2 = neighbour_indices(y)
    g2 = subsample(y, i2)
    rec = torch.mean((0.5 - g2) ** 2)
    torch.testing.assert_close(loss, rec + 2.0 * rec)  # constant f: g1(f) - g2(f) = 0


def test_nb2nb_rejects_patches_that_do_not_fit_the_net():
    net = NETS.get("unet")(in_channels=3, out_channels=3, width=4, depth=2)
    with pytest.raises(UserError):
        Neighbor2Neighbor().loss(net, {"noisy": torch.rand(1, 3, 12, 12)})


# --- Noise2Void --------------------------------------------------------------------------------------

def test_n2v_mask_replaces_chosen_pixels_by_other_neighbours():
    g = torch.Generator().manual_seed(0)
    coords = _coordinates(2, 40, 40)
    masked, mask = n2v_mask(coords, ratio=0.02, radius=2, generator=g)
    m = mask[:, 0].bool()
    assert 20 <= m.sum().item() / 2 <= 40  # one per 7x7 box: ~33 per 40x40 image
    unchanged = ~m.unsqueeze(1).expand_as(coords)
    assert torch.equal(masked[unchanged], coords[unchanged])
    src, dst = masked.permute(0, 2, 3, 1)[m], coords.permute(0, 2, 3, 1)[m]
    offset = (src - dst).abs()
    assert torch.all(offset.max(dim=1).values <= 2)
    assert torch.all(offset.sum(dim=1) > 0), "a masked pixel must never keep its own value"


@pytest.mark.parametrize("radius", [1, 2, 5])
def test_n2v_mask_never_gives_a_border_pixel_its_own_value(radius):
    """Mirroring an offset of -2 at row 1 landed on row 1 again: about 0.5% of the masked pixels (those next
    to a patch border) kept their own value at the default radius 2. Many small patches, dense masks."""
    g = torch.Generator().manual_seed(1)
    coords = _coordinates(64, 12, 12)
    masked, mask = n2v_mask(coords, ratio=0.5, radius=radius, generator=g)
    m = mask[:, 0].bool()
    offset = (masked.permute(0, 2, 3, 1)[m] - coords.permute(0, 2, 3, 1)[m]).abs()
    assert m.sum() > 1000 and torch.all(offset.sum(dim=1) > 0)
    assert torch.all(offset.max(dim=1).values <= radius)


def test_n2v_loss_ignores_unmasked_pixels():
    torch.manual_seed(0)
    net = NETS.get("unet")(in_channels=1, out_channels=1, width=4, depth=2)
    y = torch.rand(1, 1, 16, 16, requires_grad=False)
    out_holder = {}

    class Spy(nn.Module):
        def forward(self, x):
            out = net(x)
            out.retain_grad()
            out_holder["out"] = out
            return out

    torch.manual_seed(3)
    method = Noise2Void(mask_ratio=0.05)
    method.loss(Spy(), {"noisy": y}).backward()
    torch.manual_seed(3)
    _, mask = n2v_mask(y, 0.05, 2)
    grad = out_holder["out"].grad
    assert torch.all(grad[mask == 0] == 0) and torch.any(grad[mask == 1] != 0)


# --- both must actually denoise ----------------------------------------------------------------------

def _smooth_image(h=64, w=64):
    yy, xx = np.mgrid[0:h, 0:w] / 16.0
    img = np.stack([0.5 + 0.3 * np.sin(yy), 0.5 + 0.3 * np.cos(xx), 0.5 + 0.2 * np.sin(xx + yy)])
    return torch.from_numpy(img).float()[None]


def _psnr(a, b):
    return float(-10 * torch.log10(((a - b) ** 2).mean()))


@pytest.mark.parametrize("name,options,steps", [("n2v", {"mask_ratio": 0.05}, 400), ("nb2nb", {}, 300)])
def test_short_training_denoises(name, options, steps):
    torch.manual_seed(0)
    clean = _smooth_image().repeat(2, 1, 1, 1)
    noisy = parse_corruption("gauss25").sample(clean, torch.Generator().manual_seed(0))
    method = METHODS.get(name)(noise=parse_corruption("gauss25"), width=8, depth=2, **options)
    net = NETS.get(method.default_net)(**method.net_kwargs(3))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for step in range(steps):
        method.progress = step / steps
        i, j = torch.randint(0, 64 - 32 + 1, (2,), generator=g).tolist()
        loss = method.loss(net, {"noisy": noisy[:, :, i:i + 32, j:j + 32], "clean": None})
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        out = method.restore(net, noisy)
    gain = _psnr(out, clean) - _psnr(noisy, clean)
    assert gain > 5.0
