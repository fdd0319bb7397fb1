"""Mistakes a notebook user makes with the Python API (`selfrestore.api`, `Restorer`): each is a one-line
UserError that says what to pass, never a TypeError from inside or a run with a wrong setting."""
import numpy as np
import pytest
import torch

from selfrestore import api
from selfrestore.errors import UserError
from selfrestore.restore import Restorer


@pytest.fixture
def noisy():
    """A 32x32 colour crop of the astronaut with gauss25 noise, float32 in [0, 1]."""
    from skimage import data

    clean = data.astronaut()[100:132, 150:182].astype(np.float32) / 255
    return np.clip(clean + np.random.default_rng(0).normal(0, 25 / 255, clean.shape), 0, 1).astype(np.float32)


@pytest.fixture(scope="module")
def unet():
    return Restorer("unet-gauss25", device="cpu")


@pytest.mark.parametrize("options", [dict(ensemble="no"), dict(ensemble=1.0), dict(noise_params="sigma=0.1"),
                                     dict(noise_params=0.1)])
def test_restorer_refuses_a_non_bool_ensemble_and_non_dict_noise_params(options):
    """ensemble="no" turned the 9x slower ensemble on; noise_params as a str or a number was a ValueError /
    TypeError from dict()."""
    with pytest.raises(UserError, match="ensemble|noise_params"):
        Restorer("laine19-gauss5_50", device="cpu", **options)


def test_restorer_checks_a_torch_device_as_a_device_name():
    """A torch.device was taken unchecked: one not on this machine failed deep inside torch (an AssertionError
    "Torch not compiled with CUDA enabled") where the same name as a str is a UserError."""
    with pytest.raises(UserError, match="cuda:99"):
        Restorer("unet-gauss25", device=torch.device("cuda", 99))


@pytest.mark.parametrize("image", ["photo.png", None])
def test_restore_of_a_file_name_says_to_use_restore_file(unet, image):
    """r.restore("photo.png") said "an image array must be (H, W) or (H, W, C), not of shape ()"."""
    with pytest.raises(UserError, match="restore_file"):
        unet.restore(image)


def test_restore_file_with_a_name_that_is_not_a_path_is_a_user_error(unet, noisy, tmp_path):
    """restore_file(5, ...) and restore_file(source, None) were TypeErrors from pathlib."""
    from selfrestore.io import write_image

    source = write_image(tmp_path / "a.png", noisy)
    with pytest.raises(UserError, match="source 5"):
        unet.restore_file(5, tmp_path / "out.png")
    with pytest.raises(UserError, match="target None"):
        unet.restore_file(source, None)


def test_restorer_keeps_a_masked_arrays_masked_pixels_out(unet, noisy):
    """np.asarray dropped the mask: the fill values under it (1e20 here) were restored as pixels, spread over
    their neighbours, and the mask was lost. Masked float pixels are now blank pixels, as NaN ones."""
    mask = np.zeros(noisy.shape, bool)
    mask[5:8, 10:12] = True
    masked = np.ma.masked_array(noisy.copy(), mask=mask)
    masked.data[mask] = 1e20
    out = unet.restore(masked)
    expected = unet.restore(np.where(mask, np.float32(np.nan), noisy))
    assert np.array_equal(out, expected, equal_nan=True) and np.array_equal(np.isnan(out), mask)
    with pytest.raises(UserError, match="astype"):  # no NaN in integers: said, not dropped
        unet.restore(np.ma.masked_array((noisy * 255).astype(np.uint8), mask=mask))


@pytest.mark.parametrize("flag", ["no", "False", 0.5])
def test_api_flags_take_true_or_false_only(tmp_path, noisy, flag):
    """ensemble="no" (or quiet="False") was true: the flag was given and the command ran with it."""
    from selfrestore.io import write_image

    write_image(tmp_path / "a.png", noisy)
    with pytest.raises(UserError, match="a flag is True or False"):
        api.restore(tmp_path / "a.png", output=tmp_path / "out", model="unet-gauss25", quiet=True, ensemble=flag)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("options", [dict(output=5), dict(output=b"out"), dict(output=["a", "b"]),
                                     dict(model=["unet-gauss25"])])
def test_api_output_and_model_that_are_not_names_are_user_errors(tmp_path, noisy, monkeypatch, options):
    """output=5 wrote into a folder ./5/, output=b"out" into ./b'out'/, a list into "a,b"; str() of a list
    named a model: each was taken as a name without a word."""
    from selfrestore.io import write_image

    monkeypatch.chdir(tmp_path)
    write_image(tmp_path / "a.png", noisy)
    with pytest.raises(UserError, match="a str or pathlib.Path"):
        api.restore(tmp_path / "a.png", **{"output": tmp_path / "out", "model": "unet-gauss25", **options},
                    quiet=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


def test_api_given_an_array_says_so_on_one_line(tmp_path, noisy):
    """api.restore(array, ...) printed the whole array's repr, pages long, in the "one-line" message."""
    for inputs in (noisy, [noisy], torch.from_numpy(noisy)):
        with pytest.raises(UserError) as error:
            api.restore(inputs, output=tmp_path / "out", model="unet-gauss25", quiet=True)
        assert "\n" not in str(error.value) and len(str(error.value)) < 200
    with pytest.raises(UserError, match=r"Restorer\(model\).restore\(array\)"):
        api.restore(noisy, output=tmp_path / "out", model="unet-gauss25")


@pytest.mark.parametrize("value, expected", [(1, True), (0, False), (np.int64(1), True), (np.bool_(True), True),
                                             (None, False)])
def test_restorer_still_takes_an_ensemble_of_1_or_0(value, expected):
    """The bool check refused ensemble=1 / 0, which ran before (and which the api flags take): kept; 2 is not."""
    assert Restorer("laine19-gauss5_50", device="cpu", ensemble=value).ensemble is expected
    with pytest.raises(UserError, match="ensemble 2"):
        Restorer("laine19-gauss5_50", device="cpu", ensemble=2)
