"""`restore` without --model on noisy chroma-subsampled JPEGs (phones', cameras'): the shipped blind-spot default
assumes noise independent from pixel to pixel and left them about as noisy; they now get the shipped U-Net where
their noise measures at least JPEG_UNET_LEVEL (benchmarks/results/jpeg_default_model.md), weak noise the default."""
import numpy as np
import pytest
from PIL import Image

from selfrestore.cli import main
from selfrestore.commands.restore import JPEG_UNET_LEVEL
from selfrestore.restore import central_noise_sigma

CHOSEN = "restored with the shipped unet-gauss25"


def _jpeg(path, sigma: float, subsampling: int = 2):
    from skimage import data

    clean = data.astronaut()[60:252, 120:312].astype(np.float64)
    noisy = clean + sigma * np.random.default_rng(0).standard_normal(clean.shape)
    Image.fromarray(np.clip(np.round(noisy), 0, 255).astype(np.uint8)).save(path, quality=92,
                                                                           subsampling=subsampling)
    return path


@pytest.fixture
def noisy_and_clean(tmp_path):
    folder = tmp_path / "shots"
    folder.mkdir()
    noisy, clean = _jpeg(folder / "noisy.jpg", 25), _jpeg(folder / "clean.jpg", 0)
    levels = [255 * central_noise_sigma(np.asarray(Image.open(p), np.float32) / 255) for p in (noisy, clean)]
    assert levels[0] >= JPEG_UNET_LEVEL > levels[1]  # the case this test is about
    return folder


def test_a_noisy_subsampled_jpeg_gets_the_unet_and_a_clean_one_the_default(tmp_path, noisy_and_clean, capsys):
    assert main(["restore", str(noisy_and_clean), "-o", str(tmp_path / "out"), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert CHOSEN in err and "noisy.jpg" in err.split(CHOSEN)[0] and "prefer --model" not in err
    out = tmp_path / "out" / "shots"
    by_unet = np.asarray(Image.open(out / "noisy.jpg"), np.float64)
    main(["restore", str(noisy_and_clean / "noisy.jpg"), "--model", "unet-gauss25", "-o", str(tmp_path / "u.jpg"),
          "--quiet"])
    assert np.abs(by_unet - np.asarray(Image.open(tmp_path / "u.jpg"), np.float64)).max() == 0
    main(["restore", str(noisy_and_clean / "clean.jpg"), "--model", "laine19-gauss5_50", "-o",
          str(tmp_path / "d.jpg"), "--quiet"])
    by_default = np.asarray(Image.open(out / "clean.jpg"), np.float64)
    assert np.abs(by_default - np.asarray(Image.open(tmp_path / "d.jpg"), np.float64)).max() == 0


@pytest.mark.parametrize("options", [["--model", "laine19-gauss5_50"], ["--uncertainty"], ["--noise-sigma", "25"],
                                     ["--subsample", "2"]])
def test_the_rule_is_off_where_a_model_or_an_option_of_the_default_model_is_asked_for(tmp_path, noisy_and_clean,
                                                                                      capsys, options):
    main(["restore", str(noisy_and_clean / "noisy.jpg"), "-o", str(tmp_path / "o.jpg"), "--quiet", *options])
    assert CHOSEN not in capsys.readouterr().err


def test_a_444_jpeg_is_left_to_the_default(tmp_path, capsys):
    """4:4:4 keeps each pixel's noise apart: the blind-spot default restores it (jpeg_clipping.md: 31.57 dB)."""
    source = _jpeg(tmp_path / "full.jpg", 25, subsampling=0)
    main(["restore", str(source), "-o", str(tmp_path / "o.jpg"), "--quiet"])
    assert CHOSEN not in capsys.readouterr().err


def test_a_named_unet_on_a_subsampled_jpeg_is_not_sent_back_to_the_default(tmp_path, capsys):
    """Its level mismatch warning (measured after compression, which reads low) said "omit --model", i.e. use the
    default that leaves such JPEGs noisy."""
    source = _jpeg(tmp_path / "n.jpg", 12)
    main(["restore", str(source), "--model", "unet-gauss25", "-o", str(tmp_path / "o.jpg"), "--quiet"])
    assert "omit --model" not in capsys.readouterr().err


def test_a_named_unet_on_a_weakly_noisy_subsampled_jpeg_is_still_told_it_smooths(tmp_path, capsys):
    """Under the rule's level the default suits such a JPEG better (jpeg_default_model.md): said, as for others."""
    source = _jpeg(tmp_path / "w.jpg", 3)
    main(["restore", str(source), "--model", "unet-gauss25", "-o", str(tmp_path / "o.jpg"), "--quiet"])
    assert "smooth away detail; omit --model" in capsys.readouterr().err
