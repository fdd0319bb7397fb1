"""Audit 40 of `inspect` and `evaluate`: inspect's advice leaves out missing inputs and empty folders and quotes
every path for the shell (as fit's next step does), evaluate tells rows of two images of one name apart and says
that an image's alpha channel is not scored."""
import json
import shlex

import numpy as np
import pytest
from PIL import Image

from selfrestore.cli import main
from selfrestore.io import write_image

FIT = ["--method", "n2v", "--width", "4", "--depth", "2", "--patch-size", "32", "--batch-size", "2", "--no-amp"]


@pytest.fixture
def noisy(rgb_image):
    """The test image with Gaussian noise of std 25 (0-255 scale): inspect measures it and gives its advice."""
    rng = np.random.default_rng(0)
    return np.clip(rgb_image + 25 / 255 * rng.standard_normal(rgb_image.shape), 0, 1).astype(np.float32)


def advice_lines(out: str) -> list[str]:
    """The lines of inspect's report that suggest a command."""
    return [line for line in out.splitlines() if "selfrestore " in line]


def test_inspect_advice_leaves_out_missing_inputs_and_empty_folders(tmp_path, noisy, capsys, monkeypatch):
    """`inspect good.png nonexist.png empty/` warned that the missing file and the empty folder hold nothing, then
    suggested `selfrestore fit good.png nonexist.png empty/ ...`, which fails on them; unreadable files were
    already left out."""
    monkeypatch.chdir(tmp_path)
    write_image(tmp_path / "good.png", noisy)
    (tmp_path / "empty").mkdir()
    assert main(["inspect", "good.png", "nonexist.png", "empty"]) == 0
    captured = capsys.readouterr()
    assert "nonexist.png: no such file or folder" in captured.err and "empty: folder holds no images" in captured.err
    lines = advice_lines(captured.out)
    assert any("selfrestore fit good.png -o model.safetensors" in line for line in lines), lines
    assert not any("nonexist" in line or "empty" in line for line in lines), lines


def test_inspect_and_fit_quote_paths_in_the_commands_they_suggest(tmp_path, noisy, capsys, monkeypatch):
    """`inspect "my photos"` suggested `selfrestore fit my photos -o ...`, which the shell splits into two inputs;
    every path in a suggested command is now quoted (the video and chroma-subsampled JPEG advice too, and fit's
    next step, which names the model file)."""
    from selfrestore.commands.inspect import subsampled_advice, video_advice

    monkeypatch.chdir(tmp_path)
    write_image(tmp_path / "my photos" / "a.png", noisy)
    assert main(["inspect", "my photos"]) == 0
    lines = advice_lines(capsys.readouterr().out)
    assert any("selfrestore fit 'my photos' -o model.safetensors" in line for line in lines), lines
    assert not any("fit my photos" in line or "restore my photos" in line for line in lines), lines
    command = next(line for line in lines if "selfrestore fit 'my photos'" in line)
    assert shlex.split(command.split(": ", 1)[1])[2] == "my photos"  # one argument when pasted
    line = video_advice(["my clip.mp4"], 25.0, 0.0)[0]
    assert "selfrestore video 'my clip.mp4' -o 'my clip_denoised.mp4'" in line
    lines = subsampled_advice(["a b.jpg", "c.jpg"], 3, "x", 25.0, "gauss25")
    assert "selfrestore restore 'a b.jpg' c.jpg --model" in " ".join(lines)
    from selfrestore.errors import ImageReadError
    from selfrestore.io import read_image

    (tmp_path / "my clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")  # a video given where images are read
    with pytest.raises(ImageReadError, match="`selfrestore video 'my clip.mp4' -o OUT` restores videos"):
        read_image("my clip.mp4")
    write_image(tmp_path / "data" / "a.png", noisy)
    assert main(["fit", "data", *FIT, "--steps", "1", "-o", "my model.safetensors"]) == 0
    assert "next: selfrestore restore NOISY_IMAGES --model 'my model.safetensors' -o restored/" in \
        capsys.readouterr().out


def evaluate(args: list[str], capsys) -> tuple[list[str], str]:
    """Run `evaluate` with the shipped model at noise std 25; (its table's image rows, stderr)."""
    assert main(["evaluate", "--noise", "gauss25", "--model", "unet-gauss25", "--perceptual", "off",
                 "--device", "cpu", *args]) == 0
    captured = capsys.readouterr()
    return [line for line in captured.out.splitlines() if " noisy " in line and not line.startswith("mean")], \
        captured.err


def test_evaluate_tells_two_images_of_one_name_apart(tmp_path, rgb_image, capsys, monkeypatch):
    """`evaluate --clean clean/a.png clean2/a.png` gave two rows both named "a.png", with different scores; names
    that repeat are now shown with their folder (the JSON report's entries name the path as given)."""
    monkeypatch.chdir(tmp_path)
    write_image(tmp_path / "clean" / "a.png", rgb_image[:32, :32])
    write_image(tmp_path / "clean2" / "a.png", rgb_image[32:64, 32:64])
    write_image(tmp_path / "clean2" / "b.png", rgb_image[64:, 64:96])
    rows, _ = evaluate(["--clean", "clean/a.png", "clean2/a.png", "--json", "r.json"], capsys)
    report = json.loads((tmp_path / "r.json").read_text())
    assert [r["image"] for r in report["images"]] == ["clean/a.png", "clean2/a.png"]
    rows, _ = evaluate(["--clean", "clean/a.png", "clean2"], capsys)
    assert [row.split()[0] for row in rows] == ["clean/a.png", "clean2/a.png", "clean2/b.png"], rows
    rows, _ = evaluate(["--clean", "clean2"], capsys)  # unique names: the name alone, as before
    assert [row.split()[0] for row in rows] == ["a.png", "b.png"], rows


def test_evaluate_says_that_alpha_is_not_scored(tmp_path, rgb_image, capsys):
    """An RGBA clean image was scored on its colour channels with its alpha dropped without a word; now one note
    says so (once per run, naming the image), and nothing is said of images without alpha."""
    rgba = np.concatenate([rgb_image[:32, :32], np.full((32, 32, 1), 0.5, np.float32)], axis=2)
    Image.fromarray((rgba * 255).round().astype(np.uint8), "RGBA").save(tmp_path / "see_through.png")
    write_image(tmp_path / "plain.png", rgb_image[32:64, :32])
    _, err = evaluate(["--clean", str(tmp_path / "see_through.png"), str(tmp_path / "plain.png")], capsys)
    assert err.count("alpha") == 1 and "see_through.png: its alpha channel is not scored (the colour channels are)" \
        in err, err
    _, err = evaluate(["--clean", str(tmp_path / "plain.png")], capsys)
    assert "alpha" not in err, err
