"""The documentation says only what the program does: every `selfrestore ...` example in README.md and in the
--help text of every verb parses with the real command line, every option README names exists, every shipped
model and result file README names is there, and a few documented behaviours hold."""
from __future__ import annotations

import argparse
import glob
import re
import shlex
from pathlib import Path

import numpy as np
import pytest

from selfrestore.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
VERBS = ("demo", "inspect", "fit", "restore", "evaluate", "models", "video", "burst")


@pytest.fixture(scope="module")
def parser() -> argparse.ArgumentParser:
    return build_parser()


def _verbs(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


def _options(sub: argparse.ArgumentParser) -> set[str]:
    return {flag for action in sub._actions for flag in action.option_strings}


def _examples(text: str) -> list[list[str]]:
    """The argument lists of the `selfrestore ...` command lines in ``text`` (comments dropped)."""
    found = []
    for line in text.splitlines():
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError:  # prose with an unbalanced quote
            continue
        if tokens and Path(tokens[0]).name == "selfrestore":
            found.append(tokens[1:])
    return found


def _readme_blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def _check_example(parser, argv: list[str], where: str, capsys) -> None:
    verbs = _verbs(parser)
    if argv in (["--help"], ["-h"]):
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args(argv)
        assert exit_info.value.code == 0
        capsys.readouterr()
        return
    assert argv and argv[0] in verbs, f"{where}: no verb {argv[:1]} in: selfrestore {' '.join(argv)}"
    if "..." in argv:  # an elided command line: its options must exist
        unknown = {t.split("=")[0] for t in argv if t.startswith("--")} - _options(verbs[argv[0]])
        assert not unknown, f"{where}: selfrestore {' '.join(argv)}: no option {sorted(unknown)}"
        return
    try:
        parser.parse_args(argv)
    except SystemExit:
        pytest.fail(f"{where}: selfrestore {' '.join(argv)} is refused: {capsys.readouterr().err.strip()}")


def test_readme_command_lines_parse_with_the_real_command_line(parser, capsys):
    examples = [argv for block in _readme_blocks("sh") for argv in _examples(block)]
    assert len(examples) > 25  # the README's "Using it" block was found
    assert {argv[0] for argv in examples if argv[0] in VERBS} == set(VERBS)  # every verb is shown
    for argv in examples:
        _check_example(parser, argv, "README.md", capsys)


def test_examples_in_every_help_text_parse_with_the_real_command_line(parser, capsys):
    verbs = _verbs(parser)
    texts = {"selfrestore --help": parser.description or ""}
    texts.update({f"selfrestore {verb} --help": f"{sub.description or ''}\n{sub.epilog or ''}"
                  for verb, sub in verbs.items()})
    for where, text in texts.items():
        examples = _examples(text)
        if where != "selfrestore --help":
            assert examples, f"{where} shows no example"  # README: every verb has a --help with examples
            assert all(argv[0] == where.split()[1] for argv in examples), where
        for argv in examples:
            _check_example(parser, argv, where, capsys)


def test_every_option_readme_names_exists(parser):
    verbs = _verbs(parser)
    prose = re.sub(r"```.*?```", "", README, flags=re.S)
    spans = re.findall(r"`([^`]+)`", prose)
    every_option = set().union(*(_options(sub) for sub in verbs.values()))
    checked = 0
    for span in spans:
        words = span.split()
        if words and words[0] == "selfrestore":
            words = words[1:]
        options = {w.split("=")[0] for w in words if re.fullmatch(r"--[a-z][a-z0-9-]*(=\S*)?", w)}
        if words and words[0] in verbs:  # `restore --skip-existing`: an option of that verb
            unknown = options - _options(verbs[words[0]])
            assert not unknown, f"README.md `{span}`: selfrestore {words[0]} has no {sorted(unknown)}"
        elif words and words[0].startswith("--"):  # `--ckpt-every`: an option of some verb
            assert options <= every_option, f"README.md `{span}`: no verb has {sorted(options - every_option)}"
        checked += len(options)
    assert checked > 30


def test_readme_lists_exactly_the_shipped_models():
    from selfrestore.checkpoint import shipped_models

    bullet = re.search(r"\*\*Shipped models\*\*(.*?)\n- \*\*", README, flags=re.S)
    assert bullet, "README.md: no 'Shipped models' bullet"
    named = {s for s in re.findall(r"`([^`\s/]+)`", bullet.group(1)) if "-" in s and not s.startswith("-")}
    assert named == set(shipped_models())
    for argv in (argv for block in _readme_blocks("sh") for argv in _examples(block)):
        for flag in ("--model", "--init"):
            if flag in argv:
                model = argv[argv.index(flag) + 1]
                assert model.endswith(".safetensors") or model in shipped_models(), f"{argv}: {model}?"


def test_files_readme_points_to_exist():
    named = set(re.findall(r"\b((?:benchmarks|selfrestore|scripts|tests)/[\w./*-]*\.(?:md|py|sh|json))", README))
    assert len(named) > 8
    missing = [name for name in sorted(named) if not glob.glob(str(ROOT / name))]
    assert not missing, f"README.md names files that are not there: {missing}"


def test_noise_names_readme_uses_parse():
    from selfrestore.corruption import parse_corruption

    names = set(re.findall(r"\b((?:gauss|poisson|impulse|bernoulli|pg)\d[\d._]*\d)\b", README))
    for argv in (argv for block in _readme_blocks("sh") for argv in _examples(block)):
        if "--noise" in argv:
            names.add(argv[argv.index("--noise") + 1])
    assert {"gauss25", "gauss5_50", "poisson30", "impulse0.5", "bernoulli0.5", "pg0.01_0.02"} <= names
    for name in sorted(names):
        parse_corruption(name)  # raises on a name the program does not know


@pytest.fixture(scope="module")
def tiny_images(tmp_path_factory):
    from selfrestore.io import write_image

    root = tmp_path_factory.mktemp("docs")
    rng = np.random.default_rng(0)
    image = np.clip(np.linspace(0, 1, 32 * 32 * 3).reshape(32, 32, 3) + rng.normal(0, 0.1, (32, 32, 3)), 0, 1)
    write_image(root / "photos" / "a.png", image.astype(np.float32))
    (root / "photos" / "notes.png").write_text("not an image")
    return root


def test_a_folder_input_keeps_its_name_under_the_output_folder(tiny_images, capsys):
    from selfrestore.cli import main

    out = tiny_images / "restored"
    # README / restore --help: `restore photos/ -o restored/` writes restored/photos/NAME; a bad file is reported,
    # the others restored, exit code 1
    assert main(["restore", str(tiny_images / "photos"), "--model", "unet-gauss25", "-o", str(out), "--quiet"]) == 1
    assert (out / "photos" / "a.png").is_file()
    assert "notes.png" in capsys.readouterr().err


def test_python_api_returns_1_for_an_unreadable_input_and_restorer_gives_float32(tiny_images, capsys):
    from selfrestore import api
    from selfrestore.io import read_image
    from selfrestore.restore import Restorer

    assert api.restore(tiny_images / "photos" / "notes.png", model="unet-gauss25",
                       output=tiny_images / "api_out", quiet=True) == 1
    assert "notes.png" in capsys.readouterr().err
    noisy = read_image(tiny_images / "photos" / "a.png")[0]
    clean = Restorer("unet-gauss25").restore(noisy)  # README: (H, W, C) float in [0, 1] -> float32
    assert clean.dtype == np.float32 and clean.shape == noisy.shape
