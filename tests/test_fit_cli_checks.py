"""`selfrestore fit` refuses in one line what it cannot do as asked (a network that does not suit the method,
options it would ignore, an output over its inputs), restores every option left out on --resume, and its
automatic patch sizes and padding advice follow the method's size rule."""
from pathlib import Path

import numpy as np
import pytest

from selfrestore.checkpoint import build_net, read_checkpoint
from selfrestore.cli import main
from selfrestore.io import write_image
from selfrestore.train import auto_patch_sizes

TINY = ("--width", "4", "--depth", "2", "--batch-size", "2", "--steps", "2", "--quiet")


def _noisy_images(folder: Path, n: int = 2, size: int = 32, seed: int = 0) -> Path:
    """``n`` small gray images with independent noise (the noise check stays quiet)."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0.2, 0.8, size, dtype=np.float32)[None, :, None] * np.ones((size, 1, 1), np.float32)
    for i in range(n):
        write_image(folder / f"img{i}.png", np.clip(ramp + rng.normal(0, 0.1, ramp.shape), 0, 1).astype(np.float32))
    return folder


def _error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if line.startswith("selfrestore fit: error:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("argv, needles", [
    (["--method", "dsa", "--width", "8"], ["--width does not apply to network dsa", "method dsa", "--net dsa"]),
    (["--method", "m2m", "--width", "8"], ["--width does not apply to network demosaic", "method m2m",
                                           "--net demosaic"]),
    (["--method", "mf2f", "--width", "8"], ["--width does not apply to network fastdvd", "method mf2f"]),
    (["--net", "fastdvd", "--width", "8"], ["--net fastdvd does not suit method nb2nb", "unet"]),
    (["--net", "fastdvd"], ["--net fastdvd does not suit method nb2nb", "unet"]),
    (["--net", "multiframe"], ["--net multiframe does not suit method nb2nb"]),
    (["--net", "dsa"], ["--net dsa does not suit method nb2nb"]),
    (["--net", "dual_unet"], ["--net dual_unet does not suit method nb2nb", "in_channels must be even"]),
    (["--net", "demosaic"], ["--net demosaic does not suit method nb2nb", "unet"]),
    (["--method", "laine19", "--noise", "gauss25", "--net", "unet"], ["blind-spot", "--net blindspot"]),
])
def test_a_network_that_does_not_suit_the_method_is_one_line_before_training(tmp_path, capsys, argv, needles):
    data = _noisy_images(tmp_path / "noisy")
    out = tmp_path / "m.safetensors"
    code = main(["fit", str(data), *argv, "--steps", "1", "--patch-size", "32", "--quiet", "-o", str(out)])
    line = _error(capsys)
    assert code == 2 and not out.exists()
    for needle in needles:
        assert needle in line, line


def test_width_still_reaches_the_networks_that_take_it(tmp_path):
    data = _noisy_images(tmp_path / "noisy")
    out = tmp_path / "n.safetensors"
    assert main(["fit", str(data), "--net", "dncnn", "--patch-size", "32", *TINY, "-o", str(out)]) == 0
    assert read_checkpoint(out)[1]["net"]["kwargs"]["width"] == 4


def test_the_loss_plot_never_overwrites_an_input_and_is_no_training_image(tmp_path, capsys):
    """A file given as input is never replaced by the plot; -o inside the data folder is fine: folders' listings
    leave loss plots (NAME.training.png) out, so neither the next fit nor --resume trains on it."""
    from selfrestore.file_lists import list_images

    data = _noisy_images(tmp_path / "pl")
    write_image(tmp_path / "m.training.png", np.full((32, 32, 1), 0.5, np.float32))  # an input named like a plot
    before = (tmp_path / "m.training.png").read_bytes()
    assert main(["fit", str(data), str(tmp_path / "m.training.png"), "--patch-size", "32", *TINY, "-o",
                 str(tmp_path / "m.safetensors")]) == 2
    line = _error(capsys)
    assert "m.training.png" in line and "input" in line
    assert (tmp_path / "m.training.png").read_bytes() == before and not (tmp_path / "m.safetensors").exists()
    images = list_images([data])[0]
    assert main(["fit", str(data), "--patch-size", "32", *TINY, "-o", str(data / "x.safetensors")]) == 0
    assert (data / "x.training.png").exists() and list_images([data])[0] == images
    assert main(["fit", str(data), "--patch-size", "32", *TINY[:-3], "--steps", "3", "--quiet", "--resume",
                 "-o", str(data / "x.safetensors")]) == 0


def test_outputs_through_a_symlinked_folder_onto_an_input_are_refused_and_on_hard_links_are_written(tmp_path,
                                                                                                     capsys):
    """The loss plot reaching an input's directory entry through a symlinked folder is refused; a plot on a hard
    link of a training image (a `cp -al` copy) is written, atomically: the image keeps its bytes and name."""
    import os

    data = _noisy_images(tmp_path / "pl")
    write_image(tmp_path / "in" / "m.training.png", np.full((32, 32, 1), 0.5, np.float32))
    os.symlink(tmp_path / "in", tmp_path / "alias", target_is_directory=True)
    before = {p: p.read_bytes() for p in [*data.iterdir(), tmp_path / "in" / "m.training.png"]}
    assert main(["fit", str(data), str(tmp_path / "in" / "m.training.png"), "--patch-size", "32", *TINY, "-o",
                 str(tmp_path / "alias" / "m.safetensors")]) == 2
    line = _error(capsys)
    assert "its loss plot" in line and "would overwrite the input" in line
    os.link(data / "img1.png", tmp_path / "n.training.png")  # of an earlier run (-o n: a new model file)
    assert main(["fit", str(data), "--patch-size", "32", *TINY, "-o", str(tmp_path / "n.safetensors")]) == 0
    assert {p: p.read_bytes() for p in before} == before
    assert read_checkpoint(tmp_path / "n.safetensors")[1]["net"]["name"] == "unet"
    assert not os.path.samefile(data / "img1.png", tmp_path / "n.training.png")


@pytest.mark.parametrize("extra, needle", [
    (["DATA", "--pairs", "A", "B"], "not both"),
    (["--synthetic", "--noise", "gauss25", "--pairs", "A", "B"], "--synthetic"),
    (["DATA", "--redraw"], "--redraw"),
])
def test_options_that_would_be_ignored_yet_recorded_are_refused(tmp_path, capsys, extra, needle):
    data, a, b = (_noisy_images(tmp_path / name) for name in ("noisy", "a", "b"))
    names = {"DATA": str(data), "A": str(a), "B": str(b)}
    out = tmp_path / "m.safetensors"
    code = main(["fit", *(names.get(x, x) for x in extra), "--patch-size", "32", *TINY, "-o", str(out)])
    line = _error(capsys)
    assert code == 2 and needle in line and not out.exists()


def test_resume_takes_the_recorded_val_every_and_ckpt_every(tmp_path):
    """With --holdout they decide when the held-out loss is measured and so which weights are the best."""
    data = _noisy_images(tmp_path / "noisy", n=4)
    out = tmp_path / "h.safetensors"
    base = ["fit", str(data), "--method", "n2v", "--patch-size", "32", "--holdout", "0.5", *TINY[:-3], "--quiet",
            "-o", str(out)]
    assert main([*base, "--steps", "2", "--val-every", "1", "--ckpt-every", "2"]) == 0
    assert main([*base, "--steps", "4", "--resume"]) == 0
    header = read_checkpoint(out)[1]
    assert header["train_config"]["val_every"] == 1 and header["train_config"]["ckpt_every"] == 2
    assert [h["step"] for h in header["history"] if "holdout_loss" in h] == [1, 2, 3, 4]


def test_resume_of_a_finished_run_still_refuses_changed_options(tmp_path, capsys):
    data = _noisy_images(tmp_path / "noisy")
    out = tmp_path / "r.safetensors"
    base = ["fit", str(data), "--patch-size", "32", *TINY, "-o", str(out)]
    assert main(base) == 0
    capsys.readouterr()
    assert main([*base, "--resume", "--method", "n2v"]) == 2
    line = _error(capsys)
    assert "--method nb2nb, not n2v" in line
    assert main([*base, "--resume"]) == 0 and "already finished" in capsys.readouterr().err
    assert main(["fit", "--resume", "-o", str(out)]) == 0 and "already finished" in capsys.readouterr().err
    assert main(["fit", "--resume", "--steps", "5", "-o", str(out)]) == 2  # the data left out: said so, and which
    assert f"give the training data again (this run was trained on {data})" in _error(capsys)


def test_automatic_patch_sizes_are_multiples_of_the_methods_rule(tmp_path, capsys):
    """nb2nb halves its patches, so sides must be multiples of twice the net's multiple (8 for depth 2)."""
    blind = build_net("blindspot", in_channels=1, out_channels=1, width=4, depth=2)
    assert auto_patch_sizes(blind, 16) == (16, 20, 24)  # the net's own multiple, 4
    assert auto_patch_sizes(blind, 16, multiple=8) == (16, 24)
    data = _noisy_images(tmp_path / "noisy")
    out = tmp_path / "b.safetensors"
    code = main(["fit", str(data), "--method", "nb2nb", "--net", "blindspot", "--patch-size", "16", *TINY,
                 "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    sizes = read_checkpoint(out)[1]["train_config"]["patch_sizes"]
    assert sizes and all(side % 8 == 0 for side in sizes)


def test_padding_advice_names_the_automatic_patch_sizes(tmp_path, capsys):
    """--patch-size 16 fits 16 px images; the automatic mixed sides (up to 24) are what pads them."""
    data = _noisy_images(tmp_path / "noisy", size=16)
    assert main(["fit", str(data), "--method", "laine19", "--noise", "gauss25", "--patch-size", "16", *TINY,
                 "-o", str(tmp_path / "l.safetensors")]) == 0
    err = capsys.readouterr().err
    assert "padded by mirroring" in err and "--patch-sizes off" in err
    assert "--patch-size 16 trains" not in err


def test_fit_audit_val_pairs_holdout_and_synthetic_counts(tmp_path, capsys):
    """From an audit of `fit`: --val with a blurry+noisy method trained every step, then failed at the end
    (the run could never finish); --pairs mixing gray and colour scenes crashed mid-training, and one
    unreadable file of a pair stopped the run; --holdout ignored (one image) made --resume of the same
    command refused; --synthetic on float counts added [0, 1]-scale noise to values in the thousands."""
    import tifffile

    clean = _noisy_images(tmp_path / "clean", n=3, size=64)
    assert main(["fit", str(clean), "--synthetic", "--noise", "gauss25", "--method", "selfir", "--val",
                 str(clean / "img0.png"), "--patch-size", "32", "-o", str(tmp_path / "v.safetensors"), *TINY]) == 2
    assert "--val: method selfir does not restore a single noisy image" in _error(capsys)
    assert not (tmp_path / "v.safetensors").exists()
    rng = np.random.default_rng(1)
    for i in range(4):  # scene 1 is gray in both folders, scene 2 gray in one (trained gray), scene 3 colour;
        a, b = (rng.random((32, 32, 3)).astype(np.float32) for _ in range(2))  # scene 0's second shot is damaged
        write_image(tmp_path / "a" / f"s{i}.png", a[:, :, :1] if i == 1 else a)
        write_image(tmp_path / "b" / f"s{i}.png", b[:, :, :1] if i in (1, 2) else b)
    (tmp_path / "b" / "s0.png").write_bytes((tmp_path / "b" / "s1.png").read_bytes()[:100])
    assert main(["fit", "--pairs", str(tmp_path / "a"), str(tmp_path / "b"), "--method", "n2n", "--patch-size",
                 "32", "-o", str(tmp_path / "p.safetensors"), *TINY]) == 0
    assert "skipped the pair" in capsys.readouterr().err
    assert read_checkpoint(tmp_path / "p.safetensors")[1]["channels"] == 3
    one = ["fit", str(clean / "img0.png"), "--holdout", "0.2", "--patch-size", "32", "--ckpt-every", "1",
           "-o", str(tmp_path / "h.safetensors"), *TINY]
    assert main(one) == 0
    assert main([*one[:-2], "4", "--quiet", "--resume"]) == 0, capsys.readouterr().err
    tifffile.imwrite(tmp_path / "counts.tif", (1000 + 3000 * rng.random((64, 64))).astype(np.float32))
    assert main(["fit", str(tmp_path / "counts.tif"), "--synthetic", "--noise", "gauss25", "--method", "n2n",
                 "--patch-size", "32", "-o", str(tmp_path / "s.safetensors"), *TINY]) == 2
    assert "--synthetic adds noise on the [0, 1] scale" in _error(capsys)


def test_a_run_begun_before_dim_data_was_mapped_resumes_on_the_same_scale(tmp_path, capsys):
    """Dim 16-bit training data is now mapped to [0, 1] (and the model says so: maps_dim_data); a run begun
    before (its model file says neither) went on after --resume on data ~20x larger, silently (the review).
    It now resumes unmapped, and its model still does not map dim images at restore."""
    from safetensors.torch import load_file, save_file

    from selfrestore.restore import Restorer

    rng = np.random.default_rng(0)
    for i in range(2):
        write_image(tmp_path / "dim" / f"d{i}.png", (1000 + 1000 * rng.random((64, 64))) / 65535, dtype="uint16")
    args = ["fit", str(tmp_path / "dim"), "--method", "nb2nb", "--patch-size", "32", "--ckpt-every", "1",
            "-o", str(tmp_path / "m.safetensors"), *TINY]
    assert main(args) == 0
    header = read_checkpoint(tmp_path / "m.safetensors")[1]
    assert header["maps_dim_data"] and header["intensity"]["scale"] < 0.05
    for key in ("maps_dim_data", "intensity"):  # as a model file of the earlier version
        header.pop(key)
    import json

    save_file(load_file(tmp_path / "m.safetensors"), tmp_path / "m.safetensors",
              metadata={"selfrestore": json.dumps(header)})
    assert main([*args[:-2], "4", "--quiet", "--resume"]) == 0, capsys.readouterr().err
    header = read_checkpoint(tmp_path / "m.safetensors")[1]
    assert "intensity" not in header and "maps_dim_data" not in header and header["step"] == 4
    assert Restorer(tmp_path / "m.safetensors").mapping_for(np.full((64, 64, 1), 0.02, np.float32)) is None


@pytest.mark.parametrize("argv, needle", [
    (["--method", "n2v", "--gamma", "5"], "--gamma is an option of method nb2nb, not of n2v"),
    (["--method", "nb2nb", "--mask-ratio", "0.1"], "--mask-ratio is an option of method n2v, not of nb2nb"),
    (["--noise", "gauss5_50", "--noise-level", "unknown"], "--noise-level is an option of method laine19"),
    (["--method", "n2v", "--kernels", "nonexistent.mat"], "--kernels is an option of methods"),
])
def test_an_option_of_another_method_is_refused(tmp_path, capsys, argv, needle):
    """An audit: options of other methods were silently ignored (the model trained as if they were absent),
    even a --kernels file that does not exist; the common slip: --noise-level without --method laine19."""
    data = _noisy_images(tmp_path / "d")
    assert main(["fit", str(data), *argv, "--patch-size", "32", "-o", str(tmp_path / "m.safetensors"), *TINY]) == 2
    assert needle in _error(capsys)
    assert not (tmp_path / "m.safetensors").exists()


def test_resume_refuses_other_blurry_noisy_data_and_models_shows_it(tmp_path, capsys):
    """An audit: a SelfIR run resumed with its --blurry and --noisy folders swapped (or without the --misalign
    it began with) went on silently, and `selfrestore models` showed no data for it. Now the method's data
    options are recorded, compared on --resume and shown."""
    for folder in ("long", "short"):
        _noisy_images(tmp_path / folder, n=2, size=64, seed=len(folder))
    base = ["fit", "--method", "selfir", "--patch-size", "32", "--ckpt-every", "1",
            "-o", str(tmp_path / "s.safetensors"), "--width", "4", "--depth", "2", "--batch-size", "2", "--quiet"]
    assert main([*base, "--blurry", str(tmp_path / "long"), "--noisy", str(tmp_path / "short"), "--steps", "2"]) == 0
    assert main([*base, "--blurry", str(tmp_path / "short"), "--noisy", str(tmp_path / "long"), "--steps", "4",
                 "--resume"]) == 2
    assert "--blurry" in _error(capsys) and read_checkpoint(tmp_path / "s.safetensors")[1]["step"] == 2
    assert main(["models", str(tmp_path / "s.safetensors")]) == 0
    assert f"--blurry {tmp_path / 'long'}" in capsys.readouterr().out
