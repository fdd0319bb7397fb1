import numpy as np
import torch

from selfrestore.checkpoint import build_net
from selfrestore.methods.n2n import Noise2Noise
from selfrestore.restore import receptive_margin, reflect_indices, restore_array


def test_unet_receptive_field_bound_holds():
    """The declared radius bounds where an output pixel's gradient can reach (autograd, fp64)."""
    torch.manual_seed(0)
    net = build_net("unet", width=4).double()
    x = torch.rand(1, 3, 512, 512, dtype=torch.float64, requires_grad=True)
    net(x)[0, :, 256, 256].sum().backward()
    support = torch.nonzero(x.grad[0].abs().sum(0))
    reach = int((support - 256).abs().max())
    assert 0 < reach <= net.receptive_field


def test_tiled_equals_untiled_on_1024x1536():
    torch.manual_seed(0)
    net = build_net("unet", width=4).eval()  # same depth (5 pools) and receptive field as the default
    image = np.random.default_rng(0).random((1024, 1536, 3), dtype=np.float32)
    method = Noise2Noise()
    whole = restore_array(method, net, image, tile=4096, device="cpu")
    tiled = restore_array(method, net, image, tile=256, device="cpu", context="full")
    assert receptive_margin(net) >= net.receptive_field
    assert whole.shape == image.shape
    assert np.abs(whole - tiled).max() < 1e-5


def test_automatic_context_caps_the_margin_and_keeps_tiled_close_to_untiled(monkeypatch):
    """--tile-context auto carries at most AUTO_CONTEXT px (the U-Net's exact margin is 224): the tiles
    compute less, and the result stays close to the untiled one; without context the seams show."""
    import selfrestore.restore as restore_module
    from selfrestore.restore import AUTO_CONTEXT, tile_margin

    torch.manual_seed(0)
    net = build_net("unet", width=4).eval()
    assert tile_margin(net, "full") == receptive_margin(net) == 224 and tile_margin(net) == AUTO_CONTEXT == 128
    calls = []

    def fn(x):
        calls.append(x.shape[-2] * x.shape[-1])
        return Noise2Noise().restore(net, x)

    image = np.random.default_rng(0).random((768, 768, 3), dtype=np.float32)
    whole = restore_array(None, net, image, tile=1024, device="cpu", fn=fn)
    calls.clear()
    exact = restore_array(None, net, image, tile=256, device="cpu", fn=fn, context="full")
    computed_full = sum(calls)
    calls.clear()
    cheap = restore_array(None, net, image, tile=256, device="cpu", fn=fn)
    assert sum(calls) < 0.7 * computed_full
    assert np.abs(exact - whole).max() < 1e-5 and np.abs(cheap - whole).max() < 1e-4
    monkeypatch.setattr(restore_module, "AUTO_CONTEXT", 0)
    assert np.abs(restore_array(None, net, image, tile=256, device="cpu", fn=fn) - whole).max() > 1e-3


def test_the_blind_spot_nets_carry_their_own_wider_automatic_context():
    """At 128 px of context laine19-gauss25's tiles moved 2.9% of a Kodak mosaic's 8-bit values (up to 3.4
    levels; benchmarks/results/tile_context.md): the blind-spot nets carry 256 px under auto, the U-Nets 128."""
    from selfrestore.restore import AUTO_CONTEXT, tile_margin

    blind = build_net("blindspot", width=4)
    assert tile_margin(blind) == 256 < tile_margin(blind, "full")
    assert tile_margin(build_net("unet", width=4)) == AUTO_CONTEXT == 128


def test_odd_and_tiny_sizes_restore_to_the_same_shape():
    net = build_net("unet", width=8).eval()
    for shape in [(1, 1, 3), (5, 37, 3), (33, 65, 1)]:
        net_c = build_net("unet", width=8, in_channels=shape[2], out_channels=shape[2]).eval()
        out = restore_array(Noise2Noise(), net_c, np.random.rand(*shape).astype(np.float32), device="cpu")
        assert out.shape == shape and np.isfinite(out).all()
    del net


def test_reflect_indices_mirror_without_repeating_the_edge():
    assert reflect_indices(0, 7, 4).tolist() == [0, 1, 2, 3, 2, 1, 0]
    assert reflect_indices(0, 3, 1).tolist() == [0, 0, 0]


def test_self_ensemble_of_an_equivariant_function_is_identity():
    class Identity(torch.nn.Module):
        size_multiple, receptive_field = 1, 0

        def forward(self, x):
            return x

    image = np.random.rand(20, 30, 3).astype(np.float32)
    out = restore_array(Noise2Noise(), Identity(), image, ensemble=True, device="cpu")
    assert np.allclose(out, image, atol=1e-6)


def test_blind_spot_survives_border_padding():
    """Near the bottom/right edges of an image that is not a multiple of the pooling size, the output at a
    pixel must still ignore that pixel: restoration pads blind-spot nets with zeros, not mirror copies."""
    torch.manual_seed(0)
    net = build_net("blindspot", in_channels=1, out_channels=1, width=4, depth=2).eval()
    image = np.random.default_rng(0).random((13, 19, 1), dtype=np.float32)
    base = restore_array(None, net, image, device="cpu", fn=net)
    for y, x in [(11, 17), (12, 18), (12, 3), (4, 17)]:
        poked = image.copy()
        poked[y, x] += 5.0
        out = restore_array(None, net, poked, device="cpu", fn=net)
        assert abs(out[y, x, 0] - base[y, x, 0]) < 1e-6
        assert np.abs(out - base).max() > 1e-4  # the poke does reach the neighbours


def test_the_tile_context_option_offers_what_the_restorer_takes():
    """The command line spells the choices out (its module does not import torch): they must stay the same."""
    import argparse

    from selfrestore.commands._common import add_tile_context
    from selfrestore.restore import TILE_CONTEXTS

    parser = argparse.ArgumentParser()
    add_tile_context(parser.add_argument_group("g"), "help")
    action = next(a for a in parser._actions if a.dest == "tile_context")
    assert tuple(action.choices) == TILE_CONTEXTS and action.default == "auto"


def _range_model():
    """A small blind-spot net under a Laine19 gauss5_50 method: it estimates each image's noise level."""
    from selfrestore.corruption.base import parse_corruption
    from selfrestore.methods.laine19 import Laine19

    torch.manual_seed(3)
    method = Laine19(noise=parse_corruption("gauss5_50"), head="full")
    net = build_net("blindspot", **{**method.net_kwargs(3), "width": 8, "depth": 2}).eval()
    assert method.restore_estimates_level
    return method, net


def _flat_and_busy(height: int = 120, width: int = 136) -> np.ndarray:
    """Noise on a flat left part and on texture on the right: tiles of it would find different levels."""
    rng = np.random.default_rng(4)
    clean = np.full((height, width, 3), 0.5, np.float32)
    clean[:, width // 2:] = rng.random((height, width - width // 2, 3))
    return (clean + 0.1 * rng.standard_normal(clean.shape)).astype(np.float32)


def test_an_estimated_noise_level_is_one_per_image_so_tiled_equals_untiled():
    """laine19 over a range of levels estimates the level of each image; tile by tile it took one level per
    tile (its tiled result differed from the untiled one whatever the context). Now one level per image, from
    the assembled outputs: tiled == untiled with full context, for the mean and for the uncertainty, and
    the level is the one restore finds on the whole image."""
    method, net = _range_model()
    image = _flat_and_busy()
    whole = restore_array(method, net, image, tile=4096, device="cpu")
    tiled = restore_array(method, net, image, tile=64, device="cpu", context="full")
    assert np.abs(whole - tiled).max() < 1e-5
    both_whole = restore_array(method, net, image, tile=4096, device="cpu", uncertainty=True)
    both_tiled = restore_array(method, net, image, tile=64, device="cpu", context="full", uncertainty=True)
    assert both_whole.shape == (*image.shape[:2], 6) and np.abs(both_whole - both_tiled).max() < 1e-5
    assert np.abs(both_whole[:, :, :3] - whole).max() < 1e-6 and both_whole[:, :, 3:].min() >= 0
    x = torch.from_numpy(image[:112, :136].transpose(2, 0, 1).copy())[None]  # sides multiples of 4: no padding
    with torch.no_grad():
        direct = method.restore(net, x)[0].numpy().transpose(1, 2, 0)
        level = method.level_from_output(net(x), x)["sigma"]
    assert np.abs(restore_array(method, net, image[:112], tile=4096, device="cpu") - direct).max() < 1e-5
    per_tile = [method.level_from_output(net(t), t)["sigma"].item() for t in (x[..., :56, :64], x[..., 56:, 72:])]
    assert max(abs(v - level.item()) for v in per_tile) > 0.005  # the tiles alone would have found other levels


def test_an_estimated_level_with_the_ensemble_is_the_whole_images_too():
    method, net = _range_model()
    image = _flat_and_busy()
    whole = restore_array(method, net, image, tile=4096, device="cpu", ensemble=True)
    tiled = restore_array(method, net, image, tile=64, device="cpu", context="full", ensemble=True)
    assert np.abs(whole - tiled).max() < 1e-5


def test_the_posterior_of_an_estimated_level_in_bands_equals_one_band(monkeypatch):
    """Bands of 7 rows (a partial last one) and of one row give what one band gives, mean and uncertainty."""
    import selfrestore.restore as restore_module

    method, net = _range_model()
    image = _flat_and_busy(60, 40)
    one = restore_array(method, net, image, device="cpu", uncertainty=True)
    for rows in (7, 1):
        monkeypatch.setattr(restore_module, "POSTERIOR_BAND_PIXELS", rows * 40)
        assert np.array_equal(restore_array(method, net, image, device="cpu", uncertainty=True), one)


def test_a_mean_only_model_over_a_range_of_levels_restores_to_its_mean():
    """The "mu" head has no prior covariance to estimate a level with: restore returns the mean (the level-first
    path took it for a level-estimating model and failed on the missing covariance)."""
    from selfrestore.corruption.base import parse_corruption
    from selfrestore.methods.laine19 import Laine19

    torch.manual_seed(3)
    method = Laine19(noise=parse_corruption("gauss5_50"), head="mu")
    net = build_net("blindspot", **{**method.net_kwargs(3), "width": 8, "depth": 2}).eval()
    image = _flat_and_busy(32, 40)
    with torch.no_grad():
        mean = net(torch.from_numpy(image.transpose(2, 0, 1).copy())[None])[0].numpy().transpose(1, 2, 0)
    assert not method.restore_estimates_level
    assert np.abs(restore_array(method, net, image, device="cpu") - mean).max() < 1e-6


def test_a_trimmed_blind_spot_pass_equals_the_middle_of_the_whole_one():
    """forward(x, trim) runs each rotated branch without the side it never looks at and combines the kept
    pixels only: the untrimmed output's middle, for trims of whole multiples of 4 and not (to float32 round-off:
    oneDNN may pick another convolution algorithm for another input shape, which can change the last bit)."""
    _, net = _range_model()
    x = torch.from_numpy(_flat_and_busy(64, 96).transpose(2, 0, 1).copy())[None]
    x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        whole = net(x)
        for top, bottom, left, right in [(0, 0, 0, 0), (8, 0, 0, 0), (0, 8, 0, 0), (0, 0, 8, 0), (0, 0, 0, 8),
                                         (16, 8, 12, 20), (3, 5, 7, 9)]:
            trimmed = net(x, (top, bottom, left, right))
            assert torch.allclose(trimmed, whole[:, :, top:64 - bottom, left:96 - right], rtol=0, atol=1e-6)


def test_tiles_of_a_trimming_net_compute_less_and_give_the_same_result(monkeypatch):
    """restore_array has a blind-spot net leave out each tile's context where no kept output looks (and its 1x1
    combination compute the tile's own pixels only): the same result as without (to float32 round-off), tiled
    or not."""
    import selfrestore.restore as restore_module

    method, net = _range_model()
    image = _flat_and_busy(100, 136)
    computed = []
    branch = net.branch.forward
    monkeypatch.setattr(net.branch, "forward", lambda x: computed.append(x.shape[-2] * x.shape[-1]) or branch(x))
    trimmed = [restore_array(method, net, image, tile=tile, device="cpu", context="full") for tile in (64, 4096)]
    trimmed_pixels = sum(computed)
    computed.clear()
    monkeypatch.setattr(net, "takes_trim", False)
    whole = [restore_array(method, net, image, tile=tile, device="cpu", context="full") for tile in (64, 4096)]
    assert all(np.allclose(a, b, rtol=0, atol=1e-6) for a, b in zip(trimmed, whole))
    assert trimmed_pixels < 0.9 * sum(computed)
    assert restore_module.tile_margin(net, "full") > 0


def test_automatic_tiles_stay_within_the_single_tile_budget_and_are_even():
    """Over 1.5 MP the automatic tile sides are at most the largest square whose tile and context compute no
    more than a 1.5 MP image (at least AUTO_TILE), multiples of the net's size, and evened out: the last tile of a
    row or column is not a thin strip whose context costs as much as a whole tile."""
    import math

    from selfrestore.restore import AUTO_SINGLE_TILE_PIXELS, AUTO_TILE, auto_tile

    for height, width in [(1536, 2048), (3000, 4000), (4000, 6000), (1300, 1200), (7744, 5163)]:
        for multiple, margin in [(32, 256), (32, 128), (16, 224), (32, 384)]:
            tiles = auto_tile(height, width, multiple, margin)
            largest = max(tiles)
            assert all(side % multiple == 0 for side in tiles)
            assert (largest + 2 * margin) ** 2 <= AUTO_SINGLE_TILE_PIXELS or largest <= AUTO_TILE
            for side, tile in zip((height, width), tiles):
                rest = side - (math.ceil(side / tile) - 1) * tile
                assert rest >= tile - multiple * math.ceil(side / tile), (side, tile, rest)
    assert min(auto_tile(3000, 4000, 32, 256)) > AUTO_TILE  # the default model's context: larger tiles than before
    assert auto_tile(3000, 4000, 32, 384) == (AUTO_TILE, AUTO_TILE)  # full context: over the budget at 512 already


def test_a_known_level_trims_tiles_too_with_the_same_mean_and_uncertainty(monkeypatch):
    """With the level given (laine19-gauss25, or --noise-sigma), each tile's posterior is computed from the net's
    trimmed output and the tile's own pixels (restore_from_output): the same mean and variance as untrimmed
    (float32 round-off), tiled with full context equal to untiled, and less computed."""
    method, net = _range_model()
    image = _flat_and_busy(100, 136)
    computed = []
    branch = net.branch.forward
    monkeypatch.setattr(net.branch, "forward", lambda x: computed.append(x.shape[-2] * x.shape[-1]) or branch(x))
    kinds = [dict(params={"sigma": 0.1}), dict(params={"sigma": 0.1}, uncertainty=True)]
    trimmed = [restore_array(method, net, image, tile=tile, device="cpu", context="full", **kind)
               for kind in kinds for tile in (64, 4096)]
    trimmed_pixels = sum(computed)
    computed.clear()
    monkeypatch.setattr(net, "takes_trim", False)
    whole = [restore_array(method, net, image, tile=tile, device="cpu", context="full", **kind)
             for kind in kinds for tile in (64, 4096)]
    assert all(a.shape == b.shape and np.allclose(a, b, rtol=0, atol=1e-6) for a, b in zip(trimmed, whole))
    assert np.allclose(trimmed[0], trimmed[1], rtol=0, atol=1e-5)  # tiled == untiled
    assert trimmed_pixels < 0.9 * sum(computed)


def test_the_ensemble_trims_tiles_too_each_pass_with_its_trim_turned(monkeypatch):
    """With --ensemble, each of the eight flipped / rotated passes over a tile is given the tile's trim turned with
    it: the same mean and variance as untrimmed (float32 round-off), for a known and an estimated level, tiles on
    a side that is not square, and less computed."""
    method, net = _range_model()
    image = _flat_and_busy(100, 136)
    computed = []
    branch = net.branch.forward
    monkeypatch.setattr(net.branch, "forward", lambda x: computed.append(x.shape[-2] * x.shape[-1]) or branch(x))
    kinds = [dict(params={"sigma": 0.1}), dict(params={"sigma": 0.1}, uncertainty=True), {}]
    trimmed = [restore_array(method, net, image, tile=tile, device="cpu", context="full", ensemble=True, **kind)
               for kind in kinds for tile in (64, 4096)]
    trimmed_pixels = sum(computed)
    computed.clear()
    monkeypatch.setattr(net, "takes_trim", False)
    whole = [restore_array(method, net, image, tile=tile, device="cpu", context="full", ensemble=True, **kind)
             for kind in kinds for tile in (64, 4096)]
    assert all(a.shape == b.shape and np.allclose(a, b, rtol=0, atol=1e-6) for a, b in zip(trimmed, whole))
    assert np.allclose(trimmed[0], trimmed[1], rtol=0, atol=1e-5)  # tiled == untiled
    assert trimmed_pixels < 0.9 * sum(computed)


def test_a_trim_turned_with_its_tile_keeps_the_same_pixels():
    """_d4_trim: the pixels kept of the turned tile are the turned kept pixels, for all eight turns."""
    from selfrestore.restore import _d4, _d4_trim

    x = torch.arange(7 * 11, dtype=torch.float32).reshape(7, 11)
    top, bottom, left, right = 1, 2, 3, 4
    kept = x[top:7 - bottom, left:11 - right]
    for k in range(8):
        turned = _d4(x, k)
        t, b, l, r = _d4_trim((top, bottom, left, right), 7, 11, k)
        assert torch.equal(turned[t:turned.shape[0] - b, l:turned.shape[1] - r], _d4(kept, k)), k
