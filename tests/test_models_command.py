"""`selfrestore models` shows the scores a model records (scripts/export_model.py --score), not only its notes, and
what a model trained without --noise used for the noise."""
from selfrestore.checkpoint import WEIGHTS_DIR, read_checkpoint
from selfrestore.cli import main


def test_shipped_models_show_their_recorded_scores(capsys):
    assert main(["models"]) == 0
    listing = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    for name, line in listing.items():
        scores = read_checkpoint(WEIGHTS_DIR / f"{name}.safetensors")[1].get("scores") or {}
        for key, value in scores.items():
            assert f"{key} {value:.2f}" in line if value >= 1 else f"{key} {value:.4f}" in line, (name, key)
    assert "Scored: Kodak24 gauss25 PSNR " in listing["laine19-gauss25"]  # its notes never said it


def test_a_model_file_shows_its_recorded_scores(tmp_path, capsys):
    from selfrestore.checkpoint import build_net, export_model, save_checkpoint

    trained = tmp_path / "t.safetensors"
    save_checkpoint(trained, build_net("unet", in_channels=1, out_channels=1, width=4, depth=2),
                    {"method": {"name": "n2n", "noise": "gauss25"}, "channels": 1})
    shipped = export_model(trained, tmp_path / "s.safetensors", info="test",
                           scores={"Set12 gauss25 PSNR": 29.5, "Set12 gauss25 SSIM": 0.83141})
    assert main(["models", str(shipped)]) == 0
    described = capsys.readouterr().out
    assert "scored   Set12 gauss25 PSNR 29.50; Set12 gauss25 SSIM 0.8314" in described
    assert main(["models", str(trained)]) == 0 and "scored" not in capsys.readouterr().out  # none recorded


def test_a_model_trained_without_noise_says_what_it_used(tmp_path, capsys):
    """selfir_r2r without --noise estimates the level from each image; `models` said the method needs none."""
    from selfrestore.checkpoint import build_net, save_checkpoint

    for method, expected in (("selfir_r2r", "noise    estimated from each noisy image"),
                             ("nb2nb", "noise    not given (the method does not need a noise model)")):
        path = tmp_path / f"{method}.safetensors"
        save_checkpoint(path, build_net("unet", in_channels=1, out_channels=1, width=4, depth=2),
                        {"method": {"name": method}, "channels": 1})
        assert main(["models", str(path)]) == 0 and expected in capsys.readouterr().out


def test_a_range_model_says_its_level_is_estimated_when_restoring(capsys):
    """`noise_level known` alone read as if laine19-gauss5_50 needed the level: it is known in training only."""
    assert main(["models", "laine19-gauss5_50", "laine19-gauss25"]) == 0
    out = capsys.readouterr().out
    ranged, single = out.split("laine19-gauss25:")
    assert "noise_level known in training, estimated per image when restoring" in ranged
    assert "noise_level known)" in single and "estimated" not in single.split("notes")[0]


def test_the_data_a_model_was_trained_on_is_named_by_its_kind(tmp_path, capsys):
    """An audit: a deblurring model trained on real (blurry, sharp) pairs was described as trained on "noisy
    images", and one trained on sharp images blurred here as on "clean images corrupted once"."""
    from selfrestore.checkpoint import build_net, save_checkpoint

    net = build_net("unet", in_channels=3, out_channels=3, width=4, depth=2)
    for name, synthetic, data, kind in (("reblur", False, ["blurry", "sharp"], "(blurry, sharp) pairs"),
                                        ("reblur", True, ["sharp"], "sharp images blurred here"),
                                        ("n2n", False, ["a", "b"], "pairs of noisy shots"),
                                        ("n2n", True, ["clean"], "clean images corrupted once")):
        path = tmp_path / f"{name}{synthetic}.safetensors"
        save_checkpoint(path, net, {"method": {"name": name, "noise": None}, "channels": 3, "data": data,
                                    "synthetic": synthetic})
        assert main(["models", str(path)]) == 0
        assert f"({kind})" in capsys.readouterr().out, (name, synthetic)
