"""Stop 39's leftovers: `fit`'s next step for burst and blurry+noisy models, and the unfinished-model warning of
the commands that read those models (burst, restore --blurry --noisy, video), which no test covered."""
import numpy as np

from selfrestore.checkpoint import read_checkpoint, update_header
from selfrestore.cli import main
from selfrestore.io import write_image
from test_burst_audit38 import _raw_burst, _write_frames  # noqa: E402 (tests/ is on the path)
from test_selfir import _pair_folders  # noqa: E402

UNFINISHED = "its training stopped at step 1 of a planned 2 steps"


def _cut_short(model) -> None:
    """Record ``model`` as a run stopped at step 1 of its 2 (as Ctrl-C leaves it)."""
    header = read_checkpoint(model)[1]
    assert header["train_config"]["steps"] == 2 and header["step"] == 2, header.get("step")
    update_header(model, step=1)


def test_a_burst_model_says_its_next_step_and_burst_says_it_is_unfinished(tmp_path, capsys):
    for index in range(2):
        _write_frames(tmp_path / "bursts" / f"b{index}", _raw_burst(frames=3, size=32, seed=index)[0])
    model = tmp_path / "m2m.safetensors"
    capsys.readouterr()
    assert main(["fit", str(tmp_path / "bursts"), "--method", "m2m", "--steps", "2", "--batch-size", "1",
                 "--patch-size", "16", "-o", str(model)]) == 0
    assert f"next: selfrestore burst FRAMES/ --task demosaic --model {model}" in capsys.readouterr().out
    burst = ["burst", str(tmp_path / "bursts" / "b0"), "--task", "demosaic", "--model", str(model), "--quiet"]
    assert main([*burst, "-o", str(tmp_path / "a.png")]) == 0
    assert UNFINISHED not in capsys.readouterr().err  # a finished run: not a word
    _cut_short(model)
    assert main([*burst, "-o", str(tmp_path / "b.png")]) == 0
    assert UNFINISHED in capsys.readouterr().err


def test_a_pair_model_says_its_next_step_and_restore_says_it_is_unfinished(tmp_path, rgb_image, capsys):
    blurry, noisy = _pair_folders(tmp_path / "train", rgb_image)
    model = tmp_path / "selfir.safetensors"
    capsys.readouterr()
    assert main(["fit", "--blurry", str(blurry), "--noisy", str(noisy), "--method", "selfir", "--width", "8",
                 "--depth", "2", "--steps", "2", "--patch-size", "32", "--batch-size", "2", "--mask-patch", "8",
                 "--no-amp", "-o", str(model)]) == 0
    assert f"next: selfrestore restore --blurry B --noisy N --model {model}" in capsys.readouterr().out
    restore = ["restore", "--blurry", str(blurry), "--noisy", str(noisy), "--model", str(model), "--quiet"]
    assert main([*restore, "-o", str(tmp_path / "a")]) == 0
    assert UNFINISHED not in capsys.readouterr().err
    _cut_short(model)
    assert main([*restore, "-o", str(tmp_path / "b")]) == 0
    assert UNFINISHED in capsys.readouterr().err


def test_video_says_its_start_model_is_unfinished(tmp_path, tiny_model, capsys):
    rng = np.random.default_rng(0)
    for t in range(3):
        write_image(tmp_path / "clip" / f"{t:03d}.png", rng.random((40, 40, 3)).astype(np.float32))
    model = tmp_path / "start.safetensors"
    model.write_bytes(tiny_model.read_bytes())
    video = ["video", str(tmp_path / "clip"), "--method", "f2f", "--model", str(model), "--steps-per-frame", "1",
             "--crop", "16", "--quiet"]
    update_header(model, step=2, train_config={"steps": 2})
    capsys.readouterr()
    assert main([*video, "-o", str(tmp_path / "a")]) == 0
    assert UNFINISHED not in capsys.readouterr().err
    update_header(model, step=1)
    assert main([*video, "-o", str(tmp_path / "b")]) == 0
    assert UNFINISHED in capsys.readouterr().err
