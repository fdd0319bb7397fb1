"""`selfrestore inspect` after audit 37: dim 16-bit data measured on the scale fit/restore map it to, JPEGs with
chroma subsampling steered away from blind-spot models, --limit filled past unreadable picks, a file given twice
measured once, and an image holding inf named for it."""
import json

import numpy as np
import pytest
from PIL import Image

from selfrestore.cli import main
from selfrestore.io import write_image


@pytest.fixture
def noisy_photo(astronaut) -> np.ndarray:
    """A 192x192 crop of the astronaut with Gaussian noise of std 25 (0-255 scale), in [0, 1]."""
    rng = np.random.default_rng(0)
    crop = astronaut[100:292, 150:342]
    return np.clip(crop + rng.normal(0, 25 / 255, crop.shape), 0, 1)


def save_jpeg(path, image: np.ndarray, subsampling: int) -> None:
    """``image`` in [0, 1] as a JPEG of quality 90 (subsampling 2: 4:2:0, as PIL's default; 0: 4:4:4)."""
    Image.fromarray(np.round(image * 255).astype(np.uint8)).save(path, quality=90, subsampling=subsampling)


def test_inspect_measures_dim_16_bit_data_on_the_scale_fit_and_restore_map_it_to(tmp_path, capsys):
    """12-bit counts saved as 16-bit with noise std 400 counts: inspect said "noise std 1.52", "--noise gauss2"
    and "there may be little to restore", where fit and restore map the data by its percentiles to [0, 1] and
    meet noise of std ~22 there. The level, noise model and advice are now on that scale, and it says so."""
    import tifffile
    from skimage import data

    rng = np.random.default_rng(1)
    clean = data.camera()[128:384, 128:384] / 255.0
    counts = np.clip(np.round(clean * 4095 + rng.normal(0, 400, clean.shape)), 0, 65535).astype(np.uint16)
    tifffile.imwrite(tmp_path / "dim12.tif", counts)
    assert main(["inspect", str(tmp_path / "dim12.tif"), "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "dim 16-bit data" in out and "of the 16-bit range" in out and "map them to [0, 1]" in out
    assert "little to restore" not in out and "--noise gauss2\n" not in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert 18 < report["noise_sigma_median"] < 30 and report["noise_model"] in [f"gauss{n}" for n in range(18, 31)]
    assert report["dim_16_bit_mapped"] == 1 and "mapped" in report["noise_sigma_unit"]
    mapping = report["images"][0]["intensity_mapping"]
    assert mapping and 0.05 < mapping["scale"] < 0.1
    # 16-bit data using the whole range is not mapped
    tifffile.imwrite(tmp_path / "full.tif", np.clip(np.round(clean * 65535), 0, 65535).astype(np.uint16))
    assert main(["inspect", str(tmp_path / "full.tif"), "--json", str(tmp_path / "f.json")]) == 0
    assert "dim 16-bit" not in capsys.readouterr().out
    assert json.loads((tmp_path / "f.json").read_text())["images"][0]["intensity_mapping"] is None


def test_inspect_steers_chroma_subsampled_jpegs_away_from_blind_spot_models(tmp_path, noisy_photo, capsys):
    """A 4:2:0 JPEG (most phone photos) got the default (blind-spot) restore and `fit --method laine19`, which
    restore itself warns against: its chroma noise is spread over neighbours, invisible in the channel mean's
    correlation. It is now flagged, with --model unet-gauss25 and pairs advised; a 4:4:4 JPEG is not flagged."""
    save_jpeg(tmp_path / "phone.jpg", noisy_photo, subsampling=2)
    assert main(["inspect", str(tmp_path / "phone.jpg"), "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "chroma subsampling" in out and "--model unet-gauss25" in out and "--pairs" in out
    assert "--method laine19" not in out and f"selfrestore fit {tmp_path / 'phone.jpg'}" not in out
    assert json.loads((tmp_path / "r.json").read_text())["chroma_subsampled_jpegs"] == [str(tmp_path / "phone.jpg")]
    save_jpeg(tmp_path / "full.jpg", noisy_photo, subsampling=0)
    assert main(["inspect", str(tmp_path / "full.jpg")]) == 0
    out = capsys.readouterr().out
    assert "chroma subsampling" not in out and "unet-gauss25" not in out


def test_inspect_advice_names_subsampled_jpegs_among_other_images():
    """Among other images the subsampled JPEGs are named, to be left out of training and restored apart."""
    from selfrestore.commands.inspect import advice

    lines = advice(20.0, 0.0, ["d/"], noise_name="gauss20", subsampled=["d/a.jpg"], measured=3)
    text = "\n".join(lines)
    assert "1 of the 3 images" in text and "d/a.jpg --model unet-gauss25" in text and "selfrestore fit d/" in text
    assert "move it elsewhere first" in text  # (the fit commands take the whole folder, JPEG included)
    alone = "\n".join(advice(20.0, 0.0, ["a.jpg"], noise_name="gauss20", subsampled=["a.jpg"], measured=1))
    assert "--model unet-gauss25" in alone and "laine19 --noise" not in alone and "Neighbor2Neighbor" not in alone


def test_inspect_limit_is_filled_past_unreadable_picks(tmp_path, capsys):
    """`inspect lim/ --limit 2` picked a.png and d.png (empty, garbage) and failed with "no image could be read
    and measured" although b.png and c.png were fine: the picks that fail are now replaced by the others."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "lim"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"")
    (folder / "d.png").write_bytes(b"x\n")
    for name in "bc":
        write_image(folder / f"{name}.png", np.clip(0.5 + 20 / 255 * rng.standard_normal((128, 128, 3)), 0, 1))
    for limit in (2, 3):  # 3: e.png too small, replaced too
        assert main(["inspect", str(folder), "--limit", str(limit), "--json", str(tmp_path / "r.json")]) == 0
        err = capsys.readouterr().err
        assert "a.png: empty file" in err and "d.png: cannot read" in err and ("too small" in err) == (limit == 3)
        report = json.loads((tmp_path / "r.json").read_text())
        assert sorted(r["image"].rsplit("/", 1)[-1] for r in report["images"]) == ["b.png", "c.png"]
        write_image(folder / "e.png", np.full((1, 1, 3), 0.5, np.float32))
    assert main(["inspect", str(folder), "--limit", "1", "--json", str(tmp_path / "one.json")]) == 0
    assert len(json.loads((tmp_path / "one.json").read_text())["images"]) == 1


def test_inspect_measures_a_file_given_twice_once(tmp_path, noisy_photo, capsys, monkeypatch):
    """`inspect a.png /abs/a.png sub/../a.png` measured the image three times (a video listed twice gave its
    frames twice): each file is measured once, under the first name given, and named once in the advice."""
    from selfrestore.video_io import VideoInfo, VideoWriter

    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    write_image(tmp_path / "a.png", noisy_photo)
    assert main(["inspect", "a.png", str(tmp_path / "a.png"), "sub/../a.png", "--json", "r.json"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1 image(s) inspected\n") and "fit a.png -o" in out
    assert [r["image"] for r in json.loads((tmp_path / "r.json").read_text())["images"]] == ["a.png"]
    rng = np.random.default_rng(0)
    crop = noisy_photo[:64, :96]
    with VideoWriter(tmp_path / "clip.mkv", VideoInfo("folder", "test", 3, 64, 96, 3, "uint8", fps=24.0)) as video:
        for _ in range(3):
            video.write(np.clip(crop + rng.normal(0, 10 / 255, crop.shape), 0, 1))
    assert main(["inspect", "clip.mkv", str(tmp_path / "clip.mkv"), "--json", "v.json"]) == 0
    assert [r["image"] for r in json.loads((tmp_path / "v.json").read_text())["images"]] == ["clip.mkv frame 1"]


def test_inspect_names_non_finite_values_as_the_reason_an_image_is_left_out(tmp_path, capsys):
    """A float image of inf values was left out as having "no opaque 2x2 pixels" (it has no alpha); the reason
    is now its non-finite values. An image with a few inf pixels is measured on the others, with a warning."""
    rng = np.random.default_rng(0)
    noisy = (0.5 + 0.1 * rng.standard_normal((64, 64))).astype(np.float32)
    write_image(tmp_path / "inf.tif", np.where(noisy > 0.5, np.inf, -np.inf).astype(np.float32), dtype="float32")
    assert main(["inspect", str(tmp_path / "inf.tif")]) != 0
    err = capsys.readouterr().err
    assert "non-finite values (inf" in err and "opaque" not in err
    noisy[2:4, 2:4] = np.inf  # one 2x2 block of inf: inf - inf is NaN there
    write_image(tmp_path / "some.tif", noisy, dtype="float32")
    assert main(["inspect", str(tmp_path / "some.tif"), "--json", str(tmp_path / "r.json")]) == 0
    assert "non-finite values (inf) in 4 of its 4096 pixels" in capsys.readouterr().err
    report = json.loads((tmp_path / "r.json").read_text())
    assert 0.09 < report["noise_sigma_median"] < 0.11 and report["images"][0]["float_range"][1] < 1.5


def test_inspect_gives_noise_pg_of_dim_data_in_the_datas_own_units(tmp_path, capsys):
    """Dim 16-bit data is measured after its percentile map, but restore --noise-pg takes the data's own
    units: the advice gave a / scale (16x too large here: 28.8 dB restored against 32.9 with the true values;
    a review). Now converted back."""
    import re

    import tifffile
    from skimage import data

    rng = np.random.default_rng(0)
    a, b = 2e-4, 3e-4  # Var = a x + b^2 on the [0, 1] scale of the 16-bit file; 6% of its range
    x = data.camera()[:384, :384] / 255.0 * 0.06
    y = a * rng.poisson(x / a) + b * rng.standard_normal(x.shape)
    tifffile.imwrite(tmp_path / "dim.tif", np.clip(np.round(y * 65535), 0, 65535).astype(np.uint16))
    assert main(["inspect", str(tmp_path / "dim.tif")]) == 0
    found = re.search(r"--noise-pg ([0-9.e-]+) ([0-9.e-]+)", capsys.readouterr().out)
    assert found and 0.75 * a < float(found.group(1)) < 1.33 * a


def test_inspect_says_when_noise_pg_cannot_hold_a_black_level(tmp_path, capsys):
    """Review: dim data with a black level (noise variance a (x - 0.05) in the file's units) converts to a
    negative b^2, which the advice clamped to b = 0 without a word; now it says where the noise reaches 0."""
    import re

    import tifffile
    from skimage import data

    rng = np.random.default_rng(0)
    a, black = 2e-4, 0.05
    x = data.camera()[:384, :384] / 255.0 * 0.06
    y = black + a * rng.poisson(x / a) + 3e-4 * rng.standard_normal(x.shape)
    tifffile.imwrite(tmp_path / "dark.tif", np.clip(np.round(y * 65535), 0, 65535).astype(np.uint16))
    assert main(["inspect", str(tmp_path / "dark.tif")]) == 0
    out = capsys.readouterr().out
    found = re.search(r"--noise-pg ([0-9.e-]+) 0 -o \S+ \(the measured noise reaches 0 at ([0-9.e-]+), not at 0: "
                      r"a black level", out)
    assert found and 0.04 < float(found.group(2)) < 0.06, out
