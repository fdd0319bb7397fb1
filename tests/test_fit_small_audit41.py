"""Smaller findings of stop 41's `fit` audit: -o naming an image, an animated GIF, laine19 without --noise."""
import numpy as np
import pytest
from PIL import Image

from selfrestore.cli import main
from selfrestore.errors import ImageReadError
from selfrestore.io import read_image, write_image


def test_fit_refuses_an_image_file_name_as_its_model_file(tmp_path, rgb_image, capsys):
    write_image(tmp_path / "d" / "a.png", rgb_image)
    assert main(["fit", str(tmp_path / "d"), "-o", str(tmp_path / "d" / "b.png"), "--steps", "1"]) == 2
    assert "an image file name" in capsys.readouterr().err
    assert not (tmp_path / "d" / "b.png.safetensors").exists()


def test_an_animated_gif_is_refused_not_read_as_its_first_frame(tmp_path):
    frames = [Image.fromarray(np.full((20, 20, 3), 60 * i, np.uint8)) for i in range(3)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    with pytest.raises(ImageReadError, match="animated GIF of 3 frames"):
        read_image(tmp_path / "a.gif")
    frames[0].save(tmp_path / "still.gif")
    assert read_image(tmp_path / "still.gif")[0].shape == (20, 20, 3)


def test_laine19_without_noise_says_the_option_is_missing(tmp_path, rgb_image, capsys):
    write_image(tmp_path / "d" / "a.png", rgb_image)
    assert main(["fit", str(tmp_path / "d"), "--method", "laine19", "-o", str(tmp_path / "m"), "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert "no --noise was given" in err and "None" not in err


def test_a_dangling_link_in_a_folder_is_said_and_skipped_without_failing(tmp_path, rgb_image, capsys):
    """A link whose target is gone was skipped without a word (the fit audit); reporting it as a failure made
    restore exit 1 and pair / burst runs abort (a review). It is now said and skipped by restore and fit."""
    data = tmp_path / "d"
    write_image(data / "a.png", rgb_image)
    (data / "b.png").symlink_to(tmp_path / "gone.png")
    assert main(["restore", str(data), "-o", str(tmp_path / "out"), "--model", "unet-gauss25", "--quiet"]) == 0
    assert "b.png: a link to nothing that exists" in capsys.readouterr().err
    assert main(["fit", str(data), "--method", "n2v", "--width", "4", "--depth", "2", "--patch-size", "32",
                 "--batch-size", "2", "--no-amp", "--quiet", "--steps", "1", "-o", str(tmp_path / "m")]) == 0
    assert "b.png: a link to nothing that exists" in capsys.readouterr().err
    from selfrestore.file_lists import list_images

    assert list_images([data]) == ([data / "a.png"], [])  # without notes: as before


def test_fit_warns_when_one_map_leaves_some_training_images_nearly_black(tmp_path, capsys):
    """A uint16 stack (about 0.015 on the 0-1 scale) beside float counts of about 300: one map for all, the
    16-bit planes trained as nearly black, unsaid (the audit)."""
    import tifffile

    rng = np.random.default_rng(0)
    data = tmp_path / "mixed"
    data.mkdir()
    tifffile.imwrite(data / "counts.tif", (300 + 30 * rng.standard_normal((64, 64))).astype(np.float32))
    tifffile.imwrite(data / "dim.tif", (1000 + 50 * rng.standard_normal((64, 64))).astype(np.uint16))
    assert main(["fit", str(data), "--method", "n2v", "--width", "4", "--depth", "2", "--patch-size", "32",
                 "--batch-size", "2", "--no-amp", "--steps", "1", "-o", str(tmp_path / "m")]) == 0
    assert "1 of the training images lie under 5% of that range" in capsys.readouterr().err
    alone = tmp_path / "alone"
    alone.mkdir()
    tifffile.imwrite(alone / "counts.tif", (300 + 30 * rng.standard_normal((64, 64))).astype(np.float32))
    assert main(["fit", str(alone), "--method", "n2v", "--width", "4", "--depth", "2", "--patch-size", "32",
                 "--batch-size", "2", "--no-amp", "--steps", "1", "-o", str(tmp_path / "a")]) == 0
    assert "under 5% of that range" not in capsys.readouterr().err
