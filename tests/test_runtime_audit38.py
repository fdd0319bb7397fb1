"""Audit 38 of restore's runtime options: a given noise level far from the model's, and a 16-bit input written to
an 8-bit format, are said."""
import numpy as np

from selfrestore.cli import main
from selfrestore.io import write_image


def test_a_given_level_far_from_the_models_and_8_bit_outputs_of_16_bit_inputs_are_said(tmp_path, rgb_image,
                                                                                       capsys):
    """--noise-sigma 100 for the default 5-50 model lost 9.5 dB (31.0 -> 21.5, the audit) without a word (the
    level-mismatch check is skipped once a level is given); a 16-bit TIFF restored into a .jpg / .webp came out
    8-bit silently, where a dropped alpha channel is warned."""
    rng = np.random.default_rng(0)
    noisy = np.clip(rgb_image + 25 / 255 * rng.standard_normal(rgb_image.shape), 0, 1)
    write_image(tmp_path / "n.png", noisy)
    write_image(tmp_path / "n16.tif", noisy, dtype="uint16")
    capsys.readouterr()
    assert main(["restore", str(tmp_path / "n.png"), "-o", str(tmp_path / "a.png"), "--noise-sigma", "100",
                 "--quiet"]) == 0
    assert "--noise-sigma 100 is far from the noise the model was trained on (std 5-50" in capsys.readouterr().err
    assert main(["restore", str(tmp_path / "n.png"), "-o", str(tmp_path / "b.png"), "--noise-sigma", "25",
                 "--quiet"]) == 0
    assert "far from the noise" not in capsys.readouterr().err
    for suffix in (".jpg", ".webp"):
        assert main(["restore", str(tmp_path / "n16.tif"), "-o", str(tmp_path / f"c{suffix}"), "--quiet"]) == 0
        assert f"{suffix} holds 8 bits per channel; the 16-bit" in capsys.readouterr().err
    assert main(["restore", str(tmp_path / "n16.tif"), "-o", str(tmp_path / "d.png"), "--quiet"]) == 0
    assert "8 bits" not in capsys.readouterr().err
