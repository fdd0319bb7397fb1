"""Laine et al. 2019, Table 1, at this machine's scale: blind-spot denoising vs its baselines.

Protocol (fixed seeds throughout):

* training data: ``../shared/data/BSDS500_train_test`` (train/ + test/, 400 colour images, disjoint from
  every test set), each image corrupted ONCE (seed 0, a single noise realisation reused every epoch);
  N2N gets two fixed realisations, N2C the clean image (the supervised reference);
* every learned row trains the same network size (``--width`` / ``--depth``; N2C/N2N/N2V/Nb2Nb use the
  plain N2N U-Net, Laine19 the blind-spot U-Net of the same width/depth) for the same wall-clock budget
  (``--minutes`` per run, on the clock of ``--clock``: CPU time per thread by default, so that runs sharing
  the 2-core CPU are charged for the compute they got). The driver's time-budget mode trains until the
  budget is spent, with the learning-rate schedule (warm-up + cosine) following the elapsed fraction;
* test: Kodak24, BSD300_test, Set14 (gray ``bridge`` replicated to RGB), full images, each corrupted once
  with a fixed seed per set and image; PSNR after rounding to 8 bits, full image, all channels;
* rows: N2C, N2N, N2V, Nb2Nb, Laine19 mu-only, diagonal and full covariance with the noise level known
  and unknown (unknown = ``--unknown-mode``, "global" as the paper does for a fixed level), CBM3D (the
  ``bm3d`` package, reference only) and scikit-image non-local means (sigma known), Gaussian only;
* columns: gauss25 for all rows; poisson30 and impulse0.5 for N2C and Laine19 full (known / unknown);
* efficiency (gauss25): validation PSNR on a few Kodak crops is recorded during training of N2V and
  Laine19 full (sigma known), with validation time excluded from the training clock; reported: the time
  Laine19 needs to reach N2V's final validation PSNR, against N2V's own time.

Writes ``benchmarks/results/table1_blindspot.md`` (+ ``.json``); ``--quick`` writes ``*_quick.*`` instead.

    OMP_NUM_THREADS=2 python benchmarks/table1_blindspot.py --minutes 10          # the real table
    OMP_NUM_THREADS=1 python benchmarks/table1_blindspot.py --quick               # smoke run, ~5 min
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from selfrestore.checkpoint import build_net, load_model, read_checkpoint  # noqa: E402
from selfrestore.corruption import parse_corruption  # noqa: E402
from selfrestore.data.images import CorruptedImages, image_generator, random_patch  # noqa: E402
from selfrestore.file_lists import list_images  # noqa: E402
from selfrestore.io import read_image, to_channels  # noqa: E402
from selfrestore.metrics import psnr, quantize8  # noqa: E402
from selfrestore.registry import METHODS  # noqa: E402
from selfrestore.restore import restore_tensor  # noqa: E402
from selfrestore.train import TrainConfig, budget_clock, pick_device, train, validate  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
TEST_SETS = {"Kodak24": "Kodak24", "BSD300": "BSD300_test", "Set14": "Set14"}
NOISES = ("gauss25", "poisson30", "impulse0.5")


@dataclass
class Row:
    key: str
    label: str
    method: str = ""                      # registry name; "" for the classical references
    options: dict = field(default_factory=dict)
    noises: tuple = NOISES                # columns this row is run on
    patch_sizes: tuple = ()               # mixed patch sides per step (TrainConfig.patch_sizes); () = --patch
    scale_batch: bool = True              # with patch_sizes: False keeps --batch patches at every side
    mixed_from: float = 0.0               # with patch_sizes: fixed --patch until this fraction of the budget


MIXED = (128, 160, 192, 224, 256)  #: patch sides of the "-mp" rows (multiples of 2**depth for depth 5)


def rows(unknown_mode: str) -> list[Row]:
    lv = unknown_mode
    return [
        Row("n2c", "N2C (supervised reference)", "n2c"),
        Row("n2n", "N2N", "n2n", noises=("gauss25",)),
        Row("n2v", "N2V", "n2v", noises=("gauss25",)),
        Row("nb2nb", "Nb2Nb", "nb2nb", noises=("gauss25",)),
        Row("l19-mu", "Laine19 mu only", "laine19", {"head": "mu"}, noises=("gauss25",)),
        Row("l19-diag-known", "Laine19 diag, level known", "laine19", {"head": "diag"}, noises=("gauss25",)),
        Row("l19-diag-unknown", f"Laine19 diag, level unknown ({lv})", "laine19",
            {"head": "diag", "noise_level": lv}, noises=("gauss25",)),
        Row("l19-full-known", "Laine19 full, level known", "laine19", {"head": "full"}),
        Row("l19-full-unknown", f"Laine19 full, level unknown ({lv})", "laine19",
            {"head": "full", "noise_level": lv}),
        Row("l19-mu-mp", "Laine19 mu only, mixed patches", "laine19", {"head": "mu"}, noises=("gauss25",),
            patch_sizes=MIXED),
        Row("l19-diag-known-mp", "Laine19 diag, level known, mixed patches", "laine19", {"head": "diag"},
            noises=("gauss25",), patch_sizes=MIXED),
        Row("l19-full-known-mp", "Laine19 full, level known, mixed patches", "laine19", {"head": "full"},
            noises=("gauss25",), patch_sizes=MIXED),
        Row("l19-full-known-mp192", "Laine19 full, level known, mixed patches 128-192", "laine19",
            {"head": "full"}, noises=("gauss25",), patch_sizes=MIXED[:3]),
        Row("l19-full-known-mp192b", "Laine19 full, level known, mixed patches 128-192, full batch", "laine19",
            {"head": "full"}, noises=("gauss25",), patch_sizes=MIXED[:3], scale_batch=False),
        Row("l19-full-known-tail", "Laine19 full, level known, 128 px, mixed 128-192 in the last 20%", "laine19",
            {"head": "full"}, noises=("gauss25",), patch_sizes=MIXED[:3], mixed_from=0.8),
        Row("cbm3d", "CBM3D (bm3d package, sigma known)", noises=("gauss25",)),
        Row("nlmeans", "scikit-image NL-means (sigma known)", noises=("gauss25",)),
    ]


# --- data --------------------------------------------------------------------------------------------

def load_set(folder: Path, limit: int | None) -> list[np.ndarray]:
    paths, problems = list_images([folder])
    if problems or not paths:
        raise SystemExit(f"cannot read {folder}: {problems or 'no images'}")
    paths = sorted(paths)[:limit] if limit else sorted(paths)
    return [to_channels(read_image(p)[0], 3) for p in paths]


def corrupt_once(images: list[np.ndarray], noise, seed: int) -> list[torch.Tensor]:
    """Each (H, W, C) image -> one noisy (1, C, H, W) tensor, image i with its own fixed generator."""
    out = []
    for i, img in enumerate(images):
        x = torch.from_numpy(img.transpose(2, 0, 1).copy())[None]
        out.append(noise.sample(x, image_generator(seed, i)))
    return out


def validation_crops(images: list[np.ndarray], noise, size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    rng = np.random.default_rng(7)
    pairs = []
    for i, img in enumerate(images):
        (crop,) = random_patch(rng, [img], size)
        x = torch.from_numpy(crop.transpose(2, 0, 1).copy())[None]
        pairs.append((noise.sample(x, image_generator(999, i)), x))
    return pairs


# --- one learned row ---------------------------------------------------------------------------------

def train_row(row: Row, noise_name: str, train_images, args, device, workdir: Path, val_pairs, curve: bool):
    """Train one row for exactly the budget (the driver's time-budget mode: the learning-rate schedule
    follows the elapsed fraction of the budget, so every row gets a complete warm-up + cosine schedule)."""
    noise = parse_corruption(noise_name)
    method = METHODS.get(row.method)(noise=noise, **row.options)
    if args.seed:  # seed 0 keeps torch's default initial state: the committed cells were trained so
        torch.manual_seed(args.seed)
    net = build_net(method.default_net, **{**method.net_kwargs(3), "width": args.width, "depth": args.depth})
    source = CorruptedImages(train_images, noise, kind=method.batch_kind, seed=0, keep_clean=method.needs_clean)
    budget = 0.0 if args.steps else args.minutes * 60
    cfg = TrainConfig(steps=args.steps or 10**9, batch_size=args.batch, patch_size=args.patch, lr=args.lr,
                      patch_sizes=tuple(v * args.patch // 128 for v in row.patch_sizes),  # MIXED at --patch 128
                      scale_batch=row.scale_batch, mixed_from=row.mixed_from,
                      progress=False, plot=False, seed=args.seed, ckpt_every=10**9, budget_seconds=budget,
                      budget_clock=args.clock, amp=True)
    now = budget_clock(args.clock)
    # validation marks: fractions of the budget (seconds) or of the step count (--steps)
    marks = [(budget or args.steps) * f for f in np.linspace(0.1, 0.9, 9)] if curve else []
    clock = {"start": now(), "paused": 0.0, "steps": 0}
    history: list[tuple[int, float, float]] = []

    def on_step(step: int, loss: float) -> None:  # the driver does not count time spent here
        clock["steps"] = step + 1
        t_pause = now()
        progress = step + 1 if args.steps else t_pause - clock["start"] - clock["paused"]
        if marks and progress >= marks[0]:
            marks.pop(0)
            history.append((step + 1, t_pause - clock["start"] - clock["paused"],
                            validate(method, net, val_pairs, device)))
        clock["paused"] += now() - t_pause

    out_path = workdir / f"{row.key}-{noise_name}{seed_suffix(args)}.safetensors"
    if out_path.exists():
        out_path.unlink()
    train(method, net, source, cfg, out_path, on_step=on_step)
    train_seconds = now() - clock["start"] - clock["paused"]
    if curve:
        history.append((clock["steps"], train_seconds, validate(method, net, val_pairs, device)))
    net.eval()
    return method, net, {"steps": clock["steps"], "train_seconds": train_seconds, "clock": args.clock,
                         "curve": history}


def seed_suffix(args) -> str:
    """Repeat runs with another training seed (initial weights, patch draws; the single noisy realisation
    of the training set stays seed 0) go to their own table and model files: ``_seed<N>``."""
    return f"_seed{args.seed}" if args.seed else ""


def training_record(model_path: Path) -> dict:
    """Steps and budget of a finished training run, read from the model file's header (used when a run
    was stopped after training but before its cell was written)."""
    meta = read_checkpoint(model_path)[1]
    cfg = meta["train_config"]
    return {"steps": int(meta["step"]), "train_seconds": float(cfg["budget_seconds"]),
            "clock": cfg.get("budget_clock", "cpu"), "curve": [],
            "note": "training record from the model file (the run stopped before scoring)"}


# --- evaluation --------------------------------------------------------------------------------------

def evaluate_learned(method, net, test_data, device) -> dict[str, float]:
    scores = {}
    for set_name, (clean_list, noisy_list) in test_data.items():
        values = []
        for clean, noisy in zip(clean_list, noisy_list):
            with torch.no_grad():
                out = restore_tensor(method, net, noisy, device=device)
            values.append(psnr(quantize8(out[0].numpy().transpose(1, 2, 0)), clean))
        scores[set_name] = float(np.mean(values))
    return scores


def classical_denoiser(key: str, sigma: float):
    if key == "cbm3d":
        try:
            import bm3d
        except ImportError:
            return None
        return lambda y: bm3d.bm3d_rgb(y, sigma_psd=sigma)
    from skimage.restoration import denoise_nl_means

    return lambda y: denoise_nl_means(y, h=0.8 * sigma, sigma=sigma, fast_mode=True, patch_size=5,
                                      patch_distance=6, channel_axis=-1)


def evaluate_classical(key: str, noise_name: str, test_data) -> dict[str, float] | None:
    noise = parse_corruption(noise_name)
    fn = classical_denoiser(key, noise.low)
    if fn is None:
        return None
    scores = {}
    for set_name, (clean_list, noisy_list) in test_data.items():
        values = []
        for clean, noisy in zip(clean_list, noisy_list):
            y = noisy[0].numpy().transpose(1, 2, 0).astype(np.float64)
            values.append(psnr(quantize8(np.asarray(fn(y), dtype=np.float32)), clean))
        scores[set_name] = float(np.mean(values))
    return scores


# --- report ------------------------------------------------------------------------------------------

def claims(results: dict, efficiency: dict | None) -> list[str]:
    """The published claims, checked on Kodak24 gauss25 (and each set where stated). Honest PASS/FAIL."""
    def get(key, noise="gauss25", s="Kodak24"):
        return results.get(key, {}).get(noise, {}).get("psnr", {}).get(s)

    lines = []

    def check(text, ok):
        lines.append(f"- {'PASS' if ok else 'FAIL' if ok is not None else 'n/a '}: {text}")

    def gap(a, b):
        return None if a is None or b is None else a - b

    for variant, label in (("", ""), ("-mp", ", mixed-patch rows")):
        f, d, m = get(f"l19-full-known{variant}"), get(f"l19-diag-known{variant}"), get(f"l19-mu{variant}")
        if variant and f is d is m is None:
            continue
        g1, g2 = gap(f, d), gap(d, m)
        check(f"full > diag by >= 0.5 dB (Kodak24{label}): {g1 if g1 is None else f'{g1:+.2f} dB'}",
              None if g1 is None else g1 >= 0.5)
        check(f"diag > mu-only by >= 0.5 dB (Kodak24{label}): {g2 if g2 is None else f'{g2:+.2f} dB'}",
              None if g2 is None else g2 >= 0.5)
    full = get("l19-full-known")
    nb, n2v = get("nb2nb"), get("n2v")
    ok = None if None in (full, nb, n2v) else (full >= nb >= n2v)
    fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    check(f"Laine19 full >= Nb2Nb >= N2V (Kodak24): {fmt(full)}, {fmt(nb)}, {fmt(n2v)}", ok)
    for noise in NOISES:
        for s in TEST_SETS:
            d = gap(get("n2c", noise, s), get("l19-full-known", noise, s))
            if d is not None:
                check(f"Laine19 full within 0.3 dB of N2C, {noise} {s}: N2C - L19 = {d:+.2f} dB", d <= 0.3)
    for noise in NOISES:
        d = gap(get("l19-full-known", noise), get("l19-full-unknown", noise))
        if d is not None:
            check(f"level unknown within 0.1 dB of known, {noise} Kodak24: known - unknown = {d:+.2f} dB", d <= 0.1)
    d = gap(full, get("cbm3d"))
    check(f"Laine19 full above CBM3D, Kodak24 gauss25: {d if d is None else f'{d:+.2f} dB'}",
          None if d is None else d > 0)
    if efficiency:
        lines.append(f"- efficiency: {efficiency['text']}")
    return lines


def efficiency_from_curves(results: dict) -> dict | None:
    n2v = results.get("n2v", {}).get("gauss25", {})
    l19 = results.get("l19-full-known", {}).get("gauss25", {})
    if not n2v.get("curve") or not l19.get("curve"):
        return None
    target = n2v["curve"][-1][2]
    n2v_time = n2v["curve"][-1][1]
    reach = next((t for _, t, p in l19["curve"] if p >= target), None)
    text = (f"N2V's final validation PSNR {target:.2f} dB after {n2v_time:.0f} s of training; Laine19 full "
            + (f"reached it after {reach:.0f} s ({n2v_time / reach:.1f}x faster)" if reach else
               f"did not reach it within its {l19['curve'][-1][1]:.0f} s (best {max(p for *_, p in l19['curve']):.2f} dB)"))
    return {"target_psnr": target, "n2v_seconds": n2v_time, "laine19_seconds": reach, "text": text}


def write_report(path: Path, results: dict, args, argv: list[str], wall: float | None, device, all_rows) -> None:
    imported: dict = {}
    if args.steps:  # equal-iteration table: add the budget table's cells that took about as many steps
        for key, cells in cells_with_same_steps(args.steps).items():
            for n, e in cells.items():
                if n not in results.get(key, {}):
                    imported.setdefault(key, {})[n] = e
        results = {k: {**imported.get(k, {}), **results.get(k, {})} for k in {*results, *imported}}
    present = [(n, s) for r in results.values() for n, e in r.items() for s in e.get("psnr", {})]
    sets = [s for s in TEST_SETS if any(s == q for _, q in present)]  # every column any run filled
    noises = [n for n in NOISES if any(n == m for m, _ in present)]
    header = "| method | " + " | ".join(f"{n} {s}" for n in noises for s in sets) + " |"
    lines = [
        "# Laine et al. 2019 Table 1 at this machine's scale" + (" (QUICK SMOKE RUN: not a result)" if args.quick else ""),
        "",
        "Commands that produced the cells below (each cell records its own in the .json):",
        "",
        *[f"    {c}" for c in dict.fromkeys(e.get("command", "?") for r in results.values() for e in r.values())],
        *([""] + ["Cells scored from their trained models (after a change to restoration, or a run stopped before scoring):", ""]
          + [f"    {c}" for c in dict.fromkeys(e["eval_command"] for r in results.values() for e in r.values()
                                              if "eval_command" in e)]
          if any("eval_command" in e for r in results.values() for e in r.values()) else []),
        "",
        f"Machine: {platform.platform()}, {os.cpu_count()} CPU cores visible, torch {torch.__version__} with "
        f"{torch.get_num_threads()} threads, device {device}. "
        + ("This file was rewritten from the .json (--report-only)" if wall is None else
           f"Wall time of the run that wrote this file {wall / 60:.1f} min")
        + "; each cell's own time is in the .json (row_seconds).",
        "",
        f"Training: BSDS500_train_test ({args.train_count} images), each corrupted once (seed 0); "
        + (f"{args.steps} training steps per learned row (the same number for every method, as in the paper; "
           f"NOT the same time)" if args.steps else
           f"{args.minutes:g} min of training per learned row "
           f"({'CPU time per thread' if args.clock == 'cpu' else 'wall-clock'})")
        + f"; width {args.width}, depth {args.depth}, "
        f"batch {args.batch}, patch {args.patch}, lr {args.lr:g} (warm-up + cosine), bf16 autocast"
        + (f", training seed {args.seed} (a repeat of table1_blindspot.md's cells)" if args.seed else "") + ". "
        "Test noise: one fixed realisation per image; PSNR in dB after rounding to 8 bits"
        + (f"; first {args.eval_limit} images of each set" if args.eval_limit else "") + ".",
        *(["", f"Rows marked \"mixed patches\": each training step draws its patch side from "
               f"{', '.join(str(v * args.patch // 128) for v in MIXED)} px (\"128-192\": the first three) and "
               f"scales the batch to keep about {args.batch} x {args.patch}^2 pixels per step, at least one "
               f"patch (`fit --patch-sizes`); \"full batch\": {args.batch} patches at every side."]
          if any(r.patch_sizes and r.key in results for r in all_rows) else []),
        "",
        header,
        "|" + "---|" * (1 + len(noises) * len(sets)),
    ]
    for row in all_rows:
        cells = []
        for n in noises:
            for s in sets:
                v = results.get(row.key, {}).get(n, {}).get("psnr", {}).get(s)
                star = "*" if n in imported.get(row.key, {}) else ""
                cells.append(f"{v:.2f}{star}" if v is not None else "-")
        lines.append(f"| {row.label} | " + " | ".join(cells) + " |")
    lines += ["", ("Training runs (time excludes validation):" if args.steps else
                   "Training runs (each trains until its budget is spent; time excludes validation):"), ""]
    for row in all_rows:
        for n in noises:
            info = results.get(row.key, {}).get(n, {})
            if "steps" in info:
                source = (" (*: a cell of table1_blindspot.json, the time-budget table, whose run took about "
                          "this many steps; its schedule followed the clock)" if n in imported.get(row.key, {})
                          else "")
                lines.append(f"- {row.label}, {n}: {info['steps']} steps in {info['train_seconds']:.0f} s "
                             f"({info.get('clock', 'cpu')} clock){source}")
            elif info.get("note"):
                lines.append(f"- {row.label}, {n}: {info['note']}")
            elif n in imported.get(row.key, {}):
                lines.append(f"- {row.label}, {n}: no training (*: the cell of table1_blindspot.json)")
    if not (args.steps or args.seed or args.quick):
        lines += repeat_runs(results, all_rows)
    lines += ["", "Published claims checked on this table:", "", *claims(results, efficiency_from_curves(results)), ""]
    path.write_text("\n".join(lines))


def repeat_runs(results: dict, all_rows) -> list[str]:
    """Lines comparing this table's cells with the same cells trained with other seeds
    (table1_blindspot_seed<N>.json): how far one 20-minute run can be trusted."""
    repeats = {}
    for f in sorted(RESULTS.glob("table1_blindspot_seed*.json")):
        repeats[f.stem.rsplit("_seed", 1)[1]] = json.loads(f.read_text())
    out = []
    for row in all_rows:
        for n in NOISES:
            runs = [("0", results.get(row.key, {}).get(n, {}))] + [(k, r.get(row.key, {}).get(n, {}))
                                                                      for k, r in repeats.items()]
            runs = [(k, e) for k, e in runs if e.get("psnr")]
            if len(runs) < 2:
                continue
            sets = [t for t in TEST_SETS if all(t in e["psnr"] for _, e in runs)]
            cells = "; ".join(f"seed {k}: " + "/".join(f"{e['psnr'][t]:.2f}" for t in sets) + f" ({e.get('steps')} steps)"
                              for k, e in runs)
            mean = "/".join(f"{np.mean([e['psnr'][t] for _, e in runs]):.2f}" for t in sets)
            out.append(f"- {row.label}, {n} ({'/'.join(sets)}): {cells}; mean {mean}")
    if not out:
        return []
    return ["", "Repeat runs with other training seeds (`--seed N`, table1_blindspot_seedN.md; the cells above are "
                "seed 0):", "", *out]


SAME_STEPS_TOLERANCE = 0.05
CLASSICAL = ("cbm3d", "nlmeans")  #: rows without training


def cells_with_same_steps(steps: int) -> dict:
    """Cells of the time-budget table (table1_blindspot.json) whose training happened to take ``steps``
    steps (within 5 %), and the classical rows (untrained): an equal-iteration table can show them without
    retraining (marked with *)."""
    path = RESULTS / "table1_blindspot.json"
    budget = json.loads(path.read_text()) if path.exists() else {}
    return {key: {n: e for n, e in cells.items()
                  if e.get("psnr") and (key in CLASSICAL  # no training: the same numbers at any budget
                                        or abs(e.get("steps", 0) - steps) <= SAME_STEPS_TOLERANCE * steps)}
            for key, cells in budget.items()}


def merge_result(out_json: Path, key: str, noise_name: str, entry: dict) -> dict:
    """Add one cell to the JSON table under a file lock, so several ``--rows`` runs can share it."""
    import fcntl

    with open(out_json.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        results = json.loads(out_json.read_text()) if out_json.exists() else {}
        results.setdefault(key, {})[noise_name] = entry
        tmp = out_json.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(results, indent=1))
        os.replace(tmp, out_json)
    return results


# --- main --------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=10.0, help="training wall-clock budget per learned row")
    p.add_argument("--steps", type=int, default=None,
                   help="train every learned row for this many steps instead of --minutes (an equal-iteration "
                        "table, as the paper's; written to table1_blindspot_steps<N>.*)")
    p.add_argument("--quick", action="store_true", help="smoke run: tiny nets, budgets and image counts")
    p.add_argument("--width", type=int, default=48)
    p.add_argument("--depth", type=int, default=5)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--patch", type=int, default=128, help="multiple of 2 * 2**depth (Nb2Nb sub-samples)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0,
                   help="training seed (initial weights and patch draws); N > 0 writes table1_blindspot_seedN")
    p.add_argument("--rows", nargs="+", default=None, help="row keys to run (default: all)")
    p.add_argument("--noises", nargs="+", default=list(NOISES), choices=NOISES)
    p.add_argument("--sets", nargs="+", default=list(TEST_SETS), choices=list(TEST_SETS))
    p.add_argument("--unknown-mode", default="global", choices=["global", "unknown"],
                   help="how Laine19 learns an unknown level: one global value (paper, fixed levels) or per image")
    p.add_argument("--train-limit", type=int, default=None, help="use only the first N training images")
    p.add_argument("--eval-limit", type=int, default=None, help="evaluate only the first N images per set")
    p.add_argument("--val-crops", type=int, default=4, help="Kodak crops for the efficiency curves")
    p.add_argument("--workdir", default=None, help="where model files go (default: a temporary folder)")
    p.add_argument("--device", default="auto")
    p.add_argument("--report-only", action="store_true", help="rewrite the .md from the .json and stop")
    p.add_argument("--eval-only", action="store_true",
                   help="re-evaluate the trained models of --rows found in --workdir (after a change to "
                        "restoration), keeping each cell's training record; the cell notes the command")
    p.add_argument("--clock", default="cpu", choices=["cpu", "wall"],
                   help="budget clock: CPU time per thread (fair on a shared CPU; default) or wall-clock")
    args = p.parse_args(argv[1:])
    if args.quick:
        args.minutes = min(args.minutes, 0.1)
        args.width, args.depth, args.patch = 8, 3, 64
        args.train_limit = args.train_limit or 6
        args.eval_limit = args.eval_limit or 1
        args.val_crops = 1
    if args.patch % (2 * 2**args.depth):
        raise SystemExit(f"--patch must be a multiple of {2 * 2**args.depth}")
    all_rows = rows(args.unknown_mode)
    if args.report_only:
        suffix = ("_quick" if args.quick else "") + (f"_steps{args.steps}" if args.steps else "") + seed_suffix(args)
        results = json.loads((RESULTS / f"table1_blindspot{suffix}.json").read_text())
        args.train_count = 400 if not args.train_limit else args.train_limit
        write_report(RESULTS / f"table1_blindspot{suffix}.md", results, args, argv, None, pick_device(args.device),
                     all_rows)
        return 0
    by_key = {r.key: r for r in all_rows}
    unknown = [k for k in (args.rows or []) if k not in by_key]
    if unknown:
        raise SystemExit(f"unknown row(s) {unknown}; rows: {list(by_key)}")
    selected = [by_key[k] for k in args.rows] if args.rows else all_rows  # in the order given
    device = pick_device(args.device)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="table1_"))
    workdir.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    train_dir = DATA / "BSDS500_train_test"
    train_images = load_set(train_dir / "train", args.train_limit)
    if not args.train_limit or len(train_images) < args.train_limit:
        more = None if not args.train_limit else args.train_limit - len(train_images)
        train_images += load_set(train_dir / "test", more)
    args.train_count = len(train_images)
    clean_sets = {s: load_set(DATA / TEST_SETS[s], args.eval_limit) for s in args.sets}
    val_size = 64 if args.quick else 256
    suffix = ("_quick" if args.quick else "") + (f"_steps{args.steps}" if args.steps else "") + seed_suffix(args)
    out_md, out_json = RESULTS / f"table1_blindspot{suffix}.md", RESULTS / f"table1_blindspot{suffix}.json"
    if not args.rows and out_json.exists() and not args.eval_only:
        out_json.unlink()  # a full run starts a fresh table; --rows runs add to it
    command = " ".join(shlex.quote(a) for a in argv)

    for noise_name in args.noises:
        noise = parse_corruption(noise_name)
        test_data = {s: ([c for c in clean_sets[s]], corrupt_once(clean_sets[s], noise, seed=100 + k))
                     for k, s in enumerate(args.sets)}
        val_pairs = validation_crops(clean_sets.get("Kodak24", train_images)[:args.val_crops], noise, val_size)
        for row in selected:
            if noise_name not in row.noises:
                continue
            entry: dict = {}
            t0 = time.perf_counter()
            if args.eval_only:
                model_path = workdir / f"{row.key}-{noise_name}{seed_suffix(args)}.safetensors"
                previous = json.loads(out_json.read_text()).get(row.key, {}).get(noise_name) \
                    if out_json.exists() else None
                if not row.method or not model_path.exists():
                    print(f"{row.key:18s} {noise_name:11s} skipped: no trained model in {workdir}")
                    continue
                method, net, _ = load_model(model_path)
                if not previous:  # trained, but the run stopped before scoring: the file has the record
                    previous = {**training_record(model_path), "command": "(trained by a stopped run: see note)"}
                entry = {**previous, "psnr": evaluate_learned(method, net, test_data, device),
                         "eval_command": command}
                results = merge_result(out_json, row.key, noise_name, entry)
                print(f"{row.key:18s} {noise_name:11s} {json.dumps(entry['psnr'])} (re-evaluated)", flush=True)
                write_report(out_md, results, args, argv, time.perf_counter() - t_start, device, all_rows)
                continue
            if row.method:
                curve = noise_name == "gauss25" and row.key in ("n2v", "l19-full-known")
                method, net, info = train_row(row, noise_name, train_images, args, device, workdir, val_pairs, curve)
                entry.update(info)
                entry["psnr"] = evaluate_learned(method, net, test_data, device)
            else:
                scores = evaluate_classical(row.key, noise_name, test_data)
                if scores is None:
                    entry["note"] = "bm3d package not installed (pip install bm3d)"
                else:
                    entry["psnr"] = scores
            entry["row_seconds"] = time.perf_counter() - t0
            entry["command"] = command
            results = merge_result(out_json, row.key, noise_name, entry)
            print(f"{row.key:18s} {noise_name:11s} {json.dumps(entry.get('psnr', entry.get('note')))}"
                  f"  ({entry['row_seconds']:.0f} s)", flush=True)
            write_report(out_md, results, args, argv, time.perf_counter() - t_start, device, all_rows)
    print(f"wrote {out_md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
