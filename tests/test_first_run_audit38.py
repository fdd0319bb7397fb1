"""Audit 38 of what a new user meets first: an interrupted model said to be unfinished, warnings on their own
line above progress bars, the demo's numbers from the files it writes and its next step, `fit`'s next step for
every kind of model, a smaller --steps on --resume, and no default-method notice before a missing-data error."""
import numpy as np
import pytest

from selfrestore.cli import main
from selfrestore.io import read_image, write_image

FIT = ["--method", "n2v", "--width", "4", "--depth", "2", "--patch-size", "32", "--batch-size", "2", "--no-amp"]


@pytest.fixture
def photos(tmp_path, rgb_image):
    rng = np.random.default_rng(0)
    for i in range(2):
        write_image(tmp_path / "photos" / f"p{i}.png",
                    np.clip(rgb_image + 0.1 * rng.standard_normal(rgb_image.shape), 0, 1))
    return tmp_path / "photos"


def test_an_interrupted_model_is_said_to_be_unfinished(tmp_path, photos, capsys):
    """A run stopped by Ctrl-C leaves a usable model file; `models` described it as a finished one (its step
    count alone) and `restore` used it without a word. Now both say where its training stopped; a finished run,
    a held-out best-weights file and every shipped model say nothing of the kind."""
    model = tmp_path / "m.safetensors"
    from selfrestore.checkpoint import read_checkpoint, shipped_models, unfinished_training, update_header

    assert main(["fit", str(photos), *FIT, "--steps", "4", "--quiet", "-o", str(model)]) == 0
    assert unfinished_training(read_checkpoint(model)[1]) is None
    update_header(model, step=2)  # as a run stopped at step 2 of its 4 records itself
    capsys.readouterr()
    assert main(["models", str(model)]) == 0
    assert "UNFINISHED: its training stopped at step 2 of a planned 4 steps" in capsys.readouterr().out
    assert main(["restore", str(photos / "p0.png"), "--model", str(model), "-o", str(tmp_path / "r.png"),
                 "--quiet"]) == 0
    assert "its training stopped at step 2 of a planned 4 steps" in capsys.readouterr().err
    assert main(["evaluate", "--clean", str(photos), "--noise", "gauss25", "--model", str(model)]) == 0
    assert "its training stopped at step 2 of a planned 4 steps" in capsys.readouterr().err  # the review: evaluate
    update_header(model, holdout_loss=0.1)  # a NAME.best file: stopped at its best step on purpose
    assert unfinished_training(read_checkpoint(model)[1]) is None
    for name, path in shipped_models().items():
        assert unfinished_training(read_checkpoint(path)[1]) is None, name


def test_warnings_do_not_land_inside_a_progress_bar(tmp_path, monkeypatch):
    """`restore lo/` with weak noise printed its mismatch warning straight after the bar's carriage return, on the
    bar's own line; warn() now goes through tqdm.write, which clears the bar's line first and redraws it below."""
    import io
    import sys

    from tqdm import tqdm

    from selfrestore.commands._common import warn

    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    with tqdm(total=3, desc="restore", file=sys.stderr) as bar:
        bar.update(1)
        warn("a warning")
        bar.update(1)
    lines = err.getvalue().replace("\r", "\n").split("\n")
    assert "selfrestore: a warning" in lines, lines  # a line of its own, not glued to a bar


def test_the_demo_prints_what_its_files_give_and_says_what_next(tmp_path, capsys, monkeypatch):
    """The demo restored the unclipped float noisy image but wrote and scored the 8-bit one: `restore noisy.png`
    on its files gave 31.37 dB where it printed 31.71. Now it restores the 8-bit file's values; and it ends
    with a next step on the user's own images."""
    assert main(["demo", "-o", str(tmp_path / "d"), "--size", "64"]) == 0
    out = capsys.readouterr().out
    assert "next, on your own noisy images: selfrestore inspect" in out
    printed = float(out.split("PSNR restored")[1].split("dB")[0])
    assert main(["restore", str(tmp_path / "d" / "noisy.png"), "--model", "laine19-gauss25", "-o",
                 str(tmp_path / "again.png"), "--quiet"]) == 0
    from selfrestore.metrics import psnr

    clean = read_image(tmp_path / "d" / "clean.png")[0]
    assert abs(psnr(read_image(tmp_path / "again.png")[0], clean) - printed) < 0.01
    # --train too (the review: it restored without the clipped-noise correction `restore` applies: 28.19 dB
    # printed, 28.39 from the files, at the demo's defaults); here, 3 steps: the restoring path is checked
    from selfrestore.restore import Restorer

    calls = []
    real = Restorer.restore
    monkeypatch.setattr(Restorer, "restore", lambda self, *a, **k: calls.append(self.header.get("step")) or
                        real(self, *a, **k))
    capsys.readouterr()
    assert main(["demo", "-o", str(tmp_path / "t"), "--size", "64", "--train", "--steps", "3"]) == 0
    assert calls == [3]  # the trained model, through Restorer.restore as `selfrestore restore` does
    printed = float(capsys.readouterr().out.split("PSNR restored")[1].split("dB")[0])
    assert main(["restore", str(tmp_path / "t" / "noisy.png"), "--model", str(tmp_path / "t" / "demo_n2n.safetensors"),
                 "-o", str(tmp_path / "again_t.png"), "--quiet"]) == 0
    assert abs(psnr(read_image(tmp_path / "again_t.png")[0], clean) - printed) < 0.01


def test_fit_says_what_next_for_burst_and_deblurring_models(tmp_path, capsys):
    """`fit` ended m2m / dsa / reblur / deblur_l1 / n2c runs at "saved ..." with no next step."""
    rng = np.random.default_rng(0)
    for i in range(2):
        write_image(tmp_path / "sharp" / f"s{i}.png", rng.random((40, 40, 3)).astype(np.float32))
    assert main(["fit", str(tmp_path / "sharp"), "--synthetic", "--method", "reblur", "--steps", "1",
                 "--batch-size", "2", "--patch-size", "32", "--width", "4", "--depth", "2", "--no-amp", "-o",
                 str(tmp_path / "rb.safetensors")]) == 0
    assert "next: selfrestore restore BLURRY_IMAGES --model" in capsys.readouterr().out


def test_resume_refuses_a_smaller_steps_and_no_method_notice_before_a_data_error(tmp_path, photos, capsys):
    """`--resume --steps 60` of a run planned for 400 (at step 54) was accepted: its learning-rate schedule
    changed mid-run (the help says --steps may grow). And `fit -o m` without data first said which method suits
    "the data given"."""
    from selfrestore.checkpoint import read_checkpoint, update_header

    model = tmp_path / "m.safetensors"
    assert main(["fit", str(photos), *FIT, "--steps", "2", "--quiet", "-o", str(model)]) == 0
    update_header(model, step=1, train_config={**read_checkpoint(model)[1]["train_config"], "steps": 6})
    capsys.readouterr()
    assert main(["fit", str(photos), "-o", str(model), "--resume", "--steps", "3", "--quiet"]) == 2
    assert "was planned for --steps 6 (now at step 1)" in capsys.readouterr().err
    budget = tmp_path / "b.safetensors"  # a --minutes run: a smaller --minutes changes its schedule alike
    assert main(["fit", str(photos), *FIT, "--minutes", "0.01", "--quiet", "-o", str(budget)]) == 0
    update_header(budget, budget_spent=0.1)
    assert main(["fit", str(photos), "-o", str(budget), "--resume", "--minutes", "0.005", "--quiet"]) == 2
    assert "was planned for --minutes 0.01" in capsys.readouterr().err
    assert main(["fit", "-o", str(tmp_path / "x.safetensors")]) == 2
    err = capsys.readouterr().err
    assert "no --method given" not in err and "no training data" in err, err


def test_resume_refuses_a_data_folder_whose_images_changed(tmp_path, photos, capsys):
    """Stop 36's leftover: --resume compared the data's paths, not what they hold: an image added to (or
    replaced in) the folder made the resumed run train on other images silently. Now a fingerprint of the files'
    names and sizes is recorded and compared; the same data given by another path (absolute) still resumes."""
    model = tmp_path / "m.safetensors"
    assert main(["fit", str(photos), *FIT, "--steps", "2", "--quiet", "-o", str(model)]) == 0
    from selfrestore.checkpoint import read_checkpoint

    assert read_checkpoint(model)[1]["data_fingerprint"]["files"] == 2
    write_image(photos / "p2.png", read_image(photos / "p0.png")[0])
    capsys.readouterr()
    assert main(["fit", str(photos), "-o", str(model), "--resume", "--steps", "3", "--quiet"]) == 2
    assert "its training data changed since the run began (2 files then, 3 now" in capsys.readouterr().err
    (photos / "p2.png").unlink()
    assert main(["fit", str(photos.resolve()), "-o", str(model), "--resume", "--steps", "3", "--quiet"]) == 0


def test_restore_of_a_missing_input_says_only_that(tmp_path, capsys):
    """`restore nonexist/ -o x/` announced the default model before saying the input does not exist."""
    assert main(["restore", str(tmp_path / "nonexist"), "-o", str(tmp_path / "x")]) != 0
    err = capsys.readouterr().err
    assert "no such file or folder" in err and "no --model given" not in err, err
