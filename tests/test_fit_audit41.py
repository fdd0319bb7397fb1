"""The `fit` audit of stop 41: a resume on data rewritten in place, colour JPEGs with chroma subsampling,
+-inf pixels in float data, a model fitted on dim data restoring brighter data."""
import warnings

import numpy as np
import pytest
import tifffile
from PIL import Image

from selfrestore.checkpoint import read_checkpoint, update_header
from selfrestore.cli import main
from selfrestore.io import write_image

FIT = ["--width", "4", "--depth", "2", "--patch-size", "32", "--batch-size", "2", "--no-amp", "--quiet"]


def _noisy(rgb_image, seed=0):
    rng = np.random.default_rng(seed)
    return np.clip(rgb_image + rng.normal(0, 0.1, rgb_image.shape), 0, 1).astype(np.float32)


def test_resume_refuses_data_rewritten_with_other_pixels_of_the_same_size(tmp_path, capsys):
    """An uncompressed TIFF rewritten with other data keeps its name and size: the fingerprint of names and sizes
    let `--resume` train on other images silently (an audit). Samples of the files' content now count too; a
    model recorded before them (no "content") still resumes on names and sizes."""
    data = tmp_path / "stacks"
    data.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        tifffile.imwrite(data / f"{name}.tif", rng.integers(0, 4096, (48, 48), dtype=np.uint16))
    model = tmp_path / "m.safetensors"
    assert main(["fit", str(data), "--method", "n2v", *FIT, "--steps", "2", "-o", str(model)]) == 0
    tifffile.imwrite(data / "a.tif", rng.integers(0, 4096, (48, 48), dtype=np.uint16))  # same shape, same size
    capsys.readouterr()
    assert main(["fit", str(data), "-o", str(model), "--resume", "--steps", "3", "--quiet"]) == 2
    assert "names, sizes or contents differ" in capsys.readouterr().err
    recorded = read_checkpoint(model)[1]["data_fingerprint"]
    update_header(model, data_fingerprint={key: recorded[key] for key in ("files", "sha1")})  # an older model
    assert main(["fit", str(data), "-o", str(model), "--resume", "--steps", "3", "--quiet"]) == 0


def test_fit_warns_of_chroma_subsampled_jpegs_for_a_method_that_needs_independent_noise(tmp_path, rgb_image, capsys):
    """The noise check measures the channels' mean, in which 4:2:0 chroma noise hardly shows (0.01 for such
    JPEGs in the audit): `fit` said the noise was independent enough for nb2nb."""
    data = tmp_path / "jpegs"
    data.mkdir()
    for seed in range(2):
        Image.fromarray((_noisy(rgb_image, seed) * 255).astype(np.uint8)).save(data / f"{seed}.jpg", quality=90)
    capsys.readouterr()
    assert main(["fit", str(data), "--method", "nb2nb", *FIT, "--steps", "1", "-o", str(tmp_path / "m")]) == 0
    err = capsys.readouterr().err
    assert "chroma subsampling" in err and "nb2nb" in err, err
    png = tmp_path / "pngs"
    png.mkdir()
    write_image(png / "0.png", _noisy(rgb_image))
    assert main(["fit", str(png), "--method", "nb2nb", *FIT, "--steps", "1", "-o", str(tmp_path / "p")]) == 0
    assert "chroma subsampling" not in capsys.readouterr().err


def test_infinite_pixels_of_float_data_are_blank_for_fit_and_restore(tmp_path, rgb_image, capsys):
    """+-inf in float data (a ratio or flat-field image) made `fit` diverge at step 0 with advice to lower --lr;
    they are now blank pixels, as NaN ones are: left out of what the network sees, and the output holds the same
    +-inf there (a fuzz audit: they came back NaN, silently)."""
    data = tmp_path / "floats"
    data.mkdir()
    image = _noisy(rgb_image)[:, :, 0] * 300
    image[::16, ::16] = np.inf
    image[8::16, 8::16] = -np.inf
    tifffile.imwrite(data / "ratio.tif", image)
    model = tmp_path / "m.safetensors"
    assert main(["fit", str(data), "--method", "n2v", *FIT, "--steps", "3", "-o", str(model)]) == 0
    assert main(["restore", str(data / "ratio.tif"), "--model", str(model), "-o", str(tmp_path / "out.tif"),
                 "--quiet"]) == 0
    restored = tifffile.imread(tmp_path / "out.tif")
    blank = ~np.isfinite(image)
    assert np.array_equal(restored[blank], image[blank]) and np.isfinite(restored[~blank]).all()


def _dim_data_model(tmp_path, rgb_image) -> tuple[np.ndarray, object]:
    """(12-bit gray counts in a 16-bit TIFF in tmp_path/dim, a tiny n2v model fitted on them): fit maps such
    dim data to [0, 1] and records the map."""
    data = tmp_path / "dim"
    data.mkdir()
    dim = (_noisy(rgb_image)[:, :, 0] * 4095).astype(np.uint16)
    tifffile.imwrite(data / "a.tif", dim)
    model = tmp_path / "m.safetensors"
    assert main(["fit", str(data), "--method", "n2v", *FIT, "--steps", "2", "-o", str(model)]) == 0
    return dim, model


def test_a_model_fitted_on_dim_data_warns_for_much_brighter_data(tmp_path, rgb_image, capsys):
    """A model trained on 12-bit data (mapped to [0, 1] by a recorded map) restored a 4x brighter exposure, or
    an 8-bit photo, far outside what it saw, without a word (an audit: the error rose from 1646 to 2993)."""
    from selfrestore.restore import Restorer

    dim, model = _dim_data_model(tmp_path, rgb_image)
    data = tmp_path / "dim"
    assert read_checkpoint(model)[1].get("intensity")
    bright = tmp_path / "bright.tif"
    tifffile.imwrite(bright, np.minimum(dim.astype(np.uint32) * 4, 65535).astype(np.uint16))
    capsys.readouterr()
    assert main(["restore", str(bright), "--model", str(model), "-o", str(tmp_path / "b.tif"), "--quiet"]) == 0
    assert "through the map the model was trained with" in capsys.readouterr().err
    assert main(["restore", str(data / "a.tif"), "--model", str(model), "-o", str(tmp_path / "a.tif"), "--quiet"]) == 0
    assert "through the map the model was trained with" not in capsys.readouterr().err
    with pytest.warns(UserWarning, match="through the map the model was trained with"):
        Restorer(model).restore(tifffile.imread(bright))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Restorer(model).restore(dim)


def test_inspect_measures_around_blank_pixels_and_names_why_an_all_blank_image_is_left_out(tmp_path, capsys):
    """Blank pixels (NaN, and +-inf since they are blank too) are left out of inspect's measurement, not
    measured as the median the reader fills in; an all-NaN image is left out for that reason, not for alpha."""
    rng = np.random.default_rng(0)
    noisy = (0.5 + 0.1 * rng.standard_normal((64, 64))).astype(np.float32)
    noisy[:, :32] = np.nan  # half blank: the median filled there would read as a noise-free half
    write_image(tmp_path / "half.tif", noisy, dtype="float32")
    assert main(["inspect", str(tmp_path / "half.tif"), "--json", str(tmp_path / "r.json")]) == 0
    import json

    assert 0.09 < json.loads((tmp_path / "r.json").read_text())["noise_sigma_median"] < 0.11
    write_image(tmp_path / "blank.tif", np.full((16, 16), np.nan, np.float32), dtype="float32")
    capsys.readouterr()
    assert main(["inspect", str(tmp_path / "blank.tif")]) != 0
    assert "blank (NaN) pixels leave no 2x2 pixels" in capsys.readouterr().err


def test_inspect_counts_infinite_pixels_not_values(tmp_path, capsys):
    rng = np.random.default_rng(0)
    colour = (0.5 + 0.1 * rng.standard_normal((64, 64, 3))).astype(np.float32)
    colour[5, 5] = np.inf  # two pixels, six values
    colour[9, 9] = -np.inf
    write_image(tmp_path / "rgb.tif", colour, dtype="float32")
    assert main(["inspect", str(tmp_path / "rgb.tif")]) == 0
    assert "non-finite values (inf) in 2 of its 4096 pixels" in capsys.readouterr().err


def test_inspect_names_inf_only_where_the_measured_plane_has_it(tmp_path, capsys):
    """A stack with one inf in its first plane and a blank (NaN) middle plane: the middle plane is left out for
    its NaN pixels, not for the other plane's inf (the third review)."""
    rng = np.random.default_rng(0)
    planes = (0.5 + 0.1 * rng.standard_normal((5, 64, 64))).astype(np.float32)
    planes[0, 3, 3] = np.inf
    planes[2] = np.nan
    tifffile.imwrite(tmp_path / "stack.tif", planes, imagej=True, metadata={"axes": "ZYX"})
    main(["inspect", str(tmp_path / "stack.tif")])
    err = capsys.readouterr().err
    assert "blank (NaN) pixels leave no 2x2 pixels" in err and "non-finite" not in err, err
