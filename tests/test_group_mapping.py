"""One intensity map for a group of float images of counts: `restore` (Restorer.mapping_for), `burst` and
`video` all take it from :func:`selfrestore.intensity_map.intensity_mapping`, on the same data the same map."""
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch

from selfrestore.commands.burst import burst_mapping
from selfrestore.intensity_map import intensity_mapping, mapping_from_samples, mapping_samples
from selfrestore.io import ImageInfo, read_frames, read_image, write_image
from selfrestore.restore import Restorer
from selfrestore.video_io import VideoReader


def _counts(n: int = 4, seed: int = 0, size: int = 24) -> list[np.ndarray]:
    """``n`` float32 (H, W, 1) frames of counts (about 200 .. 3000) with noise; the second one has NaN pixels."""
    rng = np.random.default_rng(seed)
    scene = np.linspace(200, 3000, size * size, dtype=np.float32).reshape(size, size, 1)
    frames = [(scene + rng.normal(0, 40, scene.shape)).astype(np.float32) for _ in range(n)]
    frames[1][:5, :7] = np.nan
    return frames


def _as_before(frames: list[np.ndarray], count: int = 20000) -> dict[str, float] | None:
    """The map as the three copies computed it before they were merged: samples of each frame, one rng."""
    rng = np.random.default_rng(0)
    pairs = [mapping_samples(frame, rng, count) for frame in frames]
    return mapping_from_samples(np.concatenate([raw for raw, _ in pairs]),
                                np.concatenate([signal for _, signal in pairs]))


def _model(path: Path, header: dict | None = None) -> Restorer:
    from selfrestore.checkpoint import build_net, save_checkpoint

    save_checkpoint(path, build_net("unet", in_channels=1, out_channels=1, width=4, depth=2),
                    {"method": {"name": "n2n", "noise": "gauss25"}, "channels": 1, **(header or {})})
    return Restorer(path, device="cpu")


def test_the_shared_map_is_the_one_computed_before():
    frames = _counts()
    mapping = intensity_mapping(frames)
    assert mapping is not None and mapping == _as_before(frames)
    assert 150 < mapping["offset"] < 300 and 2500 < mapping["offset"] + mapping["scale"] < 3200
    assert intensity_mapping(iter(frames)) == mapping  # a lazy iterable: the same map
    assert intensity_mapping(frames, per_image=700) == _as_before(frames, 700)


def test_restore_burst_and_video_give_the_shared_map(tmp_path):
    frames = _counts()
    restorer = _model(tmp_path / "plain.safetensors")
    for frame in frames:
        assert restorer.mapping_for(frame) == intensity_mapping([frame])
    recorded = {"offset": 1.0, "scale": 2.0}  # a model trained on counts: its own map, whatever the image
    assert _model(tmp_path / "counts.safetensors", {"intensity": recorded}).mapping_for(frames[0]) == recorded

    burst = torch.from_numpy(np.stack(frames).transpose(0, 3, 1, 2).copy())
    info = ImageInfo(dtype="float32", channels=1)
    assert burst_mapping(burst, tmp_path / "out.tif", info, {}) == intensity_mapping(frames)
    assert burst_mapping(burst, tmp_path / "out.tif", info, {"intensity": recorded}) == recorded
    assert burst_mapping(burst, tmp_path / "out.tif", ImageInfo(dtype="uint16", channels=1), {}) is None

    import tifffile

    for count, size in ((4, 24), (3, 900), (20, 400)):  # frames of more pixels than the 20000 of one image's map
        frames = _counts(count, size=size)
        folder = tmp_path / f"frames{count}"
        folder.mkdir()
        for i, frame in enumerate(frames):
            write_image(folder / f"{i:03d}.tif", frame, dtype="float32")
        read = [read_image(path)[0] for path in sorted(folder.iterdir())]  # NaN filled as every reader does
        per_frame = max(500, 2_000_000 // len(read))  # a long video's samples stay small
        assert VideoReader(folder).info.intensity == intensity_mapping(read, per_image=per_frame) == \
            _as_before(read, per_frame)
        # the same frames as one TIFF stack: the same map (it sampled 20000 pixels a frame, the folder 2e6 / T)
        stack = tmp_path / f"timelapse{count}.tif"
        tifffile.imwrite(stack, np.stack(frames)[..., 0], photometric="minisblack", metadata={"axes": "TYX"})
        planes = read_frames(stack)[0]  # NaN filled as for the folder
        assert [np.array_equal(a, b, equal_nan=True) for a, b in zip(planes, read)] == [True] * count
        assert VideoReader(stack).info.intensity == VideoReader(folder).info.intensity


def test_frames_are_sampled_one_at_a_time():
    """A video's frames are read one by one: each is let go before the next is read."""
    alive: list[weakref.ref] = []

    def frames():
        for i in range(6):
            assert all(ref() is None for ref in alive), "an earlier frame is still held"
            frame = _counts(6)[i]  # read now, as a video's frame is
            alive.append(weakref.ref(frame))
            yield frame
            del frame

    assert intensity_mapping(frames()) == _as_before(_counts(6))


@pytest.mark.parametrize("images", [[], [np.random.default_rng(1).random((16, 16, 3), dtype=np.float32)],
                                    [np.full((16, 16, 1), np.nan, np.float32)],
                                    [np.full((8, 8, 1), np.nan, np.float32), np.full((8, 8, 1), 0.5, np.float32)]],
                         ids=["none", "in-unit-range", "all-nan", "all-nan-and-unit"])
def test_no_map_for_nothing_to_map(images):
    assert intensity_mapping(images) is None
    assert intensity_mapping(iter(images)) is None


def test_an_all_nan_frame_leaves_the_map_as_it_is():
    frames = _counts()
    blank = np.full_like(frames[0], np.nan)
    assert intensity_mapping([blank, *frames]) == intensity_mapping(frames + [blank]) == intensity_mapping(frames)
