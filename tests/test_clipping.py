"""Clipped Gaussian noise: the mean of clipped values, its inverse, the level measured on a clipped image, and
restore's correction (--clipping)."""
import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import uniform_filter

from selfrestore.cli import main
from selfrestore.corruption.clipping import (clipped_bounds, clipped_mean, clipped_noise_level, clipped_slope,
                                             clipping_of, clipping_of_planes, plane_groups, unclip)
from selfrestore.restore import Restorer

SIGMA = 25 / 255
ENDS = [(True, True), (True, False), (False, True)]


def clip8(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)


@pytest.mark.parametrize("low,high", ENDS)
def test_clipped_mean_matches_sampling(low, high):
    rng = np.random.default_rng(0)
    x = np.array([0.0, 0.02, 0.1, 0.5, 0.93, 1.0])
    y = x[:, None] + SIGMA * rng.standard_normal((x.size, 400_000))
    y = np.clip(y, 0 if low else -np.inf, 1 if high else np.inf)
    np.testing.assert_allclose(clipped_mean(x, SIGMA, low, high), y.mean(axis=1), atol=6e-4)
    # far from a clipped end the mean is x itself; at a clipped end it is pulled ~0.4 sigma inwards
    assert abs(clipped_mean(0.5, SIGMA, low, high) - 0.5) < 1e-6
    if low:
        assert clipped_mean(0.0, SIGMA, low, high) == pytest.approx(0.3989 * SIGMA, rel=1e-3)
    if high:
        assert 1 - clipped_mean(1.0, SIGMA, low, high) == pytest.approx(0.3989 * SIGMA, rel=1e-3)


@pytest.mark.parametrize("sigma", [SIGMA, 0.5])
@pytest.mark.parametrize("low,high", ENDS)
def test_unclip_inverts_the_mean_and_maps_the_std_by_the_slope(low, high, sigma):
    x = np.linspace(0.001 if low else -0.2, 0.999 if high else 1.2, 500)
    back, _ = unclip(clipped_mean(x, sigma, low, high), sigma, low, high)
    np.testing.assert_allclose(back, x, atol=3e-4)
    h = 1e-5
    numeric = (clipped_mean(x + h, sigma, low, high) - clipped_mean(x - h, sigma, low, high)) / (2 * h)
    np.testing.assert_allclose(clipped_slope(x, sigma, low, high), numeric, atol=1e-6)
    inside = (x >= 0) & (x <= 1)
    _, std = unclip(clipped_mean(x, sigma, low, high), sigma, low, high, std=np.full_like(x, 0.01))
    np.testing.assert_allclose(std[inside], 0.01 / clipped_slope(x[inside], sigma, low, high), rtol=3e-3)
    assert std.min() >= 0.01 - 1e-7 and std.max() > 0.015


def test_unclip_at_and_past_the_ends():
    m0, m1 = clipped_mean(np.array([0.0, 1.0]), SIGMA)
    out, _ = unclip(np.array([m0 - 0.01, m0, m1, m1 + 0.01, np.nan]), SIGMA)
    np.testing.assert_allclose(out[:4], [0, 0, 1, 1], atol=1e-4)  # a clipped end stops x
    assert np.isnan(out[4])
    # an end that was not clipped: far out the mean is the value itself
    np.testing.assert_allclose(unclip(np.array([1.3]), SIGMA, low=True, high=False)[0], 1.3, atol=1e-6)
    np.testing.assert_allclose(unclip(np.array([-0.3]), SIGMA, low=False, high=True)[0], -0.3, atol=1e-6)
    estimate = np.array([-0.05, 0.5, 1.05])
    np.testing.assert_array_equal(unclip(estimate, SIGMA, low=False, high=False)[0], estimate.astype(np.float32))
    big = np.random.default_rng(0).uniform(0, 1, (1500, 1000)).astype(np.float32)  # more than one block
    expected = np.interp(big, clipped_mean(np.linspace(0, 1, 8193), SIGMA), np.linspace(0, 1, 8193))
    np.testing.assert_allclose(unclip(big, SIGMA)[0], expected, atol=1e-6)
    std = np.full_like(big, 0.01)
    mean, spread = unclip(big, SIGMA, std=std, in_place=True)
    assert mean is not None and np.shares_memory(mean, big) and np.shares_memory(spread, std)
    np.testing.assert_allclose(big, expected, atol=1e-6)  # written into the caller's arrays
    np.testing.assert_allclose(std, 0.01 / clipped_slope(expected, SIGMA), rtol=1e-5)


def test_clipped_bounds():
    rng = np.random.default_rng(1)
    noisy = np.linspace(0, 1, 64 * 64).reshape(64, 64) + SIGMA * rng.standard_normal((64, 64))
    assert clipped_bounds(np.clip(noisy, 0, 1)) == (True, True)
    assert clipped_bounds(clip8(noisy) / 255.0) == (True, True)
    assert clipped_bounds(noisy) == (False, False)  # unclipped float noise: values beyond both ends
    assert clipped_bounds(np.clip(noisy, -np.inf, 1)) == (False, True)
    assert clipped_bounds(np.clip(noisy, 0.1, 0.9)) == (False, False)  # no value on an end
    few_zeros = np.full((64, 64), 0.5)
    few_zeros[0, :15] = 0.0
    assert clipped_bounds(few_zeros) == (False, False)  # 15 dead pixels: not clipping
    few_zeros[0, 15] = 0.0
    assert clipped_bounds(few_zeros) == (True, False)
    assert clipped_bounds(np.full((4, 4), np.nan)) == (False, False)


def test_the_planes_of_a_stack_are_counted_together():
    """A stack's ends are judged on all its values: 10 values on 0 in each of two planes is clipping (20 >= 16)
    though neither plane alone would be; a plane with values beyond an end vetoes that end for the stack."""
    plane = np.full((64, 64), 0.5)
    plane[0, :10] = 0.0
    assert clipped_bounds(plane) == (False, False)
    assert clipped_bounds([plane, plane.copy()]) == (True, False)
    beyond = np.full((64, 64), -0.1)
    assert clipped_bounds([plane, plane, beyond]) == (False, False)
    assert clipping_of_planes([plane, plane], sigma=0.1) == (0.1, True, False)
    assert clipping_of_planes([]) is None


def _ramp_image(seed: int = 0) -> np.ndarray:
    """A smooth colour image whose channels run from black to white: much of it within reach of the ends."""
    yy, xx = np.mgrid[0:256, 0:256] / 255.0
    return np.stack([xx, yy, 0.5 + 0.5 * np.sin(6 * xx) * np.cos(4 * yy)], axis=2)


@pytest.mark.parametrize("sigma,lowest", [(0, 0), (5, 0.95), (25, 0.95), (40, 0.85)])
def test_clipped_noise_level_is_measured_away_from_the_ends(sigma, lowest):
    """Measured (seed 2): 4.96, 24.48, 36.02 (160 px instead of 256: 4.89, 22.75, 28.57; patch PCA reads
    low on few patches, and strong noise leaves few far enough from the ends)."""
    clean = _ramp_image()
    noisy = clip8(clean + sigma / 255 * np.random.default_rng(2).standard_normal(clean.shape)) / 255.0
    level = clipped_noise_level(noisy) * 255
    if sigma == 0:
        assert level < 1.0  # the 8-bit rounding alone
    else:
        assert lowest * sigma < level < 1.02 * sigma  # low rather than high: a partial correction is safe
    assert clipped_noise_level(np.zeros((10, 10, 3))) is None  # too small to measure


def _dark_and_bright(level_low: float, level_high: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Flat dark, mid-grey and bright bands, noise sigma 25, as an 8-bit image stores it (clipped); the
    mid-grey band is where the noise level can be measured."""
    clean = np.full((192, 288, 3), level_low, np.float64)  # big enough for patch PCA's level to be unbiased
    clean[:, 96:192] = 0.5
    clean[:, 192:] = level_high
    return clean, clip8(clean + SIGMA * np.random.default_rng(seed).standard_normal(clean.shape))


INNER = (slice(8, -8), slice(8, 88)), (slice(8, -8), slice(200, -8))  # the flat dark and bright bands


def test_restore_inverts_the_mean_of_the_clipped_values(monkeypatch):
    """With a network that returns the local mean of its input (what a denoiser of unclipped noise does in
    flat areas), restore gives m^-1 of it, with the level measured on the image, and the truth back."""
    monkeypatch.setattr(Restorer, "_restore", lambda self, image, progress, params=None:
                        uniform_filter(image, size=(15, 15, 1), mode="reflect"))
    clean, noisy8 = _dark_and_bright(8 / 255, 250 / 255, seed=1)
    auto = Restorer("unet-gauss25").restore(noisy8).astype(np.float64) / 255
    off = Restorer("unet-gauss25", clipping="off").restore(noisy8).astype(np.float64) / 255
    level = clipped_noise_level(noisy8 / 255.0)
    expected = unclip(uniform_filter(noisy8 / 255.0, size=(15, 15, 1), mode="reflect"), level)[0]
    np.testing.assert_allclose(auto, clip8(expected) / 255.0, atol=1.01 / 255)
    for part in INNER:
        assert abs(off[part].mean() - clean[part].mean()) > 5 / 255  # the mean of clipped values is biased
        assert abs(auto[part].mean() - clean[part].mean()) < 1.5 / 255


@pytest.mark.parametrize("model,within", [("laine19-gauss25", 4), ("unet-gauss25", 9)])
def test_shipped_models_lose_most_of_the_bias(model, within):
    """Flat areas at 8 and 250 (8-bit). Measured, seeds 0-2: the networks give 16.2-16.3 / 242.4
    (laine19-gauss25) and 19.2-19.4 / 241.6 (unet-gauss25; the spike of zeros is no Gaussian noise, so more
    than the mean of the clipped values, 14.5), corrected 10.9-11.1 / 249.8-249.9 and 15.1-15.4 / 248.5-248.6."""
    for seed in (0, 1, 2):
        clean, noisy8 = _dark_and_bright(8 / 255, 250 / 255, seed)
        auto = Restorer(model).restore(noisy8).astype(np.float64) / 255
        off = Restorer(model, clipping="off").restore(noisy8).astype(np.float64) / 255
        for part in INNER:
            bias_off = off[part].mean() - clean[part].mean()
            bias_auto = auto[part].mean() - clean[part].mean()
            assert abs(bias_off) > 5 / 255
            assert abs(bias_auto) < within / 255 and abs(bias_auto) < abs(bias_off) * 0.75
        assert ((auto - clean) ** 2).mean() < ((off - clean) ** 2).mean() / 2


def test_no_correction_where_it_does_not_apply():
    clean, noisy8 = _dark_and_bright(8 / 255, 250 / 255)
    unclipped = (clean + SIGMA * np.random.default_rng(3).standard_normal(clean.shape)).astype(np.float32)
    np.testing.assert_array_equal(Restorer("unet-gauss25").restore(unclipped),
                                  Restorer("unet-gauss25", clipping="off").restore(unclipped))
    poisson = Restorer("laine19-poisson30")  # not Gaussian noise
    assert poisson.clipping_correction(noisy8 / 255.0, None) is None
    counts = noisy8.astype(np.float32) * 40  # float counts: mapped by percentiles, no 0..1 range to clip at
    assert Restorer("unet-gauss25").clipping_correction(counts, {"offset": 0.0, "scale": 10200.0}) is None


def test_level_models_and_given_sigma_are_corrected_too():
    _, noisy8 = _dark_and_bright(8 / 255, 250 / 255)
    estimated = Restorer("laine19-gauss5_50")  # its level is estimated per image: measured here too
    sigma, low, high = estimated.clipping_correction(noisy8 / 255.0, None)
    assert (low, high) == (True, True) and sigma * 255 == pytest.approx(25, rel=0.1)
    given = Restorer("laine19-gauss5_50", noise_params={"sigma": 20 / 255})
    assert given.clipping_correction(noisy8 / 255.0, None) == (pytest.approx(20 / 255), True, True)


def test_a_clean_photo_is_left_almost_as_it_is():
    """Black and white areas without noise also sit on the ends; the level measured there is ~0.5/255, so
    the correction moves nothing noticeably (a model's training level of 25 would have)."""
    from skimage import data

    photo = data.astronaut()[:192, :192]
    assert clipped_bounds(photo / 255.0)[0]  # its black areas
    auto = Restorer("unet-gauss25").restore(photo).astype(np.int16)
    off = Restorer("unet-gauss25", clipping="off").restore(photo).astype(np.int16)
    assert np.abs(auto - off).mean() < 0.1 and np.abs(auto - off).max() <= 3


def test_sixteen_bit_input_is_corrected_alike():
    clean, noisy8 = _dark_and_bright(8 / 255, 250 / 255)
    noisy16 = noisy8.astype(np.uint16) * 257
    out16 = Restorer("unet-gauss25").restore(noisy16)
    assert out16.dtype == np.uint16
    np.testing.assert_allclose(out16 / 65535.0, Restorer("unet-gauss25").restore(noisy8) / 255.0, atol=1 / 255)


def test_uncertainty_is_mapped_too():
    _, noisy8 = _dark_and_bright(8 / 255, 250 / 255)
    mean_auto, std_auto = Restorer("laine19-gauss25").restore_with_uncertainty(noisy8)
    mean_off, std_off = Restorer("laine19-gauss25", clipping="off").restore_with_uncertainty(noisy8)
    mean_auto, mean_off = mean_auto.astype(np.float64), mean_off.astype(np.float64)
    assert (std_auto >= std_off - 1e-3).all() and std_auto[:, :88].mean() > std_off[:, :88].mean() * 1.1
    assert mean_auto[:, :88].mean() < mean_off[:, :88].mean() - 4  # dark half: the bias (8-bit units) removed


def test_command_line_option(tmp_path, capsys):
    _, noisy8 = _dark_and_bright(8 / 255, 250 / 255)
    Image.fromarray(noisy8).save(tmp_path / "n.png")
    for mode in ("auto", "off"):
        assert main(["restore", str(tmp_path / "n.png"), "--model", "unet-gauss25", "-o",
                     str(tmp_path / f"{mode}.png"), "--clipping", mode]) == 0
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / f"{mode}.png")),
                                      Restorer("unet-gauss25", clipping=mode).restore(noisy8))
        said = capsys.readouterr().out
        if mode == "auto":  # the per-image line says what was done, with the level measured
            level = clipped_noise_level(noisy8 / 255.0) * 255
            assert f"noise clipped at black and white: bias undone for the level measured, {level:.1f}/255" in said
        else:
            assert "clipped" not in said
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(tmp_path / "grey.png")  # nothing on the ends
    assert main(["restore", str(tmp_path / "grey.png"), "--model", "unet-gauss25", "-o", str(tmp_path / "g.png")]) == 0
    assert "clipped" not in capsys.readouterr().out


def test_plane_groups_share_along_time_and_depth_only():
    assert plane_groups(6, (3, 2), "TC") == [[0, 2, 4], [1, 3, 5]]  # per channel, across time
    assert plane_groups(6, (2, 3), "ZT") == [[0, 1, 2, 3, 4, 5]]
    assert plane_groups(5, (5,), "B") == [[0], [1], [2], [3], [4]]  # spectral bands: each its own noise
    assert plane_groups(3, (3,), "I") == [[0], [1], [2]]  # pages of a plain multi-page TIFF: a scan each
    assert plane_groups(4, (2, 2), "QQ") == [[0], [1], [2], [3]]  # unknown axes (a FITS cube): apart
    assert plane_groups(3, (), "") == [[0], [1], [2]]  # no layout known
    assert plane_groups(1) == [[0]]


def test_a_stack_gets_one_decision_per_group_of_planes(tmp_path, monkeypatch):
    """The planes of a time-lapse share one correction (the ends of all its planes, the median of their
    levels), in memory, streamed plane by plane and through the Python API, so that neighbouring frames are
    never corrected differently; its channels decide apart."""
    import tifffile

    import selfrestore.memory_check as memory_check

    monkeypatch.setattr(Restorer, "_restore", lambda self, image, progress, params=None:
                        uniform_filter(image, size=(15, 15, 1), mode="reflect"))
    planes = [_dark_and_bright(8 / 255, 250 / 255, seed=seed)[1][:, :, 0].astype(np.uint16) * 257
              for seed in (3, 4, 5, 6, 7, 8)]  # gray planes: (T, C) = (3, 2)
    restorer = Restorer("unet-gauss25")
    alone = restorer.restore(planes[2])
    assert restorer.last_clipping == (pytest.approx(clipping_of(planes[2] / 65535.0)[0]), True, True)
    decisions = restorer.stack_clipping(planes, (3, 2), "TC")
    levels = [clipped_noise_level(plane / 65535.0) for plane in planes]
    for channel in (0, 1):
        group = levels[channel::2]
        assert decisions[channel::2] == [(pytest.approx(np.median(group)), True, True)] * 3
    assert decisions[0] != decisions[1]
    shared = [restorer.restore(plane, clipping_decision=d) for plane, d in zip(planes, decisions)]
    assert restorer.last_clipping == decisions[-1]
    assert levels[2] != pytest.approx(np.median(levels[0::2])) and not np.array_equal(shared[2], alone)
    expected = np.stack(shared).reshape(3, 2, *shared[0].shape)
    source = tmp_path / "stack.tif"
    tifffile.imwrite(source, np.stack(planes).reshape(expected.shape), photometric="minisblack",
                     metadata={"axes": "TCYX"})
    assert main(["restore", str(source), "--model", "unet-gauss25", "-o", str(tmp_path / "a.tif"), "--quiet"]) == 0
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "a.tif"), expected)
    restorer.restore_file(source, tmp_path / "c.tif")
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "c.tif"), expected)
    monkeypatch.setattr(memory_check, "physical_memory", lambda: 10**4)  # streamed plane by plane: the same decisions
    assert main(["restore", str(source), "--model", "unet-gauss25", "-o", str(tmp_path / "b.tif"), "--quiet"]) == 0
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "b.tif"), expected)


def test_a_long_stack_decides_alike_in_memory_and_streamed(tmp_path, monkeypatch):
    """12 frames, black only in frames 1, 4, 7 and 10: the ends are counted over every frame on both paths (a
    sample of 8 frames skipped them when streamed), so the file restores the same whatever the memory."""
    import tifffile

    import selfrestore.memory_check as memory_check

    monkeypatch.setattr(Restorer, "_restore", lambda self, image, progress, params=None:
                        uniform_filter(image, size=(15, 15, 1), mode="reflect"))
    rng = np.random.default_rng(0)
    xx = np.mgrid[0:96, 0:96][1] / 95
    frames = []
    for t in range(12):
        base = 0.4 + 0.2 * xx
        if t % 3 == 1:
            base[:, :8] = 0.02
        frames.append(np.clip(base + SIGMA * rng.standard_normal(base.shape), 0, 1))
    stack = np.round(np.stack(frames) * 65535).astype(np.uint16)
    tifffile.imwrite(tmp_path / "t.tif", stack, photometric="minisblack", metadata={"axes": "TYX"})
    decisions = Restorer("unet-gauss25").stack_clipping(list(stack), (12,), "T")
    assert decisions == [decisions[0]] * 12 and decisions[0][1:] == (True, False)
    base = ["restore", str(tmp_path / "t.tif"), "--model", "unet-gauss25", "--quiet", "-o"]
    assert main([*base, str(tmp_path / "a.tif")]) == 0
    monkeypatch.setattr(memory_check, "physical_memory", lambda: 10**4)
    assert main([*base, str(tmp_path / "b.tif")]) == 0
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "a.tif"), tifffile.imread(tmp_path / "b.tif"))


def test_blank_planes_and_other_restorers_decide_nothing(tmp_path):
    """A blank (all-NaN) plane is not clipping (filled with 0 for the network, it outvoted the values below 0
    of its neighbours); a stack restored through --noise-pg, or with clipping off, gets no decision; a
    decision that stack_clipping cannot have made is a UserError."""
    from selfrestore.errors import UserError
    from selfrestore.io import read_frames

    rng = np.random.default_rng(0)
    planes = (0.3 + 0.3 * np.mgrid[0:96, 0:96][1] / 95 + SIGMA * rng.standard_normal((4, 96, 96))).astype(np.float32)
    planes[:, :, :4] = 0.02 + SIGMA * rng.standard_normal((4, 96, 4))  # unclipped: values below 0
    planes[3] = np.nan
    import tifffile

    tifffile.imwrite(tmp_path / "n.tif", planes, photometric="minisblack", metadata={"axes": "TYX"})
    frames, info = read_frames(tmp_path / "n.tif")
    assert not frames[3].any()  # the reader fills a blank plane with 0 for the network
    restorer = Restorer("unet-gauss25")
    assert restorer.stack_clipping(frames, info.stack_shape, info.stack_axes, info.frame_blanks) == [None] * 4
    assert main(["restore", str(tmp_path / "n.tif"), "--model", "unet-gauss25", "-o", str(tmp_path / "o.tif"),
                 "--quiet"]) == 0
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "o.tif")[0], Restorer("unet-gauss25", clipping="off")
                                  .restore(frames[0])[:, :, 0])
    clipped = [clip8(plane) for plane in np.nan_to_num(planes[:3])]
    assert restorer.stack_clipping(clipped, (3,), "T")[0] is not None
    for other in (Restorer("laine19-gauss5_50", sensor_noise=(0.01, 0.02)), Restorer("unet-gauss25", clipping="off")):
        assert other.stack_clipping(clipped, (3,), "T") == [None] * 3
    with pytest.raises(UserError, match="clipping_decision"):
        restorer.restore(clipped[0], clipping_decision="auto")
    decision = restorer.stack_clipping(clipped, (3,), "T")[0]
    np.testing.assert_array_equal(restorer.restore(clipped[0], clipping_decision=decision),  # numpy bools too
                                  restorer.restore(clipped[0], clipping_decision=(np.float64(decision[0]),
                                                                                  *map(np.bool_, decision[1:]))))
    for made_up in ((1, 2, 3), ("0.1", True, False), (0.0, True, True), (float("nan"), True, False),
                    (0.1, "yes", False), (True, True, False), [0.1, True, False]):
        with pytest.raises(UserError, match="clipping_decision"):
            restorer.restore(clipped[0], clipping_decision=made_up)
    for not_planes in (None, 5, clipped[0], "frames.tif", iter(clipped)):
        with pytest.raises(UserError, match="planes .*sequence"):
            restorer.stack_clipping(not_planes)


def test_bad_clipping_mode_is_a_user_error():
    from selfrestore.errors import UserError

    with pytest.raises(UserError, match="clipping 'on'"):
        Restorer("unet-gauss25", clipping="on")


def test_evaluate_simulates_unclipped_noise_and_corrects_nothing(tmp_path):
    """Poisson noise has exact zeros that are no clipping: `evaluate` must not correct them."""
    from selfrestore import api
    from selfrestore.commands.evaluate import evaluate_model
    from selfrestore.corruption import parse_corruption

    dark = np.full((64, 64, 3), 20, np.uint8)
    dark[:, 32:] = 140
    Image.fromarray(dark).save(tmp_path / "dark.png")
    report = api.evaluate(tmp_path / "dark.png", model="unet-gauss25", noise="poisson30")
    rows = {mode: evaluate_model(Restorer("unet-gauss25", clipping=mode), [tmp_path / "dark.png"],
                                 parse_corruption("poisson30"), log=lambda s: None)[0]["psnr"]
            for mode in ("off", "auto")}
    assert rows["off"] != rows["auto"]  # the zeros would have switched the correction on
    assert report["images"][0]["psnr"] == pytest.approx(rows["off"])


@pytest.mark.parametrize("sigma", [10, 25, 50])
def test_the_level_of_a_chroma_subsampled_jpeg_is_measured(sigma):
    """Most colour JPEGs are 4:2:0: their chroma has no fine detail, so the patch PCA over all three channels
    found noise-free directions and read 0.5/255 on a sigma-25 photo, and the clipped-noise correction did
    ~nothing (an audit: 0.85 dB lost with unet-gauss25). The level now reads within 35% of the truth (the
    JPEG's own quantisation adds some), and a PNG of the same pixels is measured as before."""
    import io

    from skimage import data

    clean = np.asarray(Image.fromarray(data.astronaut()).resize((256, 256))) / 255.0
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, sigma / 255, clean.shape), 0, 1)
    pixels = np.round(noisy * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=95, subsampling=2)  # 4:2:0
    jpeg = np.asarray(Image.open(buffer)) / 255.0
    assert abs(clipped_noise_level(jpeg) * 255 / sigma - 1) < 0.35
    assert abs(clipped_noise_level(pixels / 255.0) * 255 / sigma - 1) < 0.15
    gray = np.repeat(pixels[:, :, 1:2], 3, axis=2) / 255.0  # a gray photo stored as RGB (the review: read 1.5x)
    assert abs(clipped_noise_level(gray) * 255 / sigma - 1) < 0.15


def test_scipy_is_loaded_only_for_an_image_that_is_corrected():
    """Importing scipy.special took 0.3-1 s of each `selfrestore restore`: it is loaded when a correction is
    made (its ndtr), not for an image with no clipped end (a 16-bit scan, float data)."""
    import os
    import subprocess
    import sys

    code = ("import sys, numpy as np; from selfrestore.restore import Restorer; r = Restorer('laine19-gauss5_50'); "
            "x = np.random.default_rng(0).normal(0.5, 0.1, (48, 48, 3)); "
            "r.restore((np.clip(x, 0.01, 0.99) * 65535).astype(np.uint16)); "
            "print(r.last_clipping, 'scipy.special' in sys.modules); "
            "r.restore(np.clip(x * 255 - 60, 0, 255).astype(np.uint8)); "
            "print(r.last_clipping is not None, 'scipy.special' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["None", "False", "True", "True"]
