"""What the documentation audit of stop 41 found said wrongly: `models` on a --redraw model, `inspect` on a
time series."""
import numpy as np
import tifffile

from selfrestore.cli import main
from selfrestore.io import write_image


def test_models_says_a_redraw_model_saw_fresh_noise_not_noise_drawn_once(tmp_path, rgb_image, capsys):
    data = tmp_path / "clean"
    write_image(data / "a.png", rgb_image)
    model = tmp_path / "m.safetensors"
    assert main(["fit", str(data), "--synthetic", "--noise", "gauss25", "--redraw", "--method", "n2n", "--width", "4",
                 "--steps", "1", "--patch-size", "32", "--quiet", "-o", str(model)]) == 0
    capsys.readouterr()
    assert main(["models", str(model)]) == 0
    data_line = next(line for line in capsys.readouterr().out.splitlines() if line.strip().startswith("data"))
    assert "afresh every batch" in data_line and "corrupted once" not in data_line


def _stack(path, axes):
    rng = np.random.default_rng(0)
    planes = (np.clip(0.3 + 0.1 * rng.standard_normal((5, 64, 64)), 0, 1) * 65535).astype(np.uint16)
    tifffile.imwrite(path, planes, imagej=True, metadata={"axes": axes})


def test_inspect_suggests_video_for_a_time_series_only(tmp_path, capsys):
    _stack(tmp_path / "timelapse.tif", "TYX")
    _stack(tmp_path / "zstack.tif", "ZYX")
    assert main(["inspect", str(tmp_path / "timelapse.tif")]) == 0
    said = capsys.readouterr()
    assert "selfrestore video" in said.out + said.err and "time series" in said.out + said.err
    assert main(["inspect", str(tmp_path / "zstack.tif")]) == 0
    said = capsys.readouterr()
    assert "selfrestore video" not in said.out + said.err
