"""`selfrestore burst` / `fit --method m2m|dsa` audit (38): exact splat indices on large grids, dim 16-bit
bursts mapped for models (and by fit, recorded in the model), fit's burst errors naming the burst, from-scratch
adaptation warned, full demosaicked frames with frame 1's metadata, m2m adaptation on too-small frames refused."""
import argparse

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from selfrestore.burst.synthesis import BurstConfig, synthesize_burst
from selfrestore.cli import main
from selfrestore.io import read_image, write_image
from selfrestore.metrics import psnr

DIM = 4095 / 65535  #: 12-bit counts kept in a 16-bit file


def _clean(size: int = 48, seed: int = 0) -> torch.Tensor:
    base = torch.rand(1, 3, size // 8, size // 8, generator=torch.Generator().manual_seed(seed))
    return F.interpolate(base, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)


def _raw_burst(frames: int = 4, size: int = 48, seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """A synthetic RGGB burst (T, 1, H, W) with the shipped models' noise (frames of size - 10 px: the synthesis
    crops a margin for the motion), and the reference's clean RGB."""
    burst = synthesize_burst(_clean(size, seed), BurstConfig(frames=frames, mosaic=True),
                             torch.Generator().manual_seed(seed + 1))
    return burst["frames"][0].clamp(0, 1), burst["clean"][0].permute(1, 2, 0).numpy()


def _write_frames(folder, frames: torch.Tensor, gain: float = 1.0, dtype: str = "uint16") -> None:
    folder.mkdir(parents=True)
    for t, frame in enumerate(frames):
        write_image(folder / f"f{t:02d}.png", (gain * frame).permute(1, 2, 0).numpy(), dtype=dtype)


# 1 ------------------------------------------------------------------------------------------------------------
def test_splat_flat_indices_are_exact_above_2_to_the_24_nodes():
    """The flat splat index y * W + x is an integer: in float32 a sample at column 4001 of a 5120 px grid landed
    at column 4000, and one at the last node of a 4100 x 4100 grid indexed past the end (a crash)."""
    from selfrestore.burst.shift_and_add import splat

    acc, wsum = splat(torch.ones(1, 1, 1, 1), torch.tensor([4001.0, 5000.0]).view(1, 2, 1, 1), (5120, 5120))
    assert acc[0, 0, 5000, 4001] == 1 and float(acc.sum()) == 1 and float(wsum.sum()) == 1
    acc, _ = splat(torch.ones(1, 1, 1, 1), torch.tensor([4099.0, 4099.0]).view(1, 2, 1, 1), (4100, 4100))
    assert acc[0, 0, 4099, 4099] == 1 and float(acc.sum()) == 1


# 2 ------------------------------------------------------------------------------------------------------------
def test_shipped_m2m_maps_a_dim_16_bit_burst_like_a_full_range_one(tmp_path):
    """12-bit counts in 16-bit files reach a shipped model mapped to [0, 1] (one map for the burst, mapped back
    after), as `restore` maps dim data: the result matches that of the same burst at full 16-bit range."""
    frames, clean = _raw_burst()
    _write_frames(tmp_path / "full", frames)
    _write_frames(tmp_path / "dim", frames, gain=DIM)
    for name in ("full", "dim"):
        assert main(["burst", str(tmp_path / name), "--task", "demosaic", "--model", "m2m-pg0.004_0.02",
                     "--quiet", "-o", str(tmp_path / f"{name}.png")]) == 0
    full = psnr(read_image(tmp_path / "full.png")[0], clean)
    dim = psnr(np.clip(read_image(tmp_path / "dim.png")[0] / DIM, 0, 1), clean)
    assert dim > full - 1.0, (dim, full)


# 3 ------------------------------------------------------------------------------------------------------------
def test_fit_burst_source_maps_dim_data_and_burst_uses_the_recorded_map(tmp_path, capsys, monkeypatch):
    """fit's burst source maps dim 16-bit bursts to [0, 1] with one map (recorded as ``intensity``) and says so;
    `burst --model` then maps the frames with that recorded map (not unmapped 16-bit values)."""
    from selfrestore.burst.sources import burst_source
    from selfrestore.methods.m2m import MosaicToMosaic

    for index in range(2):
        frames, _ = _raw_burst(frames=3, size=32, seed=index)
        _write_frames(tmp_path / "bursts" / f"b{index}", frames, gain=DIM)
    args = argparse.Namespace(data=[str(tmp_path / "bursts")], seed=0, maps_dim_data=True, quiet=False,
                              patch_size=16, patch_sizes="auto", synthetic=False)
    source = burst_source(args, MosaicToMosaic())
    mapping = getattr(source, "intensity", None)
    assert mapping is not None and mapping["scale"] < 0.1, mapping
    assert "is mapped to [0, 1]" in capsys.readouterr().out
    top = max(float(b["frames"].max()) for b in source.bursts)
    assert 0.8 < top < 1.5, top  # the frames themselves are mapped, not only the map recorded

    model = tmp_path / "m2m.safetensors"
    assert main(["fit", str(tmp_path / "bursts"), "--method", "m2m", "--steps", "1", "--batch-size", "1",
                 "--patch-size", "16", "--quiet", "-o", str(model)]) == 0
    from selfrestore.checkpoint import read_checkpoint

    assert read_checkpoint(model)[1].get("intensity"), "fit recorded no intensity map for dim bursts"
    seen = []
    original = MosaicToMosaic.restore

    def spy(self, net, obs, **extra):
        seen.append(float(obs.max()))
        return original(self, net, obs, **extra)

    monkeypatch.setattr(MosaicToMosaic, "restore", spy)
    assert main(["burst", str(tmp_path / "bursts" / "b0"), "--task", "demosaic", "--model", str(model), "--quiet",
                 "-o", str(tmp_path / "out.png")]) == 0
    assert seen and seen[0] > 0.5, seen


def test_burst_mapping_prefers_the_models_recorded_map_for_16_bit_frames(tmp_path):
    from selfrestore.commands.burst import burst_mapping
    from selfrestore.io import ImageInfo

    frames = torch.rand(3, 1, 16, 16) * DIM
    recorded = {"offset": 0.01, "scale": 0.05}
    assert burst_mapping(frames, tmp_path / "o.png", ImageInfo(dtype="uint16", channels=1),
                         {"intensity": recorded}) == recorded


# 4 ------------------------------------------------------------------------------------------------------------
def _fit_error(capsys, folder, tmp_path, *extra, method: str = "m2m") -> str:
    assert main(["fit", str(folder), "--method", method, "--steps", "1", "-o", str(tmp_path / "m.safetensors"),
                 *extra]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def test_fit_burst_errors_name_the_burst_in_fit_terms(tmp_path, capsys):
    frames, _ = _raw_burst(frames=3, size=32)
    _write_frames(tmp_path / "one" / "good", frames)
    _write_frames(tmp_path / "one" / "short", frames[:1])
    err = _fit_error(capsys, tmp_path / "one", tmp_path)
    assert "short" in err and "--task demosaic" not in err and "--model" not in err and "--adapt" not in err, err

    _write_frames(tmp_path / "rgb" / "good", frames)
    _write_frames(tmp_path / "rgb" / "colour", frames.repeat(1, 3, 1, 1))
    err = _fit_error(capsys, tmp_path / "rgb", tmp_path)
    assert "colour" in err and "--task demosaic" not in err and "m2m" in err, err
    err = _fit_error(capsys, tmp_path / "rgb", tmp_path, method="dsa")  # gray and RGB bursts mixed
    assert "colour" in err and "good" in err, err

    _write_frames(tmp_path / "small" / "good", frames)
    _write_frames(tmp_path / "small" / "tiny", frames[..., :8, :8])
    err = _fit_error(capsys, tmp_path / "small", tmp_path, "--patch-size", "16")
    assert "tiny" in err and "--patch-size" in err and "8x8" in err and "m2m" not in err.split(":")[0], err
    assert not (tmp_path / "m.safetensors").exists()


# 5 ------------------------------------------------------------------------------------------------------------
def test_adapt_without_a_model_warns_that_from_scratch_needs_far_more_steps(tmp_path, capsys):
    frames, _ = _raw_burst(frames=3, size=26)
    _write_frames(tmp_path / "raw", frames)
    assert main(["burst", str(tmp_path / "raw"), "--task", "demosaic", "--adapt", "1", "--quiet",
                 "-o", str(tmp_path / "o.png")]) == 0
    err = capsys.readouterr().err
    assert "from scratch" in err and "m2m-pg0.004_0.02" in err and len(err.strip().splitlines()) == 1, err


# 6 ------------------------------------------------------------------------------------------------------------
def test_demosaic_restores_the_whole_frame(tmp_path):
    """Frames whose sides are not multiples of 4 (even or odd) come out whole, not cropped."""
    frames, _ = _raw_burst(frames=3, size=42)
    for h, w in ((22, 26), (21, 25)):
        _write_frames(tmp_path / f"raw{h}", frames[..., :h, :w])
        out = tmp_path / f"o{h}.png"
        assert main(["burst", str(tmp_path / f"raw{h}"), "--task", "demosaic", "--quiet", "-o", str(out)]) == 0
        assert read_image(out)[0].shape == (h, w, 3)
    assert main(["burst", str(tmp_path / "raw21"), "--task", "demosaic", "--model", "m2m-pg0.004_0.02", "--quiet",
                 "-o", str(tmp_path / "m21.png")]) == 0
    assert read_image(tmp_path / "m21.png")[0].shape == (21, 25, 3)


# 7 ------------------------------------------------------------------------------------------------------------
def test_demosaic_output_keeps_frame_ones_metadata(tmp_path):
    frames, _ = _raw_burst(frames=3, size=26)
    (tmp_path / "raw").mkdir()
    exif = Image.Exif()
    exif[0x010E] = "burst audit"  # ImageDescription
    for t, frame in enumerate(frames):
        pixels = np.round(frame[0].numpy() * 65535).astype(np.uint16)
        Image.fromarray(pixels).save(tmp_path / "raw" / f"f{t}.png", dpi=(300, 300), exif=exif)
    out = tmp_path / "o.png"
    assert main(["burst", str(tmp_path / "raw"), "--task", "demosaic", "--quiet", "-o", str(out)]) == 0
    with Image.open(out) as image:
        assert round(image.info.get("dpi", (0, 0))[0]) == 300, image.info
        assert image.getexif().get(0x010E) == "burst audit"


# 8 ------------------------------------------------------------------------------------------------------------
def test_m2m_adapt_refuses_frames_its_loss_margin_leaves_empty(tmp_path, capsys):
    """m2m's loss leaves out a 2 px margin of its 4-px-step patches: on 4x4..7x7 frames it trained on nothing."""
    frames, _ = _raw_burst(frames=3, size=26)
    _write_frames(tmp_path / "raw", frames[..., :6, :6])
    assert main(["burst", str(tmp_path / "raw"), "--task", "demosaic", "--model", "m2m-pg0.004_0.02",
                 "--adapt", "2", "--quiet", "-o", str(tmp_path / "o.png")]) == 2
    err = capsys.readouterr().err
    assert "needs frames of at least 8x8" in err and "Traceback" not in err, err


# cosmetic -------------------------------------------------------------------------------------------------------
def test_adapt_progress_bar_says_adapt(tmp_path, capsys):
    frames, _ = _raw_burst(frames=3, size=26)
    _write_frames(tmp_path / "raw", frames)
    assert main(["burst", str(tmp_path / "raw"), "--task", "demosaic", "--model", "m2m-pg0.004_0.02",
                 "--adapt", "1", "-o", str(tmp_path / "o.png")]) == 0
    err = capsys.readouterr().err
    assert "adapt m2m" in err and "fit m2m" not in err, err


# review of the fixes ------------------------------------------------------------------------------------------
def test_resume_of_a_burst_run_begun_before_bursts_were_mapped_keeps_its_scale(tmp_path, capsys):
    """A review: an m2m run begun before `fit` mapped bursts (its header has no maps_method_data) was mapped on
    --resume: its loss jumped 16x mid-run and the half-unmapped model recorded a map. Now it keeps its scale."""
    from selfrestore.checkpoint import read_checkpoint, update_header

    for index in range(2):
        frames, _ = _raw_burst(frames=3, size=32, seed=index)
        _write_frames(tmp_path / "bursts" / f"b{index}", frames, gain=DIM)
    model = tmp_path / "m2m.safetensors"
    fit = ["fit", str(tmp_path / "bursts"), "--method", "m2m", "--batch-size", "1", "--patch-size", "16", "-o",
           str(model)]
    assert main([*fit, "--steps", "1", "--quiet"]) == 0
    header = read_checkpoint(model)[1]
    assert header.get("maps_method_data") and header.get("intensity")
    update_header(model, maps_method_data=None, intensity=None)  # as a run of the previous version recorded it
    capsys.readouterr()
    assert main([*fit, "--steps", "2", "--resume"]) == 0
    assert "is mapped to [0, 1]" not in capsys.readouterr().out
    header = read_checkpoint(model)[1]
    assert not header.get("intensity") and not header.get("maps_method_data")


def test_padded_bayer_rows_weigh_nothing_and_keep_their_colour(tmp_path, monkeypatch):
    """A review: the mirrored row / column that completes odd-sided raw frames to whole Bayer tiles was splatted
    as data by the classical shift-and-add (its samples, 2 px off, landed on the last real row: 3x the error
    there). Now it has no weight; and the mirror keeps each padded pixel's Bayer colour (a flat colour scene
    stays that colour up to its last row and column, through the shipped m2m model too)."""
    from selfrestore.burst.shift_and_add import shift_and_add
    from selfrestore.burst.synthesis import mosaic

    frames = torch.rand(3, 1, 12, 16, generator=torch.Generator().manual_seed(0))
    altered = frames.clone()
    altered[..., 11:, :] = 5.0
    altered[..., :, 15:] = 5.0
    still = torch.eye(2, 3).expand(3, 2, 3)
    one = shift_and_add(frames, still, raw=True, valid=(11, 15))
    other = shift_and_add(altered, still, raw=True, valid=(11, 15))
    assert torch.allclose(one[..., :11, :15], other[..., :11, :15], atol=1e-6)
    import selfrestore.burst.shift_and_add as module

    calls = []
    real = module.shift_and_add
    monkeypatch.setattr(module, "shift_and_add", lambda *a, **k: calls.append(k.get("valid")) or real(*a, **k))
    colour = torch.tensor([0.7, 0.45, 0.25]).view(1, 3, 1, 1)
    flat = mosaic(colour.expand(3, 3, 22, 26).clone())[..., :21, :25]  # 3 identical frames, odd sides
    _write_frames(tmp_path / "flat", flat)
    for extra in ([], ["--model", "m2m-pg0.004_0.02"]):
        out = tmp_path / f"flat{len(extra)}.png"
        assert main(["burst", str(tmp_path / "flat"), "--task", "demosaic", "--quiet", "-o", str(out), *extra]) == 0
        edge = read_image(out)[0][-1]  # the last row: next to the padded one
        assert np.abs(edge - colour.view(3).numpy()).max() < 0.06, (extra, edge.min(0), edge.max(0))
    assert calls == [(21, 25)]  # the command tells the classical shift-and-add which rows and columns are data


def test_splat_gives_no_weight_to_non_finite_positions():
    """A review: NaN / inf positions wrote NaN into nodes (0, 0)-(1, 1) (before the int64 change: an index
    error); now they have no weight."""
    from selfrestore.burst.shift_and_add import splat

    positions = torch.tensor([[float("nan"), float("inf"), 2.0], [0.0, float("-inf"), 1.0]]).view(1, 2, 1, 3)
    acc, wsum = splat(torch.ones(1, 1, 1, 3), positions, (4, 4))
    assert torch.isfinite(acc).all() and float(wsum.sum()) == 1.0 and float(acc[0, 0, 1, 2]) == 1.0


def test_demosaic_drops_fits_bayer_keywords_and_fit_names_a_nested_burst_once(tmp_path, capsys):
    """A review: the demosaicked FITS kept BAYERPAT / XBAYROFF / YBAYROFF (a viewer would debayer the RGB
    again); and fit's error for a burst folder holding sub-folders named it twice and said to use fit."""
    from astropy.io import fits

    frames, _ = _raw_burst(frames=3, size=40)
    (tmp_path / "fits").mkdir()
    for t, frame in enumerate(frames):
        header = fits.Header()
        header["BAYERPAT"], header["XBAYROFF"], header["YBAYROFF"], header["EXPTIME"] = "RGGB", 0, 0, 2.5
        fits.PrimaryHDU(data=frame[0].numpy().astype(np.float32), header=header).writeto(
            tmp_path / "fits" / f"{t}.fits")
    assert main(["burst", str(tmp_path / "fits"), "--task", "demosaic", "--quiet", "-o",
                 str(tmp_path / "rgb.fits")]) == 0
    written = fits.getheader(tmp_path / "rgb.fits")
    assert "BAYERPAT" not in written and "XBAYROFF" not in written and written["EXPTIME"] == 2.5
    _write_frames(tmp_path / "nest" / "b0", frames)
    _write_frames(tmp_path / "nest" / "b0" / "previews", frames)
    capsys.readouterr()
    assert main(["fit", str(tmp_path / "nest"), "--method", "m2m", "--steps", "1", "-o",
                 str(tmp_path / "n.safetensors")]) == 2
    err = capsys.readouterr().err
    assert err.count(str(tmp_path / "nest" / "b0")) == 1 and "for `selfrestore fit`" not in err, err
