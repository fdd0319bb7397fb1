"""`--subsample 2` / ``Restorer(subsample=2)``: the 2 x 2 sub-images of an image restored apart (pixel-shuffle
down-sampling), for noise correlated between neighbouring pixels."""
import numpy as np
import pytest
from scipy.ndimage import convolve1d

from selfrestore.cli import main
from selfrestore.errors import UserError
from selfrestore.restore import Restorer
from selfrestore.subimages import in_subimages


def _psnr(a, b):
    return -10 * np.log10(np.mean((np.clip(a, 0, 1) - b) ** 2))


@pytest.mark.parametrize("shape", [(8, 10, 3), (7, 9, 1), (5, 6, 2), (1, 5, 3)])
def test_sub_images_cover_every_pixel_once_in_place(shape):
    image = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    seen = []

    def record(part):
        seen.append(part.shape)
        return part * 2, part[:, :, :1] + 1

    doubled, first = in_subimages(record, image, 2)
    assert np.array_equal(doubled, image * 2) and np.array_equal(first, image[:, :, :1] + 1)
    assert len(seen) == 4 and len(set(seen)) == 1  # one size for the four (odd sides padded, then cropped)
    assert in_subimages(lambda part: part + 1, image, 1).shape == shape


def test_restorer_restores_each_sub_image_alone(rgb_image):
    noisy = np.clip(rgb_image + np.random.default_rng(0).normal(0, 0.1, rgb_image.shape), 0, 1).astype(np.float32)
    whole = Restorer("unet-gauss25", clipping="off")
    expected = np.empty_like(noisy)
    for dy in (0, 1):
        for dx in (0, 1):
            expected[dy::2, dx::2] = whole.restore(np.ascontiguousarray(noisy[dy::2, dx::2]))
    got = Restorer("unet-gauss25", clipping="off", subsample=2).restore(noisy)
    assert np.allclose(got, expected, atol=1e-6)
    assert not np.allclose(got, whole.restore(noisy), atol=1e-3)


def test_subsampling_removes_smoothed_noise_the_default_model_keeps(astronaut):
    """Noise filtered by [1 2 1] / 4 along both axes (neighbour correlation about 0.5): the default blind-spot
    model, made for independent noise, keeps most of it; restored as sub-images (pixels 2 apart, whose noise
    is far less correlated) much more of it goes (benchmarks/results/subsample_correlated.md: +1.38 dB on
    Kodak crops with std 40)."""
    clean = astronaut[:256, :256]
    kernel = np.array([1.0, 2.0, 1.0]) / 4
    noise = np.random.default_rng(1).normal(0, 60 / 255, clean.shape)
    noisy = np.clip(clean + convolve1d(convolve1d(noise, kernel, axis=0), kernel, axis=1), 0, 1).astype(np.float32)
    plain = _psnr(Restorer("laine19-gauss5_50").restore(noisy), clean)
    subsampled = _psnr(Restorer("laine19-gauss5_50", subsample=2).restore(noisy), clean)
    assert subsampled > plain + 1.0, (plain, subsampled)  # 26.1 -> 28.9 dB when written


def test_subsampling_with_uncertainty_and_integer_images(rgb_image):
    image = (rgb_image * 255).astype(np.uint8)
    mean, std = Restorer("laine19-gauss5_50", subsample=2).restore_with_uncertainty(image)
    assert mean.dtype == np.uint8 and mean.shape == image.shape
    assert std.shape == image.shape and np.all(std > 0)


@pytest.mark.parametrize("value", [3, 0, "2", True, 1.5])
def test_a_bad_subsample_is_a_user_error(value):
    with pytest.raises(UserError, match="subsample"):
        Restorer("unet-gauss25", subsample=value)


def test_subsample_is_refused_where_it_does_not_apply(tmp_path, tiny_model, capsys):
    with pytest.raises(SystemExit):  # argparse: one line naming the choices
        main(["restore", "x.png", "-o", str(tmp_path / "o"), "--subsample", "3"])
    assert "--subsample" in capsys.readouterr().err
    code = main(["restore", "--blurry", "b.png", "--noisy", "n.png", "--model", str(tiny_model), "--subsample", "2",
                 "-o", str(tmp_path / "o")])
    assert code != 0 and "--subsample" in capsys.readouterr().err


def test_inspect_offers_subsample_for_correlated_noise_only(tmp_path, astronaut, capsys):
    from selfrestore.io import write_image

    clean = astronaut[:256, :256]
    rng = np.random.default_rng(0)
    kernel = np.array([1.0, 2.0, 1.0]) / 4
    smoothed = convolve1d(convolve1d(rng.normal(0, 40 / 255, clean.shape), kernel, axis=0), kernel, axis=1)
    write_image(tmp_path / "smoothed.png", np.clip(clean + smoothed, 0, 1).astype(np.float32))
    write_image(tmp_path / "white.png", np.clip(clean + rng.normal(0, 25 / 255, clean.shape), 0, 1).astype(np.float32))
    assert main(["inspect", str(tmp_path / "smoothed.png")]) == 0
    assert "--subsample 2" in capsys.readouterr().out
    assert main(["inspect", str(tmp_path / "white.png")]) == 0
    assert "--subsample" not in capsys.readouterr().out
