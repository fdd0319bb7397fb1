"""User-facing checks of `selfrestore evaluate` and `selfrestore inspect`: a --json report never overwrites an
input, float data off the [0, 1] scale is not scored, the simulated noise belongs to the image (not its place in
the list), defaults of 0 show in --help, and a flat image gives no warning and no misleading advice."""
import json
import warnings

import numpy as np
import pytest

from selfrestore.checkpoint import resolve_model
from selfrestore.cli import main
from selfrestore.io import write_image


@pytest.fixture
def clean_dir(tmp_path, rgb_image):
    """A folder of two small clean 8-bit images (48x48 and 48x64)."""
    folder = tmp_path / "clean"
    write_image(folder / "a.png", rgb_image[:48, :48])
    write_image(folder / "b.png", rgb_image[48:, 64:])
    return folder


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


def test_json_report_never_overwrites_an_input(tmp_path, clean_dir, capsys, monkeypatch):
    """`--json clean/a.png` with clean/ the --clean folder (or `inspect v/ --json v/f000.png`) replaced the image
    with the JSON report (and `evaluate --json MODEL_FILE` the model): refused in one line before any work, under
    any name of the file."""
    monkeypatch.chdir(tmp_path)
    before = {p.name: p.read_bytes() for p in clean_dir.iterdir()}
    evaluate = ["evaluate", "--clean", "clean", "--noise", "gauss25", "--model", "unet-gauss25", "--json"]
    for report in ("clean/a.png", "./clean/../clean/b.png", str(clean_dir / "a.png")):
        assert main([*evaluate, report]) == 2, report
        assert "would overwrite it" in one_line_error(capsys)
        assert main(["inspect", "clean", "--json", report]) == 2, report
        assert "would overwrite it" in one_line_error(capsys)
    assert main(["inspect", "clean/a.png", "--json", "clean/a.png"]) == 2  # a file named as the input itself
    assert "would overwrite it" in one_line_error(capsys)
    # a report named like an image or video would be read as one by the next run on that folder
    for report in ("clean/r.png", "report.tif", "r.mp4"):
        assert main([*evaluate, report]) == 2 and "the report is JSON" in one_line_error(capsys)
        assert main(["inspect", "clean", "--json", report]) == 2 and "the report is JSON" in one_line_error(capsys)
    assert {p.name: p.read_bytes() for p in clean_dir.iterdir()} == before  # nothing written or replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clean"]
    model = tmp_path / "model.safetensors"  # the model file: it was replaced by the report
    model.write_bytes(resolve_model("unet-gauss25").read_bytes())
    assert main([*evaluate[:-3], "--model", str(model), "--json", "./model.safetensors"]) == 2
    assert "this is the input" in one_line_error(capsys) and model.stat().st_size > 10000
    model.unlink()
    assert main(["inspect", "clean", "--json", "clean/report.json"]) == 0  # a JSON file beside them is fine
    assert json.loads((clean_dir / "report.json").read_text())["images"]


def test_json_report_through_a_symlinked_folder_is_refused_and_on_a_hard_link_is_written(tmp_path, clean_dir,
                                                                                           capsys, monkeypatch):
    """The input's directory entry reached through a symlinked folder is the input: refused. A hard link of an
    input is another entry: the report (written atomically) replaces that name, the image keeps its bytes."""
    import os

    monkeypatch.chdir(tmp_path)
    before = {p.name: p.read_bytes() for p in clean_dir.iterdir()}
    os.symlink(clean_dir, tmp_path / "alias", target_is_directory=True)
    evaluate = ["evaluate", "--clean", "clean", "--noise", "gauss25", "--model", "unet-gauss25", "--json"]
    for report in ("alias/a.png", str(tmp_path / "alias" / "b.png")):
        assert main([*evaluate, report]) == 2, report
        assert "would overwrite it" in one_line_error(capsys)
        assert main(["inspect", "clean", "--json", report]) == 2, report
        assert "would overwrite it" in one_line_error(capsys)
    os.link(clean_dir / "a.png", tmp_path / "a.json")
    assert main(["inspect", "clean", "--json", "a.json"]) == 0
    assert json.loads((tmp_path / "a.json").read_text())["images"]
    assert {p.name: p.read_bytes() for p in clean_dir.iterdir()} == before


def test_evaluate_skips_float_images_off_the_unit_scale(tmp_path, clean_dir, rgb_image, capsys):
    """A float TIFF of counts (401 .. 3600) was scored "noisy -66.94 dB restored -66.94 dB": the noise levels
    and the 8-bit PSNR are defined on [0, 1], so such an image is skipped with a one-line reason."""
    import tifffile

    tifffile.imwrite(clean_dir / "counts.tif", (rgb_image[:48, :48] * 4000).astype(np.float32), photometric="rgb")
    # float in [0, 1]: scored
    tifffile.imwrite(clean_dir / "unit.tif", rgb_image[:48, :48].astype(np.float32), photometric="rgb")
    report_path = tmp_path / "e.json"
    assert main(["evaluate", "--clean", str(clean_dir), "--noise", "gauss25", "--model", "unet-gauss25",
                 "--json", str(report_path)]) == 1  # 1: an input was skipped
    err = capsys.readouterr().err
    assert "counts.tif: float values" in err and "outside [0, 1]" in err and "Traceback" not in err
    report = json.loads(report_path.read_text())
    assert sorted(r["image"].rsplit("/", 1)[-1] for r in report["images"]) == ["a.png", "b.png", "unit.tif"]
    assert all(r["psnr_noisy"] > 15 for r in report["images"])
    assert main(["evaluate", "--clean", str(clean_dir / "counts.tif"), "--noise", "gauss25", "--model",
                 "unet-gauss25"]) == 2
    assert "no image could be evaluated" in capsys.readouterr().err


def test_evaluate_noise_belongs_to_the_image_not_its_place_in_the_list(tmp_path, clean_dir, capsys):
    """b.png alone read 35.11 dB, inside its folder 35.36 dB, and a file given twice was scored twice with
    different noise: the noise is now drawn from the seed and the image's pixels; duplicates are scored once."""
    def rows(*clean: str, seed: int = 0) -> list[tuple]:
        report = tmp_path / "e.json"
        assert main(["evaluate", "--clean", *clean, "--noise", "gauss25", "--model", "unet-gauss25",
                     "--seed", str(seed), "--json", str(report)]) == 0
        capsys.readouterr()
        return [(r["image"].rsplit("/", 1)[-1], r["psnr_noisy"], r["psnr"])
                for r in json.loads(report.read_text())["images"]]

    b = str(clean_dir / "b.png")
    alone = rows(b)
    in_folder = rows(str(clean_dir))
    assert [name for name, *_ in in_folder] == ["a.png", "b.png"] and in_folder[1] == alone[0]
    assert rows(b, str(clean_dir), b) == [alone[0], in_folder[0]]  # each file once, first place kept
    assert rows(b, seed=1)[0][1] != alone[0][1]  # the seed still draws other noise
    # stable across runs and machines (no Python hash()): the generator's seed is pinned
    from selfrestore.commands.evaluate import noise_generator

    assert noise_generator(0, np.zeros((2, 2, 1), np.float32)).initial_seed() == 8413213244793768499
    assert noise_generator(1, np.zeros((2, 2, 1), np.float32)).initial_seed() != 8413213244793768499


def test_help_shows_defaults_of_zero(capsys):
    """`0 in (None, False)` is true in Python: the help hid every default of 0 (evaluate --seed, --limit)."""
    import argparse

    from selfrestore.commands._common import HelpFormatter

    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "seed of the synthetic noise (default: 0)" in text and "(0: all) (default: 0)" in text
    parser = argparse.ArgumentParser(formatter_class=HelpFormatter)
    for name, default in (("zero", 0), ("zerof", 0.0), ("none", None), ("off", False), ("on", True)):
        parser.add_argument(f"--{name}", default=default, help=name)
    text = " ".join(parser.format_help().split())
    for shown in ("zero (default: 0)", "zerof (default: 0.0)", "on (default: True)"):
        assert shown in text
    assert "(default: None)" not in text and "(default: False)" not in text


def test_inspect_flat_image_warns_nothing_and_suggests_nothing(tmp_path, capsys):
    """A constant image leaked numpy's RankWarning and suggested `--noise gauss1` and training: it now says no
    noise was measured and suggests no noise model or method."""
    from selfrestore.noise_check import noise_level_function

    flat = np.full((64, 96, 3), 128 / 255, np.float32)
    write_image(tmp_path / "flat.png", flat)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert noise_level_function(flat) is None  # no brightness range: no line to fit
        assert main(["inspect", str(tmp_path / "flat.png"), "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "no noise measured" in out and "--noise" not in out and "selfrestore fit" not in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["noise_model"] is None and report["noise_sigma_median"] == 0
    assert report["advice"] and not any("selfrestore" in line for line in report["advice"])


def test_inspect_sees_small_noise_in_16_bit_data(tmp_path, capsys):
    """0.4/255 is below the 8-bit floor of 'no noise', but ~100 levels of real noise in 16-bit data."""
    rng = np.random.default_rng(0)
    ramp = np.linspace(0.2, 0.8, 96, dtype=np.float32)[None, :, None] * np.ones((64, 96, 3), np.float32)
    write_image(tmp_path / "n16.png", ramp + 0.4 / 255 * rng.standard_normal(ramp.shape).astype(np.float32),
                dtype="uint16")
    assert main(["inspect", str(tmp_path / "n16.png")]) == 0
    assert "no noise measured" not in capsys.readouterr().out


def test_inspect_measures_the_opaque_pixels_of_an_image_with_alpha(tmp_path, capsys):
    """An RGBA image mostly transparent (flat there) measured 'noise std 0.00 ... no noise measured'; the
    opaque part, sigma 25, is what is measured now. A fully transparent one says so."""
    rng = np.random.default_rng(0)
    colour = np.clip(0.5 + 25 / 255 * rng.standard_normal((96, 96, 3)), 0, 1).astype(np.float32)
    alpha = np.ones((96, 96, 1), np.float32)
    colour[:, :60], alpha[:, :60] = 0, 0
    write_image(tmp_path / "rgba.png", np.concatenate([colour, alpha], axis=2))
    assert main(["inspect", str(tmp_path / "rgba.png"), "--json", str(tmp_path / "r.json")]) == 0
    assert "no noise measured" not in capsys.readouterr().out
    assert 22 < json.loads((tmp_path / "r.json").read_text())["noise_sigma_median"] < 28
    write_image(tmp_path / "clear.png", np.concatenate([colour, 0 * alpha], axis=2))
    assert main(["inspect", str(tmp_path / "clear.png")]) != 0
    assert "no opaque 2x2 pixels" in capsys.readouterr().err


def test_inspect_reports_float_noise_on_a_small_scale(tmp_path, capsys):
    """Float data in units of 0.01 with noise 0.0004 was reported as 'noise std 0.00 ... no noise measured'
    (rounded to 3 decimals before the test)."""
    rng = np.random.default_rng(0)
    write_image(tmp_path / "small.tif", (0.005 + 0.0004 * rng.standard_normal((96, 96))).astype(np.float32),
                dtype="float32")
    assert main(["inspect", str(tmp_path / "small.tif"), "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "no noise measured" not in out and "noise std 0.000" in out
    assert 0.00035 < json.loads((tmp_path / "r.json").read_text())["noise_sigma_median"] < 0.00045


def test_inspect_advice_leaves_out_the_files_it_could_not_read(tmp_path, capsys):
    rng = np.random.default_rng(0)
    write_image(tmp_path / "good.png", np.clip(0.5 + 25 / 255 * rng.standard_normal((96, 96, 3)), 0, 1))
    (tmp_path / "bad.png").write_bytes(b"garbage")
    assert main(["inspect", str(tmp_path / "good.png"), str(tmp_path / "bad.png")]) == 0
    captured = capsys.readouterr()
    assert "bad.png" in captured.err and "selfrestore fit" in captured.out and "bad.png" not in captured.out


def test_evaluate_adds_gray_noise_to_a_gray_image_as_restore_meets_it(tmp_path):
    """A gray clean image was made colour before the noise: the noise was independent per channel, easier than
    the real gray noise restore meets (Set12, unet-gauss25: 31.15 dB reported for 28.53; an audit). Now the
    score is that of the gray image restored from gray noise."""
    from skimage import data

    from selfrestore.commands.evaluate import evaluate_model, noise_generator
    from selfrestore.corruption import parse_corruption
    from selfrestore.io import read_image, to_array, to_tensor
    from selfrestore.metrics import psnr, quantize8
    from selfrestore.restore import Restorer

    write_image(tmp_path / "g.png", data.camera()[:96, :96, None] / 255.0)
    clean = read_image(tmp_path / "g.png")[0]
    restorer = Restorer("unet-gauss25", device="cpu", clipping="off")
    restorer.warn_level_mismatch = False
    noise = parse_corruption("gauss25")
    row = evaluate_model(restorer, [tmp_path / "g.png"], noise, seed=3, log=lambda line: None)[0]
    noisy = to_array(noise.sample(to_tensor(clean), noise_generator(3, clean)))
    assert noisy.shape == (96, 96, 1)
    assert row["psnr"] == pytest.approx(psnr(quantize8(restorer.restore(noisy)), clean), abs=1e-9)
    assert row["psnr_noisy"] == pytest.approx(psnr(quantize8(noisy), clean), abs=1e-9)


def test_a_report_name_ending_with_a_slash_is_refused(tmp_path, clean_dir, capsys):
    """--json rep/ wrote a file named rep (Path drops the slash; an audit): a folder name is refused."""
    evaluate = ["evaluate", "--clean", str(clean_dir), "--model", "unet-gauss25", "--noise", "gauss25"]
    for verb in (evaluate, ["inspect", str(clean_dir)]):
        assert main([*verb, "--json", str(tmp_path / "rep") + "/"]) != 0
        assert "ends with /" in capsys.readouterr().err and not (tmp_path / "rep").exists()


def test_evaluate_says_how_many_images_a_perceptual_mean_covers(tmp_path, rgb_image, capsys):
    """NIQE needs two 96 px blocks: its mean covered fewer images than PSNR's without a word (an audit)."""
    from selfrestore import perceptual

    if not perceptual.available()["niqe"]:
        pytest.skip("NIQE parameters not installed")
    folder = tmp_path / "clean"
    write_image(folder / "big.png", np.tile(rgb_image, (4, 4, 1))[:200, :200])
    write_image(folder / "small.png", np.tile(rgb_image, (4, 4, 1))[:64, :100])
    assert main(["evaluate", "--clean", str(folder), "--model", "unet-gauss25", "--noise", "gauss25",
                 "--json", str(tmp_path / "r.json")]) == 0
    import re

    mean_line = [line for line in capsys.readouterr().out.splitlines() if line.startswith("mean")][0]
    assert re.search(r"NIQE [0-9.]+ \(of 1\)", mean_line) and "LPIPS" in mean_line
    assert not re.search(r"LPIPS [0-9.]+ \(of", mean_line)  # both images are large enough for LPIPS
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["mean_counts"]["niqe"] == 1 and report["mean_counts"]["psnr"] == 2
