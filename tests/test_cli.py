"""The command line never shows a traceback for a user mistake, and good files still get processed."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from selfrestore.checkpoint import build_net, read_checkpoint, save_checkpoint
from selfrestore.cli import main
from selfrestore.io import read_image, write_image

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def model(tmp_path):
    torch.manual_seed(0)
    net = build_net("unet", in_channels=3, out_channels=3, width=4)
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, net, {"method": {"name": "n2n", "noise": "gauss25"}, "channels": 3, "step": 0})
    return path


def _folder_with_one_bad_file(tmp_path, rgb_image):
    d = tmp_path / "in"
    write_image(d / "good.png", rgb_image)
    write_image(d / "good16.tif", rgb_image, dtype="uint16")
    rgba = np.concatenate([rgb_image, np.ones_like(rgb_image[:, :, :1]) * 0.5], axis=2)
    Image.fromarray((rgba * 255).astype(np.uint8)).save(d / "rgba.png")
    Image.fromarray(np.array([[[1, 2, 3]]], np.uint8)).save(d / "tiny.png")
    (d / "empty.png").write_bytes(b"")
    (d / "text.png").write_text("not an image")
    return d


def test_restore_folder_with_bad_files(tmp_path, rgb_image, model, capsys):
    d = _folder_with_one_bad_file(tmp_path, rgb_image)
    code = main(["restore", str(d), "--model", str(model), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1
    assert "empty.png" in err and "text.png" in err and "Traceback" not in err
    out = tmp_path / "out" / "in"
    assert sorted(p.name for p in out.iterdir()) == ["good.png", "good16.tif", "rgba.png", "tiny.png"]
    _, info16 = read_image(out / "good16.tif")
    assert info16.dtype == "uint16"
    assert np.asarray(Image.open(out / "rgba.png")).shape[2] == 4
    assert read_image(out / "tiny.png")[0].shape == (1, 1, 3)
    # running again does not silently overwrite
    assert main(["restore", str(d / "good.png"), "--model", str(model), "-o", str(tmp_path / "out2")]) == 0
    assert main(["restore", str(d / "good.png"), "--model", str(model), "-o", str(tmp_path / "out2")]) == 1
    # an interrupted batch is finished by rerunning with --skip-existing: only the missing outputs are made
    (out / "good16.tif").unlink()
    before = (out / "good.png").stat().st_mtime_ns
    capsys.readouterr()
    assert main(["restore", str(d), "--model", str(model), "-o", str(tmp_path / "out"), "--skip-existing"]) == 1
    captured = capsys.readouterr()
    assert "skipped 3 input(s) whose output exists" in captured.out and "exists" not in captured.err
    assert (out / "good16.tif").exists() and (out / "good.png").stat().st_mtime_ns == before


@pytest.mark.parametrize("argv,needle", [
    (["restore", "missing.png", "--model", "nope.safetensors", "-o", "x"], "nope.safetensors"),
    (["fit", "missing_dir", "-o", "m.safetensors"], "missing_dir"),
    (["fit", ".", "--method", "n2c", "-o", "m.safetensors"], "supervised"),
    (["evaluate", "--clean", ".", "--noise", "gauss", "--model", "x"], "unknown noise model"),
    (["evaluate", "--clean", ".", "--noise", "gauss25", "--model", "x", "--limit", "-1"], "--limit -1"),
    (["evaluate", "--clean", ".", "--noise", "gauss25", "--model", "x", "--json", "."], ". is a folder"),
    (["inspect", ".", "--json", "."], ". is a folder"),
    (["restore", "x.png", "--adapt", "-5", "-o", "o"], "--adapt"),
])
def test_user_mistakes_give_one_line_errors(tmp_path, argv, needle, capsys, monkeypatch):
    """In process (a new interpreter per case took 4 s each); the real command line is run once below."""
    monkeypatch.chdir(tmp_path)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err and needle in err


def test_a_user_mistake_on_the_real_command_line_gives_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "selfrestore.cli", "restore", "missing.png", "--model",
                           "nope.safetensors", "-o", "x"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr and "nope.safetensors" in proc.stderr


def test_restore_to_one_named_file(tmp_path, rgb_image, model, capsys):
    """-o NAME.EXT for one input writes that file (format from the suffix, 16 bits kept where it can be);
    a file name for two inputs, or the input's own name, is refused."""
    src = write_image(tmp_path / "in16.tif", rgb_image, dtype="uint16")
    assert main(["restore", str(src), "--model", str(model), "-o", str(tmp_path / "clean.png"), "--quiet"]) == 0
    assert capsys.readouterr().out == ""  # --quiet
    image, info = read_image(tmp_path / "clean.png")
    assert info.dtype == "uint16" and image.shape == rgb_image.shape and not (tmp_path / "clean.png").is_dir()
    assert main(["restore", str(src), "--model", str(model), "-o", str(tmp_path / "clean.png")]) == 1  # exists
    assert "--overwrite" in capsys.readouterr().err
    assert main(["restore", str(src), str(src), "--model", str(model), "-o", str(tmp_path / "two.png")]) == 2
    assert "exactly one input" in capsys.readouterr().err
    assert main(["restore", str(src), "--model", str(model), "-o", str(src), "--overwrite"]) == 1
    assert "overwrite the input" in capsys.readouterr().err


def test_devices_tiles_and_unwritable_outputs_give_one_line_errors(tmp_path, rgb_image, model, capsys):
    write_image(tmp_path / "a.png", rgb_image)
    (tmp_path / "a_file").write_text("")
    base = ["restore", str(tmp_path / "a.png"), "--model", str(model)]
    for extra, needle, code in [
            (["--device", "cuda:7", "-o", str(tmp_path / "o1")], "--device cuda:7: this machine has", 2),
            (["--device", "gpu0", "-o", str(tmp_path / "o2")], "not a device name", 2),
            (["-o", str(tmp_path / "a_file" / "sub" / "o.png")], "a_file is a file, not a folder", 2)]:
        assert main([*base, *extra]) == code, extra
        err = capsys.readouterr().err
        assert needle in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    with pytest.raises(SystemExit):  # argparse: usage and one error line
        main([*base, "--tile", "5", "-o", str(tmp_path / "o3")])
    assert "at least 64 pixels" in capsys.readouterr().err


def test_fit_on_images_smaller_than_the_patch_then_evaluate_json(tmp_path, rgb_image, capsys):
    data = tmp_path / "clean"
    write_image(data / "small.png", rgb_image[:20, :24])
    write_image(data / "big.png", rgb_image)
    model = tmp_path / "m.safetensors"
    assert main(["fit", str(data), "--synthetic", "--noise", "gauss25", "--method", "n2n", "--width", "4",
                 "--steps", "3", "--patch-size", "32", "--quiet", "-o", str(model)]) == 0
    assert "smaller than" not in capsys.readouterr().err  # one image holds whole patches: no warning
    assert main(["fit", str(data), "--synthetic", "--noise", "gauss25", "-o", str(model)]) == 2  # no overwrite
    small_only = tmp_path / "small_only"
    write_image(small_only / "small.png", rgb_image[:20, :24])
    assert main(["fit", str(small_only), "--synthetic", "--noise", "gauss25", "--method", "n2n", "--width", "4",
                 "--steps", "1", "--patch-size", "32", "--quiet", "-o", str(tmp_path / "s.safetensors")]) == 0
    assert "every training image is smaller than the 32 px patches" in capsys.readouterr().err
    capsys.readouterr()
    assert main(["evaluate", "--clean", str(data), "--noise", "gauss25", "--model", str(model), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["images"]) == 2 and report["mean"]["psnr_noisy"] < 25
    from selfrestore import perceptual

    have = perceptual.available()
    assert ("lpips" in report["mean"]) == have["lpips_alex"] and ("niqe" in report["mean"]) == have["niqe"]
    assert main(["evaluate", "--clean", str(data), "--noise", "gauss25", "--model", str(model), "--json",
                 "--perceptual", "off"]) == 0
    assert "lpips" not in json.loads(capsys.readouterr().out)["mean"]
    write_image(data / "tiny.png", rgb_image[:8, :8])  # below SSIM's window: skipped with a reason
    assert main(["evaluate", "--clean", str(data), "--noise", "gauss25", "--model", str(model), "--json",
                 "--perceptual", "off"]) == 1
    captured = capsys.readouterr()
    assert "tiny.png: 8x8 is too small" in captured.err and len(json.loads(captured.out)["images"]) == 2


@pytest.mark.parametrize("method,option,value", [
    ("nb2nb", "--gamma", "nan"), ("reblur", "--reblur-features", "0"), ("reblur", "--reblur-weight", "-1"),
    ("reblur", "--blur-noise", "-5"), ("selfir", "--blur-noise", "inf"), ("n2v", "--neighbour-radius", "99")])
def test_fit_refuses_impossible_method_options_in_one_line(tmp_path, rgb_image, capsys, method, option, value):
    """nan passed `gamma < 0`; --reblur-features 0 was a torch traceback; negative weights and noise levels
    trained silently; a huge n2v radius exhausted memory."""
    data = tmp_path / "clean"
    write_image(data / "a.png", rgb_image)
    source = ["--synthetic", "--noise", "blur31_gauss1" if method == "reblur" else "gauss25"]
    code = main(["fit", str(data), *source, "--method", method, option, value, "--steps", "1", "--patch-size", "32",
                 "--quiet", "-o", str(tmp_path / "m.safetensors")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "m.safetensors").exists()


def test_fit_mixed_patch_sizes_and_their_errors(tmp_path, rgb_image, capsys):
    data = tmp_path / "clean"
    write_image(data / "a.png", rgb_image)
    base = ["fit", str(data), "--synthetic", "--noise", "gauss25", "--method", "n2n", "--width", "4", "--depth", "2",
            "--steps", "3", "--quiet"]
    for bad in ("32,4x", "32,30"):
        capsys.readouterr()
        code = main([*base, "--patch-sizes", bad, "-o", str(tmp_path / "bad.safetensors")])
        err = capsys.readouterr().err
        assert code != 0 and "--patch-sizes" in err and "Traceback" not in err
    assert main([*base, "--patch-sizes", "", "-o", str(tmp_path / "one.safetensors")]) == 0  # empty = off: one size
    assert read_checkpoint(tmp_path / "one.safetensors")[1]["train_config"]["patch_sizes"] == []
    assert main([*base, "--patch-sizes", "32,64", "-o", str(tmp_path / "m.safetensors")]) == 0
    _, header = read_checkpoint(tmp_path / "m.safetensors")
    assert header["train_config"]["patch_sizes"] == [32, 64]
    # default 'auto': one size for a plain U-Net, mixed sides for a blind-spot net that sees a whole patch
    assert main([*base, "--patch-size", "32", "-o", str(tmp_path / "u.safetensors")]) == 0
    assert read_checkpoint(tmp_path / "u.safetensors")[1]["train_config"]["patch_sizes"] == []
    blind = [a if a != "n2n" else "laine19" for a in base]
    assert main([*blind, "--patch-size", "32", "-o", str(tmp_path / "b.safetensors")]) == 0
    assert read_checkpoint(tmp_path / "b.safetensors")[1]["train_config"]["patch_sizes"] == [32, 40, 48]
    assert main([*blind, "--patch-size", "32", "--patch-sizes", "off", "-o", str(tmp_path / "b1.safetensors")]) == 0
    assert read_checkpoint(tmp_path / "b1.safetensors")[1]["train_config"]["patch_sizes"] == []
    # --resume with the default keeps the sides the run started with
    resumed = [a if a != "3" else "5" for a in blind]
    assert main([*resumed, "--patch-size", "32", "--resume", "-o", str(tmp_path / "b1.safetensors")]) == 0
    header = read_checkpoint(tmp_path / "b1.safetensors")[1]
    assert header["step"] == 5 and header["train_config"]["patch_sizes"] == []


def test_nb2nb_patch_sides_are_checked_before_training_and_adapt_fits_small_images(tmp_path, rgb_image, capsys):
    """Nb2Nb trains on half-size sub-images, so its patches must be multiples of twice the net's multiple:
    ``fit`` says so before training starts, and ``restore --adapt`` picks such a patch for small images."""
    data = tmp_path / "noisy"
    write_image(data / "a.png", rgb_image[:44, :44])
    base = ["fit", str(data), "--method", "nb2nb", "--width", "4", "--depth", "2", "--steps", "2", "--quiet"]
    assert main([*base, "--patch-size", "36", "-o", str(tmp_path / "bad.safetensors")]) == 2  # net multiple 4, needs 8
    err = capsys.readouterr().err
    assert "--patch-size must be a multiple of 8 for method nb2nb" in err and "Traceback" not in err
    assert not (tmp_path / "bad.safetensors").exists()
    model = tmp_path / "m.safetensors"
    assert main([*base, "--patch-size", "32", "-o", str(model)]) == 0
    capsys.readouterr()
    assert main(["models", str(model)]) == 0  # what the file holds, readable
    described = capsys.readouterr().out
    assert "method   nb2nb (gamma 2.0)" in described and "training 2 steps" in described and "patch 32 px" in described
    assert main(["models", str(tmp_path / "missing.safetensors")]) == 2
    # 44 px inputs: the adaptation patch is 40, a multiple of 8 (it was 44, a multiple of the net's 4: an error)
    assert main(["restore", str(data / "a.png"), "--model", str(model), "-o", str(tmp_path / "out"),
                 "--adapt", "2"]) == 0
    assert (tmp_path / "out" / "a.png").exists()


def test_every_verb_has_help_that_teaches(capsys):
    for verb in ["fit", "restore", "video", "burst", "evaluate", "demo", "models", "inspect"]:
        with pytest.raises(SystemExit) as exit_info:
            main([verb, "--help"])
        text = capsys.readouterr().out
        assert exit_info.value.code == 0, verb
        assert "usage: selfrestore " + verb in text, verb
        assert "(default: None)" not in text and "(default: False)" not in text, verb  # says nothing
        if verb not in ("demo", "models"):
            assert "example" in text.lower(), verb



def test_fit_help_names_every_method_that_takes_each_option(capsys):
    """--blurry / --noisy / --misalign sat under "method baseline_b:" (the first method declaring them) though
    selfir takes them too; each group of method options now names every method that takes it."""
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    sections = capsys.readouterr().out.split("\n\n")

    def heading(option: str) -> str:
        return next(part for part in sections if f"  {option} " in part).splitlines()[0]

    assert {"selfir,", "selfir_r2r,", "baseline_r,"} <= set(heading("--misalign").split())
    assert {"selfir,", "reblur,", "deblur_l1,"} <= set(heading("--kernels").split())  # both kinds of method
    assert heading("--gamma").startswith("methods nb2nb, neighbor2neighbor")


def test_demo_smoke(tmp_path):
    assert main(["demo", "-o", str(tmp_path / "demo"), "--steps", "2", "--size", "64", "--train"]) == 0
    for name in ("noisy.png", "restored.png", "comparison.png"):
        assert (tmp_path / "demo" / name).stat().st_size > 0


def test_demo_only_uses_single_image_shipped_models():
    from selfrestore.checkpoint import shipped_models
    from selfrestore.commands.demo import _single_image_model

    kinds = {name: _single_image_model(path) for name, path in shipped_models().items()}
    assert kinds and all(single == name.startswith(("unet-", "laine19-")) for name, single in kinds.items()), kinds


def test_restoring_an_image_with_a_video_model_is_a_clear_error(tmp_path, rgb_image, capsys):
    from selfrestore.checkpoint import shipped_models

    if "fastdvd-gauss25" not in shipped_models():
        pytest.skip("no multi-frame model shipped")
    write_image(tmp_path / "a.png", rgb_image)
    assert main(["restore", str(tmp_path / "a.png"), "--model", "fastdvd-gauss25", "-o", str(tmp_path / "o")]) == 2
    assert "selfrestore video" in capsys.readouterr().err


def test_restore_noise_sigma_reaches_the_posterior(tmp_path, rgb_image, model, capsys):
    """A laine19 model trained on a range of levels is told the inputs' level: a higher --noise-sigma must
    pull the result further from the observation (the Bayes step trusts the pixel less)."""
    from selfrestore.methods.laine19 import Laine19
    from selfrestore.corruption import parse_corruption

    torch.manual_seed(0)
    method = Laine19(noise=parse_corruption("gauss5_50"), head="diag")
    net = build_net("blindspot", **{**method.net_kwargs(3), "width": 4, "depth": 2})
    path = tmp_path / "l19.safetensors"
    save_checkpoint(path, net, {"method": method.config(), "channels": 3, "step": 0})
    write_image(tmp_path / "in.png", rgb_image)
    distance = {}
    for sigma in (5, 50):
        out = tmp_path / f"out{sigma}"
        assert main(["restore", str(tmp_path / "in.png"), "--model", str(path), "-o", str(out),
                     "--noise-sigma", str(sigma)]) == 0
        distance[sigma] = np.abs(read_image(out / "in.png")[0] - read_image(tmp_path / "in.png")[0]).mean()
    assert distance[50] > distance[5] + 1e-3
    # wrong use: out of range, and a model with no noise model to set
    assert main(["restore", str(tmp_path / "in.png"), "--model", str(path), "-o", str(tmp_path / "x"),
                 "--noise-sigma", "300"]) != 0
    assert main(["restore", str(tmp_path / "in.png"), "--model", str(model), "-o", str(tmp_path / "y"),
                 "--noise-sigma", "25"]) != 0
    err = capsys.readouterr().err
    assert "0-255" in err and "does not take the noise parameter" in err and "Traceback" not in err


def test_fit_init_starts_from_a_model_and_rejects_a_mismatched_one(tmp_path, rgb_image, model, capsys):
    """--init copies the weights of a trained model (fine-tuning); a different architecture is a one-line
    error naming both networks."""
    data = tmp_path / "clean"
    write_image(data / "a.png", rgb_image)
    out = tmp_path / "tuned.safetensors"
    assert main(["fit", str(data), "--synthetic", "--noise", "gauss25", "--method", "n2n", "--width", "4",
                 "--steps", "1", "--lr", "1e-12", "--patch-size", "32", "--quiet", "--seed", "1",
                 "--init", str(model), "-o", str(out)]) == 0
    from selfrestore.checkpoint import read_checkpoint

    start, tuned = read_checkpoint(model)[0], read_checkpoint(out)[0]
    torch.manual_seed(1)  # what --seed 1 starts from without --init: it must differ, or the check below is void
    fresh = {f"net.{k}": v for k, v in build_net("unet", in_channels=3, out_channels=3, width=4).state_dict().items()}
    assert any(not torch.allclose(start[k], fresh[k]) for k in fresh)
    assert all(torch.allclose(start[k], tuned[k], atol=1e-6) for k in start if k.startswith("net."))
    assert read_checkpoint(out)[1]["init"] == str(model)
    capsys.readouterr()
    assert main(["fit", str(data), "--synthetic", "--noise", "gauss25", "--method", "n2n", "--width", "8",
                 "--steps", "1", "--patch-size", "32", "--quiet", "--init", str(model),
                 "-o", str(tmp_path / "bad.safetensors")]) == 2
    err = capsys.readouterr().err
    assert "--init" in err and "does not match" in err and "Traceback" not in err


def test_python_api_runs_the_commands_with_their_defaults_and_errors(tmp_path, rgb_image):
    from selfrestore import api
    from selfrestore.errors import UserError

    write_image(tmp_path / "clean" / "a.png", rgb_image)
    model = api.fit(tmp_path / "clean", output=tmp_path / "m", method="n2n", synthetic=True, noise="gauss25",
                    width=4, depth=2, steps=2, patch_size=32, quiet=True)
    assert model == tmp_path / "m.safetensors" and model.exists()
    assert read_checkpoint(model)[1]["train_config"]["batch_size"] == 4  # the command's default
    assert api.restore(tmp_path / "clean" / "a.png", model=model, output=tmp_path / "out.png", quiet=True) == 0
    assert read_image(tmp_path / "out.png")[0].shape == rgb_image.shape
    with pytest.raises(UserError, match="--patch-size must be a multiple"):  # the command's own check
        api.fit(tmp_path / "clean", output=tmp_path / "m2", method="nb2nb", patch_size=33, quiet=True)
    with pytest.raises(UserError, match="no option no_such_option=3; the options: selfrestore restore --help"):
        api.restore(tmp_path / "clean", model=model, output=tmp_path / "o", no_such_option=3)
    assert api.command_line("fit", ["d"], {"pairs": ("a", "b"), "quiet": True, "init": None, "lr": 1e-3}) == [
        "fit", "--pairs", "a", "b", "--quiet", "--lr=0.001", "--", "d"]


def test_restore_without_a_model_uses_the_shipped_default_and_says_so(tmp_path, rgb_image, capsys):
    from selfrestore.shipped_defaults import DEFAULT_MODEL

    noisy = np.clip(rgb_image[:48, :64] + np.random.default_rng(0).normal(0, 20 / 255, (48, 64, 3)), 0, 1)
    write_image(tmp_path / "n.png", noisy)
    assert main(["restore", str(tmp_path / "n.png"), "-o", str(tmp_path / "out.png"), "--quiet"]) == 0
    assert f"using the shipped {DEFAULT_MODEL}" in capsys.readouterr().err
    restored = read_image(tmp_path / "out.png")[0]
    assert np.abs(restored - rgb_image[:48, :64]).mean() < np.abs(noisy - rgb_image[:48, :64]).mean()
    assert main(["restore", "--blurry", str(tmp_path / "n.png"), "--noisy", str(tmp_path / "n.png"),
                 "-o", str(tmp_path / "o2")]) == 2  # a pair needs a model made for pairs
    assert "--model FILE" in capsys.readouterr().err


def test_fit_without_a_method_picks_one_from_the_data_and_says_so(tmp_path, rgb_image, capsys):
    from argparse import Namespace as ns

    from selfrestore.commands.fit import default_method

    write_image(tmp_path / "noisy" / "a.png", rgb_image)
    assert main(["fit", str(tmp_path / "noisy"), "--steps", "1", "--width", "4", "--depth", "2", "--patch-size",
                 "64", "-o", str(tmp_path / "m")]) == 0
    assert "no --method given: nb2nb" in capsys.readouterr().err
    assert read_checkpoint(tmp_path / "m.safetensors")[1]["method"]["name"] == "nb2nb"
    assert default_method(ns(pairs=["a", "b"], synthetic=False)) == "n2n"
    assert default_method(ns(pairs=None, synthetic=True)) == "n2n"
    assert default_method(ns(pairs=None, synthetic=False, blurry="b", noisy="n")) == "selfir"


def test_uncertainty_on_a_gray_image_with_a_colour_model(tmp_path, rgb_image):
    """--uncertainty converts channels like plain restoring does (a gray input with the shipped colour
    Bayesian model raised a shape error); the std image has the input's channels and is positive."""
    gray = rgb_image[:48, :64].mean(axis=2, keepdims=True)
    noisy = np.clip(gray + np.random.default_rng(0).normal(0, 20 / 255, gray.shape), 0, 1)
    write_image(tmp_path / "g.png", noisy)
    assert main(["restore", str(tmp_path / "g.png"), "--model", "laine19-gauss5_50", "--uncertainty",
                 "-o", str(tmp_path / "out"), "--quiet"]) == 0
    mean, info = read_image(tmp_path / "out" / "g.png")
    std, _ = read_image(tmp_path / "out" / "g.std.tif")
    assert info.channels == 1 and mean.shape == gray.shape and std.shape == gray.shape
    assert 1 < float(np.median(std)) < 20  # in 8-bit levels, as the image; below the noise: the prior helps


def test_noise_pg_uncertainty_follows_the_shot_noise_and_is_calibrated(tmp_path, rgb_image):
    """The posterior std through the GAT: on flat grey levels it grows with brightness like the shot noise
    (x 2.5 from 0.1 to 0.7 here; a std not mapped back would be flat), stays below the noise, and on a real
    image it matches the actual error (median z-score within a factor 1.2, RMS z-score under 1.3, under 0.5% of
    the errors beyond 4 std; without the prior variance floor: RMS 2.01, 1.4% beyond 4 std)."""
    from selfrestore.corruption.noise import PoissonGaussian
    from selfrestore.restore import Restorer

    a, b = 0.01, 0.01
    restorer = Restorer("laine19-gauss5_50", device="cpu", sensor_noise=(a, b))
    levels = (0.1, 0.7)
    flat = np.concatenate([np.full((64, 64, 3), v, np.float32) for v in levels], axis=1)
    noisy, _ = PoissonGaussian(a, b).sample_with_params(torch.from_numpy(flat), torch.Generator().manual_seed(0))
    mean, std = restorer.restore_with_uncertainty(noisy.numpy())
    inner = [std[16:48, 16 + 64 * i:48 + 64 * i].mean() for i in range(2)]  # away from the step
    assert inner[1] > 1.5 * inner[0]
    assert all(s < np.sqrt(a * v + b**2) for s, v in zip(inner, levels))  # below the noise: the prior helps
    assert abs(float(mean[16:48, 16:48].mean()) - levels[0]) < 0.01
    noisy, _ = PoissonGaussian(a, b).sample_with_params(torch.from_numpy(rgb_image), torch.Generator().manual_seed(1))
    mean, std = restorer.restore_with_uncertainty(noisy.numpy())
    z = np.abs((mean - rgb_image)[8:-8, 8:-8] / np.maximum(std[8:-8, 8:-8], 1e-4))
    # a Gaussian's median |z| is 0.6745; with the floor: median ratio 1.00, RMS 1.09, 0.27% beyond 4 std
    assert 1 / 1.2 < float(np.median(z)) / 0.6745 < 1.2 and float(np.sqrt(np.mean(z**2))) < 1.3
    assert float((z > 4).mean()) < 0.005
    source = tmp_path / "pg.tif"
    write_image(source, noisy.numpy().clip(0, 1), dtype="uint16")
    assert main(["restore", str(source), "--noise-pg", str(a), str(b), "--uncertainty", "-o",
                 str(tmp_path / "out"), "--quiet"]) == 0
    assert read_image(tmp_path / "out" / "pg.std.tif")[0].shape == rgb_image.shape


def test_restore_noise_pg_uses_a_gaussian_model_through_the_anscombe_transform(tmp_path, rgb_image, model, capsys):
    """Shot + read noise restored by the shipped Gaussian Laine19 after the generalised Anscombe transform
    beats the same model on the raw data (one level estimated for the whole image, while the true std grows
    with brightness); the CLI runs it with the default model and refuses what does not combine."""
    from selfrestore.corruption.noise import PoissonGaussian
    from selfrestore.metrics import psnr
    from selfrestore.restore import Restorer

    a, b = 0.02, 0.005
    noisy, _ = PoissonGaussian(a, b).sample_with_params(torch.from_numpy(rgb_image), torch.Generator().manual_seed(0))
    noisy = noisy.numpy()

    def quality(restorer):
        return float(psnr(torch.from_numpy(restorer.restore(noisy)).permute(2, 0, 1),
                          torch.from_numpy(rgb_image).permute(2, 0, 1)))

    plain = quality(Restorer("laine19-gauss5_50", device="cpu"))
    stabilised = quality(Restorer("laine19-gauss5_50", device="cpu", sensor_noise=(a, b)))
    assert stabilised > plain + 0.05  # +0.08 dB with the stop-24 model (+0.2 or more with the older one)
    # float photon counts (gain 1 count, read noise 5 counts): a and b in the data's own units
    counts = rgb_image * 1000
    rng = np.random.default_rng(0)
    measured = (rng.poisson(counts) + rng.normal(0, 5, counts.shape)).astype(np.float32)
    restored = Restorer("laine19-gauss5_50", device="cpu", sensor_noise=(1.0, 5.0)).restore(measured)
    rms = lambda x: float(np.sqrt(np.mean((x - counts) ** 2)))  # noqa: E731
    assert rms(restored) < 0.8 * rms(measured) and abs(restored.mean() - counts.mean()) < 1
    source = tmp_path / "in.tif"
    write_image(source, noisy.clip(0, 1), dtype="uint16")
    assert main(["restore", str(source), "--noise-pg", str(a), str(b), "-o", str(tmp_path / "out.tif"),
                 "--quiet"]) == 0
    assert read_image(tmp_path / "out.tif")[1].bit_depth == 16
    assert "Anscombe" in capsys.readouterr().err
    for extra in (["--noise-sigma", "10"], ["--adapt", "2"], ["--model", str(model)]):
        assert main(["restore", str(source), "--noise-pg", str(a), str(b), "-o", str(tmp_path / "x"), *extra]) == 2
    assert main(["restore", str(source), "--noise-pg", "0", str(b), "-o", str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "not both" in err and "Gaussian model that takes the noise level" in err
    # infinite or absurd values: a traceback (division by zero, overflow) or a black image with exit 0 before
    for pair in (("inf", "0"), ("0.01", "inf"), ("1e300", "0"), ("0.01", "1e200"), ("1e-300", "0")):
        assert main(["restore", str(source), "--noise-pg", *pair, "-o", str(tmp_path / "z"), "--quiet"]) != 0
        err = capsys.readouterr().err
        assert "Traceback" not in err and ("finite gain" in err or "out of proportion" in err), err
    assert not (tmp_path / "z").exists()


def test_damaged_model_headers_give_one_line_errors(tmp_path, rgb_image, model, capsys):
    """A model file whose selfrestore header is not an object, or lacks the net / method, is named in one line
    by every command that loads it (it was an AttributeError / KeyError)."""
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(model))
    _, header = read_checkpoint(model)
    write_image(tmp_path / "in.png", rgb_image)
    bad_headers = {"list": [1], "no_net": {k: v for k, v in header.items() if k != "net"},
                   "no_method": {k: v for k, v in header.items() if k != "method"},
                   "wrong_kwargs": {**header, "net": {"name": header["net"]["name"], "kwargs": {"width": "x"}}},
                   "method_a_string": {"format": header["format"], "method": "x"}}
    for name, bad in bad_headers.items():
        path = tmp_path / f"{name}.safetensors"
        save_file(tensors, str(path), metadata={"selfrestore": json.dumps(bad)})
        capsys.readouterr()
        assert main(["restore", str(tmp_path / "in.png"), "--model", str(path), "-o", str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert str(path) in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        if name != "list":  # `models` describes the header (a ValueError traceback for a method that is a string)
            assert main(["models", str(path)]) in (0, 2)
            err = capsys.readouterr().err
            assert "Traceback" not in err and (not err or str(path) in err), err
    assert main(["models", str(tmp_path)]) == 2
    assert "a folder, not a model file" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["fit", "d", "-o", "m", "--width", "-3"], ["fit", "d", "-o", "m", "--width", "0"],
                                  ["fit", "d", "-o", "m", "--depth", "-1"], ["fit", "d", "-o", "m", "--depth", "0"],
                                  ["fit", "d", "-o", "m", "--lr", "-1"], ["fit", "d", "-o", "m", "--lr", "0"],
                                  ["fit", "d", "-o", "m", "--seed", "-1"], ["fit", "d", "-o", "m", "--val-every", "-1"],
                                  ["demo", "--train", "--steps", "0"]])
def test_impossible_numbers_are_refused_by_the_parser(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and f"argument {argv[-2]}: {argv[-1]}: must be" in err


def test_demo_crops_inside_the_image_and_refuses_sizes_it_cannot_crop(tmp_path, astronaut, capsys):
    from selfrestore.commands.demo import crop

    for side in (32, 256, 480, 512):
        part = crop(astronaut, side)
        assert part.shape == (side, side, 3) and part.std() > 0.05
    for size in ("0", "-5", "16", "1000"):
        assert main(["demo", "-o", str(tmp_path / "d"), "--size", size]) == 2
        assert f"--size {size}: give a crop side from 32 to 512" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    assert "comparison.png are replaced; with --train, demo_n2n.safetensors too" in " ".join(capsys.readouterr().out.split())


def test_python_api_writes_options_as_the_command_line_does(tmp_path, rgb_image, monkeypatch):
    """model=None is the command's default; lists of one-value options are joined by commas; file names and
    values starting with '-' are not taken for options; false flags are left out; OSErrors are UserErrors."""
    from selfrestore import api
    from selfrestore.cli import build_parser
    from selfrestore.commands import inspect
    from selfrestore.errors import UserError

    monkeypatch.chdir(tmp_path)
    write_image(tmp_path / "-x.png", rgb_image[:32, :32])
    assert api.restore("-x.png", output="-o.png", quiet=0) == 0
    assert read_image(tmp_path / "-o.png")[0].shape == (32, 32, 3)
    argv = api.command_line("fit", ["-x.png"], {"patch_sizes": [32, 64], "output": "-m", "quiet": 0, "synthetic": 1})
    args = build_parser().parse_args(argv)
    assert (args.patch_sizes, args.output, args.data, args.quiet, args.synthetic) == ("32,64", "-m", ["-x.png"],
                                                                                        False, True)

    def unwritable(args):
        raise FileNotFoundError(2, "No such file or directory", "/proc/zz")

    monkeypatch.setattr(inspect, "run", unwritable)
    with pytest.raises(UserError, match="/proc/zz: No such file or directory"):
        api.inspect("-x.png")


def test_uncertainty_with_ensemble_averages_the_eight_posteriors(rgb_image):
    """--ensemble applies to --uncertainty too: the mean of the eight flipped/rotated posterior means, and the
    root of the mean of their variances (it was ignored: the std came from one orientation only)."""
    from selfrestore.restore import Restorer

    noisy = (rgb_image[:64, :64] + np.random.default_rng(0).normal(0, 25 / 255, (64, 64, 3))).astype(np.float32)
    plain = Restorer("laine19-gauss25", device="cpu")
    means, variances = [], []
    for k in range(8):
        view = np.rot90(noisy, k % 4)
        view = view[:, ::-1] if k >= 4 else view
        mean, std = plain.restore_with_uncertainty(np.ascontiguousarray(view))
        back = (lambda a: np.rot90(a[:, ::-1] if k >= 4 else a, -(k % 4)))
        means.append(back(mean))
        variances.append(back(std) ** 2)
    mean, std = Restorer("laine19-gauss25", device="cpu", ensemble=True).restore_with_uncertainty(noisy)
    assert np.allclose(mean, np.mean(means, axis=0), atol=2e-5)
    assert np.allclose(std, np.sqrt(np.mean(variances, axis=0)), atol=2e-5)
    assert not np.allclose(std, plain.restore_with_uncertainty(noisy)[1], atol=1e-4)


def test_restorer_takes_arrays_in_the_forms_users_hold(rgb_image):
    """A 2-D gray array raised an IndexError, and a uint8 array was taken for float counts; now (H, W) comes
    back (H, W), uint8 / uint16 come back in their type (the float result rounded), and other shapes or
    types are refused in one line."""
    from selfrestore.errors import UserError
    from selfrestore.restore import Restorer

    restorer = Restorer("unet-gauss25", device="cpu")
    rng = np.random.default_rng(0)
    noisy = np.clip(rgb_image[:48, :48] + rng.normal(0, 25 / 255, (48, 48, 3)), 0, 1).astype(np.float32)
    as_float = restorer.restore(noisy)
    as_uint8 = restorer.restore(np.round(noisy * 255).astype(np.uint8))
    assert as_uint8.dtype == np.uint8 and as_uint8.shape == noisy.shape
    assert np.abs(as_uint8.astype(np.float32) - np.clip(as_float, 0, 1) * 255).mean() < 1.5
    as_uint16 = restorer.restore(np.round(noisy * 65535).astype(np.uint16))
    assert as_uint16.dtype == np.uint16 and np.abs(as_uint16 / 65535.0 - np.clip(as_float, 0, 1)).max() < 1e-3
    gray = restorer.restore(noisy[:, :, 1])
    assert gray.shape == (48, 48) and gray.dtype == np.float32
    for bad in (noisy[None], noisy[:, :, 0].astype(np.int32)):
        with pytest.raises(UserError):
            restorer.restore(bad)


def test_an_output_under_a_file_is_refused_before_any_work(tmp_path, rgb_image, capsys):
    """-o a.png/x: the error came after the work (training, restoring, evaluating), named the wrong thing
    ("a.png: File exists") and, for video --save-model, left a state that blocked the next run."""
    data = tmp_path / "data"
    write_image(data / "a.png", rgb_image)
    frames = tmp_path / "frames"
    for i in range(2):
        write_image(frames / f"{i}.png", rgb_image[:32, :32])
    blocker = data / "a.png"
    commands = {
        "fit": ["fit", str(data), "--steps", "1", "-o", f"{blocker}/m.safetensors"],
        "restore": ["restore", str(blocker), "--model", "unet-gauss25", "-o", f"{blocker}/x.png"],
        "restore folder": ["restore", str(data), "--model", "unet-gauss25", "-o", f"{blocker}/out"],
        "evaluate": ["evaluate", "--clean", str(data), "--noise", "gauss25", "--model", "unet-gauss25", "--json",
                     f"{blocker}/r.json"],
        "inspect": ["inspect", str(data), "--json", f"{blocker}/r.json"],
        "burst": ["burst", str(frames), "--task", "superres", "-o", f"{blocker}/x.png"],
        "demo": ["demo", "--size", "32", "-o", f"{blocker}/demo"],
        "video": ["video", str(frames), "--method", "f2f", "-o", f"{blocker}/v"],
        "video model": ["video", str(frames), "--method", "f2f", "-o", str(tmp_path / "v"), "--save-model",
                        f"{blocker}/m.safetensors"],
    }
    for name, command in commands.items():
        assert main(command) != 0, name
        err = capsys.readouterr().err
        assert "is a file, not a folder" in err and "Traceback" not in err, (name, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "frames"]  # nothing written, no state left


def test_json_reports_are_standard_json_and_unmeasurable_images_are_left_out(tmp_path, rgb_image, capsys):
    """inspect on a 1x1 image wrote "noise_sigma": NaN, evaluate without noise "psnr_noisy": Infinity: neither
    is JSON that other readers accept. The 1x1 image is now left out with a warning; infinities are null."""
    data = tmp_path / "data"
    write_image(data / "a.png", rgb_image)
    write_image(data / "dot.png", rgb_image[:1, :1])
    assert main(["inspect", str(data), "--json", str(tmp_path / "i.json")]) == 0
    assert "dot.png: too small to measure its noise" in capsys.readouterr().err
    report = json.loads((tmp_path / "i.json").read_text(), parse_constant=lambda c: pytest.fail(c))
    assert [Path(r["image"]).name for r in report["images"]] == ["a.png"]
    (data / "dot.png").unlink()
    assert main(["evaluate", "--clean", str(data), "--noise", "gauss0", "--model", "unet-gauss25", "--json",
                 str(tmp_path / "e.json")]) == 0
    report = json.loads((tmp_path / "e.json").read_text(), parse_constant=lambda c: pytest.fail(c))
    assert report["mean"]["psnr_noisy"] is None and report["mean"]["psnr"] > 20


def test_a_command_help_loads_that_command_only():
    """`selfrestore restore --help` built every command's parser, fit's importing torch for its methods'
    options: 2.5 s for a page of help; so did `selfrestore --help`. Now only the command asked for is built, or
    only the commands' one-line summaries; an unknown one still gets argparse's list of choices."""
    for argv in (["restore", "--help"], ["--help"], []):  # `selfrestore --help` / `selfrestore`: the summaries
        probe = ("import sys, contextlib, io\nfrom selfrestore.cli import main\n"
                 "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
                 f"    try:\n        main({argv!r})\n    except SystemExit:\n        pass\n"
                 "print('torch' in sys.modules, 'fine-tune on a noisy video' in out.getvalue())")
        assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                              check=True).stdout.split() == ["False", str(argv != ["restore", "--help"])]
    wrong = subprocess.run([sys.executable, "-m", "selfrestore.cli", "restor"], capture_output=True, text=True)
    assert wrong.returncode == 2 and "invalid choice: 'restor' (choose from 'burst', 'demo'" in wrong.stderr


def test_python_m_selfrestore_is_the_command_line():
    """`python -m selfrestore` (where pip's scripts folder is not on PATH) was "No module named
    selfrestore.__main__"; it is the `selfrestore` command, exit codes included."""
    from selfrestore import __version__

    done = subprocess.run([sys.executable, "-m", "selfrestore", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == f"selfrestore {__version__}"
    wrong = subprocess.run([sys.executable, "-m", "selfrestore", "restore"], capture_output=True, text=True)
    assert wrong.returncode == 2 and "selfrestore restore: error" in wrong.stderr


def test_a_single_pixel_is_refused_by_a_blind_spot_model_and_the_batch_goes_on(tmp_path, capsys):
    """A blind-spot net predicts a pixel from its neighbours: a 1 x 1 image, all padding around it, came back
    as another colour ([120 30 40] -> [19 17 15]) with exit code 0. Now one line naming the file; the other
    inputs are restored. So are images of under 16 pixels (an audit: a noisy mid-grey 1 x 2 or 1 x 3 came back
    at 73 / 79 of 255 from the default model); 4 x 4 restores."""
    from selfrestore.errors import UserError
    from selfrestore.restore import Restorer

    write_image(tmp_path / "one.png", np.array([[[120, 30, 40]]], np.uint8))
    write_image(tmp_path / "two.png", np.array([[[120, 30, 40], [118, 33, 41]]], np.uint8))
    write_image(tmp_path / "four.png", np.full((4, 4, 3), 120, np.uint8))
    restorer = Restorer("laine19-gauss25")
    with pytest.raises(UserError, match="1 x 3 image: a blind-spot model"):
        restorer.restore(np.full((1, 3, 3), 0.5, np.float32))
    with pytest.raises(UserError, match="1 x 1 image: a blind-spot model"):
        restorer.restore(np.full((1, 1, 3), 0.5, np.float32))
    with pytest.raises(UserError, match="1 x 1 image"):
        restorer.restore_with_uncertainty(np.full((1, 1, 3), 0.5, np.float32))
    assert main(["restore", str(tmp_path / "one.png"), str(tmp_path / "two.png"), str(tmp_path / "four.png"),
                 "--model", "laine19-gauss25", "-o", str(tmp_path / "out"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'one.png'}: a 1 x 1 image" in err and f"{tmp_path / 'two.png'}: a 1 x 2 image" in err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["four.png"]


def test_a_problem_of_the_model_stops_the_run_once_and_a_folder_does_not_hide_a_shipped_model(tmp_path, rgb_image,
                                                                                               monkeypatch, capsys):
    """Only an image the model cannot restore is reported per image (the review: a mean-only model asked for
    --uncertainty was blamed on every image, exit code 1); a folder named like a shipped model (a run's output)
    hid the model from the next run."""
    from selfrestore.checkpoint import resolve_model, shipped_models
    from selfrestore.corruption import parse_corruption
    from selfrestore.methods.laine19 import Laine19

    torch.manual_seed(0)
    method = Laine19(noise=parse_corruption("gauss25"), head="mu")
    net = build_net("blindspot", **{**method.net_kwargs(3), "width": 4, "depth": 2})
    save_checkpoint(tmp_path / "mu.safetensors", net, {"method": method.config(), "channels": 3, "step": 0})
    for name in ("a.png", "b.png"):
        write_image(tmp_path / "in" / name, rgb_image)
    capsys.readouterr()
    assert main(["restore", str(tmp_path / "in"), "--model", str(tmp_path / "mu.safetensors"), "--uncertainty",
                 "-o", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("uncertainty needs a covariance head") == 1 and "a.png: laine19" not in err
    monkeypatch.chdir(tmp_path)
    (tmp_path / "unet-gauss25").mkdir()
    assert resolve_model("unet-gauss25") == shipped_models()["unet-gauss25"]
