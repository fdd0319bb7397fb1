"""Star fields and bias-subtracted data through the default model (benchmarks/star_field_map.py).

Float counts of a star field were mapped to [0, 1] by a range the stars set, where the sky's noise was far under
the default model's lowest level: the sky came back ~3 sigma up, its noise not reduced. Float data in about
[0, 1] with a zero-mean background was not mapped and its sky was pulled up. Now the map is narrowed to the
noise (:func:`selfrestore.intensity_map.noise_aware`) and such data shifted; 8/16-bit photos and float
images in [0, 1] are restored exactly as before."""
import warnings

import numpy as np
import pytest

from selfrestore.intensity_map import intensity_mapping
from selfrestore.restore import Restorer

SIZE = 80


@pytest.fixture(scope="module")
def restorer():
    r = Restorer("laine19-gauss5_50", device="cpu")
    r.warn_level_mismatch = False
    return r


def _field(sky: float, sigma: float, peaks: list[float], seed: int = 0, galaxy: float = 0.0
           ) -> tuple[np.ndarray, np.ndarray, list]:
    """(noisy float32, truth, star centres) of a small star field: stars of FWHM 3 px on a flat sky, and a
    galaxy of peak ``galaxy`` (std 5 px)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:SIZE, :SIZE].astype(np.float64)
    truth = np.full((SIZE, SIZE), sky)
    centres = [(20.3, 21.6), (58.7, 25.2), (40.1, 60.4), (15.5, 62.8), (63.2, 61.9)][:len(peaks)]
    for (y, x), peak in zip(centres, peaks):
        truth += peak * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * (3 / 2.3548) ** 2))
    truth += galaxy * np.exp(-((yy - 40) ** 2 + (xx - 30) ** 2) / (2 * 5.0 ** 2))
    return (truth + sigma * rng.standard_normal(truth.shape)).astype(np.float32), truth, centres


def _sky_bias(restored: np.ndarray, truth: np.ndarray, sky: float, sigma: float) -> float:
    mask = np.abs(truth - sky) < 0.05 * sigma
    mask[:6], mask[-6:], mask[:, :6], mask[:, -6:] = False, False, False, False
    return float(np.mean(np.asarray(restored, np.float64).reshape(truth.shape)[mask] - truth[mask])) / sigma


def _flux_error(restored: np.ndarray, truth: np.ndarray, sky: float, centre: tuple[float, float]) -> float:
    yy, xx = np.mgrid[:SIZE, :SIZE]
    aperture = (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= 4.5 ** 2
    restored = np.asarray(restored, np.float64).reshape(truth.shape)
    return float(np.sum(restored[aperture] - sky) / np.sum(truth[aperture] - sky) - 1)


def test_a_star_field_keeps_its_sky_level_and_its_star_fluxes(restorer):
    """Sky 1000, noise 20 counts, stars up to 40000: the old map left the sky ~2-3 sigma up."""
    noisy, truth, centres = _field(1000.0, 20.0, [40000, 8000, 1500, 400, 150])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        restored = restorer.restore(noisy)
    assert not [str(w.message) for w in caught if "mapped to [0, 1]" in str(w.message)]
    assert abs(_sky_bias(restored, truth, 1000.0, 20.0)) < 0.3
    sky_error = (restored - truth)[np.abs(truth - 1000) < 1][6:-6]
    assert np.sqrt(np.mean(sky_error ** 2)) < 0.7 * 20  # the sky's noise is reduced
    for centre in centres[:3]:  # bright stars: their flux kept within 3 %
        assert abs(_flux_error(restored, truth, 1000.0, centre)) < 0.03, centre
    mapping = restorer.mapping_for(noisy[:, :, None])
    old = intensity_mapping([noisy[:, :, None]], dim=True)
    assert mapping["offset"] == old["offset"] and mapping["scale"] < old["scale"] / 5
    assert restorer.weak_mapped_noise(noisy, mapping) is None
    assert "by their map (offset" in restorer.weak_mapped_noise(noisy, old)  # the old map's noise is still said


def test_bias_subtracted_data_in_about_0_1_keeps_its_zero_background(restorer):
    """Sky 0 (half the values negative), noise 0.08, sources up to 0.9: unmapped, its sky was pulled up."""
    noisy, truth, _ = _field(0.0, 0.08, [0.9, 0.5, 0.3, 0.2, 0.15], seed=1, galaxy=0.6)
    assert intensity_mapping([noisy[:, :, None]], dim=True) is None  # not mapped by its range (nor dim)
    restored = restorer.restore(noisy)
    assert abs(_sky_bias(restored, truth, 0.0, 0.08)) < 0.06
    assert restorer.mapping_for(noisy[:, :, None]) == {"offset": float(np.percentile(noisy, 0.1)), "scale": 1.0}


def test_photos_and_float_images_in_0_1_are_restored_as_before(restorer, rgb_image):
    """8-bit and 16-bit photos and float [0, 1] images (a dark one with unclipped noise too) are not mapped:
    the same output as restored unmapped."""
    rng = np.random.default_rng(0)
    noisy = np.clip(rgb_image[:48, :48] + rng.normal(0, 20 / 255, (48, 48, 3)), 0, 1)
    dark = (rgb_image[:48, :48, :1] * 0.3 + rng.normal(0, 10 / 255, (48, 48, 1))).astype(np.float32)
    assert 0 < np.mean(dark < 0) < 0.25
    for image in (np.round(noisy * 255).astype(np.uint8), np.round(noisy * 65535).astype(np.uint16),
                  noisy.astype(np.float32), dark):
        assert restorer.mapping_for(image.astype(np.float32) / (255 if image.dtype == np.uint8 else
                                                                65535 if image.dtype == np.uint16 else 1)) is None
        assert np.array_equal(restorer.restore(image), restorer.restore(image, mapping=None))


def test_a_stack_of_star_fields_gets_one_narrowed_map(restorer):
    planes = [_field(1000.0, 20.0, [40000, 8000, 1500], seed=s)[0] for s in range(3)]
    maps = restorer.stack_mappings(planes, (3,), "T")
    old = intensity_mapping(planes, dim=True)
    assert maps[0] == maps[1] == maps[2] and maps[0]["offset"] == old["offset"]
    assert maps[0]["scale"] < old["scale"] / 5
    given = Restorer("laine19-gauss5_50", device="cpu", noise_params={"sigma": 1 / 255})  # a level given: as it was
    assert given.stack_mappings(planes, (3,), "T")[0] == old
