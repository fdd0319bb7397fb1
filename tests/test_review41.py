"""The review of stop 41's changes: the narrowed map kept to images that are mostly background, blank pixels
left out of its measurement, and smaller points of --subsample and fit."""
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from selfrestore.cli import main
from selfrestore.errors import ImageRefused
from selfrestore.restore import Restorer


@pytest.fixture(scope="module")
def restorer():
    r = Restorer("laine19-gauss5_50", device="cpu")
    r.warn_level_mismatch = False
    return r


def _psnr(a, b, peak):
    return 10 * np.log10(peak ** 2 / np.mean((np.asarray(a, np.float64) - b) ** 2))


def test_dense_textured_counts_keep_most_of_their_map(restorer, astronaut):
    """12-bit-like counts that fill their range (no sky): narrowed to the noise, most pixels went far past 1 and
    came back biased (the review: 49.06 -> 43.63 dB); the narrowing now stops where the 95th percentile
    reaches 1."""
    clean = gaussian_filter(astronaut[100:196, 150:246].mean(axis=2), 1.5) * 40000 + 1000
    noisy = (clean + np.random.default_rng(0).normal(0, 150, clean.shape)).astype(np.float32)
    from selfrestore.intensity_map import intensity_mapping

    old = intensity_mapping([noisy[:, :, None]])
    mapping = restorer.mapping_for(noisy[:, :, None])
    assert mapping["scale"] > 0.5 * old["scale"]
    before = _psnr(restorer.restore(noisy, mapping=old), clean, 40000)
    assert _psnr(restorer.restore(noisy), clean, 40000) > before - 0.3


def test_blank_pixels_do_not_switch_the_narrowing_off(restorer, tmp_path):
    """A star field with a wide NaN border (a mosaic): the blank pixels, filled with the median for the
    network, read as noise-free and the map was left as it was (sky +58 counts, the review); now measured
    without them, in Python and through a file."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:120, :120]
    truth = np.full((120, 120), 1000.0)
    for y, x, peak in ((40, 50, 30000), (80, 70, 5000), (60, 30, 800)):
        truth += peak * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * 1.3 ** 2))
    noisy = (truth + rng.normal(0, 10, truth.shape)).astype(np.float32)
    noisy[:25], noisy[-25:], noisy[:, :25], noisy[:, -25:] = np.nan, np.nan, np.nan, np.nan  # 65% blank
    sky = (truth < 1000.5) & np.isfinite(noisy)
    restored = restorer.restore(noisy)
    assert abs(np.mean(restored[sky] - truth[sky])) < 3  # 0.3 sigma (the review: +58)
    import tifffile

    tifffile.imwrite(tmp_path / "field.tif", noisy)
    assert main(["restore", str(tmp_path / "field.tif"), "-o", str(tmp_path / "out.tif"), "--quiet"]) == 0
    from_file = tifffile.imread(tmp_path / "out.tif")
    assert abs(np.mean(from_file[sky] - truth[sky])) < 3 and np.isnan(from_file[~np.isfinite(noisy)]).all()


def test_subsample_refusals_name_the_image_and_the_option(tmp_path, rgb_image, capsys):
    with pytest.raises(ImageRefused, match="a 5 x 7 image is too small to restore as 2 x 2 sub-images"):
        Restorer("laine19-gauss5_50", subsample=2).restore(rgb_image[:5, :7])
    Restorer("laine19-gauss5_50").restore(rgb_image[:5, :7])  # restores without --subsample
    from selfrestore.io import write_image

    write_image(tmp_path / "a.png", rgb_image)
    assert main(["restore", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "--subsample", "2", "--adapt",
                 "5"]) == 2
    assert "--subsample does not combine with --adapt" in capsys.readouterr().err


def test_fit_takes_a_model_named_dot_fit_and_fingerprints_unreadable_files(tmp_path, rgb_image, monkeypatch):
    from selfrestore.commands import fit
    from selfrestore.io import write_image

    write_image(tmp_path / "d" / "a.png", rgb_image)
    assert main(["fit", str(tmp_path / "d"), "--method", "n2v", "--width", "4", "--depth", "2", "--patch-size", "32",
                 "--batch-size", "2", "--no-amp", "--quiet", "--steps", "1", "-o", str(tmp_path / "m.fit")]) == 0

    def unreadable(path):
        raise PermissionError(path)

    monkeypatch.setattr(fit, "_content_sample", unreadable)
    assert fit.data_fingerprint([tmp_path / "d"]) is not None  # names and sizes still recorded
