"""The deblurring path's audit (reblur / deblur_l1, test-time adaptation): each test failed before its fix."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from selfrestore.adapt_deblur import AdaptConfig, adapt_deblur
from selfrestore.cli import main
from selfrestore.io import write_image
from selfrestore.nets.reblur import ReblurNet

TINY = ["--steps", "2", "--batch-size", "2", "--patch-size", "32", "--width", "4", "--depth", "2", "--quiet",
        "--no-amp"]


def _sharp_folder(folder, sizes=((40, 40), (40, 40)), seed=0):
    """Random colour PNGs of the given (height, width) sizes in ``folder``."""
    rng = np.random.default_rng(seed)
    for i, (h, w) in enumerate(sizes):
        write_image(folder / f"s{i}.png", rng.random((h, w, 3)).astype(np.float32))
    return folder


def _kernel_file(tmp_path):
    kernel = np.zeros((5, 5), np.float32)
    kernel[2, :] = 1
    np.save(tmp_path / "k.npy", kernel[None])
    return tmp_path / "k.npy"


@pytest.fixture(scope="module")
def reblur_model(tmp_path_factory):
    """A tiny reblur model trained for two steps on synthetic pairs."""
    tmp = tmp_path_factory.mktemp("reblur_model")
    sharp = _sharp_folder(tmp / "sharp")
    model = tmp / "rb.safetensors"
    assert main(["fit", str(sharp), "--synthetic", "--kernels", str(_kernel_file(tmp)), "--method", "reblur",
                 "-o", str(model), *TINY]) == 0
    return model


class _Multiple8(nn.Module):
    """A one-layer 'deblurring network' that, like a U-Net, needs sides that are multiples of 8."""

    size_multiple = 8

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        assert x.shape[-2] % 8 == 0 and x.shape[-1] % 8 == 0
        return x + self.conv(x)


# ------------------------------------------------------------------------------------------ 1. crop sizes
def test_adaptation_on_inputs_of_different_sizes_crops_them_alike():
    """A 96x61 input next to a 96x96 one: one crop side for every batch (it was chosen per image, and
    torch.cat failed)."""
    images = [torch.rand(1, 3, 96, 96), torch.rand(1, 3, 61, 96), torch.rand(1, 3, 20, 30)]
    history = adapt_deblur(_Multiple8(), ReblurNet(3, features=4), images,
                           AdaptConfig(steps=3, warmup=1, patch_size=128, batch_size=4))
    assert len(history["self"]) == 3


def test_api_restore_adapts_on_inputs_of_different_sizes(reblur_model, tmp_path):
    from selfrestore import api

    inputs = _sharp_folder(tmp_path / "in", sizes=((96, 96), (61, 96)), seed=1)
    assert api.restore(inputs, model=reblur_model, output=tmp_path / "out", adapt=2, quiet=True) == 0
    assert len(list((tmp_path / "out").rglob("*.png"))) == 2


# ------------------------------------------------------------------------------------------ 2. adaptation setting
def _adaptation_setting(model, steps: int, tmp_path, monkeypatch):
    """The AdaptConfig `restore --adapt STEPS` gives the adaptation of ``model`` (stood in for: not run)."""
    import selfrestore.adapt_deblur as adapt_module

    seen = []
    monkeypatch.setattr(adapt_module, "adapt_deblur", lambda deblur, reblur, blurry, config: seen.append(config))
    inputs = _sharp_folder(tmp_path / "in", sizes=((40, 40),), seed=2)
    assert main(["restore", str(inputs), "--model", str(model), "-o", str(tmp_path / "out"), "--adapt", str(steps),
                 "--quiet"]) == 0
    return seen[0]


def test_restore_adapt_uses_the_validated_setting(reblur_model, tmp_path, monkeypatch):
    """`restore --adapt` on a deblurring model adapts with the setting benchmarks/results/reblur_table.md
    validated ("20,1e-5,1e-5,1"), not one its validation measured worse than no adaptation (lr(M_R) 1e-4,
    no anchor); its help says so."""
    config = _adaptation_setting(reblur_model, 20, tmp_path, monkeypatch)
    assert (config.steps, config.lr_deblur, config.lr_reblur, config.consistency) == (20, 1e-5, 1e-5, 1.0)
    from selfrestore.cli import build_parser

    help_text = " ".join(build_parser()._subparsers._group_actions[0].choices["restore"].format_help().split())
    assert "reblur_table.md" in help_text and "all the inputs of the call together" in help_text


def test_reblur_benchmark_passes_its_adaptation_settings_explicitly():
    """benchmarks/reblur_table.py gives every setting of its grid to ``Reblur.adapt``: its table does not move
    with the product's defaults."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    source = (root / "benchmarks" / "reblur_table.py").read_text()
    call = source[source.index("method.adapt("):]
    call = call[:call.index("\n    return")]
    for name in ("lr_deblur=", "lr_reblur=", "consistency=", "patch_size=", "batch_size=", "seed="):
        assert name in call
    from selfrestore.adapt_deblur import VALIDATED_SETTING

    assert VALIDATED_SETTING in source  # the grid holds the validated setting


# ------------------------------------------------------------------------------------------ 3. data scale
def _pair_folders(tmp_path, scale: float, dtype: str = "float32", channels: int = 3,
                  sharp_channels: int | None = None):
    """blurry/ and sharp/ folders of two 48x48 pairs (TIFF): float counts ``scale`` times [0, 1] (``dtype``
    float32), or 16-bit files of values up to ``scale`` of 65535 (``dtype`` uint16)."""
    rng = np.random.default_rng(5)
    unit = 1.0 if dtype == "float32" else 65535.0
    for i in range(2):
        sharp = rng.random((48, 48, sharp_channels or channels))
        blurry = rng.random((48, 48, channels))
        for folder, image in (("blurry", blurry), ("sharp", sharp)):
            write_image(tmp_path / folder / f"p{i}.tif", (image * scale / unit).astype(np.float32), dtype=dtype)
    return tmp_path / "blurry", tmp_path / "sharp"


@pytest.mark.parametrize("scale, dtype", [(5000.0, "float32"), (4000.0, "uint16")])
def test_deblur_training_data_out_of_range_is_mapped_and_recorded(tmp_path, scale, dtype):
    """Float counts and dim 16-bit pairs: one map for blurry and sharp, recorded in the model, which restore then
    uses (each image's own percentiles gave the network a scale it never trained on)."""
    from selfrestore.checkpoint import read_checkpoint
    from selfrestore.data.blur_pairs import RealBlurPairs
    from selfrestore.restore import Restorer

    blurry, sharp = _pair_folders(tmp_path, scale, dtype)
    source = RealBlurPairs(blurry, sharp, mapped=True, dim=True)
    assert source.intensity is not None
    assert all(0 <= np.percentile(image, 50) <= 1 for pair in source.pairs for image in pair)
    model = tmp_path / "m.safetensors"
    assert main(["fit", "--pairs", str(blurry), str(sharp), "--method", "deblur_l1", "-o", str(model), *TINY]) == 0
    recorded = read_checkpoint(model)[1].get("intensity")
    assert recorded and read_checkpoint(model)[1].get("maps_method_data")
    from selfrestore.io import read_image

    assert Restorer(model).mapping_for(read_image(blurry / "p0.tif")[0]) == recorded


def test_synthetic_deblur_data_of_float_counts_is_mapped(tmp_path):
    from selfrestore.checkpoint import read_checkpoint

    _, sharp = _pair_folders(tmp_path, 3000.0)
    model = tmp_path / "m.safetensors"
    assert main(["fit", str(sharp), "--synthetic", "--kernels", str(_kernel_file(tmp_path)), "--method", "reblur",
                 "-o", str(model), *TINY]) == 0
    assert read_checkpoint(model)[1].get("intensity")["scale"] > 100


def test_deblur_data_in_full_range_is_not_mapped(tmp_path, reblur_model):
    """8-bit PNGs and full-range 16-bit TIFFs train as they are: no map, models and tables unchanged."""
    from selfrestore.checkpoint import read_checkpoint
    from selfrestore.data.blur_pairs import RealBlurPairs

    assert "intensity" not in read_checkpoint(reblur_model)[1]
    blurry, sharp = _pair_folders(tmp_path, 65535.0, "uint16")
    assert RealBlurPairs(blurry, sharp, dim=True).intensity is None


# ------------------------------------------------------------------------------------------ 4. --init
def test_fit_reblur_init_from_a_reblur_model_loads_its_reblurring_module(reblur_model, tmp_path, capsys):
    """`fit --method reblur --init REBLUR_MODEL` goes on with the model's M_R (it restarted it); a model of another
    method, or an M_R of other sizes, is said to leave M_R fresh."""
    from selfrestore.checkpoint import read_checkpoint

    sharp = _sharp_folder(tmp_path / "sharp", seed=3)
    common = ["--synthetic", "--kernels", str(_kernel_file(tmp_path)), "--method", "reblur", "--init",
              str(reblur_model), *TINY, "--steps", "1", "--lr", "1e-12"]
    out = tmp_path / "refined.safetensors"
    assert main(["fit", str(sharp), "-o", str(out), *common]) == 0
    before, after = read_checkpoint(reblur_model)[0], read_checkpoint(out)[0]
    extra = [k for k in before if k.startswith("extra.reblur.")]
    assert extra
    for key in extra:
        torch.testing.assert_close(after[key].float(), before[key].float(), atol=1e-6, rtol=0)
    capsys.readouterr()
    loud = [arg for arg in common if arg != "--quiet"]
    assert main(["fit", str(sharp), "-o", str(tmp_path / "other.safetensors"), *loud, "--reblur-features", "8"]) == 0
    assert "the reblur module starts fresh" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------ 5. --blur-noise
def test_blur_noise_with_a_named_blur_model_is_refused(tmp_path, capsys):
    """`--noise blur31_gauss1 --blur-noise 5` used sigma 1 and recorded 5: a one-line error, as --kernels is."""
    sharp = _sharp_folder(tmp_path / "sharp")
    out = tmp_path / "m.safetensors"
    assert main(["fit", str(sharp), "--synthetic", "--noise", "blur9_gauss1", "--blur-noise", "5", "--method",
                 "reblur", "-o", str(out), *TINY]) != 0
    err = capsys.readouterr().err
    assert "--blur-noise" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


# ------------------------------------------------------------------------------------------ 6. --holdout
def test_holdout_with_deblurring_data_says_the_real_reason(tmp_path, capsys):
    """Deblurring pairs are not image lists: --holdout is not supported there (it blamed too few images)."""
    sharp = _sharp_folder(tmp_path / "sharp", sizes=((40, 40),) * 3)
    assert main(["fit", str(sharp), "--synthetic", "--kernels", str(_kernel_file(tmp_path)), "--method", "reblur",
                 "--holdout", "0.3", "-o", str(tmp_path / "m.safetensors"), *TINY]) == 0
    err = capsys.readouterr().err
    assert "--holdout ignored: holding images out is not supported" in err and "at least 2 images" not in err


# ------------------------------------------------------------------------------------------ 8. channels
def test_gray_blurry_colour_sharp_pair_names_the_channels(tmp_path, capsys):
    blurry, sharp = _pair_folders(tmp_path, 1.0, channels=1, sharp_channels=3)
    args = ["fit", "--pairs", str(blurry), str(sharp), "--method", "deblur_l1", *TINY]
    assert main([*args, "-o", str(tmp_path / "m.safetensors")]) != 0
    err = capsys.readouterr().err
    assert "channel" in err and "--channels 3" in err and "Traceback" not in err
    assert main([*args, "--channels", "3", "-o", str(tmp_path / "m3.safetensors")]) == 0


def test_synthetic_folder_mixing_gray_and_colour_names_channels(tmp_path, capsys):
    sharp = _sharp_folder(tmp_path / "sharp")
    write_image(sharp / "gray.png", np.random.default_rng(0).random((40, 40)).astype(np.float32))
    assert main(["fit", str(sharp), "--synthetic", "--kernels", str(_kernel_file(tmp_path)), "--method", "reblur",
                 "-o", str(tmp_path / "m.safetensors"), *TINY]) != 0
    assert "--channels" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ 9. --redraw
def test_redraw_with_deblurring_is_refused_and_documented(tmp_path, capsys):
    """Deblurring's synthetic blur is drawn per patch: --redraw changed nothing yet was recorded; --help says so."""
    sharp = _sharp_folder(tmp_path / "sharp")
    out = tmp_path / "m.safetensors"
    assert main(["fit", str(sharp), "--synthetic", "--redraw", "--kernels", str(_kernel_file(tmp_path)),
                 "--method", "deblur_l1", "-o", str(out), *TINY]) != 0
    err = capsys.readouterr().err
    assert "--redraw" in err and len(err.strip().splitlines()) == 1 and not out.exists()
    from selfrestore.cli import build_parser

    help_text = " ".join(build_parser()._subparsers._group_actions[0].choices["fit"].format_help().split())
    assert "blurred anew for every patch" in help_text


def test_adapting_a_deblur_l1_model_fits_its_fresh_reblurring_module_at_the_faster_rate(tmp_path, monkeypatch):
    """A deblur_l1 model has no trained M_R: `restore --adapt` first fits a fresh one (50 warm-up steps) at
    FRESH_REBLUR_LR, not at the validated 1e-5 (chosen for a trained M_R, under which a fresh one barely learns
    the blur before M_D relies on it); M_D's rate and the anchor stay the validated ones."""
    from selfrestore.methods.reblur import FRESH_REBLUR_LR

    sharp = _sharp_folder(tmp_path / "sharp")
    model = tmp_path / "l1.safetensors"
    assert main(["fit", str(sharp), "--synthetic", "--kernels", str(_kernel_file(tmp_path)), "--method",
                 "deblur_l1", "-o", str(model), *TINY]) == 0
    config = _adaptation_setting(model, 5, tmp_path, monkeypatch)
    assert (config.warmup, config.lr_reblur, config.lr_deblur, config.consistency) == (50, FRESH_REBLUR_LR, 1e-5, 1.0)
    assert FRESH_REBLUR_LR > 1e-5


def test_a_deblur_run_begun_with_redraw_still_resumes(tmp_path):
    """`--redraw` (a no-op for deblurring) is refused for new runs, but a run that recorded it before the
    refusal resumes: --resume fills it from the run's header, where the user never typed it."""
    from selfrestore.checkpoint import _write, read_checkpoint

    sharp = _sharp_folder(tmp_path / "sharp")
    model = tmp_path / "rd.safetensors"  # (given to -o without its suffix below: fit appends it)
    kernels = _kernel_file(tmp_path)
    assert main(["fit", str(sharp), "--synthetic", "--kernels", str(kernels), "--method", "deblur_l1",
                 "-o", str(model), *TINY]) == 0
    tensors, header = read_checkpoint(model)
    header["redraw"] = True  # as a run of the previous version recorded it
    header["step"] = 1  # (unfinished, so there is something left to resume)
    _write(model, tensors, header)
    assert main(["fit", str(sharp), "--synthetic", "--kernels", str(kernels), "--method", "deblur_l1",
                 "-o", str(tmp_path / "rd"), "--resume", *TINY]) == 0
