"""SelfIR: blurry+noisy pair data, the sharp-area mask, the losses, and the fit/restore command line."""
from pathlib import Path

import numpy as np
import pytest
import torch

from selfrestore.checkpoint import build_net
from selfrestore.cli import main
from selfrestore.corruption import parse_corruption
from selfrestore.corruption.blur import Blur, blur
from selfrestore.corruption.blur import CameraShake, centre_on_centroid, kernel_offset
from selfrestore.errors import UserError
from selfrestore.data.blurry_noisy import SyntheticBlurryNoisy
from selfrestore.io import read_image, write_image
from selfrestore.methods.selfir import sharp_area_mask
from selfrestore.registry import METHODS


def _delta_blur() -> Blur:
    k = np.zeros((5, 5), np.float32)
    k[2, 2] = 1
    return Blur(kernels=[k], sigma=0.0)


@pytest.fixture
def clean_images(rgb_image):
    return [rgb_image, rgb_image[::-1].copy()]


def test_pairs_are_fixed_per_seed_and_independent_of_the_noise_model(clean_images):
    gauss, poisson = parse_corruption("gauss5_50"), parse_corruption("poisson5_50")
    a = SyntheticBlurryNoisy(clean_images, Blur(), gauss, seed=3)
    b = SyntheticBlurryNoisy(clean_images, Blur(), gauss, seed=3)
    c = SyntheticBlurryNoisy(clean_images, Blur(), gauss, seed=4)
    d = SyntheticBlurryNoisy(clean_images, Blur(), poisson, seed=3)
    for key in ("blurry", "noisy"):
        assert all(np.array_equal(x, y) for x, y in zip(a.fields[key], b.fields[key]))
        assert not np.allclose(a.fields[key][0], c.fields[key][0])
    assert "clean" not in a.fields  # only the supervised baselines keep it
    # the blurry shot is drawn before the noise: it does not depend on the noise model
    assert all(np.array_equal(x, y) for x, y in zip(a.fields["blurry"], d.fields["blurry"]))
    assert not np.allclose(a.fields["noisy"][0], d.fields["noisy"][0])
    # batches are a pure function of the generator
    ba, bb = a.batch(np.random.default_rng(1), 3, 32), b.batch(np.random.default_rng(1), 3, 32)
    assert all(torch.equal(ba[k], bb[k]) for k in ("blurry", "noisy"))


def test_keys_are_cropped_and_rotated_together(clean_images):
    source = SyntheticBlurryNoisy(clean_images, _delta_blur(), parse_corruption("gauss5"), seed=0,
                                  keep_clean=True)
    batch = source.batch(np.random.default_rng(0), 8, 32)
    assert torch.equal(batch["blurry"], batch["clean"])  # delta kernel, no blur noise: same pixels
    residual = batch["noisy"] - batch["clean"]
    assert abs(float(residual.std()) - 5 / 255) < 0.5 / 255 and abs(float(residual.mean())) < 1 / 255


def test_misaligned_noisy_shot_is_shifted_by_at_most_the_given_pixels(clean_images):
    source = SyntheticBlurryNoisy(clean_images, _delta_blur(), parse_corruption("gauss0.01"), seed=5,
                                  misalign_px=3, keep_clean=True)
    for blurry, noisy, clean in zip(source.fields["blurry"], source.fields["noisy"], source.fields["clean"]):
        assert np.abs(noisy - clean).max() < 1e-3  # clean is aligned with the noisy shot
        errors = {}
        for dy in range(-3, 4):
            for dx in range(-3, 4):
                shifted = np.roll(blurry, (-dy, -dx), axis=(0, 1))[5:-5, 5:-5]
                errors[dy, dx] = np.abs(shifted - clean[5:-5, 5:-5]).mean()
        assert min(errors.values()) < 1e-3


def test_centred_kernels_do_not_displace_the_blurry_shot():
    k = np.zeros((9, 9), np.float32)
    k[1, 5:8] = 1.0  # mass 3 rows up, 2 columns right of the centre
    assert kernel_offset(k) == pytest.approx((-3.0, 2.0))
    c = centre_on_centroid(k)
    assert c.shape == (15, 13) and c.sum() == pytest.approx(1.0)
    assert max(abs(v) for v in kernel_offset(c)) < 0.5
    # a blurry image made with it is aligned with the sharp one: a blob's centre of mass stays in place
    blob = torch.zeros(1, 1, 41, 41)
    blob[..., 20, 20] = 1.0
    out = blur(blob, torch.from_numpy(c))[0, 0].numpy()
    ys, xs = np.mgrid[:41, :41]
    assert (out * ys).sum() == pytest.approx(20.0, abs=0.5) and (out * xs).sum() == pytest.approx(20.0, abs=0.5)
    # the mixed model: file kernels and random trajectories, all centred, none cut
    model = CameraShake([k, np.eye(7, dtype=np.float32)], kernel_size=11, length=(3, 8), anxiety=0.6, centre=True)
    rng = np.random.default_rng(0)
    for _ in range(20):
        kk = model.draw_kernel(rng)
        assert kk.shape == (model.kernel_size,) * 2 and max(abs(v) for v in kernel_offset(kk)) < 0.75
    # a long path drawn far off its bounding-box centre still fits once centred: no mass is cut
    corner = np.zeros((11, 11), np.float32)
    corner[1, 1:9] = [8, 1, 1, 1, 1, 1, 1, 1]
    grown = centre_on_centroid(corner)
    assert max(grown.shape) <= CameraShake(None, kernel_size=11, file_fraction=0.0, centre=True).kernel_size


def test_sharp_area_mask_keeps_a_sharp_region_and_rejects_a_blurred_one():
    g = torch.Generator().manual_seed(0)
    texture = torch.rand(1, 3, 64, 64, generator=g)
    texture = blur(texture, torch.ones(3, 3) / 9.0)  # a textured but natural-ish image
    kernel = torch.zeros(9, 9)
    kernel[4, :] = 1 / 9  # horizontal motion
    blurred = blur(texture, kernel)
    blurry = texture.clone()
    blurry[..., 32:] = blurred[..., 32:]  # right half blurred, left half sharp
    blurry = blurry + 2 / 255 * torch.randn(blurry.shape, generator=g)
    # a denoiser's estimate keeps the structure but loses a little detail (lower variance than a sharp B)
    estimate = 0.9 * texture + 0.1 * blur(texture, torch.ones(3, 3) / 9.0)
    mask = sharp_area_mask(estimate, blurry, patch=16)
    assert mask.shape == (1, 1, 64, 64)
    assert float(mask[..., :32].mean()) == 1.0
    assert float(mask[..., 32:].mean()) == 0.0


class _NoClean(dict):
    def __getitem__(self, key):
        if key == "clean":
            raise AssertionError("a self-supervised loss read the clean image")
        return super().__getitem__(key)

    def get(self, key, default=None):
        if key == "clean":
            raise AssertionError("a self-supervised loss read the clean image")
        return super().get(key, default)


@pytest.mark.parametrize("name,options", [("selfir", {"aux": 1, "mask_patch": 8}), ("selfir", {"aux": 0}),
                                          ("deblur_noisy", {}), ("nb2nb_noisy", {})])
def test_self_supervised_losses_never_read_clean(clean_images, name, options):
    source = SyntheticBlurryNoisy(clean_images, Blur(), parse_corruption("gauss25"), keep_clean=True)
    batch = _NoClean(source.batch(np.random.default_rng(0), 2, 32))
    method = METHODS.get(name)(noise=None, width=8, depth=2, **options)
    method.progress = 0.5
    net = build_net("unet", **method.net_kwargs(3))
    loss = method.loss(net, batch)
    assert torch.isfinite(loss) and loss.item() > 0
    assert method.restore(net, torch.cat([batch["blurry"], batch["noisy"]], 1)).shape == batch["noisy"].shape


@pytest.mark.parametrize("name,terms", [("selfir", {"rec", "reg", "aux"}), ("selfir_r2r", {"rec", "aux"})])
def test_a_few_selfir_steps_reduce_the_loss(clean_images, name, terms):
    torch.manual_seed(0)
    source = SyntheticBlurryNoisy(clean_images, Blur(), parse_corruption("gauss25"))
    assert "clean" not in source.fields
    batch = source.batch(np.random.default_rng(0), 4, 32)
    method = METHODS.get(name)(noise=parse_corruption("gauss25"), mask_patch=8)
    net = build_net("unet", **method.net_kwargs(3), width=8, depth=2)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    losses = []
    for _ in range(40):
        loss = method.loss(net, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    assert set(method.last_terms) >= terms


def _pair_folders(tmp_path, rgb_image, names=("a", "b")):
    rng = np.random.default_rng(0)
    bdir, ndir = tmp_path / "blurry", tmp_path / "noisy"
    for i, name in enumerate(names):
        img = np.roll(rgb_image, 7 * i, axis=1)
        write_image(bdir / f"{name}.png", img)
        write_image(ndir / f"{name}.png", np.clip(img + 0.1 * rng.standard_normal(img.shape), 0, 1))
    return bdir, ndir


def test_dual_encoder_net_reads_each_shot_through_its_own_encoder():
    """``dual_unet`` (the SelfIR authors' layout): the blurry half and the noisy half of the input have their
    own encoder weights, both reach the output, and the U-Net's receptive-field bound holds for each."""
    torch.manual_seed(0)
    net = build_net("dual_unet", in_channels=6, out_channels=3, width=4, depth=2)
    assert net.receptive_field == build_net("unet", in_channels=6, out_channels=3, width=4, depth=2).receptive_field
    size, c = 64, 32
    x = torch.rand(1, 6, size, size, requires_grad=True)
    net(x)[0, :, c, c].sum().backward()
    for half in (slice(0, 3), slice(3, 6)):
        rows, cols = torch.nonzero(x.grad[0, half].abs().sum(0), as_tuple=True)
        assert len(rows) > 0
        assert max((rows - c).abs().max().item(), (cols - c).abs().max().item()) <= net.receptive_field
    first, second = net.first.enc0[0].weight, net.second.enc0[0].weight
    assert first.shape == second.shape == (4, 3, 3, 3) and not torch.equal(first, second)
    with pytest.raises(ValueError, match="even"):
        build_net("dual_unet", in_channels=3, out_channels=3)


def test_cli_fit_and_restore_round_trip(tmp_path, rgb_image, clean_images):
    bdir, ndir = _pair_folders(tmp_path, rgb_image)
    model = tmp_path / "selfir.safetensors"
    assert main(["fit", "--method", "selfir", "--blurry", str(bdir), "--noisy", str(ndir), "--width", "8",
                 "--depth", "2", "--steps", "3", "--patch-size", "32", "--batch-size", "2", "--mask-patch", "8",
                 "--quiet", "-o", str(model)]) == 0
    out = tmp_path / "out"
    assert main(["restore", "--blurry", str(bdir), "--noisy", str(ndir), "--model", str(model), "-o", str(out)]) == 0
    restored = sorted(p.name for p in out.iterdir())
    assert restored == ["a.png", "b.png"]
    assert read_image(out / "a.png")[0].shape == rgb_image.shape
    single = tmp_path / "single"
    assert main(["restore", "--blurry", str(bdir / "a.png"), "--noisy", str(ndir / "a.png"), "--model", str(model),
                 "-o", str(single)]) == 0
    assert np.array_equal(read_image(single / "a.png")[0], read_image(out / "a.png")[0])
    # the two-encoder network trains and restores through the same commands
    dual = tmp_path / "dual.safetensors"
    assert main(["fit", "--method", "selfir", "--net", "dual_unet", "--blurry", str(bdir), "--noisy", str(ndir),
                 "--width", "8", "--depth", "2", "--steps", "2", "--patch-size", "32", "--batch-size", "2",
                 "--mask-patch", "8", "--quiet", "-o", str(dual)]) == 0
    assert main(["restore", "--blurry", str(bdir / "a.png"), "--noisy", str(ndir / "a.png"), "--model", str(dual),
                 "-o", str(tmp_path / "dual_out")]) == 0
    # synthetic pairs from clean images, with a kernel file
    clean = tmp_path / "clean"
    for i, img in enumerate(clean_images):
        write_image(clean / f"{i}.png", img)
    kernels = tmp_path / "k.npy"
    np.save(kernels, np.stack([np.eye(9, dtype=np.float32), np.ones((9, 9), np.float32)]))
    for method in ("selfir", "selfir_sup"):
        assert main(["fit", str(clean), "--synthetic", "--noise", "gauss5_50", "--method", method, "--kernels",
                     str(kernels), "--width", "8", "--depth", "2", "--steps", "2", "--patch-size", "32",
                     "--quiet", "-o", str(tmp_path / f"synthetic_{method}.safetensors")]) == 0


def test_pair_restore_reports_an_unwritable_output_and_goes_on(tmp_path, rgb_image, monkeypatch, capsys):
    """A pair whose output cannot be written (permissions, a full disk) stopped the whole run with the other
    pairs unrestored; now it is reported in one line, the other pairs are restored and the exit code is 1."""
    import selfrestore.io as io

    bdir, ndir = _pair_folders(tmp_path, rgb_image)
    model = tmp_path / "selfir.safetensors"
    assert main(["fit", "--method", "selfir", "--blurry", str(bdir), "--noisy", str(ndir), "--width", "8",
                 "--depth", "2", "--steps", "1", "--patch-size", "32", "--batch-size", "2", "--mask-patch", "8",
                 "--quiet", "-o", str(model)]) == 0
    write = io.write_image

    def full_disk(path, *args, **kwargs):
        if Path(path).name == "a.png":
            raise UserError(f"{path}: cannot write: No space left on device")
        return write(path, *args, **kwargs)

    monkeypatch.setattr(io, "write_image", full_disk)
    out = tmp_path / "out"
    capsys.readouterr()
    assert main(["restore", "--blurry", str(bdir), "--noisy", str(ndir), "--model", str(model), "-o", str(out),
                 "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "a.png: cannot write: No space left on device" in err and "Traceback" not in err, err
    assert "1 pair(s) failed; 1 restored" in err
    assert sorted(p.name for p in out.iterdir()) == ["b.png"]


def test_mismatched_pairs_and_wrong_models_give_one_line_errors(tmp_path, rgb_image, capsys):
    bdir, ndir = _pair_folders(tmp_path, rgb_image)
    fit = ["fit", "--method", "selfir", "--width", "8", "--depth", "2", "--steps", "1", "--patch-size", "32",
           "--quiet"]

    def error(argv, needle):
        capsys.readouterr()
        assert main(argv) != 0
        err = capsys.readouterr().err
        assert needle in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err

    write_image(ndir / "c.png", rgb_image)  # one noisy image too many
    error([*fit, "--blurry", str(bdir), "--noisy", str(ndir), "-o", str(tmp_path / "m1")], "no blurry match for c")
    (ndir / "c.png").unlink()
    write_image(bdir / "a.png", rgb_image[:64])  # size mismatch: that pair is skipped, as --pairs and restore do
    capsys.readouterr()
    assert main([*fit, "--blurry", str(bdir), "--noisy", str(ndir), "-o", str(tmp_path / "m2")]) == 0
    assert "skipped the pair a.png" in capsys.readouterr().err
    write_image(bdir / "a.png", rgb_image)
    (bdir / "b.png").rename(bdir / "z.png")  # name mismatch
    error([*fit, "--blurry", str(bdir), "--noisy", str(ndir), "-o", str(tmp_path / "m3")], "no noisy match for z")
    (bdir / "z.png").rename(bdir / "b.png")
    error([*fit, "--blurry", str(bdir), "-o", str(tmp_path / "m4")], "--noisy")

    model = tmp_path / "m.safetensors"
    assert main([*fit, "--blurry", str(bdir), "--noisy", str(ndir), "-o", str(model)]) == 0
    error(["restore", str(ndir / "a.png"), "--model", str(model), "-o", str(tmp_path / "o")], "--blurry B --noisy N")
    error(["restore", "--blurry", str(bdir), "--noisy", str(ndir / "a.png"), "--model", str(model), "-o",
           str(tmp_path / "o")], "two files or two folders")
    error(["restore", "--blurry", str(bdir / "a.png"), "--model", str(model), "-o", str(tmp_path / "o")],
          "both --blurry and --noisy")
    # in a folder batch a bad pair is reported and skipped; the good pairs are still restored (exit code 1)
    write_image(bdir / "a.png", rgb_image[:64])
    capsys.readouterr()
    assert main(["restore", "--blurry", str(bdir), "--noisy", str(ndir), "--model", str(model), "-o",
                 str(tmp_path / "batch")]) == 1
    assert "differs from" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "batch").iterdir()) == ["b.png"]
    write_image(bdir / "a.png", rgb_image)
    n2n = tmp_path / "n2n.safetensors"
    clean = tmp_path / "clean"
    write_image(clean / "x.png", rgb_image)
    assert main(["fit", str(clean), "--synthetic", "--noise", "gauss25", "--method", "n2n", "--width", "4",
                 "--steps", "1", "--patch-size", "32", "--quiet", "-o", str(n2n)]) == 0
    error(["restore", "--blurry", str(bdir / "a.png"), "--noisy", str(ndir / "a.png"), "--model", str(n2n), "-o",
           str(tmp_path / "o")], "restores single images")
    # an output that is one of the pair's inputs is refused, even with --overwrite; the inputs stay as they were
    before = {p: p.read_bytes() for p in (*bdir.iterdir(), *ndir.iterdir())}
    for out in (ndir / "a.png", bdir / "a.png", ndir):
        capsys.readouterr()
        noisy = ndir if out == ndir else ndir / "a.png"
        blurry = bdir if out == ndir else bdir / "a.png"
        assert main(["restore", "--blurry", str(blurry), "--noisy", str(noisy), "--model", str(model), "-o",
                     str(out), "--overwrite"]) == 1
        assert "would overwrite an input" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in (*bdir.iterdir(), *ndir.iterdir())} == before


def test_fit_takes_one_pair_of_files_and_skips_an_unreadable_pair(tmp_path, rgb_image, capsys):
    """`fit --method selfir` stopped at the first unreadable file of its folders (other methods skip it), and
    given two files it said "blurry folder does not exist" (`restore` takes files there): now an unreadable pair
    is reported and left out, and two files train as one pair."""
    bdir, ndir = _pair_folders(tmp_path, rgb_image)
    data = (ndir / "b.png").read_bytes()
    (ndir / "b.png").write_bytes(data[: len(data) // 2])  # a truncated copy
    args = ["--width", "8", "--depth", "2", "--steps", "2", "--patch-size", "32", "--batch-size", "2",
            "--mask-patch", "8", "--quiet"]
    assert main(["fit", "--method", "selfir", "--blurry", str(bdir), "--noisy", str(ndir), *args,
                 "-o", str(tmp_path / "m.safetensors")]) == 0
    err = capsys.readouterr().err
    assert "skipped the pair b.png" in err and "Traceback" not in err
    assert main(["fit", "--method", "selfir", "--blurry", str(bdir / "a.png"), "--noisy", str(ndir / "a.png"),
                 *args, "-o", str(tmp_path / "one.safetensors")]) == 0
    assert main(["fit", "--method", "selfir", "--blurry", str(bdir), "--noisy", str(ndir / "a.png"), *args,
                 "-o", str(tmp_path / "x.safetensors")]) == 2
    assert "give two files or two folders" in capsys.readouterr().err
