"""An output is refused where it is an input's directory entry under another spelling (through a symlinked
folder), as the plain same path is, by `video`, `burst`, `restore`, `Restorer.restore_file`; an output on a hard
link of an input is written (atomically: a new file renamed over that name), and the input stays whole under its
own name (`cp -al` / `rsync --link-dest` copies). A folder of frames that mixes 8- and 16-bit frames is restored
into 16-bit frames, with one warning, not silently into 8-bit ones."""
import os

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from selfrestore.checkpoint import build_net, save_checkpoint
from selfrestore.cli import main
from selfrestore.errors import UserError
from selfrestore.io import read_image


def _png(path, seed=0, size=32):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.random.default_rng(seed).random((size, size, 3)) * 255).astype(np.uint8)).save(path)
    return path


def _frames(folder, count=3):
    for i in range(count):
        _png(folder / f"{i:03d}.png", seed=i)
    return folder


def _link(source, name):
    name.parent.mkdir(parents=True, exist_ok=True)
    os.link(source, name)
    return name


def _bytes(folder):
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _one_line(capsys, *words, summary=False):
    """The one line of the refusal on stderr (``summary``: then restore's count of the failed inputs)."""
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert "Traceback" not in err and len(lines) == 1 + summary, err
    assert not summary or " failed; " in lines[1], err
    for word in words:
        assert word in lines[0], err
    return lines[0]


@pytest.fixture
def no_model_loading(monkeypatch):
    """Loading the start model (the first real work) fails the test: the refusal must come before it."""
    import selfrestore.checkpoint as checkpoint

    def load_model(*args, **kwargs):
        raise AssertionError("the model was loaded: the check came too late")

    monkeypatch.setattr(checkpoint, "load_model", load_model)


def _video(source, output, model, *extra):
    return main(["video", str(source), "-o", str(output), "--method", "f2f", "--model", str(model),
                 "--steps-per-frame", "1", "--crop", "16", "--quiet", *extra])


def _alias(folder, name):
    """A symlink ``name`` to ``folder``: every entry of the folder under another spelling."""
    os.symlink(folder, name, target_is_directory=True)
    return name


# ----------------------------------------------------------------------- entries: symlinked folders, hard links
def test_entry_identity_is_the_entry_under_any_spelling_and_a_hard_link_is_another_entry(tmp_path, monkeypatch):
    from selfrestore.file_lists import entry_identity, same_entry

    a = _png(tmp_path / "d" / "a.png")
    alias = _alias(tmp_path / "d", tmp_path / "alias")
    link = _link(a, tmp_path / "d" / "b.png")
    monkeypatch.chdir(tmp_path)
    spellings = [a, alias / "a.png", "d/a.png", "alias/../d/a.png", tmp_path / "d" / "." / "a.png"]
    assert len({entry_identity(path) for path in spellings}) == 1 and entry_identity(a)[2] == "a.png"
    assert all(same_entry(path, a) for path in spellings)
    assert entry_identity(link) != entry_identity(a) and not same_entry(link, a) and os.path.samefile(link, a)
    assert entry_identity(tmp_path / "d" / "new.png") is not None  # not there yet: its folder is
    assert entry_identity(tmp_path / "missing" / "a.png") is None and not same_entry(tmp_path / "missing", a)
    assert entry_identity("d/..") == entry_identity(tmp_path)


@pytest.mark.parametrize("case", ["folder", "stack file"])
def test_video_output_through_a_symlinked_input_folder_is_refused(tmp_path, tiny_model, capsys, case,
                                                                  no_model_loading):
    if case == "folder":  # -o alias: the input folder itself
        source = _frames(tmp_path / "vid")
        output = _alias(source, tmp_path / "alias")
    else:  # a TIFF time series restored into itself, named through a symlinked folder
        source = tmp_path / "d" / "clip.tif"
        source.parent.mkdir()
        tifffile.imwrite(source, (np.random.default_rng(0).random((3, 32, 32)) * 255).astype(np.uint8),
                         photometric="minisblack", metadata={"axes": "TYX"})
        output = _alias(source.parent, tmp_path / "alias") / "clip.tif"
    before = _bytes(tmp_path)
    assert _video(source, output, tiny_model, "--overwrite") == 2
    _one_line(capsys, "would write over the input")
    assert _bytes(tmp_path) == before


def test_video_save_model_through_a_symlinked_folder_onto_an_input_or_output_frame_is_refused(
        tmp_path, tiny_model, capsys, no_model_loading):
    vid = _frames(tmp_path / "vid")
    _png(tmp_path / "out" / "001.png", seed=9)  # of an earlier run, replaced with --overwrite
    before = _bytes(tmp_path)
    for folder, what in ((vid, "would write over the input"), (tmp_path / "out", "would write over the output")):
        target = _alias(folder, tmp_path / f"to-{folder.name}") / "001.png"
        assert _video(vid, tmp_path / "out", tiny_model, "--save-model", str(target), "--overwrite") == 2
        _one_line(capsys, "--save-model", what)
    assert _bytes(tmp_path) == before


@pytest.mark.parametrize("case", ["folder", "stack file"])
def test_video_output_on_hard_links_of_the_input_is_written_and_the_input_kept(tmp_path, tiny_model, case):
    """`cp -al vid out` then `video vid -o out --overwrite` (the frames, --save-model too, hard links of the
    input's): each output replaces its own name; the input's frames keep their bytes."""
    if case == "folder":
        source, output = _frames(tmp_path / "vid"), tmp_path / "out"
        for frame in sorted(source.iterdir()):
            _link(frame, output / frame.name)
    else:
        source = tmp_path / "clip.tif"
        tifffile.imwrite(source, (np.random.default_rng(0).random((3, 32, 32)) * 255).astype(np.uint8),
                         photometric="minisblack", metadata={"axes": "TYX"})
        output = _link(source, tmp_path / "out.tif")
    model = _link(next(iter(sorted(source.iterdir()))) if source.is_dir() else source,
                  tmp_path / "model.safetensors")
    before = _bytes(source) if source.is_dir() else {source: source.read_bytes()}
    assert _video(source, output, tiny_model, "--steps-per-frame", "0", "--save-model", str(model),
                  "--overwrite") == 0
    assert (_bytes(source) if source.is_dir() else {source: source.read_bytes()}) == before
    written = sorted(output.iterdir()) if output.is_dir() else [output]
    assert written and not any(os.path.samefile(path, source if not source.is_dir() else source / path.name)
                               for path in written)
    assert not any(os.path.samefile(model, path) for path in before)


def test_burst_output_through_a_symlinked_folder_is_refused_and_on_a_hard_link_is_written(tmp_path, capsys):
    frames = _frames(tmp_path / "burst")
    before = _bytes(frames)
    out = _alias(frames, tmp_path / "alias") / "001.png"
    argv = ["burst", str(frames), "--task", "superres", "--scale", "2", "--quiet", "--overwrite", "-o"]
    assert main([*argv, str(out)]) == 2
    _one_line(capsys, "output would overwrite the input frame", "001.png")
    link = _link(frames / "001.png", tmp_path / "sr.png")
    assert main([*argv, str(link)]) == 0
    assert _bytes(frames) == before and not os.path.samefile(link, frames / "001.png")
    assert Image.open(link).size == (64, 64)


def test_restore_output_through_a_symlinked_folder_is_refused_as_the_input_itself_is(tmp_path, tiny_model,
                                                                                      capsys):
    a = _png(tmp_path / "d" / "a.png")
    before = a.read_bytes()
    assert main(["restore", str(a), "--model", str(tiny_model), "-o", str(a), "--overwrite", "--quiet"]) == 1
    plain = _one_line(capsys, "output would overwrite the input", summary=True)
    through = _alias(a.parent, tmp_path / "alias") / "a.png"
    assert main(["restore", str(a), "--model", str(tiny_model), "-o", str(through), "--overwrite", "--quiet"]) == 1
    assert _one_line(capsys, summary=True) == plain  # the same line, naming the input
    assert a.read_bytes() == before


def test_restore_output_on_a_hard_link_of_its_input_is_written_and_the_input_kept(tmp_path, tiny_model):
    a = _png(tmp_path / "a.png")
    before = a.read_bytes()
    link = _link(a, tmp_path / "b.png")
    assert main(["restore", str(a), "--model", str(tiny_model), "-o", str(link), "--overwrite", "--quiet"]) == 0
    assert a.read_bytes() == before and not os.path.samefile(a, link)
    assert Image.open(link).size == (32, 32)


def test_restore_uncertainty_map_on_a_hard_link_of_another_input_is_written(tmp_path):
    folder = tmp_path / "f"
    a = _png(folder / "a.png")
    b = folder / "b.tif"
    tifffile.imwrite(b, (np.random.default_rng(1).random((32, 32, 3)) * 255).astype(np.uint8))
    link = _link(b, tmp_path / "o" / "a.std.tif")  # the map of a.png replaces this name of b.tif
    before = b.read_bytes()
    assert main(["restore", str(a), str(b), "--model", "laine19-gauss5_50", "--uncertainty", "--overwrite",
                 "--quiet", "-o", str(tmp_path / "o")]) == 0
    assert b.read_bytes() == before and not os.path.samefile(b, link)
    assert read_image(link)[1].dtype == "float32" and (tmp_path / "o" / "a.png").exists()


def test_restore_pair_output_through_a_symlinked_folder_is_refused_and_on_a_hard_link_is_written(tmp_path,
                                                                                                   capsys):
    torch.manual_seed(0)
    model = tmp_path / "selfir.safetensors"
    save_checkpoint(model, build_net("unet", in_channels=6, out_channels=3, width=4, depth=2),
                    {"method": {"name": "selfir", "noise": None}, "channels": 3})
    blurry, noisy = _png(tmp_path / "d" / "b.png", seed=1), _png(tmp_path / "d" / "n.png", seed=2)
    before = _bytes(tmp_path / "d")
    argv = ["restore", "--blurry", str(blurry), "--noisy", str(noisy), "--model", str(model), "--overwrite",
            "--quiet", "-o"]
    assert main([*argv, str(_alias(tmp_path / "d", tmp_path / "alias") / "b.png")]) == 1
    _one_line(capsys, "output would overwrite an input of the pair", summary=True)
    out = _link(blurry, tmp_path / "out.png")
    assert main([*argv, str(out)]) == 0
    assert _bytes(tmp_path / "d") == before and not os.path.samefile(out, blurry)


def test_restorer_restore_file_refuses_the_source_through_a_symlinked_folder_and_writes_a_hard_link(tmp_path,
                                                                                                     tiny_model):
    from selfrestore.restore import Restorer

    a = _png(tmp_path / "d" / "a.png")
    before = a.read_bytes()
    restorer = Restorer(tiny_model, device="cpu")
    with pytest.raises(UserError, match="would overwrite the input"):
        restorer.restore_file(a, _alias(a.parent, tmp_path / "alias") / "a.png")
    link = _link(a, tmp_path / "b.png")
    assert restorer.restore_file(a, link) == link
    assert a.read_bytes() == before and not os.path.samefile(a, link)


# ------------------------------------------------------------------------------------- mixed bit depths
def _mixed_frames(folder, suffix=".png"):
    """Frames 0 and 2 8-bit (constant 100 and 200), frame 1 16-bit (constant 30000)."""
    folder.mkdir(parents=True)
    for i, (value, dtype) in enumerate([(100, np.uint8), (30000, np.uint16), (200, np.uint8)]):
        pixels = np.full((32, 32, 3) if suffix == ".tif" else (32, 32), value, dtype)
        if suffix == ".tif":
            tifffile.imwrite(folder / f"{i:03d}.tif", pixels)
        else:
            Image.fromarray(pixels).save(folder / f"{i:03d}.png")
    return folder


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_frames_of_mixed_depth_are_written_at_the_deepest_with_8_bit_values_scaled_by_257(tmp_path, suffix):
    from selfrestore.video_io import VideoReader, VideoWriter

    reader = VideoReader(_mixed_frames(tmp_path / "vid", suffix))
    assert reader.info.dtype == "uint16" and reader.info.mixed_depths == {"uint8": 2, "uint16": 1}
    with VideoWriter(tmp_path / "out", reader.info) as writer:
        for frame in reader:
            writer.write(frame)
    for name, want in ((f"000{suffix}", 100 * 257), (f"001{suffix}", 30000), (f"002{suffix}", 200 * 257)):
        image, info = read_image(tmp_path / "out" / name)
        assert info.dtype == "uint16", name
        assert np.abs(image * 65535 - want).max() <= 0.5, name  # 255 -> 65535 exactly: x257, not x256


def test_frames_of_one_depth_say_no_mix(tmp_path):
    from selfrestore.video_io import VideoReader

    reader = VideoReader(_frames(tmp_path / "vid"))
    assert reader.info.dtype == "uint8" and reader.info.mixed_depths is None


def test_video_command_on_mixed_depth_frames_writes_16_bit_frames_and_says_so_once(tmp_path, tiny_model, capsys):
    vid = _mixed_frames(tmp_path / "vid")
    before = {p.name: read_image(p)[1].dtype for p in sorted(vid.iterdir())}
    assert before == {"000.png": "uint8", "001.png": "uint16", "002.png": "uint8"}
    assert _video(vid, tmp_path / "out", tiny_model, "--steps-per-frame", "0") == 0
    written = sorted((tmp_path / "out").iterdir())
    assert [p.name for p in written] == ["000.png", "001.png", "002.png"]
    assert all(read_image(p)[1].dtype == "uint16" for p in written)
    err = capsys.readouterr().err
    assert err.count("mix bit depths") == 1 and "2 8-bit, 1 16-bit" in err and "written 16-bit" in err, err
