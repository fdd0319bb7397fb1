"""Blur kernels, the Blur corruption model and the deblurring data sources (no ../shared needed)."""
from __future__ import annotations

import h5py
import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image
from scipy import ndimage

from selfrestore.corruption import parse_corruption
from selfrestore.corruption.blur import (Blur, blur, gaussian_kernel, load_kernels, pad_kernel,
                                         random_motion_kernel)
from selfrestore.data.blur_pairs import BlurryImages, RealBlurPairs, SyntheticBlurPairs
from selfrestore.errors import UserError
from selfrestore.file_lists import match_all_by_name


def _asymmetric_kernel() -> np.ndarray:
    k = np.zeros((5, 5), np.float32)
    k[0, 0], k[1, 3], k[4, 2] = 0.5, 0.3, 0.2  # no symmetry: catches a missing flip or transpose
    return k


def _image(h: int = 40, w: int = 48, c: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return ndimage.gaussian_filter(rng.random((h, w, c)), (1.5, 1.5, 0)).astype(np.float32)


# ------------------------------------------------------------------------------------------ blur op
def test_blur_is_a_true_convolution_matching_scipy():
    k = _asymmetric_kernel()
    x = _image(c=2)
    out = blur(torch.from_numpy(x.transpose(2, 0, 1))[None], torch.from_numpy(k))[0].numpy().transpose(1, 2, 0)
    ref = np.stack([ndimage.convolve(x[..., c], k, mode="mirror") for c in range(2)], axis=-1)
    np.testing.assert_allclose(out, ref, atol=1e-5)


def test_valid_blur_is_the_padding_free_interior():
    k = torch.from_numpy(_asymmetric_kernel())
    x = torch.from_numpy(_image().transpose(2, 0, 1))[None]
    same, valid = blur(x, k), blur(x, k, padding="valid")
    assert valid.shape[-2:] == (x.shape[-2] - 4, x.shape[-1] - 4)
    torch.testing.assert_close(valid, same[..., 2:-2, 2:-2])


def test_per_image_kernels_and_mass_preservation():
    x = torch.full((2, 3, 20, 20), 0.37)
    kernels = torch.stack([torch.from_numpy(gaussian_kernel(7, 1.2, 2.5, 0.3)),
                           torch.from_numpy(pad_kernel(_asymmetric_kernel(), 7))])
    torch.testing.assert_close(blur(x, kernels), x)  # kernels sum to 1: a flat image stays flat
    img = torch.from_numpy(_image().transpose(2, 0, 1))[None].repeat(2, 1, 1, 1)
    out = blur(img, kernels)
    assert not torch.allclose(out[0], out[1])  # each image got its own kernel


# ------------------------------------------------------------------------------------------ kernels
def test_random_motion_kernels_are_valid_reproducible_and_varied():
    a = [random_motion_kernel(np.random.default_rng(s), 21) for s in range(6)]
    b = [random_motion_kernel(np.random.default_rng(s), 21) for s in range(6)]
    for k, k2 in zip(a, b):
        assert k.shape == (21, 21) and k.dtype == np.float32
        assert k.min() >= 0 and abs(k.sum() - 1) < 1e-5
        np.testing.assert_array_equal(k, k2)
        ys, xs = np.nonzero(k > 1e-4)
        assert ys.min() >= 1 and xs.min() >= 1 and ys.max() <= 19 and xs.max() <= 19  # fits inside
    assert len({k.tobytes() for k in a}) == 6
    spreads = [np.count_nonzero(k > 1e-3) for k in a]
    assert max(spreads) > 12  # real motion paths, not points


def test_load_kernels_mat_v5_cell_array(tmp_path):
    ks = [_asymmetric_kernel(), gaussian_kernel(7, 1.0) * 3.0]  # second one not normalised on disk
    cells = np.empty((1, 2), dtype=object)
    cells[0, 0], cells[0, 1] = ks[0], ks[1]
    path = tmp_path / "k.mat"
    scipy.io.savemat(path, {"kernels": cells})
    loaded = load_kernels(path)
    assert len(loaded) == 2
    np.testing.assert_allclose(loaded[0], ks[0], atol=1e-6)
    np.testing.assert_allclose(loaded[1], ks[1] / ks[1].sum(), atol=1e-6)


def test_load_kernels_mat_v73_hdf5_keeps_orientation(tmp_path):
    """MATLAB v7.3 stores arrays column-major: h5py sees them transposed, the loader must undo that."""
    k = _asymmetric_kernel()
    path = tmp_path / "levin_like.mat"
    with h5py.File(path, "w", userblock_size=512) as f:
        refs = f.create_group("#refs#")
        r = [refs.create_dataset(f"k{i}", data=kk.T.astype(np.float64)).ref for i, kk in enumerate([k, k[::-1]])]
        f.create_dataset("kernels", data=np.array(r, dtype=h5py.ref_dtype).reshape(1, 2))
    loaded = load_kernels(path)
    np.testing.assert_allclose(loaded[0], k, atol=1e-6)
    np.testing.assert_allclose(loaded[1], k[::-1], atol=1e-6)


def test_load_kernels_npy_stack(tmp_path):
    stack = np.stack([_asymmetric_kernel(), gaussian_kernel(5, 1.0)])
    np.save(tmp_path / "k.npy", stack)
    loaded = load_kernels(tmp_path / "k.npy")
    assert len(loaded) == 2
    np.testing.assert_allclose(loaded[0], stack[0], atol=1e-6)


@pytest.mark.parametrize("content,suffix,reason", [
    (None, ".mat", "no such kernel file"),
    (b"not a mat file at all", ".mat", "cannot read blur kernels"),
    (b"x", ".txt", "unsupported kernel file type"),
])
def test_load_kernels_bad_input_is_a_one_line_user_error(tmp_path, content, suffix, reason):
    path = tmp_path / f"kernels{suffix}"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UserError) as err:
        load_kernels(path)
    assert str(path) in str(err.value) and reason in str(err.value) and "\n" not in str(err.value)


def test_load_kernels_rejects_empty_kernel(tmp_path):
    np.save(tmp_path / "zero.npy", np.zeros((5, 5)))
    with pytest.raises(UserError, match="zero.npy"):
        load_kernels(tmp_path / "zero.npy")


# ------------------------------------------------------------------------------------------ corruption
def test_parse_blur_names():
    b = parse_corruption("blur")
    assert isinstance(b, Blur) and b.kernel_size == 25 and b.low == pytest.approx(1 / 255)
    b = parse_corruption("blur31_gauss0")
    assert b.kernel_size == 31 and b.low == 0
    assert parse_corruption("blur_gauss2.5").low == pytest.approx(2.5 / 255)
    with pytest.raises(UserError):
        parse_corruption("blur30")  # even kernel size


def test_blur_sample_reproducible_with_recorded_params():
    model = parse_corruption("blur15_gauss3")
    x = torch.from_numpy(_image(32, 32).transpose(2, 0, 1))[None].repeat(3, 1, 1, 1)
    y1, p1 = model.sample_with_params(x, torch.Generator().manual_seed(5))
    y2, _ = model.sample_with_params(x, torch.Generator().manual_seed(5))
    y3, _ = model.sample_with_params(x, torch.Generator().manual_seed(6))
    torch.testing.assert_close(y1, y2)
    assert not torch.allclose(y1, y3)
    assert p1["kernel"].shape == (3, 15, 15)
    residual = y1 - blur(x, p1["kernel"])  # the recorded kernel is the one that was used
    assert residual.std().item() == pytest.approx(3 / 255, rel=0.1)


def test_blur_likelihood_scores_the_noise_around_the_blurred_signal():
    model = Blur(kernels=[gaussian_kernel(7, 1.5)], sigma=5)
    x = torch.from_numpy(_image(24, 24).transpose(2, 0, 1))[None]
    y, params = model.sample_with_params(x, torch.Generator().manual_seed(0))
    torch.testing.assert_close(model.variance(x, params), torch.full_like(x, (5 / 255) ** 2))
    true = model.log_likelihood(y, x, params).mean()
    assert true > model.log_likelihood(y, x + 0.05, params).mean()
    assert true > model.log_likelihood(y, x, {"sigma": params["sigma"]}).mean()  # kernel forgotten: worse


def test_file_kernels_of_different_sizes_are_padded():
    model = Blur(kernels=[gaussian_kernel(5, 1.0), np.ones((3, 9))])
    rng = np.random.default_rng(0)
    shapes = {model.draw_kernel(rng).shape for _ in range(10)}
    assert shapes == {(9, 9)}


# ------------------------------------------------------------------------------------------ sources
def test_synthetic_pairs_are_blurred_crops_of_the_clean_patch():
    k = _asymmetric_kernel()
    source = SyntheticBlurPairs([_image(50, 60)], Blur(kernels=[k], sigma=0))
    batch = source.batch(np.random.default_rng(3), 2, 24)
    assert source.kind == "blurry" and set(batch) >= {"blurry", "clean"}
    assert batch["blurry"].shape == batch["clean"].shape == (2, 3, 24, 24)
    # away from the patch border, blurring the clean patch reproduces the blurry patch
    again = blur(batch["clean"], torch.from_numpy(k), padding="valid")
    torch.testing.assert_close(batch["blurry"][..., 2:-2, 2:-2], again, atol=1e-5, rtol=0)
    # and the blurry patch is really blurred (not a copy of the clean one)
    assert (batch["blurry"] - batch["clean"]).abs().mean() > 1e-3


def test_synthetic_pairs_reproducible_and_self_supervised_view():
    source = SyntheticBlurPairs([_image(40, 40), _image(40, 40, seed=1)], parse_corruption("blur9"))
    a = source.batch(np.random.default_rng(7), 3, 16)
    b = source.batch(np.random.default_rng(7), 3, 16)
    torch.testing.assert_close(a["blurry"], b["blurry"])
    torch.testing.assert_close(a["clean"], b["clean"])
    blind = SyntheticBlurPairs([_image()], parse_corruption("blur9"), with_clean=False)
    assert "clean" not in blind.batch(np.random.default_rng(0), 2, 16)


def test_blurry_images_source_gives_crops_only():
    img = _image(30, 20)
    batch = BlurryImages([img]).batch(np.random.default_rng(0), 4, 16)
    assert set(batch) == {"blurry"} and batch["blurry"].shape == (4, 3, 16, 16)
    small = BlurryImages([img]).batch(np.random.default_rng(0), 1, 32)  # larger than the image: padded
    assert small["blurry"].shape == (1, 3, 32, 32)


def _write(path, array):
    Image.fromarray((np.clip(array, 0, 1) * 255).round().astype(np.uint8)).save(path)


def test_real_pairs_match_by_name_and_crop_in_register(tmp_path):
    (tmp_path / "blur").mkdir()
    (tmp_path / "sharp").mkdir()
    for name, seed in (("a", 0), ("b", 1)):
        sharp = _image(40, 36, seed=seed)
        _write(tmp_path / "sharp" / f"{name}.png", sharp)
        _write(tmp_path / "blur" / f"{name}.png", np.round(sharp * 255) / 255 * 0.5)  # exactly half
    pairs = match_all_by_name(tmp_path / "blur", tmp_path / "sharp", ("blurry", "sharp"))
    assert [p[0].name for p in pairs] == ["a.png", "b.png"]
    batch = RealBlurPairs(tmp_path / "blur", tmp_path / "sharp").batch(np.random.default_rng(1), 4, 16)
    torch.testing.assert_close(batch["blurry"], batch["clean"] * 0.5, atol=1.01 / 255, rtol=0)


def test_real_pairs_report_unmatched_and_mismatched_files(tmp_path):
    (tmp_path / "blur").mkdir()
    (tmp_path / "sharp").mkdir()
    _write(tmp_path / "blur" / "a.png", _image(20, 20))
    _write(tmp_path / "sharp" / "b.png", _image(20, 20))
    with pytest.raises(UserError, match="no sharp match for a"):
        match_all_by_name(tmp_path / "blur", tmp_path / "sharp", ("blurry", "sharp"))
    (tmp_path / "sharp" / "b.png").unlink()
    _write(tmp_path / "sharp" / "a.png", _image(24, 20))
    with pytest.raises(UserError, match="differs"):
        RealBlurPairs(tmp_path / "blur", tmp_path / "sharp")
    with pytest.raises(UserError, match="does not exist"):
        match_all_by_name(tmp_path / "nope", tmp_path / "sharp", ("blurry", "sharp"))


def test_blur_model_name_round_trips_through_the_parser():
    """A checkpoint stores the corruption's name; parsing it back must give the same model."""
    model = Blur(kernel_size=27, sigma=1.5)
    again = parse_corruption(model.name)
    assert (again.kernel_size, again.low, again.high) == (27, model.low, model.high)


def test_real_pairs_take_channels_and_skip_an_unreadable_pair(tmp_path):
    """An audit: `fit --method reblur --pairs B S --channels 1` trained in colour (--channels ignored), and one
    unreadable file stopped the run; now converted, and the pair left out with a warning."""
    for folder in ("blur", "sharp"):
        (tmp_path / folder).mkdir()
    for name, seed in (("a", 0), ("b", 1)):
        _write(tmp_path / "sharp" / f"{name}.png", _image(40, 36, seed=seed))
        _write(tmp_path / "blur" / f"{name}.png", _image(40, 36, seed=seed) * 0.5)
    (tmp_path / "blur" / "b.png").write_bytes(b"not a png")
    said = []
    pairs = RealBlurPairs(tmp_path / "blur", tmp_path / "sharp", channels=1, warn=said.append)
    assert pairs.channels == 1 and len(pairs.pairs) == 1
    assert len(said) == 1 and "skipped the pair" in said[0] and "b.png" in said[0]
