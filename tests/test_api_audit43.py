"""Defects a library user met with the Python API (an audit at stop 43): a thread race on the first model loaded,
keyword arguments taken as a longer option, file names starting with "-", output that could not be silenced,
messages many lines long or pointing at the wrong fix."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from selfrestore import api
from selfrestore.errors import UserError
from selfrestore.restore import Restorer

ROOT = Path(__file__).resolve().parents[1]


def _noisy_png(path: Path, side: int = 32) -> Path:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(60, 200, (side, side, 3), dtype=np.uint8)).save(path)
    return path


def test_models_loaded_from_several_threads_at_once_all_load():
    """The registries were filled on first use with the 'done' flag set before the imports ended: a second
    thread read half-filled registries ("unknown network 'unet'"). In a fresh process, as a service starting."""
    script = """
import threading
from selfrestore.restore import Restorer
results = {}
def load(k, name):
    try:
        Restorer(name, device="cpu"); results[k] = "ok"
    except Exception as exc:
        results[k] = repr(exc)
threads = [threading.Thread(target=load, args=(k, name)) for k, name in
           enumerate(["unet-gauss25", "unet-gauss25", "laine19-gauss25", "laine19-gauss5_50"])]
[t.start() for t in threads]; [t.join() for t in threads]
print(sorted(results.values()))
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert done.stdout.strip() == str(["ok"] * 4), done.stdout + done.stderr


@pytest.mark.parametrize("verb, options, near", [
    ("restore", dict(overw=True), "overwrite"),  # ran with --overwrite
    ("restore", dict(tiles=512), "tile"),  # said "selfrestore --help", which lists no restore option
    ("video", dict(steps=5), "steps_per_frame"),  # ran with --steps-per-frame 5
])
def test_api_keywords_must_be_options_in_full(tmp_path, verb, options, near):
    with pytest.raises(UserError, match=f"no option .*did you mean {near}.*selfrestore {verb} --help"):
        getattr(api, verb)(str(tmp_path / "in.png"), output=str(tmp_path / "out"), **options)


def test_the_command_line_takes_no_abbreviated_option():
    """argparse's prefix matching read `video --steps 5` as --steps-per-frame."""
    done = subprocess.run([sys.executable, "-m", "selfrestore", "video", "v.mp4", "-o", "o.mp4", "--steps", "5"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2 and "unrecognized arguments: --steps 5" in done.stderr


def test_a_file_name_starting_with_a_dash_in_an_option_of_several_values(tmp_path, monkeypatch):
    """evaluate's --clean took "-n.png" for an option ("expected at least one argument")."""
    monkeypatch.chdir(tmp_path)
    _noisy_png(tmp_path / "-n.png")
    report = api.evaluate("-n.png", model="unet-gauss25", noise="gauss25", quiet=True)
    assert report["exit_code"] == 0 and len(report["images"]) == 1
    assert api.command_line("restore", [], {"noise_pg": [-0.5, 0.02]})[1:] == ["--noise-pg", "-0.5", "0.02"]


def test_evaluate_quiet_prints_nothing_on_stdout(tmp_path, capsys):
    _noisy_png(tmp_path / "a.png")
    report = api.evaluate(str(tmp_path / "a.png"), model="unet-gauss25", noise="gauss25", quiet=True)
    assert capsys.readouterr().out == "" and report["mean"]["psnr"] > 0
    api.evaluate(str(tmp_path / "a.png"), model="unet-gauss25", noise="gauss25")
    assert "mean" in capsys.readouterr().out


@pytest.mark.parametrize("inputs", ["", ["a.png", " "]])
def test_an_empty_input_name_is_refused_not_read_as_the_current_folder(tmp_path, inputs):
    with pytest.raises(UserError, match="empty file name"):
        api.restore(inputs, output=str(tmp_path / "out"))


@pytest.mark.parametrize("source", [np.zeros((3, 8, 8)), None, ["a.mp4", "b.mp4"]])
def test_api_video_takes_one_source_and_says_so_in_one_line(tmp_path, source):
    with pytest.raises(UserError, match="give one video|an array of shape") as caught:
        api.video(source, output=str(tmp_path / "v"))
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 300


def test_restore_file_given_an_array_says_so_in_one_line(tmp_path):
    with pytest.raises(UserError, match="give a file name") as caught:
        Restorer("unet-gauss25", device="cpu").restore_file(np.zeros((64, 64, 3)), tmp_path / "x.png")
    assert "\n" not in str(caught.value)


def test_a_channel_first_tensor_is_told_to_permute():
    """The hint said image.transpose(1, 2, 0), which fails on a torch tensor."""
    with pytest.raises(UserError, match=r"permute\(1, 2, 0\)"):
        Restorer("unet-gauss25", device="cpu").restore(torch.rand(3, 16, 16))


@pytest.mark.parametrize("sigma", [np.array(0.1), torch.tensor(0.1), np.float32(0.1)])
def test_noise_params_take_a_0d_array_as_its_number(sigma):
    restorer = Restorer("laine19-gauss5_50", device="cpu", noise_params={"sigma": sigma})
    assert restorer.noise_params["sigma"] == pytest.approx(0.1) and isinstance(restorer.noise_params["sigma"], float)


def test_restorer_without_a_model_uses_restores_default():
    """Restorer() was a TypeError (no model); Restorer(None) a UserError where api.restore(model=None) is the
    default. Both now load laine19-gauss5_50's weights."""
    named = Restorer("laine19-gauss5_50", device="cpu").net.state_dict()
    for restorer in (Restorer(device="cpu"), Restorer(None, device="cpu")):
        assert restorer.method.name == "laine19"
        assert all(torch.equal(value, named[key]) for key, value in restorer.net.state_dict().items())


def test_api_fit_help_returns_none(tmp_path, capsys):
    """It returned the path of a model it had not made, and needed output= for help."""
    assert api.fit(output=str(tmp_path / "m"), help=True) is None and api.fit(help=True) is None
    assert "usage: selfrestore fit" in capsys.readouterr().out
    assert not list(tmp_path.iterdir())
    with pytest.raises(UserError, match="required: -o/--output"):
        api.fit(str(tmp_path))


def test_restore_refuses_skip_existing_with_overwrite(tmp_path):
    """Both were accepted and --overwrite won: what --skip-existing was asked to keep was replaced."""
    source = _noisy_png(tmp_path / "a.png")
    with pytest.raises(UserError, match="--skip-existing .* --overwrite"):
        api.restore(str(source), model="unet-gauss25", output=str(tmp_path / "out.png"), skip_existing=True,
                    overwrite=True)


def test_progress_into_a_log_file_is_updated_every_30_s_not_ten_times_a_second(tmp_path):
    """With stderr redirected to a file (a batch job), tqdm's bars wrote ten updates a second into the log."""
    script = ("import os, sys\nfrom selfrestore.cli import main\nmain(['models'])\n"
              "print(os.environ.get('TQDM_MININTERVAL'))\nfrom tqdm import tqdm\nprint(tqdm(total=1).mininterval)")
    env = {key: value for key, value in os.environ.items() if key != "TQDM_MININTERVAL"}
    with open(tmp_path / "log.txt", "w") as log:
        done = subprocess.run([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=log, text=True,
                              env={**env, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert done.stdout.split()[-2:] == ["30", "30.0"], done.stdout
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**env, "PYTHONPATH": str(ROOT), "TQDM_MININTERVAL": "2"})
    assert done.stdout.split()[-2:] == ["2", "2.0"]  # the user's own setting wins
