"""The Python API as a notebook user or a pipeline author calls it: `selfrestore.api` and `Restorer`.

Mistakes are one-line UserErrors, the inputs users hold are taken (tensors, RGBA arrays, NaN pixels), and a
call leaves the caller's state (torch random state, input files) alone."""
import numpy as np
import pytest
import torch

from selfrestore import api
from selfrestore.errors import UserError
from selfrestore.restore import Restorer


@pytest.fixture
def noisy():
    """A 48x64 colour crop of the astronaut with gauss25 noise, float32 in about [0, 1]."""
    from skimage import data

    clean = data.astronaut()[100:148, 150:214].astype(np.float32) / 255
    return (clean + np.random.default_rng(0).normal(0, 25 / 255, clean.shape)).astype(np.float32)


@pytest.fixture(scope="module")
def unet():
    return Restorer("unet-gauss25", device="cpu")


def test_loading_a_model_leaves_the_torch_random_state_alone():
    """Building the net draws initial weights; a notebook seeded before loading must draw what it would have."""
    torch.manual_seed(3)
    expected = torch.rand(4)
    torch.manual_seed(3)
    Restorer("unet-gauss25", device="cpu")
    assert torch.equal(torch.rand(4), expected)


def test_api_fit_leaves_the_torch_random_state_alone(tmp_path, noisy):
    """`fit` seeds torch for its own reproducibility (--seed); the caller's seed must survive the call."""
    from selfrestore.io import write_image

    write_image(tmp_path / "a.png", np.clip(noisy, 0, 1))
    torch.manual_seed(5)
    expected = torch.rand(4)
    torch.manual_seed(5)
    model = api.fit(tmp_path / "a.png", output=tmp_path / "m", method="n2v", steps=2, width=4, depth=2,
                    patch_size=32, batch_size=1, quiet=True)
    assert model.is_file()
    assert torch.equal(torch.rand(4), expected) and torch.initial_seed() == 5


@pytest.mark.parametrize("options", [dict(precision="fp16"), dict(tile=-5), dict(tile=32), dict(tile="512"),
                                     dict(tile=True)])
def test_restorer_refuses_bad_options_as_the_cli_does(options):
    """--precision has two choices and --tile is 0 or at least 64: Restorer ran with anything, silently."""
    with pytest.raises(UserError):
        Restorer("unet-gauss25", device="cpu", **options)


@pytest.mark.parametrize("options", [dict(noise_params={"sigma": -0.1}), dict(noise_params={"sigma": "0.1"}),
                                     dict(noise_params={"sigma": 25.0}), dict(sensor_noise=(0.01,)),
                                     dict(sensor_noise="0.01,0.02")])
def test_restorer_refuses_bad_noise_levels(options):
    """A negative or out-of-scale sigma ran silently; a str or a 1-tuple was a TypeError / ValueError."""
    with pytest.raises(UserError):
        Restorer("laine19-gauss5_50", device="cpu", **options)


@pytest.mark.parametrize("model", [3, 2.5])
def test_restorer_without_a_model_name_is_a_user_error(model):
    """(None is restore's default model: tests/test_api_audit43.py)"""
    with pytest.raises(UserError, match="shipped model"):
        Restorer(model, device="cpu")


def test_restorer_takes_a_tensor_that_needs_grad(unet, noisy):
    """np.asarray of such a tensor raises a RuntimeError; the result is the array's."""
    tensor = torch.from_numpy(noisy.copy()).requires_grad_()
    out = unet.restore(tensor)
    assert isinstance(out, np.ndarray) and np.array_equal(out, unet.restore(noisy))


def test_restorer_takes_big_endian_integers(unet, noisy):
    """Big-endian uint16 (as astropy reads FITS) was refused: "must be float, uint8 or uint16, not >u2"."""
    counts = (np.clip(noisy, 0, 1) * 65535).astype(np.uint16)
    out = unet.restore(counts.astype(">u2"))
    assert out.dtype == np.uint16 and np.array_equal(out, unet.restore(counts))


def test_restorer_keeps_nan_pixels_to_themselves(unet, noisy):
    """One NaN made the whole output NaN; now only the NaN pixels stay NaN, as files' blank pixels do."""
    holed = noisy.copy()
    holed[10:12, 20:23] = np.nan
    out = unet.restore(holed)
    assert np.array_equal(np.isnan(out), np.isnan(holed))
    assert np.isnan(holed[10, 20, 0])  # the caller's array is left as it was
    mean, std = Restorer("laine19-gauss25", device="cpu").restore_with_uncertainty(holed)
    assert np.array_equal(np.isnan(mean), np.isnan(holed)) and np.array_equal(np.isnan(std), np.isnan(holed))


def test_restorer_gives_an_rgba_arrays_alpha_back(unet, noisy):
    """np.asarray(PIL.Image.open("x.png")) is often RGBA: it was refused ("cannot convert 4 channels to 3")."""
    rgb = (np.clip(noisy, 0, 1) * 255).round().astype(np.uint8)
    alpha = np.arange(rgb.shape[0] * rgb.shape[1], dtype=np.uint8).reshape(rgb.shape[:2])
    out = unet.restore(np.dstack([rgb, alpha]))
    assert out.dtype == np.uint8 and out.shape == (*rgb.shape[:2], 4)
    assert np.array_equal(out[:, :, 3], alpha) and np.array_equal(out[:, :, :3], unet.restore(rgb))


def test_restorer_says_how_to_pass_a_channels_first_array(unet, noisy):
    with pytest.raises(UserError, match=r"transpose\(1, 2, 0\)"):
        unet.restore(noisy.transpose(2, 0, 1))


def test_restore_file_refuses_its_input_and_bad_names_before_the_work(unet, noisy, tmp_path, monkeypatch):
    """restore_file(x, x) wrote over the input; a target with no image suffix failed only after restoring."""
    from selfrestore.io import write_image

    source = write_image(tmp_path / "a.png", np.clip(noisy, 0, 1))
    before = source.read_bytes()
    monkeypatch.setattr(Restorer, "restore", lambda *a, **k: pytest.fail("restored before the check"))
    for target in (source, tmp_path / "." / "a.png", tmp_path / "out", tmp_path / "out.txt"):
        with pytest.raises(UserError):
            unet.restore_file(source, target)
    assert source.read_bytes() == before


def test_restore_file_restores_a_tiff_stack_plane_by_plane(unet, noisy, tmp_path):
    """read_image refuses stacks, so restore_file did too, though `selfrestore restore` takes them."""
    import tifffile

    planes = (np.clip(np.stack([noisy[:, :, 0], noisy[:, :, 1], noisy[:, :, 2]] * 2), 0, 1) * 65535).astype(np.uint16)
    tifffile.imwrite(tmp_path / "stack.tif", planes, photometric="minisblack")
    unet.restore_file(tmp_path / "stack.tif", tmp_path / "out.tif")
    out = tifffile.imread(tmp_path / "out.tif")
    assert out.shape == planes.shape and out.dtype == np.uint16
    assert np.array_equal(out[1], unet.restore(planes[1]))
    with pytest.raises(UserError, match="TIFF or FITS"):
        unet.restore_file(tmp_path / "stack.tif", tmp_path / "out.png")


@pytest.mark.parametrize("inputs, message", [(None, "no inputs"), (5, "not int"), ([b"a.png"], "not bytes"),
                                             (b"a.png", "not bytes"), ({"a.png": 1}, "not dict")])
def test_api_inputs_that_are_not_paths_are_user_errors(tmp_path, inputs, message):
    """None and an int were TypeErrors from list(); bytes went to the command as "b'a.png'"."""
    with pytest.raises(UserError, match=message):
        api.restore(inputs, output=tmp_path / "out", model="unet-gauss25", quiet=True)


def test_api_has_every_command_as_a_function(capsys):
    """The api docstring and README promise every command as a function: `models` and `demo` were missing."""
    import argparse

    from selfrestore.cli import build_parser

    verbs = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert all(callable(getattr(api, verb, None)) for verb in verbs)
    assert api.models("unet-gauss25") == 0 and "n2n" in capsys.readouterr().out


def test_a_gray_model_restores_colour_channel_by_channel(tmp_path, noisy):
    """A gray model on an RGB image restored the luma and repeated it in the three channels: the colour was
    lost without a word. Each channel is now restored as a gray image of its own."""
    from selfrestore.checkpoint import build_net, save_checkpoint

    torch.manual_seed(0)
    path = tmp_path / "gray.safetensors"
    save_checkpoint(path, build_net("unet", in_channels=1, out_channels=1, width=4, depth=2),
                    {"method": {"name": "n2n", "noise": "gauss25"}, "channels": 1})
    restorer = Restorer(path, device="cpu")
    colour = restorer.restore(noisy)
    assert colour.shape == noisy.shape
    for c in range(3):
        assert np.allclose(colour[:, :, c], restorer.restore(noisy[:, :, c]), atol=1e-6)
    assert not np.allclose(colour[:, :, 0], colour[:, :, 2], atol=1e-4)  # not one gray image three times


def test_evaluate_and_inspect_return_their_report(tmp_path, noisy, capsys):
    """A notebook needs the numbers, not an exit code: `api.evaluate` returns the PSNR / SSIM report and
    `api.inspect` the measured noise and the advice it printed; `json=FILE` still writes the same report."""
    import json

    from skimage import data

    from selfrestore.io import write_image

    clean_dir, noisy_dir = tmp_path / "clean", tmp_path / "noisy"
    clean_dir.mkdir(), noisy_dir.mkdir()
    write_image(clean_dir / "astronaut.png", data.astronaut()[100:164, 150:214])
    write_image(noisy_dir / "astronaut.png", np.clip(noisy, 0, 1))
    report = api.evaluate(clean_dir, model="unet-gauss25", noise="gauss25", json=tmp_path / "e.json")
    assert report["exit_code"] == 0 and len(report["images"]) == 1
    assert report["mean"]["psnr"] > report["mean"]["psnr_noisy"] + 3
    saved = json.loads((tmp_path / "e.json").read_text())
    assert saved["mean"] == report["mean"]
    found = api.inspect(noisy_dir)
    assert found["exit_code"] == 0 and 15 < found["noise_sigma_median"] < 35
    assert any("selfrestore" in line for line in found["advice"])
    assert "noise std" in capsys.readouterr().out  # the report is printed as the command prints it


def test_restorer_warns_once_when_the_noise_is_far_from_a_single_level_models(unet):
    """`selfrestore restore` says when a gauss25 model meets noise of std 5; the Python class was silent (a clean
    black image came back with a mean of 10.6 levels, unwarned)."""
    import warnings

    rng = np.random.default_rng(0)
    ramp = np.linspace(0.2, 0.8, 128, dtype=np.float32)[None, :, None] * np.ones((128, 128, 3), np.float32)
    weak = (ramp + 5 / 255 * rng.standard_normal(ramp.shape)).astype(np.float32)
    restorer = Restorer("unet-gauss25")
    with pytest.warns(UserWarning, match=r"noise std about 5\.\d/255 .* trained for 25/255: it may smooth"):
        restorer.restore(weak)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        restorer.restore(weak)  # once per Restorer
        Restorer("unet-gauss25").restore((ramp + 25 / 255 * rng.standard_normal(ramp.shape)).astype(np.float32))
        Restorer("laine19-gauss5_50").restore(weak[:64, :64])  # measures each image's level itself


def test_restorer_measures_the_noise_level_on_opaque_non_blank_pixels_only():
    """A mostly transparent (flat) RGBA image, or a float image mostly NaN, read as noise 0 and warned falsely."""
    import warnings

    rng = np.random.default_rng(0)
    noisy = np.clip(0.5 + 25 / 255 * rng.standard_normal((128, 128, 3)), 0, 1).astype(np.float32)
    alpha = np.ones((128, 128, 1), np.float32)
    alpha[:, :96] = 0
    rgba = np.concatenate([np.where(alpha > 0, noisy, 0.3), alpha], axis=2).astype(np.float32)
    blanks = noisy.copy()
    blanks[:, :90] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Restorer("unet-gauss25").restore(rgba)
        Restorer("unet-gauss25").restore(blanks)
    with pytest.warns(UserWarning, match="noise std about 0.0/255"):  # the same pixels, alpha dropped
        Restorer("unet-gauss25").restore(rgba[:, :, :3])
