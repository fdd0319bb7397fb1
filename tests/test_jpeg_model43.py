"""`restore` without --model on chroma-subsampled JPEGs (phones', cameras'): the blind-spot default leaves most of
their noise, which is spread over neighbouring pixels. A rule sending those whose noise measured 8 or more to
unet-gauss25 was tried and not adopted (the level measured on a whole photo reads texture as noise, and the U-Net
smooths clean detailed photos by 5-10 dB: benchmarks/jpeg_default_model.py's docstring). `restore` keeps its
default and says what each model does with such a JPEG, from benchmarks/results/jpeg_default_model.md."""
import numpy as np
from PIL import Image

from selfrestore.cli import main


def _jpeg(path, sigma: float, subsampling: int = 2):
    from skimage import data

    clean = data.astronaut()[60:252, 120:312].astype(np.float64)
    noisy = clean + sigma * np.random.default_rng(0).standard_normal(clean.shape)
    Image.fromarray(np.clip(np.round(noisy), 0, 255).astype(np.uint8)).save(path, quality=92,
                                                                           subsampling=subsampling)
    return path


def test_a_subsampled_jpeg_keeps_the_default_model_and_is_told_both_sides(tmp_path, capsys):
    """The warning said "prefer --model unet-gauss25" for any such JPEG, clean ones too, where the U-Net loses
    3.7-9.0 dB (std 0-6); it now gives both sides, with the measured figures."""
    source = _jpeg(tmp_path / "n.jpg", 20)
    assert main(["restore", str(source), "-o", str(tmp_path / "a.jpg"), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "--model unet-gauss25" in err and "+2.6 to +5.9 dB" in err and "-3.7 to -9.0 dB" in err
    assert main(["restore", str(source), "--model", "laine19-gauss5_50", "-o", str(tmp_path / "d.jpg"),
                 "--quiet"]) == 0
    by_default = np.asarray(Image.open(tmp_path / "a.jpg"), np.float64)
    assert np.abs(by_default - np.asarray(Image.open(tmp_path / "d.jpg"), np.float64)).max() == 0


def test_a_444_jpeg_is_not_warned_of(tmp_path, capsys):
    """4:4:4 keeps each pixel's noise apart: the blind-spot default restores it (jpeg_clipping.md: 31.57 dB)."""
    source = _jpeg(tmp_path / "full.jpg", 25, subsampling=0)
    assert main(["restore", str(source), "-o", str(tmp_path / "o.jpg"), "--quiet"]) == 0
    assert "chroma subsampling" not in capsys.readouterr().err


def test_a_named_unet_on_a_subsampled_jpeg_is_not_simply_sent_back_to_the_default(tmp_path, capsys):
    """Its level (std 20 at q75 measured about 12, under half of 25) made the mismatch warning say "omit --model",
    i.e. the default, 3.9 dB worse there (a review's probe): it now says both sides."""
    from PIL import Image as PILImage
    from skimage import data

    clean = data.astronaut()[60:252, 120:312].astype(np.float64)
    noisy = clean + 20 * np.random.default_rng(0).standard_normal(clean.shape)
    PILImage.fromarray(np.clip(np.round(noisy), 0, 255).astype(np.uint8)).save(tmp_path / "n.jpg", quality=75,
                                                                               subsampling=2)
    assert main(["restore", str(tmp_path / "n.jpg"), "--model", "unet-gauss25", "-o", str(tmp_path / "o.jpg"),
                 "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "compression makes it read low" in err and "visibly noisy" in err and "may smooth away" not in err
