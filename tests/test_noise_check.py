"""The correlated-noise check: white noise passes, neighbour-correlated noise is flagged, fit warns."""
import io
import json

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import uniform_filter

from selfrestore.cli import main
from selfrestore.io import write_image
from selfrestore.noise_check import CORRELATION_LIMIT, neighbour_correlation


@pytest.mark.parametrize("sigma", [5, 25, 50])
def test_white_noise_is_independent_and_filtered_or_compressed_noise_is_not(astronaut, sigma):
    rng = np.random.default_rng(sigma)
    white = astronaut + rng.normal(0, sigma / 255, astronaut.shape)
    assert abs(neighbour_correlation([white])) < 0.05
    box = astronaut + uniform_filter(rng.normal(0, 3 * sigma / 255, astronaut.shape), size=(3, 3, 1))
    assert neighbour_correlation([box]) > 0.4  # 3 x 3 box-filtered noise
    if sigma == 5:  # JPEG at quality 75 smooths light noise into blocks
        buffer = io.BytesIO()
        Image.fromarray(np.round(np.clip(white, 0, 1) * 255).astype(np.uint8)).save(buffer, "JPEG", quality=75)
        jpeg = np.asarray(Image.open(buffer)).astype(np.float32) / 255
        assert neighbour_correlation([jpeg]) > CORRELATION_LIMIT


def test_too_small_images_give_no_verdict():
    assert neighbour_correlation([np.zeros((7, 7, 3))]) is None
    assert neighbour_correlation([np.random.default_rng(0).random((32, 32))]) is None  # 16 blocks < 64


def test_a_small_photo_with_white_noise_is_not_called_correlated(astronaut):
    """64 px of a photo with white noise read 0.39 (CORRELATED): its 64 blocks were all kept, textured ones
    too. Now no verdict below 256 blocks; from 128 px on, the flattest quarter gives the usual reading."""
    rng = np.random.default_rng(0)
    noisy = astronaut + rng.normal(0, 0.05, astronaut.shape)
    assert neighbour_correlation([noisy[200:264, 200:264]]) is None
    assert neighbour_correlation([noisy[200:264, 200:264]] * 4) is not None  # blocks pooled over images count
    assert abs(neighbour_correlation([noisy[200:328, 200:328]])) < 0.05


def test_fit_warns_on_correlated_noise_and_records_the_check(tmp_path, astronaut, capsys):
    from selfrestore.checkpoint import read_checkpoint

    rng = np.random.default_rng(0)
    crop = astronaut[:128, :128]
    box = np.clip(crop + uniform_filter(rng.normal(0, 0.2, crop.shape), size=(3, 3, 1)), 0, 1)
    write_image(tmp_path / "box" / "a.png", box)
    write_image(tmp_path / "white" / "a.png", np.clip(crop + rng.normal(0, 0.1, crop.shape), 0, 1))
    common = ["--method", "nb2nb", "--steps", "1", "--width", "4", "--depth", "2", "--patch-size", "64"]
    assert main(["fit", str(tmp_path / "box"), *common, "-o", str(tmp_path / "box_model")]) == 0
    assert "correlated between neighbouring pixels" in capsys.readouterr().err
    record = read_checkpoint(tmp_path / "box_model.safetensors")[1]["noise_check"]
    assert record["neighbour_correlation"] > record["limit"]
    assert main(["models", str(tmp_path / "box_model.safetensors")]) == 0
    assert "CORRELATED" in capsys.readouterr().out
    assert main(["fit", str(tmp_path / "white"), *common, "-o", str(tmp_path / "white_model"), "--quiet"]) == 0
    assert "correlated" not in capsys.readouterr().err


def test_noise_level_estimate_and_inspect_advice(tmp_path, astronaut, capsys):
    import json

    from selfrestore.noise_check import noise_sigma

    rng = np.random.default_rng(1)
    for sigma in (10, 25, 40):
        assert abs(noise_sigma(astronaut + rng.normal(0, sigma / 255, astronaut.shape)) * 255 - sigma) < 0.1 * sigma
    crop = astronaut[:192, :192]
    for i in range(3):
        write_image(tmp_path / "shots" / f"{i}.png", np.clip(crop + rng.normal(0, 20 / 255, crop.shape), 0, 1))
    buffer = io.BytesIO()
    Image.fromarray(np.round(np.clip(crop + rng.normal(0, 5 / 255, crop.shape), 0, 1) * 255).astype(np.uint8)).save(
        buffer, "JPEG", quality=75)
    (tmp_path / "shots" / "compressed.jpg").write_bytes(buffer.getvalue())
    assert main(["inspect", str(tmp_path / "shots"), "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "independent" in out and "correlated noise in 1 of 4 images" in out and "compressed.jpg" in out
    assert "selfrestore restore" in out  # std ~20: the shipped Gaussian model applies
    report = json.loads((tmp_path / "r.json").read_text())
    assert 15 < report["noise_sigma_median"] < 25 and len(report["images"]) == 4
    assert main(["inspect", str(tmp_path / "shots" / "compressed.jpg")]) == 0
    assert "--pairs" in capsys.readouterr().out  # correlated noise: two shots per scene advised
    assert main(["inspect", str(tmp_path / "shots"), "--json", "-"]) == 0  # JSON alone on stdout
    captured = capsys.readouterr()
    assert json.loads(captured.out)["noise_model"].startswith("gauss") and "inspected" in captured.err


def test_noise_level_function_separates_shot_noise_from_gaussian_noise(astronaut):
    from selfrestore.commands.inspect import noise_model_name
    from selfrestore.noise_check import noise_level_function

    rng = np.random.default_rng(2)
    a, b = noise_level_function(rng.poisson(30 * astronaut) / 30)
    assert 25 < 1 / a < 36 and noise_model_name(a, b)[0].startswith("poisson")
    a, b = noise_level_function(astronaut + rng.normal(0, 25 / 255, astronaut.shape))
    assert a < 0.003 and 22 < np.sqrt(b) * 255 < 32 and noise_model_name(a, b)[0].startswith("gauss")
    a, b = noise_level_function(rng.poisson(30 * astronaut) / 30 + rng.normal(0, 20 / 255, astronaut.shape))
    assert 25 < 1 / a < 36 and noise_model_name(a, b)[0].startswith("pg")
    # strong shot noise: zero counts in dim blocks are not clipping (this returned None when any zero excluded
    # a block); strong Gaussian noise, clipped to [0, 1] or not, stays measurable and near its level
    a, b = noise_level_function(rng.poisson(5 * astronaut) / 5)
    assert 3.5 < 1 / a < 6.5
    noisy = astronaut + rng.normal(0, 50 / 255, astronaut.shape)
    for data in (noisy, np.clip(noisy, 0, 1)):
        a, b = noise_level_function(data)
        assert 45 < np.sqrt(a / 2 + b) * 255 < 60


def test_inspect_advice_for_shot_noise_names_the_anscombe_restore():
    from selfrestore.commands.inspect import advice

    assert "--noise-pg 0.004 0.02 " in "\n".join(advice(12.0, 0.0, ["d/"], noise_name="pg0.004_0.02"))
    assert "--noise-pg 0.0333 0 " in "\n".join(advice(12.0, 0.0, ["d/"], noise_name="poisson30"))


def test_inspect_advice_for_shot_noise_video_names_the_l2_warp_loss():
    from selfrestore.commands.inspect import video_advice

    assert "--warp-loss l2" in "\n".join(video_advice(["c.mp4"], 12.0, 0.0, noise_name="poisson30"))
    assert "--warp-loss l2" in "\n".join(video_advice(["c.mp4"], 12.0, 0.0, noise_name="pg0.004_0.02"))
    assert "--warp-loss" not in "\n".join(video_advice(["c.mp4"], 12.0, 0.0, noise_name="gauss12"))


def test_inspect_a_video_file_measures_a_few_frames_and_names_the_video_command(tmp_path, astronaut, capsys):
    import json

    from selfrestore.video_io import VideoInfo, VideoWriter

    rng = np.random.default_rng(0)
    crop = astronaut[:96, :128]
    with VideoWriter(tmp_path / "clip.mkv", VideoInfo("folder", "test", 12, 96, 128, 3, "uint16", fps=24.0)) as out:
        for _ in range(12):  # 16-bit lossless (FFV1): the noise reaches the file as it is
            out.write(np.clip(crop + rng.normal(0, 20 / 255, crop.shape), 0, 1))
    assert main(["inspect", str(tmp_path / "clip.mkv"), "--json", str(tmp_path / "r.json")]) == 0
    printed = capsys.readouterr().out
    assert "selfrestore video" in printed and "--method mf2f" in printed and "--warp-loss" not in printed
    report = json.loads((tmp_path / "r.json").read_text())
    assert [r["image"].rsplit(" ", 1)[-1] for r in report["images"]] == ["1", "11"]  # frames 1 and 11 of 12
    assert 15 < report["noise_sigma_median"] < 25


def test_noise_level_function_is_not_fooled_by_clipped_8_bit_data(astronaut):
    """Blocks holding clipped pixels (0 or 255) understate the noise; they are left out, so Poisson lambda 30
    saved as 8-bit still reads as about 30 (it read above 36 when only the block means were screened)."""
    from selfrestore.noise_check import noise_level_function

    rng = np.random.default_rng(2)

    def as_8_bit(y):
        return np.round(np.clip(y, 0, 1) * 255) / 255

    a, b = noise_level_function(as_8_bit(rng.poisson(30 * astronaut) / 30))
    assert 25 < 1 / a < 36
    a, b = noise_level_function(as_8_bit(astronaut + rng.normal(0, 25 / 255, astronaut.shape)))
    assert a < 0.003 and 22 < np.sqrt(b) * 255 < 32


def test_inspect_skips_bad_videos_does_not_advise_video_for_one_frame_and_keeps_units_apart(tmp_path, astronaut,
                                                                                          capsys):
    """An unreadable video is a warning like an unreadable image; a one-frame video gets no `selfrestore video`
    advice (that command needs two frames); float images are not folded into the 0-255 median."""
    from selfrestore.video_io import VideoInfo, VideoWriter

    rng = np.random.default_rng(0)
    crop = astronaut[:96, :128]
    with VideoWriter(tmp_path / "one.mkv", VideoInfo("folder", "test", 1, 96, 128, 3, "uint8", fps=24.0)) as out:
        out.write(np.clip(crop + rng.normal(0, 20 / 255, crop.shape), 0, 1))
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    capsys.readouterr()
    assert main(["inspect", str(tmp_path / "broken.mp4"), str(tmp_path / "one.mkv")]) == 0
    captured = capsys.readouterr()
    assert "broken.mp4" in captured.err and "Traceback" not in captured.err
    assert "--method mf2f" not in captured.out and "a single frame" in captured.out
    # 8-bit images with sigma 20 and a float image in other units (x 1000)
    for i in range(2):
        write_image(tmp_path / "mixed" / f"{i}.png", np.clip(crop + rng.normal(0, 20 / 255, crop.shape), 0, 1))
    write_image(tmp_path / "mixed" / "f.tif", (1000 * (crop + rng.normal(0, 20 / 255, crop.shape))).astype(np.float32),
                dtype="float32")
    assert main(["inspect", str(tmp_path / "mixed")]) == 0
    out = capsys.readouterr().out
    level = float(out.split("noise std ")[1].split()[0])
    assert 15 < level < 25, out
    assert "float images: noise std" in out


def test_inspect_suggests_the_gaussian_level_it_reports(tmp_path, astronaut, capsys):
    """Sigma 25 on 96 px crops: inspect said "noise std 23.72" and "--noise gauss31" (the block fit reads high
    on texture); the suggested level is now the reported std, near the truth."""
    rng = np.random.default_rng(3)
    for i in range(3):
        crop = astronaut[96 * i:96 * i + 96, 200:296]
        write_image(tmp_path / f"{i}.png", np.clip(crop + rng.normal(0, 25 / 255, crop.shape), 0, 1))
    assert main(["inspect", str(tmp_path), "--json", str(tmp_path / "r.json")]) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    level = int(report["noise_model"].removeprefix("gauss"))
    assert level == round(report["noise_sigma_median"]) and 21 <= level <= 27, report["noise_model"]
