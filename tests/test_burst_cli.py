"""`selfrestore burst`: classical restoration of a frame folder, and one-line errors for bad input."""
import numpy as np
import torch
import torch.nn.functional as F

from selfrestore.burst.synthesis import BurstConfig, synthesize_burst
from selfrestore.cli import main
from selfrestore.io import read_image, write_image
from selfrestore.metrics import psnr


def _clean(size=96):
    base = torch.rand(1, 3, size // 8, size // 8, generator=torch.Generator().manual_seed(0))
    return F.interpolate(base, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)


def _write_burst(folder, config):
    burst = synthesize_burst(_clean(), config, torch.Generator().manual_seed(1))
    folder.mkdir()
    for t, frame in enumerate(burst["frames"][0]):
        write_image(folder / f"{t:03d}.png", frame.clamp(0, 1).permute(1, 2, 0).numpy(), dtype="uint16")
    return burst["clean"][0].permute(1, 2, 0).numpy()


def test_demosaic_burst_folder(tmp_path):
    clean = _write_burst(tmp_path / "raw", BurstConfig(frames=5, mosaic=True))
    out = tmp_path / "out.png"
    assert main(["burst", str(tmp_path / "raw"), "--task", "demosaic", "-o", str(out)]) == 0
    image, _ = read_image(out)
    assert image.shape == clean.shape
    assert psnr(image, clean) > 27


def test_superres_burst_files(tmp_path, capsys):
    clean = _write_burst(tmp_path / "lr", BurstConfig(frames=4, scale=2, blur_sigma=0.5))
    out = tmp_path / "sr.png"
    files = sorted(str(p) for p in (tmp_path / "lr").iterdir())
    assert main(["burst", *files, "--task", "superres", "--scale", "2", "-o", str(out)]) == 0
    image, _ = read_image(out)
    assert image.shape == clean.shape and psnr(image, clean) > 24


def test_bad_inputs_give_one_line_errors(tmp_path, capsys):
    (tmp_path / "rgb").mkdir()
    for t in range(2):
        write_image(tmp_path / "rgb" / f"{t}.png", np.random.rand(16, 16, 3).astype(np.float32))
    assert main(["burst", str(tmp_path / "rgb"), "--task", "demosaic", "-o", str(tmp_path / "o.png")]) == 2
    err = capsys.readouterr().err
    assert "single-channel" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    write_image(tmp_path / "one.png", np.random.rand(16, 16, 1).astype(np.float32))
    assert main(["burst", str(tmp_path / "one.png"), "--task", "demosaic", "-o", str(tmp_path / "o.png")]) == 2
    assert "at least 2 frames" in capsys.readouterr().err
    assert main(["burst", str(tmp_path / "missing"), "--task", "superres", "-o", str(tmp_path / "o.png")]) == 2
    assert "missing" in capsys.readouterr().err
    # Deep Shift-and-Add holds one frame out as its target: adapting on 2 frames is refused before training
    assert main(["burst", str(tmp_path / "rgb"), "--task", "superres", "--adapt", "2",
                 "-o", str(tmp_path / "o.png")]) == 2
    err = capsys.readouterr().err
    assert "at least 3 frames" in err and "fit dsa" not in err and len(err.strip().splitlines()) == 1, err


def test_shipped_mosaic_to_mosaic_model_demosaics_and_denoises_a_raw_frame(tmp_path):
    """The shipped self-supervised M2M net, on a raw burst of a photo it never saw (scikit-image's cat) with
    its training noise, beats bilinear demosaicking of the same frame by a wide margin."""
    from skimage import data

    from selfrestore.checkpoint import shipped_models
    from selfrestore.corruption.mosaic import bilinear_demosaic

    name = "m2m-pg0.004_0.02"
    assert name in shipped_models()
    clean = torch.from_numpy(data.chelsea()[60:220, 120:280].astype(np.float32) / 255).permute(2, 0, 1)[None]
    burst = synthesize_burst(clean, BurstConfig(frames=2, mosaic=True, noise="pg0.004_0.02"),
                             torch.Generator().manual_seed(1))
    (tmp_path / "raw").mkdir()
    for t, frame in enumerate(burst["frames"][0]):
        write_image(tmp_path / "raw" / f"{t:03d}.png", frame.clamp(0, 1).permute(1, 2, 0).numpy(), dtype="uint16")
    truth = burst["clean"][0].permute(1, 2, 0).numpy()
    out = tmp_path / "out.png"
    assert main(["burst", str(tmp_path / "raw"), "--task", "demosaic", "--model", name, "-o", str(out)]) == 0
    bilinear = bilinear_demosaic(burst["frames"][:, 0].clamp(0, 1))[0].permute(1, 2, 0).numpy()
    assert psnr(read_image(out)[0], truth) > psnr(bilinear, truth) + 2
    # one raw frame is enough for the model (the classical method needs a burst)
    single = tmp_path / "single.png"
    assert main(["burst", str(tmp_path / "raw" / "000.png"), "--task", "demosaic", "--model", name, "-o",
                 str(single)]) == 0
    assert np.array_equal(read_image(single)[0], read_image(out)[0])
    assert main(["burst", str(tmp_path / "raw" / "000.png"), "--task", "demosaic", "-o", str(single)]) == 2


def test_fit_trains_a_burst_method_on_a_folder_of_real_bursts(tmp_path, capsys):
    """`fit --method m2m BURSTS/` (a folder of burst folders, no clean data) trains a model that `burst`
    then uses; DSA likewise on low-resolution bursts; supervised twins and --synthetic are refused."""
    for index in range(2):
        burst = synthesize_burst(_clean(), BurstConfig(frames=3 + index, mosaic=True),
                                 torch.Generator().manual_seed(index))
        for t, frame in enumerate(burst["frames"][0]):
            write_image(tmp_path / "raw" / f"b{index}" / f"{t:03d}.png", frame.clamp(0, 1).permute(1, 2, 0).numpy(),
                        dtype="uint16")
    model = tmp_path / "m2m.safetensors"
    assert main(["fit", str(tmp_path / "raw"), "--method", "m2m", "--steps", "2", "--batch-size", "2",
                 "--patch-size", "32", "--quiet", "-o", str(model)]) == 0
    assert main(["burst", str(tmp_path / "raw" / "b1"), "--task", "demosaic", "--model", str(model), "-o",
                 str(tmp_path / "out.png")]) == 0
    assert read_image(tmp_path / "out.png")[0].shape[2] == 3
    _write_burst(tmp_path / "lr", BurstConfig(frames=4, scale=2, blur_sigma=0.5))
    assert main(["fit", str(tmp_path / "lr"), "--method", "dsa", "--steps", "1", "--batch-size", "2",
                 "--patch-size", "32", "--quiet", "-o", str(tmp_path / "dsa.safetensors")]) == 0
    assert main(["fit", str(tmp_path / "raw"), "--method", "m2m_supervised", "--steps", "1", "-o",
                 str(tmp_path / "x")]) == 2
    assert main(["fit", str(tmp_path / "raw"), "--method", "m2m", "--synthetic", "--noise", "gauss25", "--steps",
                 "1", "-o", str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err
    assert "supervised twin" in err and "--synthetic does not apply" in err and "Traceback" not in err


def test_shipped_deep_shift_and_add_model_super_resolves_a_burst(tmp_path):
    """The shipped self-supervised DSA (x2), on a low-resolution burst of a photo it never saw (scikit-image's
    cat) with its training noise and blur, beats the classical shift-and-add of the same burst."""
    from skimage import data

    name = "dsa-x2-pg0.004_0.02"
    clean = torch.from_numpy(data.chelsea()[40:232, 100:292].astype(np.float32) / 255).permute(2, 0, 1)[None]
    burst = synthesize_burst(clean, BurstConfig(frames=8, scale=2, blur_sigma=0.5, noise="pg0.004_0.02"),
                             torch.Generator().manual_seed(3))
    (tmp_path / "lr").mkdir()
    for t, frame in enumerate(burst["frames"][0]):
        write_image(tmp_path / "lr" / f"{t:03d}.png", frame.clamp(0, 1).permute(1, 2, 0).numpy(), dtype="uint16")
    truth = burst["clean"][0].permute(1, 2, 0).numpy()
    assert main(["burst", str(tmp_path / "lr"), "--task", "superres", "--model", name, "-o",
                 str(tmp_path / "dsa.png")]) == 0
    assert main(["burst", str(tmp_path / "lr"), "--task", "superres", "-o", str(tmp_path / "saa.png")]) == 0
    assert psnr(read_image(tmp_path / "dsa.png")[0], truth) > psnr(read_image(tmp_path / "saa.png")[0], truth) + 0.5
