"""`restore` writes every result where it can be told apart: no output overwrites another or an existing file,
and what the output's format cannot hold is refused or said before the work, naming the file."""
import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from selfrestore.checkpoint import build_net, save_checkpoint
from selfrestore.cli import main


@pytest.fixture
def model(tmp_path):
    """A tiny (untrained) n2n model: these tests check where and how results are written, not their quality."""
    torch.manual_seed(0)
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, build_net("unet", in_channels=3, out_channels=3, width=4),
                    {"method": {"name": "n2n", "noise": "gauss25"}, "channels": 3, "step": 0})
    return path


def _png(path, channels=3, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = (np.random.default_rng(seed).random((32, 32, channels)) * 255).astype(np.uint8)
    Image.fromarray(pixels[:, :, 0] if channels == 1 else pixels).save(path)
    return path


def _restore(*argv):
    return main(["restore", *map(str, argv), "--quiet"])


def test_two_inputs_onto_one_output_are_refused_before_any_work(tmp_path, model, capsys):
    """x/a.png y/a.png -o o/ wrote o/a.png twice (the first result lost, exit 0), as did p/imgs q/imgs for
    o/imgs/a.png: now a one-line error naming both, before anything is written."""
    for folder in ("x", "y", "p/imgs", "q/imgs"):
        _png(tmp_path / folder / "a.png")
    for inputs, first, second in ((["x/a.png", "y/a.png"], "x/a.png", "y/a.png"),
                                  (["p/imgs", "q/imgs"], "p/imgs/a.png", "q/imgs/a.png")):
        assert _restore(*(tmp_path / i for i in inputs), "--model", model, "-o", tmp_path / "o") == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{first} and {tmp_path}/{second} would both be written to" in err
        assert not (tmp_path / "o").exists()


def test_an_input_given_twice_is_restored_once(tmp_path, model, capsys):
    """The same file twice, or a file and its folder, was restored (and written) once per mention."""
    a = _png(tmp_path / "x" / "a.png")
    assert main(["restore", str(a), str(a), str(tmp_path / "x"), "--model", str(model), "-o", str(tmp_path / "o")]) == 0
    assert capsys.readouterr().out.count(" -> ") == 1
    assert [p.relative_to(tmp_path / "o").as_posix() for p in (tmp_path / "o").rglob("*.png")] == ["x/a.png"]


def test_the_uncertainty_map_is_never_overwritten_or_shared(tmp_path, capsys):
    """--uncertainty: an existing NAME.std.tif was replaced without --overwrite, and a.png + a.tif of one
    folder wrote one a.std.tif (one map lost)."""
    folder = tmp_path / "f"
    _png(folder / "a.png")
    tifffile.imwrite(folder / "a.tif", (np.random.default_rng(1).random((32, 32)) * 255).astype(np.uint8))
    base = ["--model", "laine19-gauss5_50", "--uncertainty", "-o", tmp_path / "o"]
    assert _restore(folder, *base) == 2
    err = capsys.readouterr().err
    assert "a.png and" in err and "a.tif would both be written to" in err and "a.std.tif" in err
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "a.std.tif").write_bytes(b"keep me")
    assert _restore(folder / "a.png", *base) == 1
    assert "a.std.tif: exists" in capsys.readouterr().err
    assert (tmp_path / "o" / "a.std.tif").read_bytes() == b"keep me" and not (tmp_path / "o" / "a.png").exists()
    assert _restore(folder / "a.png", *base, "--skip-existing") == 1  # half done: not skipped, not overwritten
    assert (tmp_path / "o" / "a.std.tif").read_bytes() == b"keep me"
    assert _restore(folder / "a.png", *base, "--overwrite") == 0
    assert tifffile.imread(tmp_path / "o" / "a.std.tif").dtype == np.float32


def test_float_counts_to_an_integer_format_are_refused_before_the_work(tmp_path, model, capsys, monkeypatch):
    """A float TIFF of values 0..1000 to -o out.png gave a 16-bit PNG almost all white (exit 0); float data
    within [0, 1] still goes to PNG."""
    from selfrestore.restore import Restorer

    ramp = np.linspace(0, 1, 32 * 32, dtype=np.float32).reshape(32, 32)
    tifffile.imwrite(tmp_path / "counts.tif", ramp * 1000)
    tifffile.imwrite(tmp_path / "unit.tif", ramp * 0.8 + 0.1)
    with monkeypatch.context() as patch:
        patch.setattr(Restorer, "restore", lambda *a, **k: pytest.fail("restored before the check"))
        assert _restore(tmp_path / "counts.tif", "--model", model, "-o", tmp_path / "out.png") == 1
    assert "out.png: data outside [0, 1]" in capsys.readouterr().err and not (tmp_path / "out.png").exists()
    assert _restore(tmp_path / "counts.tif", "--model", model, "-o", tmp_path / "out.tif") == 0
    assert _restore(tmp_path / "unit.tif", "--model", model, "-o", tmp_path / "unit.png") == 0
    assert np.asarray(Image.open(tmp_path / "unit.png")).dtype == np.uint16


def test_float_values_just_above_1_clipped_by_an_integer_format_are_said(tmp_path, model, capsys, monkeypatch):
    """Float data up to 1.4 (too close to [0, 1] to be taken for counts) to -o out.png: the restored values
    above 1 were clipped with no word; now a warning names the share clipped and the formats that keep them.
    A restoration's slight overshoot is not worth a warning."""
    from selfrestore.restore import Restorer

    ramp = np.linspace(0, 1.4, 32 * 32, dtype=np.float32).reshape(32, 32)
    tifffile.imwrite(tmp_path / "hdr.tif", ramp)
    monkeypatch.setattr(Restorer, "restore", lambda self, image, **k: image)
    assert _restore(tmp_path / "hdr.tif", "--model", model, "-o", tmp_path / "out.png") == 0
    assert "out.png: 27.1% of the restored values" in capsys.readouterr().err
    assert _restore(tmp_path / "hdr.tif", "--model", model, "-o", tmp_path / "out.tif") == 0
    tifffile.imwrite(tmp_path / "near.tif", np.clip(ramp, 0, 1.01))
    assert _restore(tmp_path / "near.tif", "--model", model, "-o", tmp_path / "near.png") == 0
    assert "restored values" not in capsys.readouterr().err


def test_a_suffix_that_is_no_image_format_is_refused_for_one_input(tmp_path, model, capsys):
    """-o out.txt made a folder out.txt/ holding IMG.png; a folder is still taken when clearly meant."""
    a = _png(tmp_path / "a.png")
    assert _restore(a, "--model", model, "-o", tmp_path / "out.txt") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'.txt' is not an image format" in err and not (tmp_path / "out.txt").exists()
    assert main(["restore", str(a), "--model", str(model), "-o", f"{tmp_path / 'run.v2'}/", "--quiet"]) == 0
    assert (tmp_path / "run.v2" / "a.png").is_file()
    assert _restore(a, "--model", model, "-o", tmp_path / "plain") == 0 and (tmp_path / "plain" / "a.png").is_file()


@pytest.mark.parametrize("suffix", [".bmp", ".jpg"])
def test_alpha_that_the_output_cannot_hold_is_said_before_the_work_and_left_out(tmp_path, model, capsys, suffix):
    """Gray + alpha to BMP failed after the work without naming the file; JPEG dropped the alpha silently."""
    pixels = (np.random.default_rng(0).random((32, 32, 2)) * 255).astype(np.uint8)
    Image.fromarray(pixels, "LA").save(tmp_path / "la.png")
    out = tmp_path / f"out{suffix}"
    assert _restore(tmp_path / "la.png", "--model", model, "-o", out) == 0
    assert f"{out}: {suffix} cannot hold the alpha channel" in capsys.readouterr().err
    assert Image.open(out).mode == "L"


def test_gray_alpha_and_two_band_tiffs_restore_into_their_own_layout(tmp_path, model):
    """16-bit gray + alpha TIFF to PNG crashed (OpenCV: 2 channels); a 2-band TIFF came back as 40 pages of
    56 x 2 with its 2nd band untouched (taken for alpha)."""
    rng = np.random.default_rng(0)
    data = (rng.random((40, 56, 2)) * 65535).astype(np.uint16)
    tifffile.imwrite(tmp_path / "ga.tif", data, photometric="minisblack", planarconfig="contig", extrasamples=[2])
    tifffile.imwrite(tmp_path / "bands.tif", data, photometric="minisblack", planarconfig="contig")
    assert _restore(tmp_path / "ga.tif", "--model", model, "-o", tmp_path / "ga.png") == 0
    assert (tmp_path / "ga.png").read_bytes()[24:26] == bytes([16, 4])  # 16-bit gray + alpha PNG
    assert _restore(tmp_path / "bands.tif", "--model", model, "-o", tmp_path / "out") == 0
    with tifffile.TiffFile(tmp_path / "out" / "bands.tif") as tif:
        assert len(tif.pages) == 1 and tif.pages[0].shape == (40, 56, 2)
        restored = tif.asarray()
    assert not np.array_equal(restored[:, :, 1], data[:, :, 1])  # the 2nd band restored too


def test_results_inside_the_input_folder_are_not_restored_again(tmp_path, model, monkeypatch, capsys):
    """`restore photos -o photos/restored` put its results inside the input folder, and a rerun (to finish an
    interrupted batch with --skip-existing, or --overwrite) took them for inputs: it refused them as outputs
    over inputs (exit 1) and restored them once more into photos/restored/photos/restored/..., a level deeper
    each time. The same with `-o photos` (results in photos/photos/) and a single output file in the folder."""
    monkeypatch.chdir(tmp_path)
    for name in ("a.png", "b.png"):
        _png(tmp_path / "photos" / name, seed=len(name))
    assert _restore("photos", "--model", model, "-o", "photos/restored") == 0
    (tmp_path / "photos/restored/photos/b.png").unlink()
    assert _restore("photos", "--model", model, "-o", "photos/restored", "--skip-existing") == 0
    assert _restore("photos", "--model", model, "-o", "photos/restored", "--overwrite") == 0
    _png(tmp_path / "pics" / "c.png")
    assert _restore("pics", "--model", model, "-o", "pics") == 0
    assert _restore("pics", "--model", model, "-o", "pics", "--overwrite") == 0
    _png(tmp_path / "one" / "d.png")
    assert _restore("one", "--model", model, "-o", "one/d_restored.png") == 0
    assert _restore("one", "--model", model, "-o", "one/d_restored.png", "--overwrite") == 0
    found = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.png"))
    assert found == ["one/d.png", "one/d_restored.png", "photos/a.png", "photos/b.png",
                     "photos/restored/photos/a.png", "photos/restored/photos/b.png", "pics/c.png",
                     "pics/pics/c.png"], found
    assert "would overwrite the input" not in capsys.readouterr().err
    # -o above the input folder holds the inputs themselves: they stay inputs (the review: "no images")
    _png(tmp_path / "shots" / "2024" / "raw" / "e.png")
    assert _restore("shots/2024/raw", "--model", model, "-o", "shots") == 0
    assert (tmp_path / "shots" / "raw" / "e.png").exists()


def test_a_blind_spot_model_on_a_chroma_subsampled_jpeg_is_warned_once(tmp_path, capsys):
    """Most colour JPEGs are 4:2:0, whose noise is spread over neighbouring pixels; the default (blind-spot)
    model restored them far worse than unet-gauss25 (an audit: 24.5 vs 27.4 dB on a sigma-25 photo), silently.
    Now one warning per run; a 4:4:4 JPEG, a PNG and a non-blind model are not warned."""
    rng = np.random.default_rng(0)
    for name, sampling in (("a.jpg", 2), ("b.jpg", 2), ("c.jpg", 0)):
        pixels = (rng.random((32, 32, 3)) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(tmp_path / name, quality=95, subsampling=sampling)
    assert _restore(tmp_path / "a.jpg", tmp_path / "b.jpg", "--model", "laine19-gauss25", "-o", tmp_path / "o") == 0
    assert capsys.readouterr().err.count("a JPEG with chroma subsampling") == 1
    # a camera's MPO (a JPEG with more images after it: PIL calls it MPO) alike (the review)
    first = Image.fromarray((rng.random((32, 32, 3)) * 255).astype(np.uint8))
    first.save(tmp_path / "m.jpg", format="MPO", save_all=True, append_images=[first], subsampling=2)
    assert _restore(tmp_path / "m.jpg", "--model", "laine19-gauss25", "-o", tmp_path / "o") == 0
    assert "a JPEG with chroma subsampling" in capsys.readouterr().err
    for model in ("laine19-gauss25", "unet-gauss25"):
        inputs = [tmp_path / "c.jpg"] if model.startswith("laine19") else [tmp_path / "a.jpg"]
        assert _restore(*inputs, "--model", model, "-o", tmp_path / "p", "--overwrite") == 0
        assert "chroma subsampling" not in capsys.readouterr().err


def test_an_orientation_the_output_format_cannot_hold_is_said(tmp_path, model, capsys):
    """A phone photo shown rotated (EXIF orientation 6) restored to .bmp / .ppm came back unrotated, silently
    (an audit); now a warning naming the file; .png keeps the orientation and says nothing."""
    pixels = (np.random.default_rng(0).random((32, 40, 3)) * 255).astype(np.uint8)
    exif = Image.Exif()
    exif[274] = 6
    Image.fromarray(pixels).save(tmp_path / "r.jpg", exif=exif.tobytes())
    for suffix in (".bmp", ".ppm", ".png"):
        assert _restore(tmp_path / "r.jpg", "--model", model, "-o", tmp_path / f"out{suffix}") == 0
        said = "EXIF orientation 6" in capsys.readouterr().err
        assert said == (suffix != ".png"), suffix
