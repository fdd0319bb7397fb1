"""Ctrl-C and SIGTERM take effect between training steps (audit stop 41): a signal that lands in the optimizer
step, the held-out loss or the best-weights write waits for the step to end, so the interrupt checkpoint holds
whole steps and --resume ends with exactly the weights (and history, and best weights) of an uninterrupted run;
a second Ctrl-C there stops at once without saving; SIGTERM saves like Ctrl-C and exits 143; a hand-damaged
model header is one line on --resume, not a traceback."""
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from selfrestore.checkpoint import _write, read_checkpoint
from selfrestore.cli import main
from test_interruptions import _noisy_images  # noqa: E402 (tests/ is on the path)


def _fit(data: Path, out: Path, *extra: str) -> list[str]:
    return ["fit", str(data), "--method", "n2v", "--width", "4", "--depth", "2", "--batch-size", "2",
            "--patch-size", "32", "--steps", "6", "--ckpt-every", "2", "--quiet", "-o", str(out), *extra]


def _same_tensors(a: Path, b: Path, prefix: str = "") -> bool:
    ta, tb = read_checkpoint(a)[0], read_checkpoint(b)[0]
    return ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta if k.startswith(prefix))


def _signals_in_optimizer_step(monkeypatch, call: int, *signals: int) -> None:
    """The ``call``-th Adam step updates half of the parameters, receives ``signals`` (sent to this process) and
    then updates the other half: a Ctrl-C landing in the middle of the update, as it can on a CPU, where Adam
    updates the parameters one by one in Python (its per-parameter update makes the two halves one whole step)."""
    original, calls = torch.optim.Adam.step, {"n": 0}

    def update(optimizer: torch.optim.Optimizer, params: list[torch.Tensor]) -> None:
        others = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None and
                  all(p is not q for q in params)]
        grads = [p.grad for p in others]
        for p in others:
            p.grad = None  # Adam skips a parameter without a gradient
        original(optimizer)
        for p, grad in zip(others, grads):
            p.grad = grad

    def step(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] != call:
            return original(self, *args, **kwargs)
        params = [p for g in self.param_groups for p in g["params"] if p.grad is not None]
        update(self, params[:len(params) // 2])
        for signum in signals:
            os.kill(os.getpid(), signum)
        update(self, params[len(params) // 2:])

    monkeypatch.setattr(torch.optim.Adam, "step", step)


@pytest.fixture(autouse=True)
def _default_signal_handlers():
    """Python's own handlers, whatever the test run was started with (a background job's shell ignores
    SIGINT, and fit then leaves Ctrl-C ignored too), and the caller's given back after each test."""
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield
    for signum, handler in before.items():
        signal.signal(signum, handler)


def _handlers_given_back() -> bool:
    return (signal.getsignal(signal.SIGINT) is signal.default_int_handler
            and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL)


def test_ctrl_c_inside_the_optimizer_step_saves_the_whole_step(tmp_path, monkeypatch, capsys):
    """A Ctrl-C in the middle of Adam's update saved half-updated weights as the step before, and --resume redid
    the step on top of them (max difference 1e-3). The step now ends first; the resumed weights and optimizer state
    are bit-identical to an uninterrupted run's. A second Ctrl-C during the update stops at once and saves nothing:
    the last periodic checkpoint stays, and resuming it is exact too."""
    data = _noisy_images(tmp_path / "data")
    full, cut, twice = (tmp_path / f"{name}.safetensors" for name in ("full", "cut", "twice"))
    assert main(_fit(data, full)) == 0
    with monkeypatch.context() as patch:
        _signals_in_optimizer_step(patch, 4, signal.SIGINT)
        assert main(_fit(data, cut)) == 130
    assert _handlers_given_back()
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"selfrestore fit: interrupted after step 4; checkpoint saved to {cut} (continue with --resume)"
    assert read_checkpoint(cut)[1]["step"] == 4
    with monkeypatch.context() as patch:
        _signals_in_optimizer_step(patch, 3, signal.SIGINT, signal.SIGINT)
        assert main(_fit(data, twice)) == 130
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "again during step 3: stopped at once" in err and f"{twice} keeps step 2" in err, err
    assert read_checkpoint(twice)[1]["step"] == 2 and _handlers_given_back()
    for out in (cut, twice):
        assert main(_fit(data, out, "--resume")) == 0
        assert _same_tensors(full, out)  # the weights and the Adam state
        assert read_checkpoint(out)[1]["history"] == read_checkpoint(full)[1]["history"]


@pytest.mark.parametrize("where", ["held-out loss", "best write"])
def test_ctrl_c_in_the_held_out_loss_or_the_best_write_keeps_the_point(tmp_path, monkeypatch, capsys, where):
    """A Ctrl-C while the held-out loss was measured, or while the best weights were written, lost that point:
    the record went to the history only after both, and the resumed run's history (the plot) and NAME.best could
    differ from an uninterrupted run's. The step's bookkeeping now ends first: both equal the uninterrupted run's."""
    import selfrestore.train as train_module

    data = _noisy_images(tmp_path / "data", n=4)
    full, out = tmp_path / "full.safetensors", tmp_path / "cut.safetensors"
    assert main(_fit(data, full, "--holdout", "0.5")) == 0
    measure, write = train_module.holdout_loss, train_module.save_checkpoint
    calls = {"loss": 0}

    def ctrl_c_in_second_measure(*args, **kwargs):
        calls["loss"] += 1
        if calls["loss"] == 2:  # step 4's
            os.kill(os.getpid(), signal.SIGINT)
        return measure(*args, **kwargs)

    def ctrl_c_in_first_best_write(path, *args, **kwargs):
        if str(path).endswith(".best.safetensors") and not Path(path).exists():
            os.kill(os.getpid(), signal.SIGINT)
        return write(path, *args, **kwargs)

    owner, hook, step = {"held-out loss": ("holdout_loss", ctrl_c_in_second_measure, 4),
                         "best write": ("save_checkpoint", ctrl_c_in_first_best_write, 2)}[where]
    with monkeypatch.context() as patch:
        patch.setattr(train_module, owner, hook)
        assert main(_fit(data, out, "--holdout", "0.5")) == 130
    assert f"interrupted after step {step}; checkpoint saved" in capsys.readouterr().err
    assert main(_fit(data, out, "--holdout", "0.5", "--resume")) == 0
    assert read_checkpoint(out)[1]["history"] == read_checkpoint(full)[1]["history"]
    best, full_best = tmp_path / "cut.best.safetensors", tmp_path / "full.best.safetensors"
    assert _same_tensors(full_best, best)
    assert {k: read_checkpoint(best)[1][k] for k in ("step", "holdout_loss")} == \
        {k: read_checkpoint(full_best)[1][k] for k in ("step", "holdout_loss")}


def test_sigterm_saves_a_checkpoint_and_exits_143(tmp_path, monkeypatch, capsys):
    """SIGTERM (kill, a batch system's time limit) ended fit at once (rc -15, no message, up to --ckpt-every steps
    lost). It now saves the checkpoint as Ctrl-C does, at a step's end, says so and exits 143; --resume is exact."""
    import selfrestore.train as train_module

    data = _noisy_images(tmp_path / "data")
    full, inside, between = (tmp_path / f"{name}.safetensors" for name in ("full", "inside", "between"))
    assert main(_fit(data, full)) == 0
    with monkeypatch.context() as patch:
        _signals_in_optimizer_step(patch, 3, signal.SIGTERM)
        assert main(_fit(data, inside)) == 143
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (f"selfrestore fit: terminated (SIGTERM) after step 3; checkpoint saved to {inside} (continue "
                   "with --resume)")
    original = train_module.learning_rate

    def kill_at_step_5(config, at):  # SIGTERM while the batch is drawn: outside any update
        if at == 5:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(config, at)

    with monkeypatch.context() as patch:
        patch.setattr(train_module, "learning_rate", kill_at_step_5)
        assert main(_fit(data, between)) == 143
    assert "terminated (SIGTERM) after step 5" in capsys.readouterr().err and _handlers_given_back()
    for out, step in ((inside, 3), (between, 5)):
        assert read_checkpoint(out)[1]["step"] == step
        assert main(_fit(data, out, "--resume")) == 0 and _same_tensors(full, out)


def test_a_repeated_sigterm_does_not_abandon_the_save(tmp_path, monkeypatch, capsys):
    """A batch system and torchrun each send SIGTERM: the second one, inside the same step, stopped the run at
    once and lost the step (a review); it is now ignored, and the step is saved. A second Ctrl-C inside a step
    (here in its held-out loss) still stops at once without saving it (its history record would be missing:
    the third review), keeping the last periodic checkpoint."""
    import selfrestore.train as train_module

    data = _noisy_images(tmp_path / "data")
    full, twice = tmp_path / "full.safetensors", tmp_path / "twice.safetensors"
    assert main(_fit(data, full)) == 0
    with monkeypatch.context() as patch:
        _signals_in_optimizer_step(patch, 3, signal.SIGTERM, signal.SIGTERM)
        assert main(_fit(data, twice)) == 143
    assert read_checkpoint(twice)[1]["step"] == 3
    assert main(_fit(data, twice, "--resume")) == 0 and _same_tensors(full, twice)
    capsys.readouterr()
    original, calls = train_module.holdout_loss, {"n": 0}

    def two_ctrl_c(*args, **kwargs):  # both in a step's held-out loss (measured every --ckpt-every steps)
        calls["n"] += 1
        if calls["n"] == 3:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
        return original(*args, **kwargs)

    kept = tmp_path / "kept.safetensors"
    with monkeypatch.context() as patch:
        patch.setattr(train_module, "holdout_loss", two_ctrl_c)
        assert main(_fit(data, kept, "--holdout", "0.5")) == 130
    import re

    found = re.search(r"interrupted again during step (\d+): stopped at once; \S+ keeps step (\d+)",
                      capsys.readouterr().err)
    assert found, "no stop-at-once message"
    during, kept_step = int(found.group(1)), int(found.group(2))
    assert kept_step == during - 2 and read_checkpoint(kept)[1]["step"] == kept_step  # the last periodic one


@pytest.mark.parametrize("damage, shown", [("step", "step 'abc'"), ("history", "history 'x'"),
                                           ("method", "method None")])
def test_a_damaged_header_is_one_line_on_resume(tmp_path, capsys, damage, shown):
    """A hand-edited header ("step": "abc", "history": "x", "method": null) made fit --resume end in a
    ValueError / AttributeError traceback; it is now one line naming the file, as restore --model says."""
    data = _noisy_images(tmp_path / "data")
    out = tmp_path / "m.safetensors"
    assert main(_fit(data, out, "--steps", "2")) == 0
    tensors, header = read_checkpoint(out)
    header[damage] = {"step": "abc", "history": "x", "method": None}[damage]
    _write(out, tensors, header)
    capsys.readouterr()
    assert main(_fit(data, out, "--steps", "4", "--resume")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"selfrestore fit: error: {out}: damaged") and shown in err[0], err


@pytest.mark.parametrize("mode", ["online", "offline"])
def test_video_fine_tuning_saves_its_state_on_sigterm(tmp_path, tiny_model, monkeypatch, capsys, mode):
    """`video` saved its fine-tuning state on Ctrl-C but died on SIGTERM (a batch system's time limit), losing the
    work since the last periodic save (the review). It now finishes the frame in hand, saves, exits 143 naming
    --resume (a repeated SIGTERM does not stop the save), and the resumed run writes the frames of an
    uninterrupted one."""
    import functools

    import tifffile

    import selfrestore.video as video

    frames = _noisy_images(tmp_path / "frames", n=4)
    base = ["video", str(frames), "--method", "f2f", "--model", str(tiny_model), "--steps-per-frame", "2",
            "--crop", "32", f"--{mode}", "--quiet"] + (["--passes", "2"] if mode == "offline" else [])
    monkeypatch.setattr(video, "VideoConfig", functools.partial(video.VideoConfig, checkpoint_seconds=3600))
    reference, resumed = tmp_path / "reference.tif", tmp_path / "resumed.tif"
    assert main([*base, "-o", str(reference)]) == 0
    original, calls = video.VideoFineTuner.train_steps, []

    def sigterm_on_second(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(video.VideoFineTuner, "train_steps", sigterm_on_second)
        capsys.readouterr()
        assert main([*base, "-o", str(resumed)]) == 143
    assert _handlers_given_back()
    err = capsys.readouterr().err
    assert "terminated (SIGTERM)" in err and "--resume" in err, err
    assert main([*base, "-o", str(resumed), "--resume"]) == 0
    assert np.array_equal(tifffile.imread(reference), tifffile.imread(resumed))
