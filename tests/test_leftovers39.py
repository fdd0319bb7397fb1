"""Stop 39: what stop 38 left open. The Python Restorer says what the command line says of a model (its training
stopped early; a given noise level far from the model's), once, and the command line still says it once."""
import warnings

import numpy as np
import pytest

from selfrestore.cli import main
from selfrestore.io import write_image
from selfrestore.restore import Restorer

FIT = ["--method", "n2v", "--width", "4", "--depth", "2", "--patch-size", "32", "--batch-size", "2", "--no-amp"]


@pytest.fixture
def unfinished_model(tmp_path, rgb_image):
    from selfrestore.checkpoint import update_header

    rng = np.random.default_rng(0)
    write_image(tmp_path / "photos" / "p0.png", np.clip(rgb_image + 0.1 * rng.standard_normal(rgb_image.shape), 0, 1))
    model = tmp_path / "m.safetensors"
    assert main(["fit", str(tmp_path / "photos"), *FIT, "--steps", "4", "--quiet", "-o", str(model)]) == 0
    update_header(model, step=2)  # as a run stopped at step 2 of its 4 records itself
    return model


def test_the_python_restorer_warns_of_an_unfinished_model_once(unfinished_model, rgb_image):
    """Stop 38 made `restore`, `models`, `evaluate`... say that a model's training was cut short; the Python
    Restorer used it without a word."""
    restorer = Restorer(unfinished_model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        restorer.restore(rgb_image)
        restorer.restore(rgb_image)
    said = [w for w in caught if "training stopped at step 2 of a planned 4 steps" in str(w.message)]
    assert len(said) == 1, [str(w.message) for w in caught]
    assert str(said[0].message).startswith(f"{unfinished_model}: ")  # which model (the review)
    assert said[0].filename == __file__  # the user's line, not the library's nor its caller's (the review)


def test_the_command_line_says_an_unfinished_model_once(unfinished_model, tmp_path, capsys):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["restore", str(tmp_path / "photos" / "p0.png"), "--model", str(unfinished_model), "-o",
                     str(tmp_path / "r.png"), "--quiet"]) == 0
    assert capsys.readouterr().err.count("training stopped at step 2") == 1
    assert not [w for w in caught if "training stopped" in str(w.message)]  # not a second time as a Python warning


def test_the_python_restorer_warns_of_a_given_level_far_from_the_models(rgb_image):
    """`restore --noise-sigma 100` with the 5-50 default model is warned (an audit: 9.5 dB lost silently); the
    same level given to the Python Restorer was not."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Restorer("laine19-gauss5_50", noise_params={"sigma": 100 / 255}).restore(rgb_image[:64, :64])
    assert any("noise_params sigma 100/255 is far from the noise the model was trained on "
               "(std 5-50 on the 0-255 scale)" in str(w.message) for w in caught), [str(w.message) for w in caught]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Restorer("laine19-gauss5_50", noise_params={"sigma": 30 / 255}).restore(rgb_image[:64, :64])
    assert not [w for w in caught if "far from" in str(w.message)]


def test_a_missing_device_is_named_as_the_caller_wrote_it(rgb_image, tmp_path, capsys):
    """The Python Restorer's error for a device that is not here named the command line's flag (`--device
    cuda:7 ... use --device cpu`); the command line keeps its words."""
    from selfrestore.errors import UserError

    with pytest.raises(UserError, match=r"device='cuda:7': this machine has .*use device='cpu' or 'auto'"):
        Restorer("unet-gauss25", device="cuda:7")
    write_image(tmp_path / "p.png", rgb_image)
    for verb in (["restore", str(tmp_path / "p.png"), "-o", str(tmp_path / "r.png")],
                 ["evaluate", "--clean", str(tmp_path / "p.png"), "--noise", "gauss25", "--model", "unet-gauss25"],
                 ["fit", str(tmp_path), *FIT, "--steps", "2", "-o", str(tmp_path / "m.safetensors")]):
        assert main([*verb, "--device", "cuda:7"]) == 2
        assert "--device cuda:7: this machine has" in capsys.readouterr().err, verb


def test_skip_existing_finishes_a_streamed_stack_stopped_before_its_std(tmp_path, monkeypatch, capsys):
    """A stack too large for memory, restored plane by plane with --uncertainty and killed between NAME.tif and
    NAME.std.tif, was refused by --skip-existing forever (its restored half too large to check by reading it);
    now the std alone is written (as the whole run writes it) and the kept half is left untouched. A file of
    another layout at the output's name is not taken for the kept half."""
    import os

    import tifffile

    import selfrestore.memory_check as memory_check

    rng = np.random.default_rng(1)
    planes = np.clip(0.5 + 0.1 * rng.standard_normal((3, 40, 48)), 0, 1)
    tifffile.imwrite(tmp_path / "in.tif", (planes * 65535).astype(np.uint16), photometric="minisblack",
                     metadata={"axes": "ZYX"})
    out, std = tmp_path / "out.tif", tmp_path / "out.std.tif"
    args = ["restore", str(tmp_path / "in.tif"), "--model", "laine19-gauss25", "-o", str(out), "--uncertainty",
            "--quiet"]
    monkeypatch.setattr(memory_check, "physical_memory", lambda: 10**4)  # the stack "does not fit": streamed
    assert main(args) == 0
    whole = tifffile.imread(std)
    std.unlink()  # killed after out.tif was published
    os.utime(out, (1e9, 1e9))
    assert main([*args, "--skip-existing"]) == 0, capsys.readouterr().err
    np.testing.assert_array_equal(tifffile.imread(std), whole)
    assert out.stat().st_mtime == 1e9
    for other in (np.zeros((2, 40, 48), np.uint16), np.zeros((4, 40, 48), np.float32)):  # another stack there
        std.unlink(missing_ok=True)
        tifffile.imwrite(out, other, photometric="minisblack")
        capsys.readouterr()
        assert main([*args, "--skip-existing"]) == 1
        assert f"{out}: exists (pass --overwrite to replace it)" in capsys.readouterr().err and not std.exists()


def test_fit_help_says_what_each_method_is_for(tmp_path, rgb_image, capsys):
    """`fit --help` listed 28 method names (supervised baselines and diagnostics among them) without a word on
    which to use; each name is now placed in a group that says what it is for."""
    import re

    from selfrestore.commands.fit import METHOD_GUIDE
    from selfrestore.registry import METHODS

    assert set(METHODS.names()) <= set(re.findall(r"[a-z][a-z0-9_]+", METHOD_GUIDE))
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    out = capsys.readouterr().out
    assert "[--method METHOD]" in out and "Supervised references for benchmarks" in out
    write_image(tmp_path / "p.png", rgb_image)
    for name in ("mf2c", "m2m_supervised", "dsa_supervised"):  # the guide said --synthetic trains them (the review)
        assert main(["fit", str(tmp_path / "p.png"), "--synthetic", "--noise", "gauss25", "--method", name, "-o",
                     str(tmp_path / "m.safetensors")]) == 2
        err = capsys.readouterr().err
        assert "benchmarks/" in err and "--synthetic makes" not in err, (name, err)  # where it is trained, alone
    assert "trained by the benchmark scripts only: mf2c (video), m2m_supervised and dsa_supervised" in \
        " ".join(out.split())


def test_methods_fit_cannot_feed_say_where_they_train(tmp_path, rgb_image, capsys):
    """`fit --method f2f` said "needs 'video_warp' data; see its own command"."""
    write_image(tmp_path / "p.png", rgb_image)
    assert main(["fit", str(tmp_path / "p.png"), "--method", "f2f", "-o", str(tmp_path / "m.safetensors")]) == 2
    assert "selfrestore video CLIP -o OUT --method f2f" in capsys.readouterr().err


def test_a_range_model_is_not_described_as_knowing_the_level(tmp_path, rgb_image, capsys):
    """The default model (5-50, level measured per image) was described as "noise level known" in errors."""
    write_image(tmp_path / "p.png", rgb_image)
    assert main(["restore", str(tmp_path / "p.png"), "--noise-lambda", "30", "-o", str(tmp_path / "r.png")]) == 2
    err = capsys.readouterr().err
    assert "noise level known in training, estimated per image" in err and "level known," not in err
